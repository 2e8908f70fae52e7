#include "agent-client/agent_client.h"

#include <grpcpp/grpcpp.h>

#include "common/dsse.h"
#include "common/trust/trust.h"
#include "gtest/gtest.h"
#include "ringwarden/v1/content.pb.h"
#include "tests/agent-client/fake_agent_service.h"

namespace ringwarden::agent {
namespace {

using testing::FakeAgentService;
using testing::FakeServer;
using testing::SignContent;
using testing::SignedContent;

// CheckedBy accepts envelopes `key` signed and returns their manifest's size,
// as the agent's check does with the release role of its root.
EnvelopeCheck CheckedBy(const Ed25519PrivateKey& key) {
  return [trusted = TrustedKeys({key.PublicKey()})](
             absl::string_view envelope_json) -> absl::StatusOr<int64_t> {
    absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(envelope_json);
    if (!envelope.ok()) {
      return envelope.status();
    }
    absl::StatusOr<VerifiedEnvelope> verified = trusted.Verify(*envelope, kManifestPayloadType);
    if (!verified.ok()) {
      return verified.status();
    }
    v1::ContentManifest manifest;
    if (!manifest.ParseFromString(verified->payload)) {
      return absl::InvalidArgumentError("not a manifest");
    }
    return manifest.size();
  };
}

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

TEST_F(AgentClientTest, EnrollWithWrongTokenKeepsServerMessage) {
  AgentClient client = NewClient();
  auto result = client.Enroll("a-1", {}, "nope", "host");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(result.status().message().find("enrollment token refused"), std::string::npos);
  EXPECT_FALSE(client.enrolled());
}

TEST_F(AgentClientTest, EnrollAndAssignmentMapAllFields) {
  AgentClient client = NewClient();
  auto enrolled = client.Enroll("a-1", {{"group", "dogfood"}}, FakeAgentService::kSecret, "host");
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  EXPECT_EQ(enrolled->ring, "canary");
  EXPECT_FALSE(enrolled->credential.token.empty());

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
  auto fetched = client.FetchContent("rules.test", 1, CheckedBy(key_));
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
  auto truncated = client.FetchContent("rules.test", 1, CheckedBy(key_));
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("ended after"), std::string::npos);

