#include "agent-client/agent.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "agent-client/sim/memory_content_store.h"
#include "gtest/gtest.h"
#include "tests/agent-client/fake_agent_service.h"

namespace ringwarden::agent {
namespace {

using testing::FakeAgentService;
using testing::FakeServer;
using testing::MakeTestTrust;
using testing::Misbehavior;
using testing::SignContent;
using testing::SignedContent;
using testing::TestTrust;

constexpr char kChannel[] = "rules.test";
constexpr char kId[] = "agent-1";

// StubLoadChecker fails the versions it is told to.
class StubLoadChecker final : public LoadChecker {
 public:
  absl::Status Check(const LoadCheckRequest& request) override {
    ++checks;
    if (request.version == fail_version) {
      return absl::FailedPreconditionError("interpreter rejected the rules");
    }
    return absl::OkStatus();
  }
  int64_t fail_version = -1;
  int checks = 0;
};

class AgentTest : public ::testing::Test {
 protected:
  AgentTest()
      : key_(Ed25519PrivateKey::Generate().value()),
        trust_(MakeTestTrust(key_)),
        random_(7),
        backoff_({}, random_),
        client_(AgentConnection::Create(server_.address()),
                AgentClientOptions{absl::Seconds(10), absl::Seconds(10), 64 << 10}) {
    server_.service().SetNextPollMs(30'000);
    // Every answer is signed by the root's server key, issued on the agent's clock.
    server_.service().SetTrust(trust_.server_key, 1);
    server_.service().SetClock(&clock_);
  }

  AgentConfig Config() {
    AgentConfig config;
    config.agent_id = kId;
    config.labels = {{"site", "test"}};
    config.channels = {kChannel};
    config.enrollment_token = FakeAgentService::kSecret;
    config.hostname = "host-1";
    config.boot_id = "boot-1";
    return config;
  }

  // NewAgent starts a fresh agent process over `store` (a restart when reused).
  std::unique_ptr<Agent> NewAgent(ContentStore& store, LoadChecker* checker = nullptr,
                                  AgentHooks* hooks = nullptr) {
    client_.SetIdentity("", "");
    auto agent = std::make_unique<Agent>(Config(), client_, store, trust_.root, clock_, backoff_,
                                         checker, hooks);
    absl::Status started = agent->Start();
    EXPECT_TRUE(started.ok()) << started;
    return agent;
  }

  SignedContent Serve(int64_t version, const std::string& payload) {
    SignedContent c = SignContent(key_, kChannel, version, payload);
    fake().Serve("*", c);
    return c;
  }

  absl::Duration Run(Agent& agent) {
    absl::StatusOr<absl::Duration> delay = agent.RunOnce();
    EXPECT_TRUE(delay.ok()) << delay.status();
    return delay.ok() ? *delay : absl::ZeroDuration();
  }

  // ApplyOneThenTwo puts the agent on v1, then v2.
  void ApplyOneThenTwo(Agent& agent) {
    Serve(1, "one");
    Run(agent);
    Serve(2, "two");
    Run(agent);
    ASSERT_EQ(store_.state().CurrentVersion(kChannel), 2);
  }

  std::optional<v1::ApplyReport> LastApplyReport() {
    std::vector<v1::ApplyReport> reports = fake().ApplyReports(kId);
    if (reports.empty()) {
      return std::nullopt;
    }
    return reports.back();
  }

  void ExpectLastReport(int64_t version, v1::ApplyOutcome outcome, const std::string& detail) {
    std::optional<v1::ApplyReport> report = LastApplyReport();
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->channel(), kChannel);
    EXPECT_EQ(report->version(), version);
    EXPECT_EQ(report->outcome(), outcome) << report->DebugString();
    EXPECT_NE(report->detail().find(detail), std::string::npos) << report->detail();
  }

  FakeAgentService& fake() { return server_.service(); }

