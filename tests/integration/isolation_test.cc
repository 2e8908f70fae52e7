// Hostile input and overload against the real server and database: every
// request has its method's size limit, every repeated field its bound, every
// name the shared validator; a flooding agent is throttled without slowing
// another; a row the database refuses for good costs nobody else's telemetry.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent-client/agent_client.h"
#include "cli/admin_client.h"
#include "common/pki.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::ServerProcess;
using testing::TestAgent;
using testing::TestDatabase;
using testing::TestKeys;

constexpr char kChannel[] = "rules.behavioral";
// The server's kMaxBatchSeqJump (server/agent_service.h): seven days of microseconds.
constexpr int64_t kMaxBatchSeqJump = int64_t{7} * 24 * 3600 * 1'000'000;

// ExpectStatus checks the exact code and that the message names `hint`.
void ExpectStatus(const grpc::Status& s, grpc::StatusCode code, const std::string& hint) {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  EXPECT_NE(s.error_message().find(hint), std::string::npos)
      << "message \"" << s.error_message() << "\" should mention \"" << hint << "\"";
}

// Metric reads one series from the server's /metrics (-1 if absent).
double Metric(int port, const std::string& name) {
  return testing::ScrapeMetric(port, name).value_or(-1);
}

class IsolationTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args = {}) {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_, 0, std::move(args));
    token_ = testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 10);
  }

  TestAgent Enroll(const std::string& id) {
    absl::StatusOr<TestAgent> agent = testing::EnrollAgent(server_->address(), id, token_);
    EXPECT_TRUE(agent.ok()) << agent.status();
    return agent.ok() ? *agent : TestAgent{};
  }

  std::unique_ptr<v1::AgentService::Stub> Stub(const TestAgent* agent = nullptr) {
    return v1::AgentService::NewStub(testing::ServerChannel(server_->address(), agent));
  }

  template <typename Req, typename Resp>
  static grpc::Status Call(v1::AgentService::Stub* stub,
                           grpc::Status (v1::AgentService::Stub::*method)(grpc::ClientContext*,
                                                                          const Req&, Resp*),
                           const Req& req, grpc::ClientContext* ctx = nullptr) {
    grpc::ClientContext own;
    grpc::ClientContext* c = ctx != nullptr ? ctx : &own;
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    Resp resp;
    return (stub->*method)(c, req, &resp);
  }

  // QueryEventually waits up to 20 s for `sql` to answer `want`, and returns its last answer.
  std::string QueryEventually(const std::string& sql, const std::string& want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    std::string got = db_.Query(sql);
    while (got != want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
      got = db_.Query(sql);
    }
    return got;
  }

  static v1::ReportTelemetryRequest Batch(const std::string& agent_id, int64_t seq) {
    v1::ReportTelemetryRequest req;
    req.set_agent_id(agent_id);
    req.set_batch_seq(seq);
    return req;
  }

  static void AddVersions(google::protobuf::RepeatedPtrField<v1::ChannelVersion>* versions, int n) {
    for (int i = 0; i < n; ++i) {
      v1::ChannelVersion* cv = versions->Add();
      cv->set_channel(absl::StrCat("rules.c", i));
      cv->set_version(1);
    }
  }

  TestDatabase db_;
  TestKeys keys_;
  std::unique_ptr<ServerProcess> server_;
  std::string token_;
};

