#include "server/domain/decision.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/domain/decision_policy.h"
#include "server/domain/health_ledger.h"

namespace ringwarden {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

constexpr int64_t kVersion = 42;

RingGatePolicy CanaryGate() {
  RingGatePolicy policy;  // 1 h bake, 20 healthy, 15 min silence, alpha 5%, beta 10%, 3x, 1%
  EXPECT_TRUE(policy.Validate().ok());
  return policy;
}

// ---------------------------------------------------------------------------------------------
// Evaluate on hand-made RingHealth.

TEST(EvaluateTest, NoAgentsWaits) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  const Decision d = Evaluate(CanaryGate(), RingHealth{}, start, start + absl::Hours(5));
  EXPECT_EQ(d.kind, Decision::Kind::kWait);
  EXPECT_FALSE(d.gate_passed);
  EXPECT_THAT(d.evidence.waiting_for, Contains("first agents to apply the version"));
  EXPECT_EQ(Explain(d, Ring::kCanary, kVersion),
            "canary: no agent has applied v42 yet, no control group; wait for first agents to "
            "apply the version; healthy agents: 0 of 20");
}

TEST(EvaluateTest, CatastrophicFiresAtTheMinimumCountNotBefore) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  RingHealth h;
  h.attempted = 20;
  h.applied = 20;
  h.pending = 16;
  h.silent = 4;
  h.failed = 4;
  Decision d = Evaluate(CanaryGate(), h, start, start + absl::Minutes(16));
  EXPECT_FALSE(d.evidence.catastrophic);  // 4 < 5, although 20% already failed
  EXPECT_NE(d.reason, Decision::Reason::kCatastrophic);

  h.pending = 15;
  h.silent = 5;
  h.failed = 5;
  d = Evaluate(CanaryGate(), h, start, start + absl::Minutes(16));
  EXPECT_TRUE(d.evidence.catastrophic);
  EXPECT_EQ(d.kind, Decision::Kind::kHalt);
  EXPECT_EQ(d.reason, Decision::Reason::kCatastrophic);
  EXPECT_EQ(Explain(d, Ring::kCanary, kVersion),
            "canary: 5 of 20 agents failed after applying v42 (5 silent), no control group; "
            "catastrophic: 5 failed (>= 5) and the failure rate 25.0% >= 20.0%; halt");
}

TEST(EvaluateTest, CatastrophicNeedsTheRateToo) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  RingHealth h;
  h.attempted = 1000;
  h.applied = 1000;
  h.healthy = 990;
  h.crashed = 10;
  h.failed = 10;
  const Decision d = Evaluate(CanaryGate(), h, start, start + absl::Minutes(30));
  EXPECT_FALSE(d.evidence.catastrophic);  // 10 failed but only 1%
}

TEST(EvaluateTest, CatastrophicIsMeasuredAboveTheControl) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  // An evening: a quarter of all machines, treated or not, were switched off.
  RingHealth h;
  h.attempted = 100;
  h.applied = 100;
  h.healthy = 75;
  h.silent = 25;
  h.failed = 25;
  h.exposure = absl::Hours(300);
  h.control_agents = 1000;
  h.control_failed = 260;
  h.control_exposure = absl::Hours(3000);
  const Decision d = Evaluate(CanaryGate(), h, start, start + absl::Hours(4));
  EXPECT_FALSE(d.evidence.catastrophic);
  EXPECT_NE(d.kind, Decision::Kind::kHalt);
  EXPECT_LT(d.evidence.excess_failure_rate, 0);
}

TEST(EvaluateTest, TooLittleDataWaitsAndSaysForWhat) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  RingHealth h;
  h.attempted = 5;
  h.applied = 5;
  h.healthy = 5;
  h.exposure = absl::Minutes(50);
  const Decision d = Evaluate(CanaryGate(), h, start, start + absl::Minutes(10));
  EXPECT_EQ(d.kind, Decision::Kind::kWait);
  EXPECT_EQ(d.reason, Decision::Reason::kGatePending);
  EXPECT_FALSE(d.gate_passed);
  ASSERT_EQ(d.evidence.waiting_for.size(), 3u);
  EXPECT_EQ(d.evidence.waiting_for[0], "bake time: 50m left");
  EXPECT_EQ(d.evidence.waiting_for[1], "healthy agents: 5 of 20");
  // Five clean agents cannot tell 1% from 3%; 106 more could.
  EXPECT_THAT(d.evidence.waiting_for[2], HasSubstr("evidence of health"));
  EXPECT_THAT(d.evidence.waiting_for[2], HasSubstr("about 106 more agents without failure"));
}