  FakeServer server_;
  Ed25519PrivateKey key_;  // the release key
  TestTrust trust_;
  FakeClock clock_;
  SeededRandom random_;
  ExponentialBackoff backoff_;
  AgentClient client_;
  MemoryContentStore store_{/*keep_payloads=*/true};
};

TEST_F(AgentTest, HappyPathAppliesAndHeartbeats) {
  auto agent = NewAgent(store_);
  Serve(1, "rules version one");
  const absl::Duration delay = Run(*agent);

  EXPECT_EQ(delay, absl::Seconds(30));  // the server's next_poll
  EXPECT_EQ(agent->ring(), "broad");
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(*store_.CurrentPayload(kChannel), "rules version one");
  ExpectLastReport(1, v1::APPLY_OUTCOME_APPLIED, "");

  std::vector<v1::Heartbeat> heartbeats = fake().Heartbeats(kId);
  ASSERT_EQ(heartbeats.size(), 1u);
  ASSERT_EQ(heartbeats[0].versions_size(), 1);
  EXPECT_EQ(heartbeats[0].versions(0).channel(), kChannel);
  EXPECT_EQ(heartbeats[0].versions(0).version(), 1);
  EXPECT_EQ(heartbeats[0].boot_id(), "boot-1");
  auto calls = fake().telemetry();
  ASSERT_EQ(calls.size(), 1u);
  const int64_t first_seq = calls[0].request.batch_seq();
  EXPECT_EQ(first_seq, absl::ToUnixMicros(clock_.Now()));  // numbers follow the clock

  // Nothing new: no download, and no heartbeat until the interval passes.
  Run(*agent);
  EXPECT_EQ(fake().calls("FetchContent"), 1);
  EXPECT_EQ(fake().telemetry().size(), 1u);
  clock_.Advance(absl::Minutes(1));
  Run(*agent);
  heartbeats = fake().Heartbeats(kId);
  ASSERT_EQ(heartbeats.size(), 2u);
  EXPECT_EQ(heartbeats[1].uptime_seconds(), 60);
  EXPECT_GT(fake().telemetry().back().request.batch_seq(), first_seq);

  // A newer version replaces it; the old one is kept as last-known-good.
  Serve(2, "rules version two");
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 2);
  EXPECT_EQ(store_.state().channels.at(kChannel).last_known_good.version, 1);
  ExpectLastReport(2, v1::APPLY_OUTCOME_APPLIED, "");
}

TEST_F(AgentTest, WrongSignatureIsRefusedAndReportedOnce) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  SignedContent bad = SignContent(key_, kChannel, 2, "two");
  DsseEnvelope envelope = ParseEnvelopeJson(bad.served.envelope_json).value();
  envelope.signatures[0].sig[0] ^= 0x01;
  bad.served.envelope_json = EncodeEnvelopeJson(envelope);
  fake().Serve("*", bad);

  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(2, v1::APPLY_OUTCOME_SIGNATURE_REJECTED, "signature rejected");

  // Retried only after a backoff, and the same refusal is not reported again.
  const int fetches = fake().calls("FetchContent");
  Run(*agent);
  EXPECT_EQ(fake().calls("FetchContent"), fetches);
  clock_.Advance(absl::Minutes(10));
  Run(*agent);
  EXPECT_EQ(fake().calls("FetchContent"), fetches + 1);
  EXPECT_EQ(fake().ApplyReports(kId).size(), 2u);  // APPLIED v1 + one SIGNATURE_REJECTED v2
}

TEST_F(AgentTest, UntrustedKeyIsRefused) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  Ed25519PrivateKey other = Ed25519PrivateKey::Generate().value();
  fake().Serve("*", SignContent(other, kChannel, 2, "two"));
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(2, v1::APPLY_OUTCOME_SIGNATURE_REJECTED, "signature rejected");
}

TEST_F(AgentTest, EnvelopeWithWrongPayloadTypeIsRefused) {
  auto agent = NewAgent(store_);
  SignedContent c = SignContent(key_, kChannel, 1, "one");
  DsseEnvelope envelope = ParseEnvelopeJson(c.served.envelope_json).value();
  c.served.envelope_json =
      EncodeEnvelopeJson(SignEnvelope("text/plain", envelope.payload, {&key_}).value());
  fake().Serve("*", c);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 0);
  ExpectLastReport(1, v1::APPLY_OUTCOME_SIGNATURE_REJECTED, "");
}

TEST_F(AgentTest, DigestMismatchIsRefused) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  SignedContent bad = SignContent(key_, kChannel, 2, "two");
  bad.served.payload = "tw0";  // same size, other bytes
  fake().Serve("*", bad);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(*store_.CurrentPayload(kChannel), "one");
  ExpectLastReport(2, v1::APPLY_OUTCOME_DIGEST_MISMATCH, "payload sha256");
}

