// TrustChainAttackTest (agent level): each case is an attack on a running
// Agent by a hostile server or network, played by the fake AgentService, and
// checks both that the agent refuses it and that it keeps running what it had.
// The pure-library cases of the same suite are in tests/common.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent-client/agent.h"
#include "agent-client/sim/memory_content_store.h"
#include "gtest/gtest.h"
#include "tests/agent-client/fake_agent_service.h"
#include "tests/agent-client/test_files.h"

namespace ringwarden::agent {
namespace {

using testing::FakeAgentService;
using testing::FakeServer;
using testing::MakeTestTrust;
using testing::Misbehavior;
using testing::SignContent;
using testing::SignedContent;
using testing::SignFloor;
using testing::SignRoot;
using testing::TestRootSpec;
using testing::TestTrust;

constexpr char kChannel[] = "rules.test";
constexpr char kId[] = "agent-b";

// ShortDownloads refuses a download that brings less than 1 KiB/s over 300 ms
// after 1 s, or that is unfinished after 10 s: a stall shows up in real time
// within about 1.3 s, without any sleep in the test.
AgentClientOptions ShortDownloads() {
  AgentClientOptions options;
  options.call_timeout = absl::Seconds(10);
  options.fetch_timeout = absl::Seconds(10);
  options.max_content_bytes = 64 << 10;
  options.min_fetch_bytes_per_second = 1024;
  options.fetch_rate_window = absl::Milliseconds(300);
  options.fetch_grace = absl::Seconds(1);
  return options;
}

// Host is one agent process with its own client and store.
struct Host {
  Host(const std::string& address, const std::string& id, AgentClientOptions options = {})
      : id(id), client(AgentConnection::Create(address), options) {}
  std::string id;
  AgentClient client;
  MemoryContentStore store{/*keep_payloads=*/true};
  std::unique_ptr<Agent> agent;
};

class TrustChainAttackTest : public ::testing::Test {
 protected:
  TrustChainAttackTest()
      : release_(Ed25519PrivateKey::Generate().value()),
        trust_(MakeTestTrust(release_)),
        random_(11),
        backoff_({}, random_) {
    fake().SetNextPollMs(30'000);
    fake().SetTrust(trust_.server_key, 1);
    fake().SetClock(&clock_);
  }

  // StartHost starts an agent `id` (labels make it canary or broad).
  std::unique_ptr<Host> StartHost(const std::string& id, bool canary = false,
                                  AgentClientOptions options = ShortDownloads()) {
    auto host = std::make_unique<Host>(server_.address(), id, options);
    Restart(*host, canary);
    return host;
  }

  // Restart starts a new agent process over the host's store.
  void Restart(Host& host, bool canary = false) {
    AgentConfig config;
    config.agent_id = host.id;
    config.labels = canary ? std::map<std::string, std::string>{{"group", "dogfood"}}
                           : std::map<std::string, std::string>{};
    config.channels = {kChannel};
    config.enrollment_token = FakeAgentService::kSecret;
    config.hostname = host.id;
    config.boot_id = "boot";
    host.client.SetIdentity("", "");
    host.agent =
        std::make_unique<Agent>(config, host.client, host.store, trust_.root, clock_, backoff_);
    ASSERT_TRUE(host.agent->Start().ok());
  }

  void Run(Host& host) {
    absl::StatusOr<absl::Duration> delay = host.agent->RunOnce();
    ASSERT_TRUE(delay.ok()) << delay.status();
    ASSERT_TRUE(host.agent->last_error().ok()) << host.agent->last_error();
  }

  // Serve assigns `version` (release-signed `payload`) to `ring`.
  SignedContent Serve(int64_t version, const std::string& payload, const std::string& ring = "*") {
    SignedContent c = SignContent(release_, kChannel, version, payload);
    fake().Serve(ring, c);
    return c;
  }

  // StartOnVersionOne starts agent kId (broad) and puts it on v1 "one".
  std::unique_ptr<Host> StartOnVersionOne() {
    auto host = StartHost(kId);
    RunOn(*host, 1, "one");
    return host;
  }

  // RunOn serves `version` and runs `host` until it applied it.
  void RunOn(Host& host, int64_t version, const std::string& payload) {
    Serve(version, payload);
    Run(host);
    ASSERT_EQ(host.store.state().CurrentVersion(kChannel), version);
  }

  // ExpectKeepsRunning: `version` with `payload` is still in effect and is what
  // the agent's latest heartbeat reports.
  void ExpectKeepsRunning(Host& host, int64_t version, const std::string& payload) {
    EXPECT_EQ(host.store.state().CurrentVersion(kChannel), version);
    absl::StatusOr<std::string> bytes = host.store.CurrentPayload(kChannel);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(*bytes, payload);
    EXPECT_FALSE(host.agent->host_down());
    std::vector<v1::Heartbeat> heartbeats = fake().Heartbeats(host.id);
    ASSERT_FALSE(heartbeats.empty());
    ASSERT_EQ(heartbeats.back().versions_size(), 1);
    EXPECT_EQ(heartbeats.back().versions(0).version(), version);
  }

  // ExpectRefusal wants a health event "assignment_refused" whose detail has `why`.
  void ExpectRefusal(const Host& host, const std::string& why) {
    for (const v1::HealthEvent& e : fake().HealthEvents(host.id)) {
      if (e.kind() == "assignment_refused" && e.detail().find(why) != std::string::npos) {
        return;
      }
    }
    ADD_FAILURE() << "no assignment_refused event with \"" << why << "\" for " << host.id;
  }

  // ExpectRejected wants `outcome` as the last apply report of `version`, with `why`.
  void ExpectRejected(const Host& host, int64_t version, v1::ApplyOutcome outcome,
                      const std::string& why) {
    std::vector<v1::ApplyReport> reports = fake().ApplyReports(host.id);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back().version(), version);
    EXPECT_EQ(reports.back().outcome(), outcome) << reports.back().DebugString();
    EXPECT_NE(reports.back().detail().find(why), std::string::npos) << reports.back().detail();
  }