TEST_F(IsolationTest, OversizedRequestsAreRefusedPerMethodNamingTheLimit) {
  Start();
  const TestAgent agent = Enroll("host-1");
  auto anonymous = Stub();
  auto stub = Stub(&agent);

  v1::EnrollRequest enroll;
  enroll.set_agent_id("host-2");
  enroll.set_enrollment_token(token_);
  enroll.set_hostname(std::string(17 * 1024, 'h'));
  ExpectStatus(Call(anonymous.get(), &v1::AgentService::Stub::Enroll, enroll),
               grpc::StatusCode::INVALID_ARGUMENT, "the limit of Enroll is 16384 bytes");

  v1::RenewCredentialRequest renew;
  renew.set_agent_id("host-1");
  renew.set_csr_pem(std::string(13 * 1024, 'c'));
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::RenewCredential, renew),
               grpc::StatusCode::INVALID_ARGUMENT, "the limit of RenewCredential is 12288 bytes");

  v1::GetAssignmentRequest poll;
  poll.set_agent_id("host-1");
  for (int i = 0; i < 64; ++i) {
    poll.add_channels(std::string(300, 'a'));
  }
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::GetAssignment, poll),
               grpc::StatusCode::INVALID_ARGUMENT, "the limit of GetAssignment is 16384 bytes");

  v1::FetchContentRequest fetch;
  fetch.set_agent_id("host-1");
  fetch.set_channel(std::string(2000, 'a'));
  grpc::ClientContext fetch_ctx;
  auto reader = stub->FetchContent(&fetch_ctx, fetch);
  v1::ContentChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  ExpectStatus(reader->Finish(), grpc::StatusCode::INVALID_ARGUMENT,
               "the limit of FetchContent is 1024 bytes");

  // A telemetry batch: 64 KiB. Just below it is accepted; above it is refused whole.
  v1::ReportTelemetryRequest big = Batch("host-1", 1);
  for (int i = 0; i < 70; ++i) {
    v1::ApplyReport* a = big.add_events()->mutable_apply();
    a->set_channel(kChannel);
    a->set_version(1);
    a->set_outcome(v1::APPLY_OUTCOME_APPLY_FAILED);
    a->set_detail(std::string(1000, 'd'));
  }
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, big),
               grpc::StatusCode::INVALID_ARGUMENT, "the limit of ReportTelemetry is 65536 bytes");
  while (big.ByteSizeLong() > 64 * 1024) {
    big.mutable_events()->RemoveLast();
  }
  EXPECT_TRUE(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, big).ok());

  // Admin calls: 64 KiB, except the uploads.
  AdminClient admin(server_->address(), keys_.viewer_token, absl::Seconds(10),
                    testing::Pki().ServerCaPem());
  v1::GetRolloutRequest get;
  get.set_id(std::string(70 * 1024, 'r'));
  absl::StatusOr<v1::Rollout> rollout = admin.Call(&v1::AdminService::Stub::GetRollout, get);
  EXPECT_EQ(rollout.status().code(), absl::StatusCode::kInvalidArgument) << rollout.status();
  EXPECT_NE(rollout.status().message().find("the limit of GetRollout is 65536 bytes"),
            absl::string_view::npos)
      << rollout.status();
  // The upload of 1 MiB of content is well within UploadContent's limit.
  const std::string payload(1 << 20, 'p');
  EXPECT_EQ(testing::PublishContent(server_->address(), keys_, kChannel, 1, payload).code, 0);
}

TEST_F(IsolationTest, TooManyVersionsInAnEventAreRefusedNamingTheField) {
  Start();
  const TestAgent agent = Enroll("host-1");
  auto stub = Stub(&agent);

  v1::ReportTelemetryRequest heartbeat = Batch("host-1", 1);
  AddVersions(heartbeat.add_events()->mutable_heartbeat()->mutable_versions(), 65);
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, heartbeat),
               grpc::StatusCode::INVALID_ARGUMENT,
               "events[0].heartbeat.versions holds 65 entries; at most 64");

  v1::ReportTelemetryRequest crash = Batch("host-1", 2);
  AddVersions(crash.add_events()->mutable_heartbeat()->mutable_versions(), 64);  // at the bound
  v1::CrashReport* c = crash.add_events()->mutable_crash();
  c->set_kind(v1::CRASH_KIND_PROCESS_CRASH);
  AddVersions(c->mutable_versions(), 65);
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, crash),
               grpc::StatusCode::INVALID_ARGUMENT,
               "events[1].crash.versions holds 65 entries; at most 64");

  v1::ReportTelemetryRequest health = Batch("host-1", 3);
  v1::HealthEvent* h = health.add_events()->mutable_health();
  h->set_kind("cpu_high");
  AddVersions(h->mutable_versions(), 65);
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, health),
               grpc::StatusCode::INVALID_ARGUMENT,
               "events[0].health.versions holds 65 entries; at most 64");

  // 64 versions are fine, and nothing of the refused batches was stored.
  crash.mutable_events(1)->mutable_crash()->mutable_versions()->RemoveLast();
  ASSERT_TRUE(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, crash).ok());
  EXPECT_EQ(QueryEventually("SELECT count(*) FROM crash_reports WHERE agent_id = 'host-1'", "64"),
            "64");
}