TEST_F(AgentTest, SizeMismatchIsRefused) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  SignedContent bad = SignContent(key_, kChannel, 2, "two");
  bad.assignment.set_size(4);
  fake().Serve("*", bad);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(2, v1::APPLY_OUTCOME_DIGEST_MISMATCH, "assignment says");

  // The manifest signs a size the payload does not have.
  SignedContent longer = SignContent(key_, kChannel, 3, "three");
  longer.served.payload = "three!";
  fake().Serve("*", longer);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(3, v1::APPLY_OUTCOME_DIGEST_MISMATCH, "");
}

TEST_F(AgentTest, ManifestForAnotherChannelOrVersionIsRefused) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  // A validly signed manifest of v1 replayed as v2.
  fake().Serve(
      "*", SignContent(key_, kChannel, 2, "two", [](v1::ContentManifest& m) { m.set_version(1); }));
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(2, v1::APPLY_OUTCOME_SIGNATURE_REJECTED, "signed manifest is for");

  fake().Serve("*", SignContent(key_, kChannel, 3, "three",
                                [](v1::ContentManifest& m) { m.set_channel("rules.other"); }));
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(3, v1::APPLY_OUTCOME_SIGNATURE_REJECTED, "rules.other");
}

TEST_F(AgentTest, TruncatedStreamIsRefused) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  SignedContent bad = SignContent(key_, kChannel, 2, std::string(5000, 'z'));
  bad.served.truncate = true;
  fake().Serve("*", bad);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(2, v1::APPLY_OUTCOME_DIGEST_MISMATCH, "ended after");
}

TEST_F(AgentTest, OversizedContentIsRefusedUnread) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  Serve(2, std::string(100 << 10, 'b'));  // the client allows 64 KiB
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(2, v1::APPLY_OUTCOME_APPLY_FAILED, "exceeds the limit");
}

TEST_F(AgentTest, LowerVersionNeedsRollbackDirective) {
  auto agent = NewAgent(store_);
  ApplyOneThenTwo(*agent);
  const int fetches = fake().calls("FetchContent");

  SignedContent one = SignContent(key_, kChannel, 1, "one");
  fake().Serve("*", one);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 2);
  std::vector<v1::HealthEvent> events = fake().HealthEvents(kId);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "assignment_refused");
  EXPECT_NE(events[0].detail().find("without a rollback directive"), std::string::npos);
  ExpectLastReport(2, v1::APPLY_OUTCOME_APPLIED, "");  // a refusal is not an apply failure

  one.assignment.set_rollback(true);
  one.assignment.add_revoked_versions(2);
  fake().Serve("*", one);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(*store_.CurrentPayload(kChannel), "one");
  EXPECT_EQ(fake().calls("FetchContent"), fetches);  // taken from last-known-good
  ExpectLastReport(2, v1::APPLY_OUTCOME_REVERTED, "rolled back to last-known-good v1");
  EXPECT_EQ(fake().Heartbeats(kId).back().versions(0).version(), 1);
}

// Inverted (issue 8): an unsigned rollback directive moved the agent from v3 to
// v2; now only a signed one does (SignedRollbackToVersionNotKeptIsDownloaded).
TEST_F(AgentTest, RollbackToVersionNotKeptIsRefusedWhenUnsigned) {
  auto agent = NewAgent(store_);
  Serve(3, "three");
  Run(*agent);
  SignedContent two = SignContent(key_, kChannel, 2, "two");
  two.assignment.set_rollback(true);
  fake().AddContent(kChannel, 2, two.served);
  // Only the unsigned fields say "roll back to v2"; the signed statement still names v3.
  Misbehavior lie;
  lie.unsigned_assignments = std::vector<v1::ChannelAssignment>{two.assignment};
  fake().SetMisbehavior(lie);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 3);
  ExpectLastReport(3, v1::APPLY_OUTCOME_APPLIED, "");

  // An answer with nothing signed at all is refused as a whole.
  lie.unsigned_answer = true;
  fake().SetMisbehavior(lie);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 3);
  EXPECT_EQ(*store_.CurrentPayload(kChannel), "three");
  ExpectLastReport(3, v1::APPLY_OUTCOME_APPLIED, "");
  EXPECT_EQ(fake().calls("FetchContent"), 1);
  std::vector<v1::HealthEvent> events = fake().HealthEvents(kId);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), "assignment_refused");
  EXPECT_NE(events[0].detail().find("no signed assignment"), std::string::npos)
      << events[0].detail();
  EXPECT_EQ(agent->assignment_refusal(), events[0].detail());
}

