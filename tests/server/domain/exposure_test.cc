#include "server/domain/exposure.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "server/domain/assignment.h"
#include "server/domain/transition.h"

namespace ringwarden {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

SlowStartPolicy Policy() {
  SlowStartPolicy p;
  p.initial_exposure = 10;
  p.growth_factor = 2;
  p.probation = absl::Minutes(15);
  p.max_unproven = 1000;
  return p;
}

// Hosts spread evenly over [0, 1): host i sits at (i + 0.5) / n.
std::vector<ExposureHost> Hosts(int n) {
  std::vector<ExposureHost> hosts(n);
  for (int i = 0; i < n; ++i) {
    hosts[i].position = (i + 0.5) / n;
  }
  return hosts;
}

void Load(ExposureHost& h, absl::Time since, absl::Time last_seen) {
  h.loaded = true;
  h.alive_since = since;
  h.last_seen = last_seen;
}

TEST(AllowedFailuresTest, BinomialUpperQuantileOfTheBaseline) {
  EXPECT_EQ(AllowedFailures(0, 0.01), 0);
  EXPECT_EQ(AllowedFailures(10, 0.01), 2);
  EXPECT_EQ(AllowedFailures(10, 0.001), 1);
  EXPECT_EQ(AllowedFailures(100, 0.01), 5);
  EXPECT_EQ(AllowedFailures(1000, 0.01), 21);
  // Large counts use the normal approximation: mean + 3.09 sd.
  EXPECT_EQ(AllowedFailures(1'000'000, 0.01), 10'307);
  EXPECT_EQ(AllowedFailures(10, 0), 0);
  EXPECT_EQ(AllowedFailures(-5, 0.01), 0);
  EXPECT_EQ(AllowedFailures(10, std::numeric_limits<double>::quiet_NaN()), 0);
  EXPECT_LE(AllowedFailures(3, 0.99), 3);
}

TEST(GrowthTargetTest, StartsAbsoluteGrowsByFactorBoundedByInFlightAndShare) {
  const SlowStartPolicy p = Policy();
  EXPECT_EQ(GrowthTarget(p, 100'000, 0, 0), 10);
  EXPECT_EQ(GrowthTarget(p, 5, 0, 0), 5);  // a ring smaller than the first step
  EXPECT_EQ(GrowthTarget(p, 100'000, 10, 5), 10);
  EXPECT_EQ(GrowthTarget(p, 100'000, 10, 10), 20);
  EXPECT_EQ(GrowthTarget(p, 100'000, 20, 13), 26);
  EXPECT_EQ(GrowthTarget(p, 100'000, 2000, 2000), 3000);  // proven + max_unproven
  EXPECT_EQ(GrowthTarget(p, 2500, 2000, 2000), 2500);
  EXPECT_EQ(GrowthTarget(p, 100'000, 500, 0), 500);  // never shrinks
}

TEST(PlanExposureTest, FirstLookAdmitsInitialExposureInWaveOrder) {
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, Hosts(1000), 0, 1.0, kT0);
  EXPECT_TRUE(plan.enabled);
  EXPECT_EQ(plan.ring_hosts, 1000);
  EXPECT_EQ(plan.cap, 1000);
  EXPECT_EQ(plan.admitted, 10);
  EXPECT_TRUE(plan.grew);
  EXPECT_FALSE(plan.complete);
  // Halfway between host 9 (0.0095) and host 10 (0.0105).
  EXPECT_DOUBLE_EQ(plan.admitted_fraction, 0.01);
  EXPECT_EQ(plan.next_step, 10);                // one proven host: max(10, 2)
  EXPECT_FALSE(plan.next_step_at.has_value());  // nobody took it yet
}

TEST(PlanExposureTest, OrderOfInputDoesNotMatter) {
  std::vector<ExposureHost> hosts = Hosts(100);
  std::reverse(hosts.begin(), hosts.end());
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0, 1.0, kT0);
  EXPECT_EQ(plan.admitted, 10);
  EXPECT_DOUBLE_EQ(plan.admitted_fraction, 0.1);
}

TEST(PlanExposureTest, GrowsOnlyWhenAdmittedHostsProvedSurvivalOverProbation) {
  std::vector<ExposureHost> hosts = Hosts(1000);
  for (int i = 0; i < 10; ++i) {
    Load(hosts[i], kT0, kT0 + absl::Minutes(14));
  }
  ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0.01, 1.0, kT0 + absl::Minutes(14));
  EXPECT_EQ(plan.admitted, 10);
  EXPECT_FALSE(plan.grew);
  EXPECT_EQ(plan.unproven, 10);
  EXPECT_EQ(plan.proven, 0);
  ASSERT_TRUE(plan.next_step_at.has_value());
  EXPECT_EQ(*plan.next_step_at, kT0 + absl::Minutes(15));

  for (int i = 0; i < 10; ++i) {
    hosts[i].last_seen = kT0 + absl::Minutes(15);
  }
  plan = PlanExposure(Policy(), 0.01, hosts, 0.01, 1.0, kT0 + absl::Minutes(15));
  EXPECT_EQ(plan.proven, 10);
  EXPECT_EQ(plan.admitted, 20);
  EXPECT_TRUE(plan.grew);
  EXPECT_DOUBLE_EQ(plan.admitted_fraction, 0.02);
  EXPECT_EQ(plan.next_step, 22);
}

TEST(PlanExposureTest, ANewBootRestartsProbation) {
  std::vector<ExposureHost> hosts = Hosts(100);
  for (int i = 0; i < 10; ++i) {
    // The version came 20 minutes ago, but each host rebooted 5 minutes ago.
    Load(hosts[i], kT0 + absl::Minutes(15), kT0 + absl::Minutes(20));
  }
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0.1, 1.0, kT0 + absl::Minutes(20));
  EXPECT_EQ(plan.proven, 0);
  EXPECT_EQ(plan.admitted, 10);
  EXPECT_EQ(*plan.next_step_at, kT0 + absl::Minutes(30));
}

TEST(PlanExposureTest, BootLoopNeverGrowsAndFreezes) {
  std::vector<ExposureHost> hosts = Hosts(100'000);
  for (int i = 0; i < 10; ++i) {
    hosts[i].loaded = true;  // fetched it, never reported again
    hosts[i].failed = true;  // silent
  }
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0.0001, 1.0, kT0 + absl::Hours(5));
  EXPECT_EQ(plan.admitted, 10);
  EXPECT_FALSE(plan.grew);
  EXPECT_TRUE(plan.frozen);
  EXPECT_EQ(plan.failed, 10);
  EXPECT_EQ(plan.allowed_failures, 2);
  EXPECT_FALSE(plan.next_step_at.has_value());
}

TEST(PlanExposureTest, FailuresBeyondTheBackgroundFreezeGrowthAtOnce) {
  std::vector<ExposureHost> hosts = Hosts(1000);
  for (int i = 0; i < 20; ++i) {
    Load(hosts[i], kT0, kT0 + absl::Hours(1));
  }
  hosts[0].failed = hosts[1].failed = true;
  ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0.02, 1.0, kT0 + absl::Hours(1));
  EXPECT_FALSE(plan.frozen);  // 2 of 20 at a 1% baseline: allowed
  EXPECT_EQ(plan.proven, 18);
  EXPECT_EQ(plan.admitted, 36);
  hosts[2].failed = hosts[3].failed = true;
  plan = PlanExposure(Policy(), 0.01, hosts, 0.02, 1.0, kT0 + absl::Hours(1));
  EXPECT_EQ(plan.allowed_failures, 3);
  EXPECT_TRUE(plan.frozen);  // 4 of 20: more than the background explains
  EXPECT_EQ(plan.admitted, 20);
  EXPECT_FALSE(plan.grew);
  // At a 0.1% baseline the first failure freezes.
  hosts[1].failed = hosts[2].failed = hosts[3].failed = false;
  std::vector<ExposureHost> ten(hosts.begin(), hosts.begin() + 10);
  plan = PlanExposure(Policy(), 0.001, ten, 1.0 / 1000 * 10, 1.0, kT0 + absl::Hours(1));
  EXPECT_EQ(plan.failed, 1);
  EXPECT_EQ(plan.allowed_failures, 1);
}

TEST(PlanExposureTest, InFlightCapBoundsUnprovenHosts) {
  SlowStartPolicy p = Policy();
  p.max_unproven = 15;
  p.growth_factor = 10;
  std::vector<ExposureHost> hosts = Hosts(1000);
  for (int i = 0; i < 10; ++i) {
    Load(hosts[i], kT0, kT0 + absl::Hours(1));
  }
  const ExposurePlan plan = PlanExposure(p, 0.01, hosts, 0.01, 1.0, kT0 + absl::Hours(1));
  EXPECT_EQ(plan.admitted, 25);  // 10 proven + 15 in flight, not 100
}

TEST(PlanExposureTest, AdmissionNeverShrinksAndCompletesAtTheShare) {
  std::vector<ExposureHost> hosts = Hosts(40);
  ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0.5, 1.0, kT0);
  EXPECT_EQ(plan.admitted, 20);  // nobody proven, but what was admitted stays
  EXPECT_DOUBLE_EQ(plan.admitted_fraction, 0.5);
  for (int i = 0; i < 20; ++i) {
    Load(hosts[i], kT0, kT0 + absl::Hours(1));
  }
  plan = PlanExposure(Policy(), 0.01, hosts, 0.5, 1.0, kT0 + absl::Hours(1));
  EXPECT_EQ(plan.admitted, 40);
  EXPECT_TRUE(plan.complete);
  EXPECT_DOUBLE_EQ(plan.admitted_fraction, 1.0);  // hosts enrolling later are in too
  EXPECT_FALSE(plan.next_step_at.has_value());
}

TEST(PlanExposureTest, BroadWaveCapsTheShare) {
  std::vector<ExposureHost> hosts = Hosts(100);
  for (int i = 0; i < 10; ++i) {
    Load(hosts[i], kT0, kT0 + absl::Hours(1));
  }
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0.1, 0.15, kT0 + absl::Hours(1));
  EXPECT_EQ(plan.cap, 15);
  EXPECT_EQ(plan.admitted, 15);
  EXPECT_TRUE(plan.complete);
  EXPECT_DOUBLE_EQ(plan.admitted_fraction, 0.15);
}

TEST(PlanExposureTest, DisabledAdmitsTheWholeShare) {
  SlowStartPolicy p = Policy();
  p.enabled = false;
  const ExposurePlan plan = PlanExposure(p, 0.01, Hosts(500), 0, 1.0, kT0);
  EXPECT_FALSE(plan.enabled);
  EXPECT_EQ(plan.admitted, 500);
  EXPECT_TRUE(plan.complete);
  EXPECT_EQ(ExposureText(plan), "slow start off");
}

TEST(PlanExposureTest, EmptyRing) {
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, {}, 0, 1.0, kT0);
  EXPECT_EQ(plan.admitted, 0);
  EXPECT_TRUE(plan.complete);
  // The bound moved, so the caller stores it: a host that enrolls next is admitted.
  EXPECT_TRUE(plan.grew);
  EXPECT_DOUBLE_EQ(plan.admitted_fraction, 1.0);
  EXPECT_FALSE(PlanExposure(Policy(), 0.01, {}, 1.0, 1.0, kT0).grew);
}

TEST(PlanExposureTest, ARingSmallerThanTheFirstStepIsAdmittedWhole) {
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, Hosts(3), 0, 1.0, kT0);
  EXPECT_EQ(plan.admitted, 3);
  EXPECT_TRUE(plan.grew);
  EXPECT_TRUE(plan.complete);
  EXPECT_DOUBLE_EQ(plan.admitted_fraction, 1.0);
}

TEST(HoldForExposureTest, PromotionWaitsForTheWholeShare) {
  std::vector<ExposureHost> hosts = Hosts(100);
  for (int i = 0; i < 10; ++i) {
    Load(hosts[i], kT0, kT0 + absl::Minutes(1));
  }
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0.1, 1.0, kT0 + absl::Minutes(1));
  Decision d;
  d.kind = Decision::Kind::kPromote;
  d.reason = Decision::Reason::kGatePassed;
  d.gate_passed = true;
  HoldForExposure(plan, d);
  EXPECT_EQ(d.kind, Decision::Kind::kWait);
  EXPECT_EQ(d.reason, Decision::Reason::kGatePending);
  EXPECT_FALSE(d.gate_passed);
  ASSERT_EQ(d.evidence.waiting_for.size(), 1u);
  EXPECT_EQ(d.evidence.waiting_for[0],
            "exposure: 10 of 100 hosts admitted (slow start), next 10 at 2023-11-14 22:28:20 UTC");
  EXPECT_TRUE(absl::StartsWith(d.summary, "wait: waiting for exposure: 10 of 100"));
  EXPECT_EQ(ExposureText(plan),
            "10 of 100 hosts admitted (10.0% of the ring), 0 proven, 10 unproven in flight, 0 "
            "failed; next step 10 hosts at 2023-11-14 22:28:20 UTC");
}

TEST(HoldForExposureTest, ManualPromotionIsListedLastAndHaltsPassUntouched) {
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, Hosts(100), 0, 1.0, kT0);
  Decision manual;
  manual.kind = Decision::Kind::kWait;
  manual.reason = Decision::Reason::kGatePassed;
  manual.gate_passed = true;
  manual.evidence.waiting_for = {"manual promotion (ringctl rollout promote)"};
  HoldForExposure(plan, manual);
  ASSERT_EQ(manual.evidence.waiting_for.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(manual.evidence.waiting_for[0], "exposure: 10 of 100"));
  EXPECT_FALSE(manual.gate_passed);

  Decision halt;
  halt.kind = Decision::Kind::kHalt;
  halt.summary = "halt: catastrophic failure";
  HoldForExposure(plan, halt);
  EXPECT_EQ(halt.kind, Decision::Kind::kHalt);
  EXPECT_EQ(halt.summary, "halt: catastrophic failure");
  EXPECT_TRUE(halt.evidence.waiting_for.empty());
}

TEST(HoldForExposureTest, FrozenGrowthIsSpelledOut) {
  std::vector<ExposureHost> hosts = Hosts(100);
  for (int i = 0; i < 10; ++i) {
    hosts[i].loaded = hosts[i].failed = true;
  }
  const ExposurePlan plan = PlanExposure(Policy(), 0.01, hosts, 0.1, 1.0, kT0);
  Decision d;
  HoldForExposure(plan, d);
  EXPECT_EQ(d.evidence.waiting_for[0],
            "exposure: 10 of 100 hosts admitted (slow start), growth frozen: 10 failed > 2 "
            "allowed");
  EXPECT_TRUE(absl::StrContains(ExposureText(plan), "growth frozen (10 failed > 2 allowed)"));
}

// ---- Assignment inside the stage ring --------------------------------------

ChannelCatalog CanaryCatalog(double admitted_fraction) {
  ChannelCatalog c;
  c.channel = "rules";
  c.completed = {1};
  c.rollout = ActiveRollout{"ro-1", 2, RolloutPosition{RolloutState::kCanary, std::nullopt}, 1.0,
                            admitted_fraction};
  return c;
}

TEST(ExposureAssignmentTest, OnlyAdmittedStageHostsGetTheVersionOthersPollSooner) {
  AgentChannelView admitted{Ring::kCanary, 1, std::nullopt, 0.05};
  AgentChannelView waiting{Ring::kCanary, 1, std::nullopt, 0.5};
  AgentChannelView broad{Ring::kBroad, 1, std::nullopt, 0.01};
  const ChannelCatalog c = CanaryCatalog(0.1);
  ResolvedAssignment a = ResolveAssignment(c, admitted, false);
  EXPECT_EQ(a.version, 2);
  EXPECT_FALSE(a.awaiting_admission);
  a = ResolveAssignment(c, waiting, false);
  EXPECT_EQ(a.version, 1);
  EXPECT_TRUE(a.awaiting_admission);
  a = ResolveAssignment(c, broad, false);
  EXPECT_EQ(a.version, 1);
  EXPECT_FALSE(a.awaiting_admission);  // its ring is not reached at all
  // At stage start nobody is admitted.
  a = ResolveAssignment(CanaryCatalog(0), admitted, false);
  EXPECT_EQ(a.version, 1);
  EXPECT_TRUE(a.awaiting_admission);
}

TEST(ExposureAssignmentTest, EarlierRingsHaveItWholeAndHaltAdmitsNobody) {
  ChannelCatalog c = CanaryCatalog(0.0);
  c.rollout->position.state = RolloutState::kEarly;
  AgentChannelView canary{Ring::kCanary, 1, std::nullopt, 0.99};
  EXPECT_EQ(ResolveAssignment(c, canary, false).version, 2);
  c.rollout->admitted_fraction = 1.0;
  c.rollout->position = RolloutPosition{RolloutState::kHalted, RolloutState::kEarly};
  AgentChannelView early{Ring::kEarly, 1, std::nullopt, 0.01};
  const ResolvedAssignment a = ResolveAssignment(c, early, false);
  EXPECT_EQ(a.version, 1);
  EXPECT_FALSE(a.awaiting_admission);
}

TEST(ExposureAssignmentTest, BroadNeedsBothWaveAndBudget) {
  ChannelCatalog c = CanaryCatalog(0.3);
  c.rollout->position.state = RolloutState::kBroad;
  c.rollout->broad_fraction = 0.25;
  EXPECT_EQ(ResolveAssignment(c, {Ring::kBroad, 1, std::nullopt, 0.2}, false).version, 2);
  EXPECT_EQ(ResolveAssignment(c, {Ring::kBroad, 1, std::nullopt, 0.27}, false).version, 1);
  c.rollout->admitted_fraction = 0.1;
  EXPECT_EQ(ResolveAssignment(c, {Ring::kBroad, 1, std::nullopt, 0.2}, false).version, 1);
}

// ---- Transitions restart the budget ----------------------------------------

TEST(ExposureTransitionTest, NewStageRestartsBudgetWavesAndResumeKeepIt) {
  RolloutPolicy policy = DefaultRolloutPolicy();
  absl::StatusOr<TransitionPlan> plan =
      PlanTransition(RolloutPosition{}, 0, RolloutAction::kPromote, policy, Initiator::kOperator);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->admitted_fraction, 0.0);
  plan = PlanTransition(RolloutPosition{RolloutState::kBroad, std::nullopt}, 0,
                        RolloutAction::kPromote, policy, Initiator::kController);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->next_wave);
  EXPECT_EQ(plan->admitted_fraction, kKeepWave);
  plan = PlanTransition(RolloutPosition{RolloutState::kHalted, RolloutState::kCanary}, 0,
                        RolloutAction::kResume, policy, Initiator::kOperator);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->admitted_fraction, kKeepWave);
  plan = PlanTransition(RolloutPosition{RolloutState::kCanary, std::nullopt}, 0,
                        RolloutAction::kHalt, policy, Initiator::kController);
  EXPECT_EQ(plan->admitted_fraction, kKeepWave);
  policy.slow_start.enabled = false;
  plan = PlanTransition(RolloutPosition{RolloutState::kCanary, std::nullopt}, 0,
                        RolloutAction::kPromote, policy, Initiator::kController);
  EXPECT_EQ(plan->admitted_fraction, 1.0);
}