  FakeAgentService& fake() { return server_.service(); }

  FakeServer server_;
  Ed25519PrivateKey release_;
  TestTrust trust_;
  FakeClock clock_;
  SeededRandom random_;
  ExponentialBackoff backoff_;
};

// ---- Ours -----------------------------------------------------------------

TEST_F(TrustChainAttackTest, AgentAAssignmentReplayedToAgentBIsRefused) {
  auto b = StartHost("agent-b");
  RunOn(*b, 1, "one");
  auto a = StartHost("agent-a");
  Serve(2, "two");
  Run(*a);
  ASSERT_EQ(a->store.state().CurrentVersion(kChannel), 2);
  const std::string a_statement = fake().SignedAssignments("agent-a").back();

  Misbehavior replay;
  replay.replay = a_statement;
  fake().SetMisbehavior(replay, "agent-b");
  Run(*b);
  ExpectRefusal(*b, "assignment is for agent \"agent-a\"");
  ExpectKeepsRunning(*b, 1, "one");
  EXPECT_EQ(fake().calls("FetchContent"), 2);  // v1 for B, v2 for A; nothing for the replay
}

TEST_F(TrustChainAttackTest, CanaryAssignmentReplayedToBroadAgentIsRefused) {
  auto broad = StartHost("agent-b");
  RunOn(*broad, 1, "one");
  auto canary = StartHost("agent-c", /*canary=*/true);
  Serve(2, "two", "canary");
  Run(*canary);
  ASSERT_EQ(canary->agent->ring(), "canary");
  ASSERT_EQ(canary->store.state().CurrentVersion(kChannel), 2);

  // A statement for this very agent, but naming the canary ring and its version.
  Misbehavior canary_ring;
  canary_ring.ring = "canary";
  fake().SetAssignments("broad", {SignContent(release_, kChannel, 2, "two").assignment});
  fake().SetMisbehavior(canary_ring, "agent-b");
  Run(*broad);
  ExpectRefusal(*broad, "assignment is for the canary ring; this agent is in broad");
  ExpectKeepsRunning(*broad, 1, "one");

  // The canary agent's own statement replayed.
  Misbehavior replay;
  replay.replay = fake().SignedAssignments("agent-c").back();
  fake().SetMisbehavior(replay, "agent-b");
  Run(*broad);
  ExpectKeepsRunning(*broad, 1, "one");
  EXPECT_EQ(broad->agent->ring(), "broad");
}

TEST_F(TrustChainAttackTest, OldRollbackDirectiveReplayedIsRefused) {
  auto b = StartOnVersionOne();
  RunOn(*b, 2, "two");
  RunOn(*b, 3, "three");
  // v3 is rolled back and revoked: the agent goes back to v2.
  SignedContent two = SignContent(release_, kChannel, 2, "two");
  two.assignment.set_rollback(true);
  two.assignment.add_revoked_versions(3);
  fake().Serve("*", two);
  Run(*b);
  ASSERT_EQ(b->store.state().CurrentVersion(kChannel), 2);
  const std::string rollback = fake().SignedAssignments(kId).back();
  RunOn(*b, 4, "four");

  Misbehavior replay;
  replay.replay = rollback;
  fake().SetMisbehavior(replay);
  Run(*b);
  ExpectRefusal(*b, "is older than the accepted");
  ExpectKeepsRunning(*b, 4, "four");
}

TEST_F(TrustChainAttackTest, AgentRefusesContentSignedOnlyByTheServerKey) {
  auto b = StartOnVersionOne();
  fake().Serve("*", SignContent(trust_.server_key, kChannel, 2, "two"));
  Run(*b);
  ExpectRejected(*b, 2, v1::APPLY_OUTCOME_SIGNATURE_REJECTED,
                 "not signed by a threshold of the release keys");
  ExpectKeepsRunning(*b, 1, "one");
}

TEST_F(TrustChainAttackTest, RollbackBelowTheFloorIsRefused) {
  auto b = StartOnVersionOne();
  RunOn(*b, 2, "two");
  RunOn(*b, 3, "three");
  fake().SetFloors({SignFloor(release_, kChannel, 3)});
  SignedContent two = SignContent(release_, kChannel, 2, "two");
  two.assignment.set_rollback(true);
  fake().Serve("*", two);
  const int fetches = fake().calls("FetchContent");
  Run(*b);
  ExpectRefusal(*b, "below the signed floor v3");
  ExpectKeepsRunning(*b, 3, "three");
  EXPECT_EQ(fake().calls("FetchContent"), fetches);
  // The floor stays known even when the server stops sending it.
  fake().SetFloors({});
  clock_.Advance(absl::Minutes(1));
  Run(*b);
  ExpectKeepsRunning(*b, 3, "three");
  EXPECT_EQ(b->store.state().meta.trust.floors.at(kChannel), 3);
}

TEST_F(TrustChainAttackTest, EmergencyStopStrippedFromAReplayedAssignmentIsRefused) {
  auto b = StartOnVersionOne();
  // v2 is assigned; an attacker records that answer and withholds it.
  Serve(2, "two");
  const std::string before_stop = fake().SignNow(kId);
  fake().SetEmergencyStop(true);
  Run(*b);
  ASSERT_TRUE(b->agent->emergency_stop());
  ExpectKeepsRunning(*b, 1, "one");

  Misbehavior replay;
  replay.replay = before_stop;  // v2, and no emergency stop
  fake().SetMisbehavior(replay);
  Run(*b);
  ExpectRefusal(*b, "is older than the accepted");
  EXPECT_TRUE(b->agent->emergency_stop());
  ExpectKeepsRunning(*b, 1, "one");
  EXPECT_EQ(fake().calls("FetchContent"), 1);
}

TEST_F(TrustChainAttackTest, ExpiredAssignmentUnderFiveMinutesOfClockSkew) {
  auto b = StartOnVersionOne();
  Serve(2, "two");
  Misbehavior skew;
  skew.issued_offset = -absl::Hours(1);

  skew.ttl = absl::Hours(1) - absl::Minutes(5) - absl::Seconds(1);  // expired 5 min 1 s ago
  fake().SetMisbehavior(skew);
  Run(*b);
  ExpectRefusal(*b, "assignment expired at");
  ExpectKeepsRunning(*b, 1, "one");

  skew.ttl = absl::Hours(1) - absl::Minutes(5) + absl::Seconds(1);  // expired 4 min 59 s ago
  fake().SetMisbehavior(skew);
  Run(*b);
  EXPECT_EQ(b->store.state().CurrentVersion(kChannel), 2);

  Serve(3, "three");
  skew.ttl = absl::Hours(1);
  skew.issued_offset = absl::Minutes(5) + absl::Seconds(1);  // from a clock 5 min 1 s ahead
  fake().SetMisbehavior(skew);
  Run(*b);
  ExpectRefusal(*b, "issued in the future");
  ExpectKeepsRunning(*b, 2, "two");

  skew.issued_offset = absl::Minutes(5) - absl::Seconds(1);  // 4 min 59 s ahead
  fake().SetMisbehavior(skew);
  Run(*b);
  EXPECT_EQ(b->store.state().CurrentVersion(kChannel), 3);
}

TEST_F(TrustChainAttackTest, StalledDownloadIsRefused) {
  auto b = StartOnVersionOne();
  SignedContent two = SignContent(release_, kChannel, 2, std::string(5000, 't'));
  two.served.hold_after_chunks = 1;  // 1000 bytes, then silence with the stream open
  fake().Serve("*", two);
  const absl::Time begin = absl::Now();
  Run(*b);
  EXPECT_LT(absl::Now() - begin, ShortDownloads().fetch_timeout);  // not the deadline
  ExpectRejected(*b, 2, v1::APPLY_OUTCOME_DIGEST_MISMATCH, "download stalled");
  ExpectKeepsRunning(*b, 1, "one");
}

TEST_F(TrustChainAttackTest, DownloadPastItsDeadlineIsRefused) {
  AgentClientOptions patient_rate = ShortDownloads();
  patient_rate.fetch_timeout = absl::Seconds(1);
  patient_rate.fetch_grace = absl::Seconds(60);  // the rate rule never fires first
  auto b = StartHost(kId, /*canary=*/false, patient_rate);
  RunOn(*b, 1, "one");
  SignedContent two = SignContent(release_, kChannel, 2, std::string(5000, 't'));
  two.served.hold_after_chunks = 1;
  fake().Serve("*", two);
  Run(*b);
  ExpectRejected(*b, 2, v1::APPLY_OUTCOME_DIGEST_MISMATCH, "download unfinished after");
  ExpectKeepsRunning(*b, 1, "one");
}

TEST_F(TrustChainAttackTest, StreamLongerThanTheSignedSizeIsRefused) {
  auto b = StartOnVersionOne();
  SignedContent two = SignContent(release_, kChannel, 2, std::string(3000, 's'));
  two.served.payload += std::string(5000, 'x');  // beyond what the manifest signs
  two.served.total_size_override = 3000;         // announced honestly
  two.served.hold_after_chunks = 4;              // the 4th chunk starts the excess; then silence
  fake().Serve("*", two);
  Run(*b);
  // Refused at the first extra byte, not by waiting for the end (a stall).
  ExpectRejected(*b, 2, v1::APPLY_OUTCOME_DIGEST_MISMATCH, "more than the signed");
  ExpectKeepsRunning(*b, 1, "one");
}

// ---- Uptane ---------------------------------------------------------------

TEST_F(TrustChainAttackTest, AssignmentForAnotherDeviceIsRefused) {
  auto b = StartOnVersionOne();
  Serve(2, "two");
  Misbehavior other;
  other.agent_id = "another-device";
  fake().SetMisbehavior(other);
  Run(*b);
  ExpectRefusal(*b, "assignment is for agent \"another-device\"");
  ExpectKeepsRunning(*b, 1, "one");
  EXPECT_EQ(fake().calls("FetchContent"), 1);
}

TEST_F(TrustChainAttackTest, OversizedTargetIsRefused) {
  auto b = StartOnVersionOne();
  SignedContent two = SignContent(release_, kChannel, 2, std::string(3000, 's'));
  two.served.payload += std::string(5000, 'x');  // the server announces all 8000 bytes
  fake().Serve("*", two);
  Run(*b);
  // Refused on the announcement, before a payload byte is kept.
  ExpectRejected(*b, 2, v1::APPLY_OUTCOME_DIGEST_MISMATCH,
                 "the server announces 8000 bytes, the signed manifest says 3000");
  ExpectKeepsRunning(*b, 1, "one");
}

// ---- Unsigned answers and key rotation --------------------------------------

// ---- Held statements: an answer that the agent's statement is still current ----

TEST_F(TrustChainAttackTest, TheHeldStatementIsNamedAndACurrentAnswerIsActedOnWithNothingSigned) {
  fake().SetHonourHeld(true);
  auto b = StartOnVersionOne();
  ASSERT_EQ(fake().SignedAssignments(kId).size(), 1u);
  absl::StatusOr<Assignment> first =
      VerifyAssignment(trust_.root, fake().SignedAssignments(kId).back(), kId, clock_.Now());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(fake().HeldNamed(kId).back().has_value());  // the first poll holds nothing

  clock_.Advance(absl::Minutes(1));
  Run(*b);
  const std::optional<v1::HeldAssignment> held = fake().HeldNamed(kId).back();
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->sequence(), first->sequence);
  EXPECT_EQ(held->issued_unix_ms(), absl::ToUnixMillis(first->issued));
  EXPECT_EQ(held->expires_unix_ms(), absl::ToUnixMillis(first->expires));
  EXPECT_EQ(held->payload_sha256(), first->payload_sha256);
  EXPECT_EQ(fake().SignedAssignments(kId).size(), 1u);  // answered current: nothing signed
  EXPECT_EQ(b->agent->assignment_refusals(), 0);
  ExpectKeepsRunning(*b, 1, "one");