TEST_F(IsolationTest, BadChannelNamesAreRefusedByTheSharedValidatorNamingTheField) {
  Start();
  const TestAgent agent = Enroll("host-1");
  auto stub = Stub(&agent);

  v1::ReportTelemetryRequest apply = Batch("host-1", 1);
  apply.add_events()->mutable_heartbeat()->set_boot_id("b");
  v1::ApplyReport* a = apply.add_events()->mutable_apply();
  a->set_channel("Rules/../../etc");
  a->set_version(1);
  a->set_outcome(v1::APPLY_OUTCOME_APPLIED);
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, apply),
               grpc::StatusCode::INVALID_ARGUMENT, "events[1].apply.channel: channel");
  a->set_channel("");
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, apply),
               grpc::StatusCode::INVALID_ARGUMENT, "events[1].apply.channel: channel");
  a->set_channel(std::string(65, 'a'));
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, apply),
               grpc::StatusCode::INVALID_ARGUMENT, "events[1].apply.channel: channel");

  v1::GetAssignmentRequest poll;
  poll.set_agent_id("host-1");
  poll.add_channels(kChannel);
  poll.add_channels("bad channel");
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::GetAssignment, poll),
               grpc::StatusCode::INVALID_ARGUMENT, "channels[1]: channel");
  poll.clear_channels();
  v1::ChannelVersion* cv = poll.add_current();
  cv->set_channel("UPPER");
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::GetAssignment, poll),
               grpc::StatusCode::INVALID_ARGUMENT, "current[0].channel: channel");

  v1::FetchContentRequest fetch;
  fetch.set_agent_id("host-1");
  fetch.set_channel("rules;drop");
  fetch.set_version(1);
  grpc::ClientContext ctx;
  auto reader = stub->FetchContent(&ctx, fetch);
  v1::ContentChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  ExpectStatus(reader->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "channel: channel");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM apply_results"), "0");
}

TEST_F(IsolationTest, ABatchSequenceJumpIsRefusedNamingTheField) {
  Start();
  const TestAgent agent = Enroll("host-1");
  auto stub = Stub(&agent);
  v1::ReportTelemetryRequest first = Batch("host-1", 1000);
  first.add_events()->mutable_heartbeat()->set_boot_id("b");
  ASSERT_TRUE(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, first).ok());

  v1::ReportTelemetryRequest jump = Batch("host-1", 1000 + kMaxBatchSeqJump + 1);
  jump.add_events()->mutable_heartbeat()->set_boot_id("b");
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, jump),
               grpc::StatusCode::INVALID_ARGUMENT,
               absl::StrCat("batch_seq ", 1000 + kMaxBatchSeqJump + 1, " jumps more than"));
  // The refused jump did not move the base: the next consecutive batch is accepted.
  v1::ReportTelemetryRequest next = Batch("host-1", 1001);
  next.add_events()->mutable_heartbeat()->set_boot_id("b");
  ASSERT_TRUE(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, next).ok());
  v1::ReportTelemetryRequest zero = Batch("host-1", 0);
  ExpectStatus(Call(stub.get(), &v1::AgentService::Stub::ReportTelemetry, zero),
               grpc::StatusCode::INVALID_ARGUMENT, "batch_seq must be >= 1");
}