TEST_F(AgentTest, SignedRollbackToVersionNotKeptIsDownloaded) {
  auto agent = NewAgent(store_);
  Serve(3, "three");
  Run(*agent);
  SignedContent two = SignContent(key_, kChannel, 2, "two");
  two.assignment.set_rollback(true);
  fake().Serve("*", two);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 2);
  ExpectLastReport(3, v1::APPLY_OUTCOME_REVERTED, "rolled back to v2");
}

TEST_F(AgentTest, RevokedVersionIsRefused) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  SignedContent two = SignContent(key_, kChannel, 2, "two");
  two.assignment.add_revoked_versions(2);
  fake().Serve("*", two);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(fake().calls("FetchContent"), 1);
  ASSERT_EQ(fake().HealthEvents(kId).size(), 1u);
  EXPECT_NE(fake().HealthEvents(kId)[0].detail().find("revoked"), std::string::npos);
}

TEST_F(AgentTest, EmergencyStopAppliesNothingNew) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  Serve(2, "two");
  fake().SetEmergencyStop(true);
  clock_.Advance(absl::Minutes(1));
  Run(*agent);
  EXPECT_TRUE(agent->emergency_stop());
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(fake().calls("FetchContent"), 1);
  EXPECT_EQ(fake().Heartbeats(kId).size(), 2u);  // still alive and reporting

  fake().SetEmergencyStop(false);
  Run(*agent);
  EXPECT_FALSE(agent->emergency_stop());
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 2);
}

TEST_F(AgentTest, LoadCheckFailureKeepsPreviousVersion) {
  StubLoadChecker checker;
  checker.fail_version = 2;
  auto agent = NewAgent(store_, &checker);
  Serve(1, "one");
  Run(*agent);
  Serve(2, "two");
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(*store_.CurrentPayload(kChannel), "one");
  ExpectLastReport(2, v1::APPLY_OUTCOME_LOAD_CHECK_FAILED, "interpreter rejected");
  EXPECT_TRUE(store_.state().IsBlocked(kChannel, 2));
  // Never tried again, even after the backoff.
  clock_.Advance(absl::Hours(1));
  Run(*agent);
  EXPECT_EQ(fake().calls("FetchContent"), 2);
  EXPECT_EQ(checker.checks, 2);
}

// FaultHooks injects an apply failure and a delay.
class FaultHooks final : public AgentHooks {
 public:
  absl::Duration ApplyDelay(const std::string&, int64_t version) override {
    return version == 3 ? absl::Seconds(10) : absl::ZeroDuration();
  }
  absl::Status BeforeApply(const std::string&, int64_t version) override {
    return version == 2 ? absl::InternalError("disk full") : absl::OkStatus();
  }
  HostFate OnContentLoaded(const std::vector<ChannelVersion>& versions) override {
    loads.push_back(versions);
    return HostFate::kHealthy;
  }
  std::vector<std::vector<ChannelVersion>> loads;
};

TEST_F(AgentTest, HooksInjectApplyFailureAndLatency) {
  FaultHooks hooks;
  auto agent = NewAgent(store_, nullptr, &hooks);
  ASSERT_EQ(hooks.loads.size(), 1u);  // content loaded at start (none yet)
  Serve(1, "one");
  Run(*agent);
  Serve(2, "two");
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  ExpectLastReport(2, v1::APPLY_OUTCOME_APPLY_FAILED, "disk full");

  Serve(3, "three");
  EXPECT_EQ(Run(*agent), absl::Seconds(10));  // due when the staged apply is
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  clock_.Advance(absl::Seconds(10));
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 3);
  EXPECT_EQ(fake().calls("FetchContent"), 3);  // the staged content was not fetched again
  ASSERT_EQ(hooks.loads.size(), 3u);
  EXPECT_EQ(hooks.loads.back(), (std::vector<ChannelVersion>{{kChannel, 3}}));
}