TEST(EvaluateTest, EnoughHealthyAgentsButNoStatisticalEvidenceStillWaits) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  RingHealth h;
  h.attempted = 40;
  h.applied = 40;
  h.healthy = 40;
  h.exposure = absl::Hours(40);
  const Decision d = Evaluate(CanaryGate(), h, start, start + absl::Hours(2));
  EXPECT_EQ(d.kind, Decision::Kind::kWait);  // bake and min_healthy are met, the test is not
  ASSERT_EQ(d.evidence.waiting_for.size(), 1u);
  EXPECT_THAT(d.evidence.waiting_for[0], HasSubstr("evidence of health"));
}

TEST(EvaluateTest, PendingAgentsDoNotShowHealth) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  RingHealth h;
  h.attempted = 300;
  h.applied = 300;
  h.healthy = 100;
  h.pending = 200;  // a wave just applied and has not heartbeated yet
  h.exposure = absl::Hours(100);
  Decision d = Evaluate(CanaryGate(), h, start, start + absl::Hours(2));
  EXPECT_LT(d.evidence.vs_baseline.llr, d.evidence.accept_bound);         // 300 x -0.0204 = -6.1
  EXPECT_GT(d.evidence.vs_baseline.accept_llr, d.evidence.accept_bound);  // 100 x -0.0204
  EXPECT_EQ(d.evidence.vs_baseline.outcome, SprtOutcome::kContinue);
  EXPECT_EQ(d.kind, Decision::Kind::kWait);

  h.healthy = 300;
  h.pending = 0;
  d = Evaluate(CanaryGate(), h, start, start + absl::Hours(2));
  EXPECT_EQ(d.evidence.vs_baseline.outcome, SprtOutcome::kAcceptH0);
  EXPECT_EQ(d.kind, Decision::Kind::kPromote);
}

RingHealth HealthyCanary() {
  RingHealth h;
  h.attempted = 150;
  h.applied = 150;
  h.healthy = 148;
  h.crashed = 2;
  h.failed = 2;
  h.exposure = absl::Hours(140);
  h.control_agents = 1000;
  h.control_failed = 20;
  h.control_exposure = absl::Hours(1000);
  return h;
}

TEST(EvaluateTest, HealthyCanaryPromotesAfterTheBake) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  Decision d = Evaluate(CanaryGate(), HealthyCanary(), start, start + absl::Minutes(59));
  EXPECT_EQ(d.kind, Decision::Kind::kWait);
  EXPECT_THAT(d.evidence.waiting_for, Contains("bake time: 1m left"));

  d = Evaluate(CanaryGate(), HealthyCanary(), start, start + absl::Hours(1));
  EXPECT_EQ(d.kind, Decision::Kind::kPromote);
  EXPECT_TRUE(d.gate_passed);
  // 2 of 150 is not yet clearly below 3% on its own (LLR -0.82), but against the control's
  // failures per agent-hour it is: pi0 = 140/1140, pi1 = 420/1420,
  // LLR = 2 ln(pi1/pi0) + 20 ln((1-pi1)/(1-pi0)) = -2.64.
  EXPECT_EQ(d.evidence.vs_baseline.outcome, SprtOutcome::kContinue);
  EXPECT_EQ(d.evidence.vs_control.outcome, SprtOutcome::kAcceptH0);
  EXPECT_TRUE(d.evidence.control_informative);
  EXPECT_EQ(Explain(d, Ring::kCanary, kVersion),
            "canary: 2 of 150 agents failed after applying v42 (2 crashed) vs 2.0% in control "
            "(20 of 1000); failures per agent-hour 0.7x control's; sequential test accepted the "
            "update vs control (LLR -2.63 <= -2.25); bake 1h >= 1h, 148 healthy >= 20; promote");
}

