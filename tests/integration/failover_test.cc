// High availability, end to end: three ringwarden-server replicas on one
// PostgreSQL behind HAProxy (HTTP/2 to the replicas, gRPC health checks, the
// configuration from deploy/haproxy/config.sh) and a fleet polling through it.
// The leader is killed with SIGKILL mid-rollout, then PostgreSQL is restarted.
//
// The database is a private cluster of this test (deploy/pg.sh), not the
// shared one of ./tests/run.sh, because the test stops and starts it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agent-client/agent.h"
#include "agent-client/sim/fleet.h"
#include "common/dsse.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::CliResult;
using testing::ServerProcess;
using testing::TempDir;
using testing::TestKeys;

constexpr char kChannel[] = "rules.behavioral";
constexpr int kAgents = 300;
constexpr int kReplicas = 3;

// Gates that pass in seconds; the silence timeout leaves room for a replica's
// death and a loaded CI machine. The exposure budget grows across the failover too.
constexpr char kPolicy[] = R"({
  "canary": {"min_bake_seconds": 3, "min_healthy": 3, "silence_timeout_seconds": 10,
             "baseline_failure_rate": 0.1, "auto_action": "halt"},
  "early":  {"min_bake_seconds": 3, "min_healthy": 5, "silence_timeout_seconds": 10,
             "baseline_failure_rate": 0.1},
  "broad":  {"min_bake_seconds": 3, "min_healthy": 5, "silence_timeout_seconds": 10,
             "baseline_failure_rate": 0.1},
  "broad_waves": [0.5, 1.0],
  "slow_start": {"initial_exposure": 50, "growth_factor": 4, "probation_seconds": 10,
                 "max_unproven": 1000},
  "watch_after_completion_seconds": 2
})";

// PrivateCluster is a PostgreSQL cluster of its own that can be restarted.
class PrivateCluster {
 public:
  PrivateCluster() : port_(testing::FreePort()) { Start(); }
  ~PrivateCluster() { Stop(); }

  void Start() {
    CliResult started = testing::RunShell(
        absl::StrCat(RINGWARDEN_SOURCE_DIR, "/deploy/pg.sh start ", dir_.path(), " ", port_));
    if (started.code != 0) {
      ADD_FAILURE() << "deploy/pg.sh start failed";
    }
    conninfo_ = std::string(absl::StripAsciiWhitespace(started.out));
  }
  void Stop() {
    testing::RunShell(absl::StrCat(RINGWARDEN_SOURCE_DIR, "/deploy/pg.sh stop ", dir_.path()));
  }
  const std::string& conninfo() const { return conninfo_; }

 private:
  TempDir dir_;
  int port_;
  std::string conninfo_;
};

class FailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(pg_.conninfo(), keys_);
    for (int i = 0; i < kReplicas; ++i) {
      replicas_.push_back(StartReplica());
    }
    std::vector<std::string> backends;
    for (const auto& r : replicas_) {
      backends.push_back(r->address());
    }
    lb_port_ = testing::FreePort();
    CliResult config = testing::RunShell(
        absl::StrCat(RINGWARDEN_SOURCE_DIR, "/deploy/haproxy/config.sh 127.0.0.1:", lb_port_, " ",
                     absl::StrJoin(backends, " ")));
    ASSERT_EQ(config.code, 0);
    testing::WriteFile(dir_.File("haproxy.cfg"), config.out);
    haproxy_ = testing::Spawn({"/usr/sbin/haproxy", "-db", "-f", dir_.File("haproxy.cfg")},
                              dir_.File("haproxy.log"));
    // HAProxy is ready when a call through it succeeds.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (Ctl({"rollout", "list"}).code != 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(200));
    }
    ASSERT_EQ(Ctl({"rollout", "list"}).code, 0) << testing::ReadFileOrDie(dir_.File("haproxy.log"));

    testing::WriteFile(dir_.File("policy.json"), kPolicy);
    CliResult set =
        Ctl({"policy", "set", "fast", "--file", dir_.File("policy.json"), "--reason", "test"});
    ASSERT_EQ(set.code, 0) << set.err;
  }

  void TearDown() override {
    if (haproxy_ > 0) {
      kill(haproxy_, SIGTERM);
      waitpid(haproxy_, nullptr, 0);
    }
  }

  std::unique_ptr<ServerProcess> StartReplica() {
    return std::make_unique<ServerProcess>(
        pg_.conninfo(), keys_, 0,
        std::vector<std::string>{"--insecure", "--poll-interval", "0.3", "--controller-interval",
                                 "0.3"});
  }

  std::string lb() const { return absl::StrCat("127.0.0.1:", lb_port_); }

  // Ctl runs ringctl through the balancer.
  CliResult Ctl(std::vector<std::string> args, const std::string& token = "") {
    args.insert(args.begin(), "--insecure");
    return testing::Ringctl(lb(), token.empty() ? keys_.releaser_token : token, std::move(args));
  }

  // CtlRetry runs ringctl until it answers: a call in flight on a replica that
  // dies fails, and the operator (or the agent) simply calls again.
  CliResult CtlRetry(std::vector<std::string> args, const std::string& token = "") {
    CliResult r;
    for (int attempt = 0; attempt < 20; ++attempt) {
      r = Ctl(args, token);
      if (r.code != 3) {  // 3: server unavailable
        return r;
      }
      absl::SleepFor(absl::Milliseconds(250));
    }
    return r;
  }

  std::string Publish(int64_t version) {
    const std::string file = dir_.File(absl::StrCat("rules-v", version, ".bin"));
    testing::WriteFile(file, absl::StrCat("detection rules v", version, std::string(1000, 'r')));
    CliResult sign = Ctl({"content", "sign", "--key", keys_.release_key_path, "--channel", kChannel,
                          "--version", std::to_string(version), file});
    EXPECT_EQ(sign.code, 0) << sign.err;
    CliResult upload = CtlRetry({"content", "upload", file});
    EXPECT_EQ(upload.code, 0) << upload.err;
    CliResult start = CtlRetry({"rollout", "start", "--channel", kChannel, "--version",
                                std::to_string(version), "--policy", "fast", "-o", "json"});
    EXPECT_EQ(start.code, 0) << start.err;
    return nlohmann::json::parse(start.out)["id"].get<std::string>();
  }

  std::string State(const std::string& id) {
    CliResult r = CtlRetry({"rollout", "status", id, "-o", "json"});
    return r.code == 0 ? nlohmann::json::parse(r.out)["state"].get<std::string>() : "";
  }

  bool WaitState(const std::string& id, const std::string& state, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (State(id) == state) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  // Leaders returns the indexes of the live replicas whose metrics say they
  // hold the controller leadership.
  std::vector<int> Leaders() {
    std::vector<int> leaders;
    for (int i = 0; i < static_cast<int>(replicas_.size()); ++i) {
      if (!replicas_[i]->running()) {
        continue;
      }
      if (testing::ScrapeMetric(replicas_[i]->metrics_port(), "ringwarden_controller_leader") ==
          1) {
        leaders.push_back(i);
      }
    }
    return leaders;
  }

  // WaitLeader waits until exactly one live replica leads; returns it or -1.
  int WaitLeader(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      std::vector<int> leaders = Leaders();
      if (leaders.size() == 1) {
        return leaders[0];
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return -1;
  }

  agent::FleetOptions FleetOpts() {
    agent::FleetOptions o;
    o.agents = kAgents;
    o.server = lb();
    o.connections = 4;
    o.threads = 6;
    o.seed = 7;
    o.id_prefix = "ha-";
    o.start_spread = absl::Milliseconds(500);
    o.agent.channels = {kChannel};
    o.agent.enrollment_token = EnrollmentToken({});
    o.token_fractions.push_back(agent::TokenFraction{EnrollmentToken({"group=dogfood"}), 0.06});
    o.agent.heartbeat_interval = absl::Milliseconds(300);
    o.agent.healthy_interval = absl::Seconds(1);
    o.agent.min_poll_interval = absl::Milliseconds(100);
    o.backoff.initial = absl::Milliseconds(100);
    o.backoff.max = absl::Seconds(1);
    return o;
  }

  std::string EnrollmentToken(const std::vector<std::string>& labels) {
    std::vector<std::string> args = {"enroll-token", "create",     "--ttl",
                                     "1h",           "--max-uses", std::to_string(kAgents)};
    for (const std::string& l : labels) {
      args.push_back("--label");
      args.push_back(l);
    }
    CliResult r = CtlRetry(args, keys_.admin_token);
    EXPECT_EQ(r.code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  // AuditActions counts the audit entries of rollout `id` by "action from->to".
  std::map<std::string, int> AuditActions(const std::string& id) {
    CliResult r = CtlRetry({"audit", "--rollout", id, "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    std::map<std::string, int> counts;
    for (const auto& e : nlohmann::json::parse(r.out)) {
      counts[absl::StrCat(e["action"].get<std::string>(), " ", e["from_state"].get<std::string>(),
                          "->", e["to_state"].get<std::string>())]++;
    }
    return counts;
  }

  PrivateCluster pg_;
  TestKeys keys_;
  TempDir dir_;
  std::vector<std::unique_ptr<ServerProcess>> replicas_;
  int lb_port_ = 0;
  pid_t haproxy_ = -1;
};

TEST_F(FailoverTest, LeaderKilledMidRolloutThenDatabaseRestarted) {
  const int first_leader = WaitLeader(absl::Seconds(30));
  ASSERT_GE(first_leader, 0) << "no single leader among " << kReplicas << " replicas";

  Root root = *agent::TrustConfiguredRoot(testing::ReadFileOrDie(keys_.root_path));
  agent::Fleet fleet(FleetOpts(), root);
  ASSERT_TRUE(fleet.Start().ok());
  ASSERT_TRUE(fleet.WaitFor([](const agent::FleetSummary& s) { return s.enrolled == s.agents; },
                            absl::Seconds(90)))
      << fleet.Summary().ToLine();

  // A rollout under way: promoted out of canary by the first leader.
  const std::string r1 = Publish(1);
  ASSERT_TRUE(WaitState(r1, "EARLY", absl::Seconds(90)))
      << State(r1) << "\n"
      << CtlRetry({"rollout", "explain", r1}).out << fleet.Summary().ToLine();
  const int64_t errors_before_kill = fleet.Summary().rpc_errors;

  // SIGKILL: no graceful shutdown, the advisory lock goes with the connection.
  const absl::Time killed_at = absl::Now();
  replicas_[first_leader]->Kill();
  const int second_leader = WaitLeader(absl::Seconds(30));
  const absl::Duration takeover = absl::Now() - killed_at;
  ASSERT_GE(second_leader, 0) << "no replica took the lead after the leader was killed";
  EXPECT_NE(second_leader, first_leader);
  EXPECT_LE(takeover, absl::Seconds(15));

  ASSERT_TRUE(WaitState(r1, "COMPLETED", absl::Seconds(120))) << State(r1);
  ASSERT_TRUE(fleet.WaitFor(
      [](const agent::FleetSummary& s) { return s.InEffect("", kChannel, 1) == s.agents; },
      absl::Seconds(60)))
      << fleet.Summary().ToJson();
  const int64_t errors_after_failover = fleet.Summary().rpc_errors - errors_before_kill;

  // Exactly once: every step of the walk is audited once, none is missing.
  std::map<std::string, int> actions = AuditActions(r1);
  EXPECT_EQ(actions["rollout.auto_promote CANARY->EARLY"], 1);
  EXPECT_EQ(actions["rollout.auto_promote EARLY->BROAD"], 1);
  EXPECT_EQ(actions["rollout.auto_next_wave BROAD->BROAD"], 1);
  EXPECT_EQ(actions["rollout.auto_promote BROAD->COMPLETED"], 1);
  for (const auto& [action, count] : actions) {
    EXPECT_EQ(count, 1) << action;
  }

  // PostgreSQL restarts: polls are answered from each replica's snapshot, so
  // none fails; the controller and the writers reconnect by themselves.
  const int64_t errors_before_restart = fleet.Summary().rpc_errors;
  const int64_t polls_before_restart = fleet.Summary().polls;
  pg_.Stop();
  absl::SleepFor(absl::Seconds(3));
  pg_.Start();
  absl::SleepFor(absl::Seconds(1));
  const int64_t errors_during_restart = fleet.Summary().rpc_errors - errors_before_restart;
  const int64_t polls_during_restart = fleet.Summary().polls - polls_before_restart;
  EXPECT_EQ(errors_during_restart, 0);
  EXPECT_GT(polls_during_restart, kAgents);

  const std::string r2 = Publish(2);
  EXPECT_TRUE(WaitState(r2, "COMPLETED", absl::Seconds(120))) << State(r2);
  EXPECT_TRUE(fleet.WaitFor(
      [](const agent::FleetSummary& s) { return s.InEffect("", kChannel, 2) == s.agents; },
      absl::Seconds(60)))
      << fleet.Summary().ToJson();
  // The restart ended the leader's session too: exactly one replica leads again,
  // whichever took the lock first.
  const int third_leader = WaitLeader(absl::Seconds(10));
  EXPECT_GE(third_leader, 0);
  EXPECT_NE(third_leader, first_leader);

  std::cout << "failover: leader " << first_leader << " killed, replica " << second_leader
            << " led after " << absl::FormatDuration(takeover) << "; polls failed during failover "
            << errors_after_failover << " of " << fleet.Summary().polls
            << "; during a 3 s PostgreSQL restart " << errors_during_restart << " failed of "
            << polls_during_restart << "; replica " << third_leader << " led after it" << std::endl;
  fleet.Stop();
}

}  // namespace
}  // namespace ringwarden