TEST_F(AgentTest, UncleanShutdownIsReportedAtNextStart) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  agent.reset();  // died without Shutdown

  agent = NewAgent(store_);
  Run(*agent);
  std::vector<v1::CrashReport> crashes = fake().CrashReports(kId);
  ASSERT_EQ(crashes.size(), 1u);
  EXPECT_EQ(crashes[0].kind(), v1::CRASH_KIND_UNCLEAN_SHUTDOWN);
  ASSERT_EQ(crashes[0].versions_size(), 1);
  EXPECT_EQ(crashes[0].versions(0).version(), 1);

  ASSERT_TRUE(agent->Shutdown().ok());
  agent = NewAgent(store_);
  Run(*agent);
  EXPECT_EQ(fake().CrashReports(kId).size(), 1u);  // a clean stop is not a crash
}

TEST_F(AgentTest, BootLoopBreakerRevertsAfterThresholdMarkers) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  clock_.Advance(absl::Minutes(6));  // v1 runs through the healthy interval
  Run(*agent);
  EXPECT_TRUE(store_.state().channels.at(kChannel).current_known_good);
  EXPECT_FALSE(store_.state().meta.boot_marker.present);

  Serve(2, "two");
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 2);
  agent.reset();  // v2 takes the host down before the healthy interval

  for (int start = 1; start < 3; ++start) {
    agent = NewAgent(store_);  // boots, loads v2, crashes again
    EXPECT_EQ(store_.state().CurrentVersion(kChannel), 2) << "start " << start;
    EXPECT_EQ(store_.state().meta.boot_marker.hits, start);
    agent.reset();
  }
  agent = NewAgent(store_);  // third marker: revert without asking the server
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(*store_.CurrentPayload(kChannel), "one");
  EXPECT_TRUE(store_.state().IsBlocked(kChannel, 2));

  const int fetches = fake().calls("FetchContent");
  Run(*agent);  // the server still assigns v2: it is not applied again
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(fake().calls("FetchContent"), fetches);
  ExpectLastReport(2, v1::APPLY_OUTCOME_REVERTED, "boot-loop breaker");
  std::vector<v1::CrashReport> crashes = fake().CrashReports(kId);
  ASSERT_FALSE(crashes.empty());
  EXPECT_EQ(crashes.back().kind(), v1::CRASH_KIND_UNCLEAN_SHUTDOWN);
  EXPECT_EQ(crashes.back().versions(0).version(), 2);
}

TEST_F(AgentTest, FailedBatchIsResentWithSameSeq) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  fake().FailNext("ReportTelemetry", 1, grpc::StatusCode::UNAVAILABLE);
  Run(*agent);
  EXPECT_EQ(agent->inflight_batch_seq(), absl::ToUnixMicros(clock_.Now()));
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);

  Run(*agent);
  EXPECT_EQ(agent->inflight_batch_seq(), 0);
  auto calls = fake().telemetry();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[0].failed);
  EXPECT_FALSE(calls[1].failed);
  EXPECT_FALSE(calls[1].duplicate);
  EXPECT_EQ(calls[1].request.SerializeAsString(), calls[0].request.SerializeAsString());
  const int64_t first = calls[0].request.batch_seq();

  // Even with a clock that stands still, numbers keep increasing.
  Run(*agent);  // nothing to send
  Serve(2, "two");
  Run(*agent);
  const int64_t second = fake().telemetry().back().request.batch_seq();
  EXPECT_EQ(second, first + 1);

  // A restarted agent continues the sequence instead of reusing numbers...
  ASSERT_TRUE(agent->Shutdown().ok());
  agent = NewAgent(store_);
  Run(*agent);
  EXPECT_GT(fake().telemetry().back().request.batch_seq(), second);
  EXPECT_FALSE(fake().telemetry().back().duplicate);

  // ... and so does one whose state was wiped (reinstalled), since numbers follow the clock.
  clock_.Advance(absl::Seconds(1));
  MemoryContentStore wiped;
  agent = NewAgent(wiped);
  Run(*agent);
  EXPECT_GT(fake().telemetry().back().request.batch_seq(), second);
  EXPECT_FALSE(fake().telemetry().back().duplicate);
}