TEST(EvaluateTest, ManualPromotionWaitsWithGatePassed) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  RingGatePolicy policy = CanaryGate();
  policy.manual_promotion = true;
  const Decision d = Evaluate(policy, HealthyCanary(), start, start + absl::Hours(2));
  EXPECT_EQ(d.kind, Decision::Kind::kWait);
  EXPECT_TRUE(d.gate_passed);
  EXPECT_EQ(d.reason, Decision::Reason::kGatePassed);
  EXPECT_THAT(d.evidence.waiting_for, Contains("manual promotion (ringctl rollout promote)"));
  EXPECT_EQ(d.summary, "wait: gate passed, waiting for manual promotion");
  EXPECT_THAT(Explain(d, Ring::kCanary, kVersion),
              HasSubstr("; gate passed; wait for manual promotion (ringctl rollout promote)"));
}

RingHealth RegressedCanary() {
  RingHealth h;
  h.attempted = 200;
  h.applied = 200;
  h.healthy = 185;
  h.crashed = 11;
  h.process_crashed = 8;
  h.unclean_shutdowns = 3;
  h.silent = 4;
  h.failed = 15;
  h.exposure = absl::Hours(190);
  h.control_agents = 1000;
  h.control_failed = 20;
  h.control_exposure = absl::Hours(1000);
  return h;
}

TEST(EvaluateTest, RegressionHaltsAndExplainsWithNumbers) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  const Decision d = Evaluate(CanaryGate(), RegressedCanary(), start, start + absl::Minutes(70));
  EXPECT_EQ(d.kind, Decision::Kind::kHalt);
  EXPECT_EQ(d.reason, Decision::Reason::kRegression);
  EXPECT_FALSE(d.evidence.catastrophic);
  EXPECT_EQ(d.evidence.vs_control.outcome, SprtOutcome::kRejectH0);
  EXPECT_EQ(d.evidence.vs_baseline.outcome, SprtOutcome::kRejectH0);
  EXPECT_EQ(d.summary, "halt: sequential test crossed the halt bound");
  EXPECT_EQ(Explain(d, Ring::kCanary, kVersion),
            "canary: 15 of 200 agents failed after applying v42 (8 process crashes, 3 unclean "
            "shutdowns, 4 silent) vs 2.0% in control (20 of 1000); failures per agent-hour 3.9x "
            "control's; sequential test crossed "
            "the halt bound vs control (LLR 6.78 >= 2.89) and vs the 1.0% baseline (LLR 12.70 >= "
            "2.89); halt");
}

TEST(EvaluateTest, RollbackWhenThePolicySaysSo) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  RingGatePolicy policy = CanaryGate();
  policy.auto_action = AutoAction::kRollback;
  const Decision d = Evaluate(policy, RegressedCanary(), start, start + absl::Minutes(70));
  EXPECT_EQ(d.kind, Decision::Kind::kRollback);
  EXPECT_THAT(Explain(d, Ring::kCanary, kVersion), HasSubstr("; rollback"));
}

TEST(EvaluateTest, RegressionBelowTheBaselineFloorDoesNotHalt) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  // 0.1% -> 0.4%: four times the control, but well inside the 1% the policy calls normal.
  RingHealth h;
  h.attempted = 5000;
  h.applied = 5000;
  h.healthy = 4980;
  h.crashed = 20;
  h.failed = 20;
  h.exposure = absl::Hours(5000);
  h.control_agents = 50'000;
  h.control_failed = 50;
  h.control_exposure = absl::Hours(50'000);
  const Decision d = Evaluate(CanaryGate(), h, start, start + absl::Hours(2));
  EXPECT_EQ(d.evidence.vs_control.outcome, SprtOutcome::kRejectH0);
  EXPECT_EQ(d.evidence.vs_baseline.outcome, SprtOutcome::kAcceptH0);
  EXPECT_EQ(d.kind, Decision::Kind::kPromote);
}