  // A new version is a new statement, signed, and applied.
  RunOn(*b, 2, "two");
  EXPECT_EQ(fake().SignedAssignments(kId).size(), 2u);
  Run(*b);
  EXPECT_EQ(fake().SignedAssignments(kId).size(), 2u);
  // Past half its lifetime (1 h) the statement is signed anew.
  clock_.Advance(absl::Minutes(31));
  Run(*b);
  EXPECT_EQ(fake().SignedAssignments(kId).size(), 3u);
  EXPECT_EQ(b->agent->assignment_refusals(), 0);
  ExpectKeepsRunning(*b, 2, "two");

  // A restarted agent holds nothing until its first answer.
  Restart(*b);
  Run(*b);
  EXPECT_FALSE(fake().HeldNamed(kId).back().has_value());
  EXPECT_EQ(fake().SignedAssignments(kId).size(), 4u);
}

TEST_F(TrustChainAttackTest, ACurrentAnswerToAnAgentHoldingNothingIsRefused) {
  Serve(1, "one");
  Misbehavior claim;
  claim.claim_held_current = true;
  fake().SetMisbehavior(claim);
  auto b = StartHost(kId);
  Run(*b);
  ExpectRefusal(*b,
                "the server answered that the held assignment is current, but this agent "
                "holds none");
  EXPECT_EQ(b->store.state().CurrentVersion(kChannel), 0);
  EXPECT_EQ(fake().calls("FetchContent"), 0);
}

TEST_F(TrustChainAttackTest, ACurrentAnswerCannotKeepAnExpiredStatementAlive) {
  auto b = StartOnVersionOne();
  // A server (or network) that answers "current" forever freezes nothing past the expiry of the
  // statement the agent holds: it is verified again on every such answer.
  Misbehavior claim;
  claim.claim_held_current = true;
  fake().SetMisbehavior(claim);
  clock_.Advance(absl::Minutes(30));
  Run(*b);
  EXPECT_EQ(b->agent->assignment_refusals(), 0);
  clock_.Advance(absl::Minutes(36));  // 1 h 6 min after issue: past the 5 min allowance
  Run(*b);
  ExpectRefusal(*b, "assignment expired at");
  ExpectKeepsRunning(*b, 1, "one");
}

TEST_F(TrustChainAttackTest, UnsignedAnswerIsRefused) {
  auto b = StartOnVersionOne();
  Serve(2, "two");
  Misbehavior bare;
  bare.unsigned_answer = true;
  fake().SetMisbehavior(bare);
  Run(*b);
  ExpectRefusal(*b, "no signed assignment");
  ExpectKeepsRunning(*b, 1, "one");
  EXPECT_EQ(fake().calls("FetchContent"), 1);

  // Logged and reported once per reason, not on every poll.
  const size_t events = fake().HealthEvents(kId).size();
  const int64_t refusals = b->agent->assignment_refusals();
  clock_.Advance(absl::Minutes(2));
  Run(*b);
  EXPECT_EQ(fake().HealthEvents(kId).size(), events);
  EXPECT_EQ(b->agent->assignment_refusals(), refusals);
}

TEST_F(TrustChainAttackTest, ServerKeyNotInTheRootIsRefusedUntilARootUpdateNamesIt) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<DiskContentStore>> disk = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(disk.ok());
  AgentClient client(AgentConnection::Create(server_.address()), ShortDownloads());
  AgentConfig config;
  config.agent_id = kId;
  config.channels = {kChannel};
  config.enrollment_token = FakeAgentService::kSecret;
  auto agent = std::make_unique<Agent>(config, client, **disk, trust_.root, clock_, backoff_);
  ASSERT_TRUE(agent->Start().ok());
  Serve(1, "one");
  ASSERT_TRUE(agent->RunOnce().ok());
  ASSERT_EQ((*disk)->state().CurrentVersion(kChannel), 1);