TEST_F(AgentTest, UnavailableServerBacksOffAndUnknownTokenReEnrolls) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  fake().FailNext("GetAssignment", 2, grpc::StatusCode::UNAVAILABLE);
  const absl::Duration first = Run(*agent);
  const absl::Duration second = Run(*agent);
  EXPECT_EQ(agent->last_error().code(), absl::StatusCode::kUnavailable);
  EXPECT_GT(first, absl::ZeroDuration());
  EXPECT_LE(first, absl::Seconds(1));
  EXPECT_GT(second, absl::Seconds(1));  // grows: 2s minus jitter of at most half
  EXPECT_EQ(Run(*agent), absl::Seconds(30));
  EXPECT_TRUE(agent->last_error().ok());

  fake().ForgetTokens();
  clock_.Advance(absl::Minutes(1));
  Run(*agent);
  EXPECT_EQ(agent->last_error().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(agent->enrolled());
  Run(*agent);
  EXPECT_TRUE(agent->last_error().ok());
  EXPECT_EQ(fake().calls("Enroll"), 2);
}

// A server that refuses with a retry hint (its rate limit) is not called again
// before the hint has passed, however short the agent's own backoff.
TEST_F(AgentTest, AThrottledAgentWaitsAtLeastTheServersRetryHint) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  ASSERT_EQ(store_.state().CurrentVersion(kChannel), 1);
  fake().SetRetryAfterMs(45'000);

  fake().FailNext("GetAssignment", 1, grpc::StatusCode::RESOURCE_EXHAUSTED);
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(Run(*agent), absl::Seconds(45));
  EXPECT_EQ(agent->last_error().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(RetryAfter(agent->last_error()), absl::Seconds(45));
  EXPECT_GE(agent->ErrorDelay(), absl::Seconds(45));

  // Telemetry refused with the hint is held back until it has passed.
  fake().FailNext("ReportTelemetry", 1, grpc::StatusCode::RESOURCE_EXHAUSTED);
  clock_.Advance(absl::Seconds(45));
  Run(*agent);
  const size_t sent = fake().telemetry().size();
  ASSERT_TRUE(fake().telemetry().back().failed);
  clock_.Advance(absl::Seconds(30));
  Run(*agent);
  EXPECT_EQ(fake().telemetry().size(), sent) << "resent before the hint passed";
  clock_.Advance(absl::Seconds(16));
  Run(*agent);
  EXPECT_GT(fake().telemetry().size(), sent);
  EXPECT_FALSE(fake().telemetry().back().failed);

  // A hint beyond 15 minutes is not believed.
  fake().SetRetryAfterMs(int64_t{24} * 3600 * 1000);
  fake().FailNext("GetAssignment", 1, grpc::StatusCode::RESOURCE_EXHAUSTED);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Run(*agent), absl::Minutes(15));
}