TEST(EvaluateTest, NoisyFleetIsJudgedAgainstItsControlNotTheFloor) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  // 5% of machines fail either way: far above the 1% floor, equal to the control.
  RingHealth h;
  h.attempted = 400;
  h.applied = 400;
  h.healthy = 380;
  h.silent = 20;
  h.failed = 20;
  h.exposure = absl::Hours(400);
  h.control_agents = 2000;
  h.control_failed = 100;
  h.control_exposure = absl::Hours(2000);
  const Decision d = Evaluate(CanaryGate(), h, start, start + absl::Hours(2));
  EXPECT_EQ(d.evidence.vs_baseline.outcome, SprtOutcome::kRejectH0);
  EXPECT_EQ(d.evidence.vs_control.outcome, SprtOutcome::kAcceptH0);
  EXPECT_EQ(d.kind, Decision::Kind::kPromote);
}

TEST(EvaluateTest, TinyControlLeavesTheDecisionToTheFloor) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  RingHealth h = RegressedCanary();
  h.control_agents = 3;
  h.control_failed = 0;
  h.control_exposure = absl::Minutes(30);
  const Decision d = Evaluate(CanaryGate(), h, start, start + absl::Minutes(70));
  EXPECT_FALSE(d.evidence.control_informative);
  EXPECT_FALSE(d.evidence.vs_control.applies);
  EXPECT_EQ(d.kind, Decision::Kind::kHalt);
  EXPECT_THAT(Explain(d, Ring::kCanary, kVersion),
              HasSubstr("sequential test crossed the halt bound vs the 1.0% baseline"));
}

// ---------------------------------------------------------------------------------------------
// Ledger-driven scenarios on a FakeClock.

class ScenarioTest : public ::testing::Test {
 protected:
  static constexpr absl::Duration kHeartbeat = absl::Minutes(1);

  RingHealth Summarize() {
    const Ring control[] = {Ring::kEarly};
    return ledger_.Summarize(Ring::kCanary, clock_.Now(), policy_.silence_timeout, started_,
                             control);
  }
  Decision Look() { return Evaluate(policy_, Summarize(), started_, clock_.Now()); }

  // Early-ring agents on the previous version heartbeat; every 50th one crashed once.
  void ControlHeartbeats() {
    for (int i = 0; i < 1000; ++i) {
      const std::string id = absl::StrCat("early-", i);
      ledger_.RecordControlHeartbeat(id, Ring::kEarly, clock_.Now());
      if (i % 50 == 0 && clock_.Now() - started_ == absl::Minutes(30)) {
        ledger_.RecordControlCrash(id, Ring::kEarly, clock_.Now());
      }
    }
  }

  FakeClock clock_;
  const absl::Time started_ = clock_.Now();
  RingGatePolicy policy_ = CanaryGate();
  HealthLedger ledger_;
};

// July 2024: the content crashes every machine that loads it, in a boot loop that reports
// nothing. Only silence tells; the ring must halt at the first look that sees enough of it.
TEST_F(ScenarioTest, BootLoopHaltsInOneEvaluationOnceTheMinimumCountIsSilent) {
  constexpr int kCanary = 100;
  Decision halt;
  for (int second = 0; second <= 3600 && halt.kind != Decision::Kind::kHalt; second += 30) {
    // Canary agents pick the version up over the first two minutes, then never speak again.
    for (int i = 0; i < kCanary; ++i) {
      const absl::Time applied = started_ + absl::Seconds(i * 120 / kCanary);
      if (applied <= clock_.Now() && applied > clock_.Now() - absl::Seconds(30)) {
        ledger_.RecordApply(absl::StrCat("canary-", i), Ring::kCanary, ApplyOutcome::kApplied,
                            applied);
      }
    }
    if (second % 60 == 0) {
      ControlHeartbeats();
    }
    const RingHealth h = Summarize();
    const Decision d = Evaluate(policy_, h, started_, clock_.Now());
    if (h.failed < policy_.catastrophic_min_failed) {
      EXPECT_EQ(d.kind, Decision::Kind::kWait) << Explain(d, Ring::kCanary, kVersion);
    } else {
      // The very first look with enough silent agents halts.
      EXPECT_EQ(d.kind, Decision::Kind::kHalt) << Explain(d, Ring::kCanary, kVersion);
      EXPECT_EQ(d.reason, Decision::Reason::kCatastrophic);
      halt = d;
    }
    clock_.Advance(absl::Seconds(30));
  }
  ASSERT_EQ(halt.kind, Decision::Kind::kHalt);
  EXPECT_EQ(halt.evidence.health.crashed, 0);
  EXPECT_GE(halt.evidence.health.silent, 5);
  // Within one 30 s look of the silence timeout running out for the earliest agents.
  EXPECT_LE(halt.evidence.bake_elapsed, policy_.silence_timeout + absl::Seconds(30));
  std::printf("boot loop halted after %s: %s\n",
              absl::FormatDuration(halt.evidence.bake_elapsed).c_str(),
              Explain(halt, Ring::kCanary, kVersion).c_str());
}