  c.served.truncate = false;
  c.served.gap = true;
  server_.service().AddContent("rules.test", 1, c.served);
  auto gapped = client.FetchContent("rules.test", 1, CheckedBy(key_));
  EXPECT_EQ(gapped.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(gapped.status().message().find("expected offset"), std::string::npos);

  c.served.gap = false;
  c.served.total_size_override = 10;
  server_.service().AddContent("rules.test", 1, c.served);
  auto longer = client.FetchContent("rules.test", 1, CheckedBy(key_));
  EXPECT_EQ(longer.status().code(), absl::StatusCode::kDataLoss);

  c.served.total_size_override = 1 << 20;
  server_.service().AddContent("rules.test", 1, c.served);
  auto oversized = client.FetchContent("rules.test", 1, CheckedBy(key_));
  EXPECT_EQ(oversized.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(oversized.status().message().find("exceeds the limit"), std::string::npos);

  EXPECT_EQ(client.FetchContent("rules.test", 9, CheckedBy(key_)).status().code(),
            absl::StatusCode::kNotFound);
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

TEST_F(AgentClientTest, PollSendsRootVersionAndMapsSignedParts) {
  AgentClient client = NewClient();
  ASSERT_TRUE(client.Enroll("a-1", {}, FakeAgentService::kSecret, "h").ok());
  testing::TestTrust trust = testing::MakeTestTrust(key_);
  server_.service().SetTrust(trust.server_key, 1);
  server_.service().SetRootUpdates({trust.root_json});
  server_.service().SetFloors({testing::SignFloor(key_, "rules.test", 2)});
  auto a = client.GetAssignment({}, {"rules.test"}, 7);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(server_.service().LastRootVersion("a-1"), 7);
  EXPECT_EQ(a->signed_assignment, server_.service().SignedAssignments("a-1").back());
  EXPECT_EQ(a->root_updates, std::vector<std::string>{trust.root_json});
  ASSERT_EQ(a->floors.size(), 1u);
  EXPECT_TRUE(VerifyFloor(trust.root, a->floors[0]).ok());
}

// The download discipline: the envelope first, the signed size as the cap.
class FetchDisciplineTest : public AgentClientTest {
 protected:
  FetchDisciplineTest() : client_(NewClient(Options())) {
    EXPECT_TRUE(client_.Enroll("a-1", {}, FakeAgentService::kSecret, "h").ok());
  }
  static AgentClientOptions Options() {
    AgentClientOptions options;
    options.fetch_timeout = absl::Seconds(10);
    options.max_content_bytes = 64 << 10;
    options.fetch_rate_window = absl::Milliseconds(300);
    options.fetch_grace = absl::Seconds(1);
    return options;
  }
  // Served is 3000 signed bytes, in chunks of 1000.
  testing::SignedContent Served() {
    return SignContent(key_, "rules.test", 1, std::string(3000, 'p'));
  }
  absl::StatusOr<FetchedContent> Fetch(const testing::ServedContent& served) {
    server_.service().AddContent("rules.test", 1, served);
    return client_.FetchContent("rules.test", 1, CheckedBy(key_));
  }

  AgentClient client_;
};

TEST_F(FetchDisciplineTest, RefusedEnvelopeEndsTheDownloadWithTheCheckStatus) {
  int checks = 0;
  server_.service().AddContent("rules.test", 1, Served().served);
  auto fetched = client_.FetchContent("rules.test", 1, [&](absl::string_view envelope) {
    ++checks;
    EXPECT_EQ(envelope, Served().served.envelope_json);
    return absl::StatusOr<int64_t>(absl::PermissionDeniedError("not ours"));
  });
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(fetched.status().message(), "not ours");
  EXPECT_EQ(checks, 1);
}

TEST_F(FetchDisciplineTest, AnnouncedSizeOtherThanTheSignedOneIsRefused) {
  testing::ServedContent served = Served().served;
  served.payload += std::string(10, 'x');  // announced: 3010
  auto fetched = Fetch(served);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(fetched.status().message().find("announces 3010 bytes, the signed manifest says 3000"),
            std::string::npos)
      << fetched.status();
}

TEST_F(FetchDisciplineTest, SignedSizeAboveTheLimitIsRefused) {
  testing::SignedContent big = SignContent(key_, "rules.test", 1, std::string(70 << 10, 'b'));
  big.served.total_size_override = 10;  // an announcement that lies low
  auto fetched = Fetch(big.served);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(fetched.status().message().find("signed content of"), std::string::npos);
}

TEST_F(FetchDisciplineTest, FirstByteBeyondTheSignedSizeEndsTheDownload) {
  testing::ServedContent served = Served().served;
  served.payload += std::string(2000, 'x');
  served.total_size_override = 3000;
  served.hold_after_chunks = 4;  // never finishes: only refusing at the excess ends it early
  auto fetched = Fetch(served);
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(fetched.status().message().find("more than the signed and announced 3000 bytes"),
            std::string::npos)
      << fetched.status();
}

TEST_F(FetchDisciplineTest, StalledStreamIsRefused) {
  for (int hold : {0, 1}) {  // silent from the start, or after the envelope
    testing::ServedContent served = Served().served;
    served.hold_after_chunks = hold;
    auto fetched = Fetch(served);
    EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDataLoss) << hold;
    EXPECT_NE(fetched.status().message().find("download stalled"), std::string::npos)
        << fetched.status();
  }
}

// Once every signed byte is in, waiting for the end is not a stall; only the
// deadline ends it.
TEST_F(FetchDisciplineTest, SilenceAfterTheLastByteIsNoStall) {
  AgentClientOptions options = Options();
  options.fetch_timeout = absl::Seconds(2);
  options.fetch_grace = absl::Milliseconds(100);
  AgentClient client = NewClient(options);
  ASSERT_TRUE(client.Enroll("a-1", {}, FakeAgentService::kSecret, "h").ok());
  testing::ServedContent served = Served().served;
  served.hold_after_chunks = 3;  // all 3000 bytes, then no end
  server_.service().AddContent("rules.test", 1, served);
  auto fetched = client.FetchContent("rules.test", 1, CheckedBy(key_));
  EXPECT_EQ(fetched.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(fetched.status().message().find("download unfinished after 2s (3000 bytes received)"),
            std::string::npos)
      << fetched.status();
}

TEST_F(FetchDisciplineTest, WellBehavedStreamPasses) {
  auto fetched = Fetch(Served().served);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->payload, std::string(3000, 'p'));
}

TEST(ValidateAgentClientOptionsTest, RefusesEachOutOfRangeValue) {
  EXPECT_TRUE(ValidateAgentClientOptions({}).ok());
  std::vector<std::pair<std::string, AgentClientOptions>> bad;
  AgentClientOptions o;
  o.call_timeout = absl::ZeroDuration();
  bad.push_back({"call timeout", o});
  o = {};
  o.fetch_timeout = -absl::Seconds(1);
  bad.push_back({"download deadline", o});
  o = {};
  o.max_content_bytes = 0;
  bad.push_back({"content size limit", o});
  o = {};
  o.min_fetch_bytes_per_second = 0;
  bad.push_back({"minimum download rate", o});
  o = {};
  o.fetch_rate_window = absl::ZeroDuration();
  bad.push_back({"rate window", o});
  o = {};
  o.fetch_grace = -absl::Milliseconds(1);
  bad.push_back({"grace period", o});
  for (const auto& [what, options] : bad) {
    absl::Status status = ValidateAgentClientOptions(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_NE(status.message().find(what), std::string::npos) << status;
  }
}

TEST(AgentClientNoServerTest, UnreachableServerIsUnavailable) {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  AgentClient client(AgentConnection::Create("127.0.0.1:1"));
  auto result = client.Enroll("a-1", {}, "s", "h");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ringwarden::agent