// ---- Policy knobs ----------------------------------------------------------

TEST(SlowStartPolicyTest, DefaultsAreValidAndCareful) {
  const RolloutPolicy p = DefaultRolloutPolicy();
  EXPECT_TRUE(p.Validate().ok());
  EXPECT_TRUE(p.slow_start.enabled);
  EXPECT_EQ(p.slow_start.initial_exposure, 10);
  EXPECT_EQ(p.slow_start.growth_factor, 2.0);
  EXPECT_EQ(p.slow_start.probation, absl::Minutes(15));
  for (Ring ring : kAllRings) {
    EXPECT_GE(p.slow_start.probation, p.ForRing(ring).silence_timeout);
  }
}

TEST(SlowStartPolicyTest, RejectsEveryOutOfRangeKnobNamingIt) {
  struct Case {
    void (*mutate)(SlowStartPolicy&);
    std::string message;
  };
  const Case cases[] = {
      {[](SlowStartPolicy& s) { s.initial_exposure = 0; },
       "slow_start.initial_exposure must be in [1, 10000000], got 0"},
      {[](SlowStartPolicy& s) { s.initial_exposure = 10'000'001; },
       "slow_start.initial_exposure must be in [1, 10000000], got 10000001"},
      {[](SlowStartPolicy& s) { s.growth_factor = 1.0; },
       "slow_start.growth_factor must be in [1.1, 16], got 1"},
      {[](SlowStartPolicy& s) { s.growth_factor = 17; },
       "slow_start.growth_factor must be in [1.1, 16], got 17"},
      {[](SlowStartPolicy& s) { s.growth_factor = std::nan(""); },
       "slow_start.growth_factor must be in [1.1, 16], got nan"},
      {[](SlowStartPolicy& s) { s.probation = absl::ZeroDuration(); },
       "slow_start.probation must be in (0, 7 days], got 0"},
      {[](SlowStartPolicy& s) { s.probation = absl::Hours(24 * 8); },
       "slow_start.probation must be in (0, 7 days], got 192h"},
      {[](SlowStartPolicy& s) { s.probation = absl::Minutes(10); },
       "slow_start.probation must be at least canary.silence_timeout (15m), or a host that "
       "died on load could count as proven, got 10m"},
      {[](SlowStartPolicy& s) { s.max_unproven = 9; },
       "slow_start.max_unproven must be in [initial_exposure = 10, 10000000], got 9"},
  };
  for (const Case& c : cases) {
    RolloutPolicy p = DefaultRolloutPolicy();
    c.mutate(p.slow_start);
    const absl::Status s = p.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(s.message(), c.message);
  }
  RolloutPolicy off = DefaultRolloutPolicy();
  off.slow_start.enabled = false;
  off.slow_start.initial_exposure = -1;  // ignored while off
  EXPECT_TRUE(off.Validate().ok());
}