// Agents that apply and vanish, with no crash report at all, are enough to halt.
TEST_F(ScenarioTest, SilenceAloneHalts) {
  constexpr int kCanary = 200;
  Decision d;
  for (int minute = 0; minute <= 240; ++minute) {
    for (int i = 0; i < kCanary; ++i) {
      const std::string id = absl::StrCat("canary-", i);
      const absl::Duration applied_after = absl::Seconds(i * 6);  // over the first 20 minutes
      if (started_ + applied_after > clock_.Now()) {
        continue;
      }
      if (started_ + applied_after > clock_.Now() - absl::Minutes(1)) {
        ledger_.RecordApply(id, Ring::kCanary, ApplyOutcome::kApplied, started_ + applied_after);
      }
      // One agent in ten goes quiet 10 minutes after applying; the rest keep talking.
      const bool vanishes = i % 10 == 0;
      if (!vanishes || clock_.Now() < started_ + applied_after + absl::Minutes(10)) {
        ledger_.RecordHeartbeat(id, Ring::kCanary, true, clock_.Now());
      }
    }
    ControlHeartbeats();
    d = Look();
    if (d.kind != Decision::Kind::kWait) {
      break;
    }
    clock_.Advance(kHeartbeat);
  }
  EXPECT_EQ(d.kind, Decision::Kind::kHalt) << Explain(d, Ring::kCanary, kVersion);
  EXPECT_EQ(d.evidence.health.crashed, 0);
  EXPECT_GT(d.evidence.health.silent, 0);
  EXPECT_EQ(d.evidence.health.failed, d.evidence.health.silent);
  std::printf("silence halted after %s: %s\n",
              absl::FormatDuration(d.evidence.bake_elapsed).c_str(),
              Explain(d, Ring::kCanary, kVersion).c_str());
}

// ---------------------------------------------------------------------------------------------
// Seeded fleet simulation: how a real controller sees a canary over time.
//
// Model: canary agents apply at uniformly random times in the first 20 minutes; an early ring of
// agents on the previous version is the control. Every agent heartbeats every 5 minutes at its
// own phase. Failures arrive at a constant hazard per agent-hour, from the stage start for the
// control and from the apply for the canary (times `ratio`); half of them send a crash report
// and keep running, half fall silent for good (boot loop, or a machine switched off). The
// controller summarizes and evaluates every 5 minutes.

struct FleetConfig {
  int canary_min = 100;
  int canary_max = 300;
  int control = 1000;
  double hazard_per_hour = 0.02;  // 2% of machines per hour, in both groups
  double ratio = 1.0;             // canary hazard multiple: 1 = healthy update
  absl::Duration horizon = absl::Hours(4);
  bool stop_at_promote = false;
};

struct FleetOutcome {
  bool halted = false;
  bool promoted = false;
  Decision last;
};

struct SimAgent {
  std::string id;
  bool canary = false;
  absl::Duration applies_at;  // canary only
  absl::Duration phase;
  absl::Duration fails_at;
  bool fails_silently = false;
  bool apply_fed = false;
  bool crash_fed = false;
  absl::Duration last_heartbeat_fed = -absl::InfiniteDuration();
};

// Unit draws uniformly from [0, 1) straight from the engine: std::*_distribution differ between
// standard libraries, and a seeded run should be the same run everywhere.
double Unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

