// The heart of the product, end to end: a fleet of 2,000 agents against the
// real server and PostgreSQL. A version that crashes every host that applies
// it is stopped by the controller while still in canary, and never reaches an
// agent outside canary; a healthy version promotes itself to COMPLETED.
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "agent-client/agent.h"
#include "agent-client/sim/fleet.h"
#include "common/dsse.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::CliResult;
using testing::Ringctl;
using testing::ServerProcess;
using testing::TestDatabase;
using testing::TestKeys;

constexpr char kChannel[] = "rules.behavioral";
constexpr int kAgents = 2000;

// Fast gates so the scenario runs in seconds: a 2 s bake, 10 s silence timeout (slack for a loaded
// CI machine running two fleets at once: every ring stays judged to the end), a 5% background
// failure floor so a canary of ~60 agents can accept, and a 3 s watch after the last stage.
constexpr char kFastPolicy[] = R"({
  "canary": {"min_bake_seconds": 2, "min_healthy": 5, "silence_timeout_seconds": 10,
             "baseline_failure_rate": 0.05, "auto_action": "halt"},
  "early":  {"min_bake_seconds": 2, "min_healthy": 5, "silence_timeout_seconds": 10,
             "baseline_failure_rate": 0.05},
  "broad":  {"min_bake_seconds": 2, "min_healthy": 5, "silence_timeout_seconds": 10,
             "baseline_failure_rate": 0.05},
  "broad_waves": [0.5, 1.0],
  "slow_start": {"enabled": false},
  "watch_after_completion_seconds": 3
})";

class HealthGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<ServerProcess>(
        db_.conninfo(), keys_, 0,
        std::vector<std::string>{"--poll-interval", "0.3", "--controller-interval", "0.3"});
    const std::string policy = keys_.dir.File("fast.json");
    testing::WriteFile(policy, kFastPolicy);
    CliResult set = Ctl({"policy", "set", "fast", "--file", policy, "--reason", "test"});
    ASSERT_EQ(set.code, 0) << set.err;
  }

  CliResult Ctl(std::vector<std::string> args) {
    return Ringctl(server_->address(), keys_.releaser_token, std::move(args));
  }

  void Publish(int64_t version) {
    CliResult r = testing::PublishContent(server_->address(), keys_, kChannel, version,
                                          "detection rules v" + std::to_string(version));
    ASSERT_EQ(r.code, 0) << r.err;
  }

  std::string Start(int64_t version, bool supersede = false) {
    std::vector<std::string> args = {
        "rollout",  "start", "--channel", kChannel, "--version", std::to_string(version),
        "--policy", "fast",  "-o",        "json"};
    if (supersede) {
      args.push_back("--supersede");
    }
    CliResult r = Ctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out)["id"].get<std::string>();
  }

  nlohmann::json Status(const std::string& id) {
    CliResult r = Ctl({"rollout", "status", id, "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }

  // WaitState polls until the rollout is in `state` or `timeout` passes.
  bool WaitState(const std::string& id, const std::string& state, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (Status(id)["state"] == state) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  agent::FleetOptions FleetOpts() {
    agent::FleetOptions o;
    o.agents = kAgents;
    o.server = server_->address();
    o.connections = 4;
    o.threads = 8;
    o.seed = 42;
    // Dogfood hosts are canary because their enrollment token says so.
    o.token_fractions.push_back(
        agent::TokenFraction{testing::CreateEnrollmentToken(server_->address(), keys_.admin_token,
                                                            kAgents, {"group=dogfood"}),
                             0.02});
    o.server_ca_pem = testing::Pki().ServerCaPem();
    o.start_spread = absl::Seconds(1);
    o.restart_delay = absl::Seconds(2);
    o.agent.channels = {kChannel};
    o.agent.enrollment_token =
        testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, kAgents);
    o.agent.heartbeat_interval = absl::Milliseconds(500);
    o.agent.healthy_interval = absl::Seconds(2);
    o.agent.min_poll_interval = absl::Milliseconds(100);
    o.backoff.initial = absl::Milliseconds(100);
    o.backoff.max = absl::Seconds(1);
    // Version 2 takes down every host that applies it: 80% boot-loop (crash,
    // restart, crash again), the other 20% vanish for good.
    agent::FaultSpec bad;
    bad.version = 2;
    bad.crash = 0.8;
    bad.silence = 1.0;
    o.faults.push_back(bad);
    return o;
  }

  TestDatabase db_;
  TestKeys keys_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(HealthGateTest, BadUpdateStopsInCanaryAndHealthyOnesPromoteThemselves) {
  const Root root = *agent::TrustConfiguredRoot(testing::ReadFileOrDie(keys_.root_path));
  agent::Fleet fleet(FleetOpts(), root);  // `root` outlives the fleet
  ASSERT_TRUE(fleet.Start().ok());
  // 2,000 TLS enrollments (a key pair, a CSR and a certificate each) take a
  // while on a loaded two-core machine; the gates are what this test judges.
  ASSERT_TRUE(
      fleet.WaitFor([](const auto& s) { return s.enrolled == s.agents; }, absl::Seconds(180)))
      << fleet.Summary().ToLine();

  // v1 is healthy: the controller walks it through every ring on its own.
  Publish(1);
  const std::string r1 = Start(1);
  ASSERT_TRUE(WaitState(r1, "COMPLETED", absl::Seconds(180)))
      << Status(r1).dump() << "\n"
      << Ctl({"rollout", "explain", r1}).out;
  ASSERT_TRUE(fleet.WaitFor([](const auto& s) { return s.InEffect("", kChannel, 1) == s.agents; },
                            absl::Seconds(60)));

  // v2 crashes every host that applies it. Nobody promotes or halts by hand.
  Publish(2);
  const std::string r2 = Start(2);
  ASSERT_TRUE(WaitState(r2, "HALTED", absl::Seconds(120))) << Status(r2).dump() << "\n"
                                                           << Ctl({"rollout", "explain", r2}).out;
  nlohmann::json halted = Status(r2);
  EXPECT_EQ(halted["halted_from"], "CANARY");

  // Give any straggler a few polls: a halted version reaches nobody new.
  absl::SleepFor(absl::Seconds(2));
  const agent::FleetSummary s = fleet.Summary();
  const int64_t canary = s.ring_agents.at("canary");
  const int64_t blast_radius = s.EverApplied("", kChannel, 2);
  EXPECT_EQ(s.EverApplied("early", kChannel, 2), 0) << s.ToJson();
  EXPECT_EQ(s.EverApplied("broad", kChannel, 2), 0) << s.ToJson();
  EXPECT_GT(blast_radius, 0);
  EXPECT_LE(blast_radius, canary);

  CliResult explain = Ctl({"rollout", "explain", r2, "-o", "json"});
  ASSERT_EQ(explain.code, 0) << explain.err;
  auto doc = nlohmann::json::parse(explain.out);
  ASSERT_FALSE(doc["automatic_actions"].empty());
  const auto& action = doc["automatic_actions"][0];
  EXPECT_EQ(action["action"], "rollout.auto_halt");
  EXPECT_EQ(action["from_state"], "CANARY");
  EXPECT_NE(action["reason"].get<std::string>().find("canary:"), std::string::npos);
  const double seconds_to_halt = action["evidence"]["seconds_since_first_apply"].get<double>();
  std::cout << "BLAST RADIUS: " << blast_radius << " of " << s.agents << " agents applied v2 ("
            << canary
            << " in canary, 0 outside); first apply to automatic halt: " << seconds_to_halt
            << " s\n"
            << "EXPLANATION: " << action["reason"].get<std::string>() << std::endl;
  CliResult human = Ctl({"rollout", "explain", r2});
  EXPECT_NE(human.out.find("rollout.auto_halt"), std::string::npos) << human.out;

  // Resuming an automatic halt needs a reason, and is audited.
  CliResult resume = Ctl({"rollout", "resume", r2});
  EXPECT_EQ(resume.code, 2);

  // v3 is healthy and supersedes the halted v2: it completes on its own.
  Publish(3);
  const std::string r3 = Start(3, /*supersede=*/true);
  EXPECT_EQ(Status(r2)["state"], "CANCELLED");
  ASSERT_TRUE(WaitState(r3, "COMPLETED", absl::Seconds(180)))
      << Status(r3).dump() << "\n"
      << Ctl({"rollout", "explain", r3}).out;
  EXPECT_EQ(fleet.Summary().EverApplied("broad", kChannel, 2), 0);
  CliResult audit = Ctl({"audit", "--rollout", r3, "-o", "json"});
  int auto_promotions = 0;
  for (const auto& e : nlohmann::json::parse(audit.out)) {
    if (e["actor"] == "controller") {
      ++auto_promotions;
      EXPECT_TRUE(e["evidence"].contains("treated")) << e.dump();
    }
  }
  // canary -> early -> broad (wave 1) -> wave 2 -> completed
  EXPECT_EQ(auto_promotions, 4);
  fleet.Stop();
}

}  // namespace
}  // namespace ringwarden