TEST_F(IsolationTest, AFloodingAgentIsThrottledWhileAnotherAgentsCallsSucceed) {
  Start({"--agent-rate", "2", "--agent-burst", "5"});
  const TestAgent flooder = Enroll("flooder");
  const TestAgent quiet = Enroll("quiet");
  auto flood = Stub(&flooder);
  auto calm = Stub(&quiet);

  v1::GetAssignmentRequest poll;
  poll.set_agent_id("flooder");
  int ok = 0;
  int throttled = 0;
  std::string hint;
  grpc::Status refusal;
  for (int i = 0; i < 40; ++i) {
    grpc::ClientContext ctx;
    grpc::Status s = Call(flood.get(), &v1::AgentService::Stub::GetAssignment, poll, &ctx);
    if (s.ok()) {
      ++ok;
      continue;
    }
    ASSERT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    ++throttled;
    refusal = s;
    const auto& trailers = ctx.GetServerTrailingMetadata();
    auto it = trailers.find("retry-after-ms");
    ASSERT_NE(it, trailers.end()) << "a throttled call carries a retry hint";
    hint = std::string(it->second.data(), it->second.size());
  }
  // The burst of 5, plus what 2/s refilled while the loop ran.
  EXPECT_GE(ok, 5);
  EXPECT_LE(ok, 12);
  EXPECT_GE(throttled, 28);
  ExpectStatus(refusal, grpc::StatusCode::RESOURCE_EXHAUSTED,
               "GetAssignment: agent flooder is over its rate of 2 calls/s (burst 5)");
  int64_t hint_ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(hint, &hint_ms)) << hint;
  EXPECT_GT(hint_ms, 0);
  EXPECT_LE(hint_ms, 500);
  // Telemetry of the flooder is throttled by the same bucket.
  v1::ReportTelemetryRequest batch = Batch("flooder", 1);
  batch.add_events()->mutable_heartbeat()->set_boot_id("b");
  ExpectStatus(Call(flood.get(), &v1::AgentService::Stub::ReportTelemetry, batch),
               grpc::StatusCode::RESOURCE_EXHAUSTED, "ReportTelemetry: agent flooder");

  // The other agent is untouched: its polls and telemetry go through.
  v1::GetAssignmentRequest calm_poll;
  calm_poll.set_agent_id("quiet");
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Call(calm.get(), &v1::AgentService::Stub::GetAssignment, calm_poll).ok()) << i;
  }
  v1::ReportTelemetryRequest calm_batch = Batch("quiet", 1);
  calm_batch.add_events()->mutable_heartbeat()->set_boot_id("b");
  EXPECT_TRUE(Call(calm.get(), &v1::AgentService::Stub::ReportTelemetry, calm_batch).ok());

  // The agent client reads the hint, so the agent waits at least that long.
  agent::AgentClient client(
      agent::AgentConnection::FromChannel(testing::ServerChannel(server_->address(), &flooder)));
  client.SetCredential({flooder.id, "", flooder.key_pem, flooder.cert_pem});
  absl::StatusOr<agent::PollAnswer> answer = client.GetAssignment({}, {});
  ASSERT_EQ(answer.status().code(), absl::StatusCode::kResourceExhausted) << answer.status();
  EXPECT_GT(agent::RetryAfter(answer.status()), absl::ZeroDuration());
  EXPECT_LE(agent::RetryAfter(answer.status()), absl::Milliseconds(500));
  EXPECT_GE(
      Metric(server_->metrics_port(), "ringwarden_requests_refused_total{reason=\"rate_limit\"}"),
      throttled + 2);
}