FleetOutcome SimulateRollout(const RingGatePolicy& policy, const FleetConfig& config,
                             uint64_t seed) {
  constexpr absl::Duration kHeartbeatEvery = absl::Minutes(5);
  constexpr absl::Duration kLookEvery = absl::Minutes(5);
  std::mt19937_64 rng(seed);
  auto unit = [&rng] { return Unit(rng); };
  auto exponential_hours = [&](double rate) { return absl::Hours(-std::log1p(-unit()) / rate); };

  const int canary =
      config.canary_min +
      static_cast<int>(std::floor(unit() * (config.canary_max - config.canary_min + 1)));
  std::vector<SimAgent> agents;
  agents.reserve(canary + config.control);
  for (int i = 0; i < canary + config.control; ++i) {
    SimAgent a;
    a.canary = i < canary;
    a.id = absl::StrCat(a.canary ? "canary-" : "early-", i);
    a.applies_at = a.canary ? absl::Minutes(20) * unit() : absl::InfiniteDuration();
    a.phase = kHeartbeatEvery * unit();
    const double hazard = config.hazard_per_hour * (a.canary ? config.ratio : 1.0);
    const absl::Duration risk_from = a.canary ? a.applies_at : absl::ZeroDuration();
    a.fails_at = risk_from + exponential_hours(hazard);
    a.fails_silently = unit() < 0.5;
    agents.push_back(std::move(a));
  }

  FakeClock clock;
  const absl::Time started = clock.Now();
  HealthLedger ledger;
  const Ring control_rings[] = {Ring::kEarly};
  FleetOutcome outcome;
  for (absl::Duration t = kLookEvery; t <= config.horizon; t += kLookEvery) {
    clock.Advance(kLookEvery);
    for (SimAgent& a : agents) {
      const Ring ring = a.canary ? Ring::kCanary : Ring::kEarly;
      if (a.canary && !a.apply_fed && a.applies_at <= t) {
        ledger.RecordApply(a.id, ring, ApplyOutcome::kApplied, started + a.applies_at);
        a.apply_fed = true;
      }
      if (!a.fails_silently && !a.crash_fed && a.fails_at <= t) {
        ledger.RecordCrash(a.id, ring, started + a.fails_at, /*on_new_version=*/a.canary);
        a.crash_fed = true;
      }
      // Only the latest heartbeat matters to the ledger; silent failures stop them.
      const absl::Duration until = a.fails_silently ? std::min(t, a.fails_at) : t;
      if (until < a.phase) {
        continue;
      }
      const absl::Duration last =
          a.phase + kHeartbeatEvery * std::floor((until - a.phase) / kHeartbeatEvery);
      if (last <= a.last_heartbeat_fed) {
        continue;
      }
      a.last_heartbeat_fed = last;
      if (!a.canary) {
        ledger.RecordControlHeartbeat(a.id, ring, started + last);
      } else if (last >= a.applies_at) {
        ledger.RecordHeartbeat(a.id, ring, /*has_new_version=*/true, started + last);
      }
    }
    const RingHealth health = ledger.Summarize(Ring::kCanary, clock.Now(), policy.silence_timeout,
                                               started, control_rings);
    outcome.last = Evaluate(policy, health, started, clock.Now());
    if (outcome.last.kind == Decision::Kind::kHalt) {
      outcome.halted = true;
      return outcome;
    }
    if (outcome.last.kind == Decision::Kind::kPromote) {
      outcome.promoted = true;
      if (config.stop_at_promote) {
        return outcome;
      }
    }
  }
  return outcome;
}

TEST(FleetSimulationTest, HealthyUpdateWithBackgroundNoisePromotes) {
  FleetConfig config;
  config.canary_min = config.canary_max = 300;
  config.stop_at_promote = true;
  const FleetOutcome out = SimulateRollout(CanaryGate(), config, /*seed=*/1);
  EXPECT_TRUE(out.promoted) << Explain(out.last, Ring::kCanary, kVersion);
  EXPECT_GT(out.last.evidence.health.failed, 0);  // there was noise, as in the control
  EXPECT_GT(out.last.evidence.health.control_failed, 0);
  std::printf("healthy: %s\n", Explain(out.last, Ring::kCanary, kVersion).c_str());
}