TEST(CheckPolicyTimingsTest, RefusesTimeoutsShorterThanAReportGap) {
  RolloutPolicy p = DefaultRolloutPolicy();
  const std::string gap = "poll interval 1m + 20% jitter + heartbeat interval 1m";
  EXPECT_TRUE(CheckPolicyTimings(p, absl::Seconds(132), gap).ok());
  p.early.silence_timeout = absl::Seconds(6);
  absl::Status s = CheckPolicyTimings(p, absl::Seconds(132), gap);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "early.silence_timeout_seconds (6s) is shorter than the longest normal gap between two "
            "reports of a healthy agent, 2m12s (poll interval 1m + 20% jitter + heartbeat "
            "interval 1m): healthy agents would look silent; lengthen it or run the server with "
            "a shorter --poll-interval");
  p = DefaultRolloutPolicy();
  for (Ring ring : kAllRings) {
    p.ForRing(ring).silence_timeout = absl::Seconds(5);
  }
  p.slow_start.probation = absl::Seconds(5);
  EXPECT_TRUE(p.Validate().ok());
  s = CheckPolicyTimings(p, absl::Seconds(6), "x");
  EXPECT_TRUE(absl::StartsWith(s.message(), "canary.silence_timeout_seconds (5s)")) << s;
  for (Ring ring : kAllRings) {
    p.ForRing(ring).silence_timeout = absl::Seconds(6);
  }
  s = CheckPolicyTimings(p, absl::Seconds(6), "x");
  EXPECT_TRUE(absl::StartsWith(s.message(), "slow_start.probation_seconds (5s)")) << s;
  p.slow_start.enabled = false;
  EXPECT_TRUE(CheckPolicyTimings(p, absl::Seconds(6), "x").ok());
}

}  // namespace
}  // namespace ringwarden
