// Bounded blast radius, end to end: the real server and PostgreSQL, an in-process fleet. A
// version that kills every host on load, before it can report anything, reaches the same
// absolute number of hosts (the policy's initial_exposure) at 2,000 and at 20,000 agents; a
// version whose crashes are reported halts before the budget grows once; health events alone
// halt; a failure that shows in canary after promotion halts the rollout with canary's
// evidence; and after a rollback every exposed host is back on last-known-good, through the
// server or through its own boot-loop breaker.
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
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
constexpr int kInitialExposure = 10;

// Timings of one run. The server refuses a silence timeout or probation shorter than a poll
// (+20% jitter) plus a heartbeat, so both sit above that gap.
struct Timing {
  int poll_seconds;
  int heartbeat_seconds;
  int timeout_seconds;  // silence timeout and probation
};
// 2,000 agents: polls every 1 s, heartbeats every 2 s, a 10 s timeout well above the 3.2 s gap
// (slack for a loaded CI machine: every ring stays judged to the end).
constexpr Timing kFast = {1, 2, 10};
// 20,000 agents share the test machine's two cores with the server and PostgreSQL: 20,000
// polls/s would measure the machine, not the budget.
constexpr Timing kLarge = {5, 5, 15};

// v1 ships without slow start (the fleet needs a baseline quickly); v2 runs under the budget.
// `canary_baseline` is the failure rate canary's sequential test calls normal.
std::string PolicyJson(const Timing& t, bool slow_start, const char* canary_action = "halt",
                       double canary_baseline = 0.1) {
  return absl::Substitute(R"({
  "canary": {"min_bake_seconds": 2, "min_healthy": 5, "silence_timeout_seconds": $0,
             "baseline_failure_rate": $4, "auto_action": "$3"},
  "early":  {"min_bake_seconds": 2, "min_healthy": 5, "silence_timeout_seconds": $0,
             "baseline_failure_rate": 0.1},
  "broad":  {"min_bake_seconds": 2, "min_healthy": 5, "silence_timeout_seconds": $0,
             "baseline_failure_rate": 0.1},
  "broad_waves": [1.0],
  "slow_start": {"enabled": $1, "initial_exposure": $2, "growth_factor": 2,
                 "probation_seconds": $0, "max_unproven": 1000},
  "watch_after_completion_seconds": 2,
  "health_events": {"weights": {"load_check_slow": 0.5}, "failure_threshold": 1}
})",
                          t.timeout_seconds, slow_start ? "true" : "false", kInitialExposure,
                          canary_action, canary_baseline);
}

// The 20,000-agent fleet runs on plaintext loopback: over TLS every simulated host needs a
// connection of its own (its client certificate), and 20,000 of them exceed the process's file
// limit. The exposure bound does not depend on the transport.
enum class Transport { kTls, kPlaintextLoopback };