TEST_F(AgentTest, WrongEnrollmentSecretIsAnError) {
  client_.SetIdentity("", "");
  AgentConfig config = Config();
  config.enrollment_token = "wrong";
  Agent agent(config, client_, store_, trust_.root, clock_, backoff_);
  ASSERT_TRUE(agent.Start().ok());
  absl::StatusOr<absl::Duration> delay = agent.RunOnce();
  EXPECT_EQ(delay.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_GT(agent.ErrorDelay(), absl::ZeroDuration());
}

TEST_F(AgentTest, RunOnceBeforeStartFails) {
  Agent agent(Config(), client_, store_, trust_.root, clock_, backoff_);
  EXPECT_EQ(agent.RunOnce().status().code(), absl::StatusCode::kFailedPrecondition);
}

// The ring follows the server's enrollment answers (an admin relabel moves an
// agent; what the agent says about itself never does, server side), and an
// assignment naming any other ring is refused.
TEST_F(AgentTest, TheRingOfTheLastEnrollmentIsTheOneAssignmentsMustName) {
  auto agent = NewAgent(store_);
  Serve(1, "one");
  Run(*agent);
  EXPECT_EQ(store_.state().meta.trust.ring, "broad");

  agent.reset();
  client_.SetIdentity("", "");
  AgentConfig canary = Config();
  canary.labels = {{"group", "dogfood"}};
  Agent relabelled(canary, client_, store_, trust_.root, clock_, backoff_);
  ASSERT_TRUE(relabelled.Start().ok());
  EXPECT_EQ(relabelled.ring(), "broad");  // the kept credential: no new enrollment
  ASSERT_TRUE(relabelled.Enroll().ok());
  EXPECT_EQ(relabelled.ring(), "canary");
  EXPECT_EQ(store_.state().meta.trust.ring, "canary");

  Misbehavior broad_ring;
  broad_ring.ring = "broad";
  fake().SetMisbehavior(broad_ring);
  Serve(2, "two");
  ASSERT_TRUE(relabelled.RunOnce().ok());
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_NE(relabelled.assignment_refusal().find("broad ring; this agent is in canary"),
            std::string::npos)
      << relabelled.assignment_refusal() << " / " << relabelled.last_error() << " / "
      << store_.state().meta.trust.ring;
}

TEST_F(AgentTest, TrustStateRecordsSequenceAndHighestVersionRun) {
  auto agent = NewAgent(store_);
  ApplyOneThenTwo(*agent);
  const AgentTrustState& trust = store_.state().meta.trust;
  EXPECT_EQ(trust.highest.at(kChannel), 2);
  EXPECT_GT(trust.last_sequence, 0);
  const int64_t sequence = trust.last_sequence;

  SignedContent one = SignContent(key_, kChannel, 1, "one");
  one.assignment.set_rollback(true);
  fake().Serve("*", one);
  Run(*agent);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_EQ(store_.state().meta.trust.highest.at(kChannel), 2);  // highest ever, not current
  EXPECT_GT(store_.state().meta.trust.last_sequence, sequence);
}

TEST_F(AgentTest, ExpiredRootAcceptsNothingUntilTheServerSendsANewerOne) {
  RootSpec spec = testing::TestRootSpec(trust_.root_key, key_, trust_.server_key, 1);
  spec.expires = clock_.Now() - absl::Seconds(1);
  absl::StatusOr<Root> expired = TrustConfiguredRoot(testing::SignRoot(spec, {&trust_.root_key}));
  ASSERT_TRUE(expired.ok()) << expired.status();
  client_.SetIdentity("", "");
  Agent agent(Config(), client_, store_, *expired, clock_, backoff_);
  ASSERT_TRUE(agent.Start().ok());
  Serve(1, "one");
  ASSERT_TRUE(agent.RunOnce().ok());
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 0);
  EXPECT_NE(agent.assignment_refusal().find("root version 1 expired"), std::string::npos)
      << agent.assignment_refusal();
  EXPECT_EQ(fake().calls("FetchContent"), 0);

  spec.version = 2;
  spec.expires = clock_.Now() + absl::Hours(24);
  fake().SetRootUpdates({testing::SignRoot(spec, {&trust_.root_key})});
  ASSERT_TRUE(agent.RunOnce().ok());
  EXPECT_EQ(agent.root().version, 2);
  EXPECT_EQ(store_.state().CurrentVersion(kChannel), 1);
  EXPECT_FALSE(store_.state().meta.trusted_root.empty());
}

// The real daemon's combination: disk store plus a load-check command.
TEST_F(AgentTest, DiskStoreWithCommandLoadCheck) {
  std::string tmpl = ::testing::TempDir() + "/rw-agent-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl.data());
  {
    auto store = DiskContentStore::Open(dir);
    ASSERT_TRUE(store.ok());
    // Content "bad" fails the check.
    CommandLoadChecker checker("! grep -q bad {path}");
    auto agent = NewAgent(**store, &checker);
    Serve(1, "good rules");
    Run(*agent);
    Serve(2, "bad rules");
    Run(*agent);
    EXPECT_EQ((*store)->state().CurrentVersion(kChannel), 1);
    ExpectLastReport(2, v1::APPLY_OUTCOME_LOAD_CHECK_FAILED, "exited with status 1");
    Serve(3, "better rules");
    Run(*agent);
    ASSERT_TRUE(agent->Shutdown().ok());
    std::ifstream in(dir + "/rules.test/current");
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(ss.str(), "better rules");
  }
  auto reopened = DiskContentStore::Open(dir);
  ASSERT_TRUE(reopened.ok());
  ASSERT_TRUE((*reopened)->Load().ok());
  EXPECT_EQ((*reopened)->state().CurrentVersion(kChannel), 3);
  EXPECT_EQ((*reopened)->state().channels.at(kChannel).last_known_good.version, 1);
  EXPECT_FALSE((*reopened)->state().meta.running);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ringwarden::agent
