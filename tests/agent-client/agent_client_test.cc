#include "agent-client/agent_client.h"

#include <grpcpp/grpcpp.h>

#include "gtest/gtest.h"
#include "tests/agent-client/fake_agent_service.h"

namespace ringwarden::agent {
namespace {

using testing::FakeAgentService;
using testing::FakeServer;
using testing::SignContent;
using testing::SignedContent;

class AgentClientTest : public ::testing::Test {
 protected:
  AgentClientTest() : key_(Ed25519PrivateKey::Generate().value()) {}

  AgentClient NewClient(AgentClientOptions options = {}) {
    return AgentClient(AgentConnection::Create(server_.address()), options);
  }

  FakeServer server_;
  Ed25519PrivateKey key_;
};

TEST(FromGrpcStatusTest, KeepsCodeAndMessage) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  absl::Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "busy"));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "busy");
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "x")).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AgentClientTest, CallsBeforeEnrollFailWithoutRpc) {
  AgentClient client = NewClient();
  EXPECT_FALSE(client.enrolled());
  EXPECT_EQ(client.GetAssignment({}, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(server_.service().calls("GetAssignment"), 0);
}

TEST_F(AgentClientTest, EnrollWithWrongSecretKeepsServerMessage) {
  AgentClient client = NewClient();
  auto result = client.Enroll("a-1", {}, "nope", "host");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(result.status().message().find("enrollment secret"), std::string::npos);
  EXPECT_FALSE(client.enrolled());
}

TEST_F(AgentClientTest, EnrollAndAssignmentMapAllFields) {
  AgentClient client = NewClient();
  auto enrolled = client.Enroll("a-1", {{"group", "dogfood"}}, FakeAgentService::kSecret, "host");
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  EXPECT_EQ(enrolled->ring, "canary");
  EXPECT_FALSE(enrolled->token.empty());

  SignedContent c = SignContent(key_, "rules.test", 4, "payload");
  c.assignment.set_rollback(true);
  c.assignment.add_revoked_versions(5);
  server_.service().Serve("canary", c);
  server_.service().SetNextPollMs(2500);
  server_.service().SetEmergencyStop(true);
  auto a = client.GetAssignment({{"rules.test", 3}}, {"rules.test"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->ring, "canary");
  EXPECT_EQ(a->next_poll, absl::Milliseconds(2500));
  EXPECT_TRUE(a->emergency_stop);
  ASSERT_EQ(a->channels.size(), 1u);
  const ChannelAssignment& ca = a->channels[0];
  EXPECT_EQ(ca.channel, "rules.test");
  EXPECT_EQ(ca.version, 4);
  EXPECT_EQ(ca.sha256, c.assignment.sha256());
  EXPECT_EQ(ca.size, 7);
  EXPECT_TRUE(ca.rollback);
  EXPECT_EQ(ca.revoked_versions, std::vector<int64_t>{5});
  EXPECT_EQ(ca.rollout_id, "rollout-rules.test-4");
}

TEST_F(AgentClientTest, FetchReassemblesChunks) {
  AgentClient client = NewClient();
  ASSERT_TRUE(client.Enroll("a-1", {}, FakeAgentService::kSecret, "h").ok());
  std::string payload(10'000, 'x');
  SignedContent c = SignContent(key_, "rules.test", 1, payload);
  c.served.chunk_bytes = 999;
  server_.service().Serve("*", c);
  auto fetched = client.FetchContent("rules.test", 1);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->payload, payload);
  EXPECT_EQ(fetched->envelope_json, c.served.envelope_json);
}

TEST_F(AgentClientTest, FetchRefusesBrokenStreams) {
  AgentClient client = NewClient({absl::Seconds(5), absl::Seconds(5), 4096});
  ASSERT_TRUE(client.Enroll("a-1", {}, FakeAgentService::kSecret, "h").ok());
  SignedContent c = SignContent(key_, "rules.test", 1, std::string(3000, 'y'));

  c.served.truncate = true;
  server_.service().AddContent("rules.test", 1, c.served);
  auto truncated = client.FetchContent("rules.test", 1);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("ended after"), std::string::npos);

  c.served.truncate = false;
  c.served.gap = true;
  server_.service().AddContent("rules.test", 1, c.served);
  auto gapped = client.FetchContent("rules.test", 1);
  EXPECT_EQ(gapped.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(gapped.status().message().find("expected offset"), std::string::npos);

  c.served.gap = false;
  c.served.total_size_override = 10;
  server_.service().AddContent("rules.test", 1, c.served);
  auto longer = client.FetchContent("rules.test", 1);
  EXPECT_EQ(longer.status().code(), absl::StatusCode::kDataLoss);

  c.served.total_size_override = 1 << 20;
  server_.service().AddContent("rules.test", 1, c.served);
  auto oversized = client.FetchContent("rules.test", 1);
  EXPECT_EQ(oversized.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(oversized.status().message().find("exceeds the limit"), std::string::npos);

  EXPECT_EQ(client.FetchContent("rules.test", 9).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AgentClientTest, TelemetrySendsBearerTokenAndSeq) {
  AgentClient client = NewClient();
  ASSERT_TRUE(client.Enroll("a-1", {}, FakeAgentService::kSecret, "h").ok());
  std::vector<TelemetryEvent> events = {
      {absl::FromUnixMillis(1000), Heartbeat{{{"rules.test", 2}}, 5, "boot"}},
      {absl::FromUnixMillis(2000), ApplyReport{"rules.test", 2, ApplyOutcome::kApplied, ""}},
      {absl::FromUnixMillis(3000),
       CrashReport{CrashKind::kUncleanShutdown, {{"rules.test", 1}}, "x"}},
      {absl::FromUnixMillis(4000), HealthEvent{"cpu_high", "90%", {}}},
  };
  auto ack = client.ReportTelemetry(7, events);
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->accepted, 4);
  auto again = client.ReportTelemetry(7, events);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);

  auto calls = server_.service().telemetry();
  ASSERT_EQ(calls.size(), 2u);
  const auto& req = calls[0].request;
  EXPECT_EQ(req.agent_id(), "a-1");
  EXPECT_EQ(req.batch_seq(), 7);
  ASSERT_EQ(req.events_size(), 4);
  EXPECT_EQ(req.events(0).observed_unix_ms(), 1000);
  EXPECT_EQ(req.events(0).heartbeat().boot_id(), "boot");
  EXPECT_EQ(req.events(1).apply().outcome(), v1::APPLY_OUTCOME_APPLIED);
  EXPECT_EQ(req.events(2).crash().kind(), v1::CRASH_KIND_UNCLEAN_SHUTDOWN);
  EXPECT_EQ(req.events(3).health().kind(), "cpu_high");

  server_.service().ForgetTokens();
  EXPECT_EQ(client.ReportTelemetry(8, events).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(AgentClientNoServerTest, UnreachableServerIsUnavailable) {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  AgentClient client(AgentConnection::Create("127.0.0.1:1"));
  auto result = client.Enroll("a-1", {}, "s", "h");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ringwarden::agent