TEST(FleetSimulationTest, ThreeTimesTheFailureRateHalts) {
  FleetConfig config;
  config.canary_min = config.canary_max = 300;
  config.ratio = 3.0;  // 2% -> 6% per hour
  config.stop_at_promote = true;
  const FleetOutcome out = SimulateRollout(CanaryGate(), config, /*seed=*/1);
  EXPECT_TRUE(out.halted) << Explain(out.last, Ring::kCanary, kVersion);
  EXPECT_EQ(out.last.reason, Decision::Reason::kRegression);
  std::printf("3x: %s\n", Explain(out.last, Ring::kCanary, kVersion).c_str());
}

// The controller looks every 5 minutes for 4 hours and keeps looking after the gate passes (a
// manual promotion can leave a ring waiting that long, and a halt then is just as false).
TEST(FleetSimulationTest, FalseHaltRateUnderManyLooksIsAtMostAlpha) {
  constexpr int kRuns = 1000;
  const RingGatePolicy policy = CanaryGate();
  FleetConfig config;  // 100-300 canary agents, 1000 control, 2%/h in both
  int halts = 0;
  for (int run = 0; run < kRuns; ++run) {
    halts += SimulateRollout(policy, config, /*seed=*/10'000 + run).halted ? 1 : 0;
  }
  const double rate = static_cast<double>(halts) / kRuns;
  std::printf(
      "false-halt rate of a healthy update over %d rollouts, 48 looks each: %.3f "
      "(alpha %.2f)\n",
      kRuns, rate, policy.alpha);
  EXPECT_LE(rate, policy.alpha);
}

TEST(FleetSimulationTest, PowerAgainstAThreefoldRegression) {
  constexpr int kRuns = 1000;
  const RingGatePolicy policy = CanaryGate();
  FleetConfig config;
  config.ratio = 3.0;
  config.stop_at_promote = true;  // once promoted, the regression got past this ring
  int halts = 0;
  for (int run = 0; run < kRuns; ++run) {
    halts += SimulateRollout(policy, config, /*seed=*/20'000 + run).halted ? 1 : 0;
  }
  const double power = static_cast<double>(halts) / kRuns;
  std::printf("3x regressions halted in the canary: %.3f of %d rollouts\n", power, kRuns);
  EXPECT_GE(power, 0.80);
}

// ---------------------------------------------------------------------------------------------
// Policy validation.

TEST(RingGatePolicyTest, DefaultsAreValid) {
  EXPECT_TRUE(RingGatePolicy{}.Validate().ok());
  EXPECT_TRUE(DefaultRolloutPolicy().Validate().ok());
  EXPECT_TRUE(RolloutPolicy{}.Validate().ok());
}

TEST(RingGatePolicyTest, RejectsNonsense) {
  struct Case {
    const char* name;
    void (*mutate)(RingGatePolicy&);
    const char* message;
  };
  const Case cases[] = {
      {"negative bake", [](RingGatePolicy& p) { p.min_bake = absl::Minutes(-1); }, "min_bake"},
      {"infinite bake", [](RingGatePolicy& p) { p.min_bake = absl::InfiniteDuration(); },
       "min_bake"},
      {"no healthy agents", [](RingGatePolicy& p) { p.min_healthy = 0; }, "min_healthy"},
      {"zero timeout", [](RingGatePolicy& p) { p.silence_timeout = absl::ZeroDuration(); },
       "silence_timeout"},
      {"zero catastrophic count", [](RingGatePolicy& p) { p.catastrophic_min_failed = 0; },
       "catastrophic_min_failed"},
      {"catastrophic rate > 1", [](RingGatePolicy& p) { p.catastrophic_failure_rate = 1.5; },
       "catastrophic_failure_rate"},
      {"alpha 0", [](RingGatePolicy& p) { p.alpha = 0; }, "alpha must be in (0, 0.5), got 0"},
      {"alpha 0.7", [](RingGatePolicy& p) { p.alpha = 0.7; }, "alpha must be in (0, 0.5), got 0.7"},
      {"alpha NaN", [](RingGatePolicy& p) { p.alpha = std::nan(""); }, "alpha"},
      {"beta 0.5", [](RingGatePolicy& p) { p.beta = 0.5; }, "beta"},
      {"ratio 1", [](RingGatePolicy& p) { p.regression_ratio = 1.0; }, "regression_ratio"},
      {"ratio below 1", [](RingGatePolicy& p) { p.regression_ratio = 0.5; }, "regression_ratio"},
      {"baseline 0", [](RingGatePolicy& p) { p.baseline_failure_rate = 0; },
       "baseline_failure_rate"},
      {"baseline too high for the ratio", [](RingGatePolicy& p) { p.baseline_failure_rate = 0.4; },
       "baseline_failure_rate"},
      {"unknown action", [](RingGatePolicy& p) { p.auto_action = static_cast<AutoAction>(9); },
       "auto_action"},
  };
  for (const Case& c : cases) {
    RingGatePolicy p;
    c.mutate(p);
    const absl::Status s = p.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.name;
  }
}

TEST(RolloutPolicyTest, NamesTheRingOfABadGate) {
  RolloutPolicy p = DefaultRolloutPolicy();
  p.early.alpha = 0.7;
  const absl::Status s = p.Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "early.alpha must be in (0, 0.5), got 0.7");
}

TEST(RolloutPolicyTest, RejectsBadNameVersionAndWaves) {
  auto message_of = [](void (*mutate)(RolloutPolicy&)) {
    RolloutPolicy p = DefaultRolloutPolicy();
    mutate(p);
    const absl::Status s = p.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  EXPECT_THAT(message_of([](RolloutPolicy& p) { p.name = ""; }), HasSubstr("name"));
  EXPECT_THAT(message_of([](RolloutPolicy& p) { p.version = 0; }), HasSubstr("version"));
  EXPECT_THAT(message_of([](RolloutPolicy& p) { p.broad_waves = {}; }), HasSubstr("broad_waves"));
  EXPECT_THAT(message_of([](RolloutPolicy& p) {
                p.broad_waves = {0.5, 0.25, 1.0};
              }),
              HasSubstr("broad_waves[1]"));
  EXPECT_THAT(message_of([](RolloutPolicy& p) {
                p.broad_waves = {0.1, 0.1, 1.0};
              }),
              HasSubstr("strictly increasing"));
  EXPECT_THAT(message_of([](RolloutPolicy& p) {
                p.broad_waves = {0.1, 0.5};
              }),
              HasSubstr("ending at 1.0"));
  EXPECT_THAT(message_of([](RolloutPolicy& p) {
                p.broad_waves = {0.0, 1.0};
              }),
              HasSubstr("broad_waves[0]"));
  EXPECT_THAT(message_of([](RolloutPolicy& p) {
                p.broad_waves = {0.5, 1.5};
              }),
              HasSubstr("broad_waves[1]"));
}

TEST(RolloutPolicyTest, ForRingPicksTheGate) {
  RolloutPolicy p = DefaultRolloutPolicy();
  p.ForRing(Ring::kEarly).manual_promotion = true;
  EXPECT_TRUE(p.early.manual_promotion);
  EXPECT_EQ(&p.ForRing(Ring::kBroad), &p.broad);
  EXPECT_EQ(p.ForRing(Ring::kCanary).min_healthy, 20);
}

TEST(AutoActionTest, NamesRoundTrip) {
  for (AutoAction a : {AutoAction::kHalt, AutoAction::kRollback}) {
    const absl::StatusOr<AutoAction> parsed = ParseAutoAction(AutoActionName(a));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, a);
  }
  EXPECT_EQ(ParseAutoAction("pause").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DecisionNamesTest, KindsAndReasons) {
  EXPECT_EQ(DecisionKindName(Decision::Kind::kPromote), "promote");
  EXPECT_EQ(DecisionKindName(Decision::Kind::kWait), "wait");
  EXPECT_EQ(DecisionKindName(Decision::Kind::kHalt), "halt");
  EXPECT_EQ(DecisionKindName(Decision::Kind::kRollback), "rollback");
  EXPECT_EQ(DecisionReasonName(Decision::Reason::kCatastrophic), "catastrophic");
  EXPECT_EQ(DecisionReasonName(Decision::Reason::kRegression), "regression");
  EXPECT_EQ(DecisionReasonName(Decision::Reason::kGatePassed), "gate_passed");
  EXPECT_EQ(DecisionReasonName(Decision::Reason::kGatePending), "gate_pending");
}

}  // namespace
}  // namespace ringwarden