TEST_F(IsolationTest, APoisonRowIsDroppedWhileTheRestOfItsFlushIsWritten) {
  Start();
  const TestAgent a = Enroll("host-a");
  const TestAgent b = Enroll("host-b");
  // The database refuses one row for good, as a CHECK constraint or a data
  // exception would; the server knows nothing of it.
  db_.Exec(
      "ALTER TABLE crash_reports ADD CONSTRAINT no_poison CHECK (detail <> 'poison') NOT VALID");
  auto stub_a = Stub(&a);
  auto stub_b = Stub(&b);
  auto crash = [](v1::ReportTelemetryRequest& req, const std::string& detail) {
    v1::CrashReport* c = req.add_events()->mutable_crash();
    c->set_kind(v1::CRASH_KIND_PROCESS_CRASH);
    c->set_detail(detail);
    v1::ChannelVersion* cv = c->add_versions();
    cv->set_channel(kChannel);
    cv->set_version(3);
  };
  auto heartbeat = [](v1::ReportTelemetryRequest& req) {
    v1::ChannelVersion* cv = req.add_events()->mutable_heartbeat()->add_versions();
    cv->set_channel(kChannel);
    cv->set_version(3);
  };
  // Both agents' batches normally land in one flush (500 ms); host-a's good rows always
  // share the poison row's.
  v1::ReportTelemetryRequest from_a = Batch("host-a", 1);
  heartbeat(from_a);
  crash(from_a, "segv in parser");
  crash(from_a, "poison");
  crash(from_a, "abort");
  v1::ReportTelemetryRequest from_b = Batch("host-b", 1);
  heartbeat(from_b);
  crash(from_b, "segv in loader");
  ASSERT_TRUE(Call(stub_a.get(), &v1::AgentService::Stub::ReportTelemetry, from_a).ok());
  ASSERT_TRUE(Call(stub_b.get(), &v1::AgentService::Stub::ReportTelemetry, from_b).ok());

  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  ASSERT_EQ(QueryEventually("SELECT count(*) FROM crash_reports", "3"), "3");
  EXPECT_EQ(db_.Query("SELECT string_agg(agent_id || ':' || detail, ',' ORDER BY agent_id, "
                      "detail) FROM crash_reports"),
            "host-a:abort,host-a:segv in parser,host-b:segv in loader");
  EXPECT_EQ(db_.Query("SELECT string_agg(agent_id || '=' || version, ',' ORDER BY agent_id) "
                      "FROM agent_versions"),
            "host-a=3,host-b=3");
  // Counted once, in its own metric and among the dropped rows.
  double poison = -1;
  while (absl::Now() < deadline &&
         (poison = Metric(server_->metrics_port(), "ringwarden_telemetry_poison_rows_total")) < 1) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(poison, 1);
  EXPECT_EQ(Metric(server_->metrics_port(), "ringwarden_telemetry_dropped_rows_total"), 1);

  // Later batches flow as before.
  v1::ReportTelemetryRequest later = Batch("host-a", 2);
  crash(later, "later");
  ASSERT_TRUE(Call(stub_a.get(), &v1::AgentService::Stub::ReportTelemetry, later).ok());
  EXPECT_EQ(QueryEventually("SELECT count(*) FROM crash_reports", "4"), "4");
}

TEST_F(IsolationTest, AnAgentBeyondItsTelemetryShareIsRefusedWhileAnotherIsAccepted) {
  // No rate limit, a share of 100 rows, and no flush during the test.
  Start(
      {"--agent-rate", "0", "--telemetry-agent-rows", "100", "--telemetry-flush-interval", "600"});
  const TestAgent flooder = Enroll("flooder");
  const TestAgent quiet = Enroll("quiet");
  auto flood = Stub(&flooder);
  auto calm = Stub(&quiet);
  auto crash_rows = [&](const std::string& id, int64_t seq) {
    v1::ReportTelemetryRequest req = Batch(id, seq);
    v1::CrashReport* c = req.add_events()->mutable_crash();
    c->set_kind(v1::CRASH_KIND_PROCESS_CRASH);
    AddVersions(c->mutable_versions(), 60);  // 60 rows
    return req;
  };
  ASSERT_TRUE(
      Call(flood.get(), &v1::AgentService::Stub::ReportTelemetry, crash_rows("flooder", 1)).ok());
  grpc::ClientContext ctx;
  ExpectStatus(
      Call(flood.get(), &v1::AgentService::Stub::ReportTelemetry, crash_rows("flooder", 2), &ctx),
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      "ReportTelemetry: agent flooder holds its share of the telemetry queue");
  EXPECT_NE(ctx.GetServerTrailingMetadata().find("retry-after-ms"),
            ctx.GetServerTrailingMetadata().end());
  // Another agent's batch is taken, twice over the flooder's remaining room.
  EXPECT_TRUE(
      Call(calm.get(), &v1::AgentService::Stub::ReportTelemetry, crash_rows("quiet", 1)).ok());
  // The refused batch was not recorded as seen: resent later, it is not a duplicate.
  v1::ReportTelemetryResponse ack;
  grpc::ClientContext resend;
  resend.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  EXPECT_EQ(flood->ReportTelemetry(&resend, crash_rows("flooder", 2), &ack).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_GE(Metric(server_->metrics_port(),
                   "ringwarden_requests_refused_total{reason=\"telemetry_share\"}"),
            2);
}

}  // namespace
}  // namespace ringwarden