class BlastRadiusTest : public ::testing::Test {
 protected:
  void Boot(Transport transport, const Timing& timing, const char* canary_action = "halt",
            double canary_baseline = 0.1) {
    plaintext_ = transport == Transport::kPlaintextLoopback;
    timing_ = timing;
    std::vector<std::string> args = {
        "--poll-interval",       absl::StrCat(timing.poll_seconds),
        "--heartbeat-interval",  absl::StrCat(timing.heartbeat_seconds),
        "--controller-interval", "0.5"};
    if (plaintext_) {
      args.push_back("--insecure");
    }
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_, 0, args);
    const std::string policy = keys_.dir.File("slow.json");
    testing::WriteFile(policy,
                       PolicyJson(timing, /*slow_start=*/true, canary_action, canary_baseline));
    CliResult set = Ctl({"policy", "set", "slow", "--file", policy, "--reason", "test"});
    ASSERT_EQ(set.code, 0) << set.err;
  }

  CliResult Ctl(std::vector<std::string> args, const std::string& token = "") {
    if (plaintext_) {
      args.insert(args.begin(), "--insecure");
    }
    return Ringctl(server_->address(), token.empty() ? keys_.releaser_token : token,
                   std::move(args));
  }

  void Publish(int64_t version) {
    const std::string file = keys_.dir.File(absl::StrCat("rules-v", version, ".bin"));
    testing::WriteFile(file, absl::StrCat("detection rules v", version));
    CliResult sign = Ctl({"content", "sign", "--key", keys_.release_key_path, "--channel", kChannel,
                          "--version", std::to_string(version), file});
    ASSERT_EQ(sign.code, 0) << sign.err;
    CliResult upload = Ctl({"content", "upload", file});
    ASSERT_EQ(upload.code, 0) << upload.err;
  }

  std::string EnrollmentToken(int max_uses) {
    CliResult r =
        Ctl({"enroll-token", "create", "--ttl", "1h", "--max-uses", std::to_string(max_uses)},
            keys_.admin_token);
    EXPECT_EQ(r.code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  std::string Start(int64_t version) {
    CliResult r = Ctl({"rollout", "start", "--channel", kChannel, "--version",
                       std::to_string(version), "--policy", "slow", "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out)["id"].get<std::string>() : "";
  }

  nlohmann::json Status(const std::string& id) {
    CliResult r = Ctl({"rollout", "status", id, "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }

  // WaitState waits for rollout `id` to reach `state`; on timeout the failure carries the
  // rollout's status and explanation.
  ::testing::AssertionResult WaitState(const std::string& id, const std::string& state,
                                       absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (Status(id)["state"] == state) {
        return ::testing::AssertionSuccess();
      }
      absl::SleepFor(absl::Milliseconds(300));
    }
    return ::testing::AssertionFailure()
           << id << " did not reach " << state << " in " << absl::FormatDuration(timeout) << "\n"
           << Status(id).dump() << "\n"
           << Ctl({"rollout", "explain", id}).out;
  }

  // FirstAction returns the rollout's first automatic action from `ringctl rollout explain`.
  nlohmann::json FirstAction(const std::string& id) {
    CliResult explain = Ctl({"rollout", "explain", id, "-o", "json"});
    EXPECT_EQ(explain.code, 0) << explain.err;
    const nlohmann::json doc = nlohmann::json::parse(explain.out);
    EXPECT_FALSE(doc["automatic_actions"].empty()) << doc.dump();
    return doc["automatic_actions"].empty() ? nlohmann::json::object()
                                            : doc["automatic_actions"][0];
  }

  agent::FleetOptions FleetOpts(int agents, agent::FaultSpec fault) {
    agent::FleetOptions o;
    o.agents = agents;
    o.server = server_->address();
    o.connections = 4;
    o.threads = 8;
    o.seed = 7;
    if (!plaintext_) {
      o.server_ca_pem = testing::Pki().ServerCaPem();
    }
    o.start_spread = absl::Seconds(agents / 1000 + 1);
    o.restart_delay = absl::Seconds(1);
    o.agent.channels = {kChannel};
    o.agent.enrollment_token = EnrollmentToken(agents);
    o.agent.heartbeat_interval = absl::Seconds(timing_.heartbeat_seconds);
    o.agent.healthy_interval = absl::Seconds(2);
    o.agent.min_poll_interval = absl::Milliseconds(200);
    o.backoff.initial = absl::Milliseconds(200);
    o.backoff.max = absl::Seconds(2);
    o.faults.push_back(fault);
    return o;
  }

  // EnrolledFleet starts `agents` hosts that meet `fault` and waits until every one enrolled.
  std::unique_ptr<agent::Fleet> EnrolledFleet(int agents, agent::FaultSpec fault) {
    return EnrolledFleet(FleetOpts(agents, std::move(fault)));
  }
  std::unique_ptr<agent::Fleet> EnrolledFleet(agent::FleetOptions options) {
    root_ = *agent::TrustConfiguredRoot(testing::ReadFileOrDie(keys_.root_path));
    auto fleet = std::make_unique<agent::Fleet>(std::move(options), *root_);
    EXPECT_TRUE(fleet->Start().ok());
    EXPECT_TRUE(
        fleet->WaitFor([](const auto& s) { return s.enrolled == s.agents; }, absl::Seconds(180)))
        << fleet->Summary().ToLine();
    return fleet;
  }

  // Baseline: every host on a healthy v1 (slow start off for it), so v2 has a previous version.
  void ShipHealthyV1(agent::Fleet& fleet) {
    const std::string plain = keys_.dir.File("plain.json");
    testing::WriteFile(plain, PolicyJson(timing_, /*slow_start=*/false));
    ASSERT_EQ(Ctl({"policy", "set", "plain", "--file", plain, "--reason", "v1"}).code, 0);
    Publish(1);
    CliResult r = Ctl({"rollout", "start", "--channel", kChannel, "--version", "1", "--policy",
                       "plain", "-o", "json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const std::string id = nlohmann::json::parse(r.out)["id"].get<std::string>();
    ASSERT_TRUE(WaitState(id, "COMPLETED", absl::Seconds(240)));
    ASSERT_TRUE(fleet.WaitFor([](const auto& s) { return s.InEffect("", kChannel, 1) == s.agents; },
                              absl::Seconds(120)))
        << fleet.Summary().ToLine();
  }

  // BootLoop runs a version that kills every host on load (it never reports) over `agents`
  // hosts and returns how many hosts ever loaded it.
  // With `ship_v1` the fleet first takes a healthy v1 through every ring, so v2 has a previous
  // version; without it v2 is the channel's first version (hosts run nothing before).
  int64_t BootLoop(int agents, bool ship_v1) {
    agent::FaultSpec bad;
    bad.version = 2;
    bad.silence = 1.0;  // dies on load, never heard from again
    std::unique_ptr<agent::Fleet> fleet = EnrolledFleet(agents, bad);
    if (ship_v1) {
      ShipHealthyV1(*fleet);
    }

    Publish(2);
    const absl::Time started = absl::Now();
    const std::string id = Start(2);
    EXPECT_TRUE(WaitState(id, "HALTED", absl::Seconds(120)));
    const absl::Duration to_halt = absl::Now() - started;
    absl::SleepFor(absl::Seconds(3 * timing_.poll_seconds));  // more polls: nobody new may take it
    const agent::FleetSummary s = fleet->Summary();
    const int64_t exposed = s.EverApplied("", kChannel, 2);
    CliResult explain = Ctl({"rollout", "explain", id, "-o", "json"});
    EXPECT_EQ(explain.code, 0) << explain.err;
    const nlohmann::json doc = nlohmann::json::parse(explain.out);
    EXPECT_FALSE(doc["automatic_actions"].empty());
    std::string reason;
    if (!doc["automatic_actions"].empty()) {
      reason = doc["automatic_actions"][0]["reason"].get<std::string>();
      EXPECT_EQ(doc["automatic_actions"][0]["from_state"], "CANARY");
    }
    std::cout << "BLAST RADIUS (boot loop, " << agents << " agents, " << s.ring_agents.at("canary")
              << " in canary): " << exposed << " hosts ever loaded v2; start to halt "
              << absl::FormatDuration(to_halt) << "\nEXPLANATION: " << reason << std::endl;
    EXPECT_EQ(s.EverApplied("early", kChannel, 2) + s.EverApplied("broad", kChannel, 2), 0);
    fleet->Stop();
    return exposed;
  }

  TestDatabase db_;
  TestKeys keys_;
  std::unique_ptr<ServerProcess> server_;
  std::optional<Root> root_;  // the hosts' pinned root; outlives the fleet
  bool plaintext_ = false;
  Timing timing_ = kFast;
};

TEST_F(BlastRadiusTest, BootLoopAt2000AgentsReachesInitialExposureOnly) {
  // The budget never grows: no admitted host proves survival. One evaluation period admits
  // nobody more, so the bound is exactly initial_exposure.
  Boot(Transport::kTls, kFast);
  EXPECT_EQ(BootLoop(2000, /*ship_v1=*/true), kInitialExposure);
}

TEST_F(BlastRadiusTest, BootLoopAt20000AgentsReachesTheSameNumber) {
  Boot(Transport::kPlaintextLoopback, kLarge);
  // No v1 first: walking 20,000 in-process hosts through every ring on a two-core machine that
  // runs another fleet test beside it measures the machine, not the budget.
  EXPECT_EQ(BootLoop(20000, /*ship_v1=*/false), kInitialExposure);
}

TEST_F(BlastRadiusTest, ReportedCrashesHaltBeforeAnyGrowthStep) {
  Boot(Transport::kTls, kFast);
  agent::FaultSpec bad;
  bad.version = 2;
  bad.crash = 1.0;  // crashes on every load and says so at the next boot
  std::unique_ptr<agent::Fleet> fleet = EnrolledFleet(2000, bad);
  ShipHealthyV1(*fleet);
  Publish(2);
  const absl::Time started = absl::Now();
  const std::string id = Start(2);
  ASSERT_TRUE(WaitState(id, "HALTED", absl::Seconds(90)));
  const absl::Duration to_halt = absl::Now() - started;
  absl::SleepFor(absl::Seconds(3));
  const agent::FleetSummary s = fleet->Summary();
  const int64_t exposed = s.EverApplied("", kChannel, 2);
  CliResult explain = Ctl({"rollout", "explain", id, "-o", "json"});
  ASSERT_EQ(explain.code, 0) << explain.err;
  const nlohmann::json doc = nlohmann::json::parse(explain.out);
  ASSERT_FALSE(doc["automatic_actions"].empty());
  const nlohmann::json& evidence = doc["automatic_actions"][0]["evidence"];
  ASSERT_TRUE(evidence.contains("exposure")) << evidence.dump();
  std::cout << "BLAST RADIUS (reported crashes, 2000 agents): " << exposed
            << " hosts ever loaded v2, " << evidence["exposure"]["admitted"]
            << " admitted; start to halt " << absl::FormatDuration(to_halt)
            << "\nEXPLANATION: " << doc["automatic_actions"][0]["reason"].get<std::string>()
            << std::endl;
  EXPECT_EQ(evidence["exposure"]["admitted"], kInitialExposure);
  EXPECT_LE(exposed, kInitialExposure);
  fleet->Stop();
}

TEST_F(BlastRadiusTest, HealthEventsAloneHaltBeforeBroadOnCanarysEvidence) {
  // No crash and no silence: every host that loads v2 reports load_check_slow at each poll
  // (weight 0.5 in this policy, threshold 1), so two reports make a host unhealthy. Whether
  // that shows before canary's gate passes depends on the machine's load; either way canary's
  // evidence halts the rollout before broad.
  Boot(Transport::kTls, kFast);
  agent::FaultSpec slow;
  slow.version = 2;
  slow.health = 1.0;
  slow.health_kind = "load_check_slow";
  std::unique_ptr<agent::Fleet> fleet = EnrolledFleet(2000, slow);
  Publish(2);
  const absl::Time started = absl::Now();
  const std::string id = Start(2);
  ASSERT_TRUE(WaitState(id, "HALTED", absl::Seconds(90)));
  const absl::Duration to_halt = absl::Now() - started;
  const nlohmann::json action = FirstAction(id);
  const nlohmann::json& treated = action["evidence"]["treated"];
  const agent::FleetSummary s = fleet->Summary();
  std::cout << "HEALTH EVENTS ONLY (2000 agents): halted in " << action["from_state"] << ", "
            << s.EverApplied("", kChannel, 2) << " hosts ever loaded v2, " << treated["unhealthy"]
            << " unhealthy, " << treated["health_events"] << " health events; start to halt "
            << absl::FormatDuration(to_halt) << "\nEXPLANATION: " << action["reason"] << std::endl;
  EXPECT_TRUE(action["from_state"] == "CANARY" || action["from_state"] == "EARLY")
      << action["from_state"];
  EXPECT_EQ(action["reason"].get<std::string>().rfind("canary: ", 0), 0u) << action["reason"];
  EXPECT_GE(treated["unhealthy"].get<int64_t>(), 5);  // the catastrophic minimum
  EXPECT_EQ(treated["crashed"], 0);
  EXPECT_EQ(treated["silent"], 0);
  EXPECT_EQ(s.crashes, 0);
  EXPECT_NE(action["reason"].get<std::string>().find("unhealthy by health events"),
            std::string::npos);
  EXPECT_EQ(s.EverApplied("broad", kChannel, 2), 0);
  fleet->Stop();
}

TEST_F(BlastRadiusTest, ALateFailureInCanaryHaltsTheRolloutInEarlyWithCanarysEvidence) {
  Boot(Transport::kTls, kFast);
  agent::FaultSpec none;  // v2 is healthy until the test starts the fault
  none.version = 99;
  std::unique_ptr<agent::Fleet> fleet = EnrolledFleet(2000, none);
  Publish(2);
  const std::string id = Start(2);
  ASSERT_TRUE(WaitState(id, "EARLY", absl::Seconds(120)));
  // Promoted: now v2 starts killing canary hosts (a weekly scan, a patch-Tuesday reboot).
  agent::FaultSpec late;
  late.version = 2;
  late.crash = 1.0;
  late.ring = "canary";
  ASSERT_TRUE(fleet->AddFault(late).ok());
  const absl::Time struck = absl::Now();
  ASSERT_TRUE(WaitState(id, "HALTED", absl::Seconds(90)));
  const absl::Duration to_halt = absl::Now() - struck;
  const nlohmann::json action = FirstAction(id);
  const std::string reason = action["reason"].get<std::string>();
  std::cout << "LATE FAILURE (2000 agents): canary crashes from promotion + 0 s; halted "
            << absl::FormatDuration(to_halt) << " later\nEXPLANATION: " << reason << std::endl;
  EXPECT_EQ(action["from_state"], "EARLY");
  EXPECT_EQ(reason.rfind("canary: ", 0), 0u) << reason;  // the evidence names canary
  // Boot-looping hosts die again before their crash report leaves: silence is the evidence.
  EXPECT_GE(action["evidence"]["treated"]["failed"].get<int64_t>(), 5);
  EXPECT_EQ(fleet->Summary().EverApplied("broad", kChannel, 2), 0);
  fleet->Stop();
}

TEST_F(BlastRadiusTest, ARollbackBringsEveryExposedHostBackToLastKnownGood) {
  // Canary rolls back on its own. Of the hosts that load v2, 60% boot-loop (they can only come
  // back through their own breaker, after 3 boots) and the rest keep polling but report
  // load_check_slow until the server tells them to go back.
  Boot(Transport::kTls, kFast, "rollback");
  agent::FaultSpec bad;
  bad.version = 2;
  bad.crash = 0.6;
  bad.health = 1.0;
  bad.health_kind = "load_check_slow";
  std::unique_ptr<agent::Fleet> fleet = EnrolledFleet(2000, bad);
  ShipHealthyV1(*fleet);
  Publish(2);
  const absl::Time started = absl::Now();
  const std::string id = Start(2);
  ASSERT_TRUE(WaitState(id, "ROLLED_BACK", absl::Seconds(90)));
  const absl::Time rolled_back = absl::Now();
  // 99% of the hosts that ever ran v2 back on v1 (with a few dozen hosts: all of them).
  const bool recovered = fleet->WaitFor(
      [](const auto& s) {
        const int64_t exposed = s.EverApplied("", kChannel, 2);
        return exposed > 0 && s.InEffect("", kChannel, 2) * 100 <= exposed &&
               s.InEffect("", kChannel, 1) == s.agents;
      },
      absl::Seconds(60));
  const absl::Duration to_recover = absl::Now() - rolled_back;
  const agent::FleetSummary s = fleet->Summary();
  std::cout << "RECOVERY (2000 agents): " << s.EverApplied("", kChannel, 2) << " hosts ran v2; "
            << s.crashed_agents
            << " of them boot-looped and left it through their own breaker, the rest through "
               "the server; start to rollback "
            << absl::FormatDuration(rolled_back - started) << ", rollback to every host back on v1 "
            << absl::FormatDuration(to_recover) << " (poll interval " << timing_.poll_seconds
            << " s)" << std::endl;
  ASSERT_TRUE(recovered) << s.ToLine();
  EXPECT_GT(s.crashed_agents, 0);
  EXPECT_LT(s.crashed_agents, s.EverApplied("", kChannel, 2));  // both paths were exercised
  EXPECT_EQ(s.InEffect("", kChannel, 2), 0);
  EXPECT_EQ(s.silent, 0);
  fleet->Stop();
}

TEST_F(BlastRadiusTest, AThreefoldRegressionHaltsInsideCanary) {
  // Canary's test calls 1% normal; v2 crashes 3% of the hosts that load it. Telling 3% from 1%
  // takes hundreds of hosts, so half the fleet enrolls with a token whose label puts it in
  // canary: about 1,000 canary hosts. The crash draws come from each host's seeded generator,
  // so the same hosts fail on every run.
  Boot(Transport::kTls, kFast, "halt", /*canary_baseline=*/0.01);
  agent::FaultSpec bad;
  bad.version = 2;
  bad.crash = 0.03;
  CliResult dogfood = Ctl(
      {"enroll-token", "create", "--ttl", "1h", "--max-uses", "2000", "--label", "group=dogfood"},
      keys_.admin_token);
  ASSERT_EQ(dogfood.code, 0) << dogfood.err;
  agent::FleetOptions options = FleetOpts(2000, bad);
  options.token_fractions.push_back({std::string(absl::StripAsciiWhitespace(dogfood.out)), 0.5});
  std::unique_ptr<agent::Fleet> fleet = EnrolledFleet(std::move(options));
  Publish(2);
  const absl::Time started = absl::Now();
  const std::string id = Start(2);
  ASSERT_TRUE(WaitState(id, "HALTED", absl::Seconds(240)));
  const absl::Duration to_halt = absl::Now() - started;
  absl::SleepFor(absl::Seconds(2));
  const nlohmann::json action = FirstAction(id);
  const nlohmann::json& evidence = action["evidence"];
  const agent::FleetSummary s = fleet->Summary();
  const int64_t canary = s.ring_agents.at("canary");
  const int64_t exposed = s.EverApplied("", kChannel, 2);
  std::cout << "3x REGRESSION (2000 agents, " << canary << " in canary): " << exposed
            << " hosts ever loaded v2, " << s.crashed_agents << " crashed; start to halt "
            << absl::FormatDuration(to_halt) << "\nEXPLANATION: " << action["reason"] << std::endl;
  EXPECT_EQ(action["from_state"], "CANARY");
  EXPECT_EQ(evidence["catastrophic"]["crossed"], false);  // the sequential test did it
  EXPECT_EQ(evidence["test"]["vs_baseline"]["outcome"], "reject_h0") << evidence["test"].dump();
  EXPECT_LT(exposed, canary);  // halted before the whole canary ring took it
  EXPECT_EQ(s.EverApplied("early", kChannel, 2) + s.EverApplied("broad", kChannel, 2), 0);
  fleet->Stop();
}

}  // namespace
}  // namespace ringwarden