  // The server restarts with a key the pinned root does not name.
  const Ed25519PrivateKey new_server = Ed25519PrivateKey::Generate().value();
  fake().SetTrust(new_server, 2);
  Serve(2, "two");
  ASSERT_TRUE(agent->RunOnce().ok());
  EXPECT_EQ((*disk)->state().CurrentVersion(kChannel), 1);
  EXPECT_NE(agent->assignment_refusal().find("not signed by the server keys of root version 1"),
            std::string::npos)
      << agent->assignment_refusal();

  // A proper rotation: root v2 names the new key, signed by the root keys of v1 and v2.
  const std::string root2 =
      SignRoot(TestRootSpec(trust_.root_key, release_, new_server, 2), {&trust_.root_key});
  fake().SetRootUpdates({trust_.root_json, root2});
  ASSERT_TRUE(agent->RunOnce().ok());
  EXPECT_EQ(agent->root().version, 2);
  EXPECT_TRUE(agent->assignment_refusal().empty()) << agent->assignment_refusal();
  EXPECT_EQ((*disk)->state().CurrentVersion(kChannel), 2);
  EXPECT_EQ(fake().LastRootVersion(kId), 1);

  // The newer root is kept in the state directory across a restart.
  ASSERT_TRUE(agent->Shutdown().ok());
  agent.reset();
  disk->reset();
  disk = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(disk.ok());
  agent = std::make_unique<Agent>(config, client, **disk, trust_.root, clock_, backoff_);
  ASSERT_TRUE(agent->Start().ok());
  EXPECT_EQ(agent->root().version, 2);
  client.SetIdentity("", "");
  ASSERT_TRUE(agent->RunOnce().ok());
  EXPECT_EQ(fake().LastRootVersion(kId), 2);
  EXPECT_TRUE(agent->assignment_refusal().empty()) << agent->assignment_refusal();
  EXPECT_EQ((*disk)->state().CurrentVersion(kChannel), 2);
  EXPECT_EQ(ReadAll(dir.path() + "/rules.test/current"), "two");
}

}  // namespace
}  // namespace ringwarden::agent
