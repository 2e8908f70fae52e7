#include "server/domain/health_ledger.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "tests/support/summary_fields.h"

namespace ringwarden {
namespace {

constexpr absl::Duration kTimeout = absl::Minutes(15);

class HealthLedgerTest : public ::testing::Test {
 protected:
  // Canary summarizes the canary ring, and checks that the kept tallies say what a walk over
  // every record says.
  RingHealth Canary() {
    const RingHealth h = ledger_.Summarize(Ring::kCanary, clock_.Now(), kTimeout, stage_started_);
    EXPECT_EQ(Fields(h), Fields(ledger_.SummarizeByScan(Ring::kCanary, clock_.Now(), kTimeout,
                                                        stage_started_)));
    return h;
  }

  FakeClock clock_;
  const absl::Time stage_started_ = clock_.Now();
  HealthLedger ledger_;
};

TEST_F(HealthLedgerTest, EmptyLedgerSummarizesToZero) {
  const RingHealth h = Canary();
  EXPECT_EQ(h.attempted, 0);
  EXPECT_EQ(h.failed, 0);
  EXPECT_EQ(h.control_agents, 0);
  EXPECT_EQ(h.exposure, absl::ZeroDuration());
}

TEST_F(HealthLedgerTest, RecordingTheSameApplyTwiceCountsOnce) {
  const absl::Time applied = clock_.Now();
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, applied);
  clock_.Advance(absl::Seconds(30));
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());  // a retry
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.attempted, 1);
  EXPECT_EQ(h.applied, 1);
  EXPECT_EQ(h.healthy, 1);
  EXPECT_EQ(ledger_.agent_count(), 1u);
  // The first apply's time is kept: exposure runs from it.
  EXPECT_EQ(h.exposure, absl::Seconds(30));
}

TEST_F(HealthLedgerTest, AgentWithManyCrashesCountsAsOneFailure) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Minutes(1));
    ledger_.RecordCrash("a", Ring::kCanary, clock_.Now(), /*on_new_version=*/true);
    ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());
  }
  ledger_.RecordApply("b", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  ledger_.RecordHeartbeat("b", Ring::kCanary, true, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.attempted, 2);
  EXPECT_EQ(h.crashed, 1);
  EXPECT_EQ(h.failed, 1);
  EXPECT_EQ(h.crash_reports, 5);
  EXPECT_EQ(h.healthy, 1);  // a crashed agent is not healthy, heartbeats or not
}

TEST_F(HealthLedgerTest, SilentOnlyAfterTheTimeout) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(kTimeout);
  RingHealth h = Canary();
  EXPECT_EQ(h.pending, 1);  // exactly at the timeout: not yet
  EXPECT_EQ(h.silent, 0);
  clock_.Advance(absl::Seconds(1));
  h = Canary();
  EXPECT_EQ(h.silent, 1);
  EXPECT_EQ(h.failed, 1);
  EXPECT_EQ(h.pending, 0);
  // Exposure stops at the last sign of life, here the apply itself.
  EXPECT_EQ(h.exposure, absl::ZeroDuration());
}

TEST_F(HealthLedgerTest, SilenceCountsFromTheLastHeartbeat) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Minutes(10));
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());
  clock_.Advance(absl::Minutes(14));
  EXPECT_EQ(Canary().healthy, 1);
  clock_.Advance(absl::Minutes(2));
  const RingHealth h = Canary();
  EXPECT_EQ(h.silent, 1);
  EXPECT_EQ(h.exposure, absl::Minutes(10));
}

TEST_F(HealthLedgerTest, HeartbeatAfterApplyClearsSilence) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Minutes(20));
  EXPECT_EQ(Canary().silent, 1);
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());  // it was only asleep
  const RingHealth h = Canary();
  EXPECT_EQ(h.silent, 0);
  EXPECT_EQ(h.healthy, 1);
  EXPECT_EQ(h.failed, 0);
}

TEST_F(HealthLedgerTest, PendingUntilFirstHeartbeat) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Minutes(1));
  RingHealth h = Canary();
  EXPECT_EQ(h.pending, 1);
  EXPECT_EQ(h.healthy, 0);
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());
  h = Canary();
  EXPECT_EQ(h.pending, 0);
  EXPECT_EQ(h.healthy, 1);
}

TEST_F(HealthLedgerTest, CrashOnPreviousVersionCountsToControlNotTreated) {
  ledger_.RecordControlHeartbeat("c", Ring::kCanary, clock_.Now());
  clock_.Advance(absl::Minutes(5));
  ledger_.RecordCrash("c", Ring::kCanary, clock_.Now(), /*on_new_version=*/false);
  ledger_.RecordHeartbeat("c", Ring::kCanary, /*has_new_version=*/false, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.attempted, 0);
  EXPECT_EQ(h.failed, 0);
  EXPECT_EQ(h.crash_reports, 0);
  EXPECT_EQ(h.control_agents, 1);
  EXPECT_EQ(h.control_failed, 1);
  EXPECT_EQ(h.control_exposure, absl::Minutes(5));  // until the crash
}

TEST_F(HealthLedgerTest, ControlCrashBeforeTheAgentAppliesStaysInControl) {
  ledger_.RecordControlHeartbeat("a", Ring::kCanary, clock_.Now());
  clock_.Advance(absl::Minutes(2));
  ledger_.RecordControlCrash("a", Ring::kCanary, clock_.Now());
  clock_.Advance(absl::Minutes(2));
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Minutes(1));
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.control_agents, 1);
  EXPECT_EQ(h.control_failed, 1);
  EXPECT_EQ(h.attempted, 1);
  EXPECT_EQ(h.healthy, 1);
  EXPECT_EQ(h.failed, 0);
}

TEST_F(HealthLedgerTest, ControlAgentLeavesControlWhenItApplies) {
  ledger_.RecordControlHeartbeat("a", Ring::kCanary, clock_.Now());
  clock_.Advance(absl::Minutes(3));
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Hours(1));  // no heartbeat on the previous version since: not silent there
  const RingHealth h = Canary();
  EXPECT_EQ(h.control_agents, 1);
  EXPECT_EQ(h.control_failed, 0);
  EXPECT_EQ(h.control_exposure, absl::Minutes(3));
  EXPECT_EQ(h.silent, 1);  // but silent on the new version
}

TEST_F(HealthLedgerTest, SilentControlAgentCountsAsControlFailure) {
  ledger_.RecordControlHeartbeat("c", Ring::kCanary, clock_.Now());
  clock_.Advance(absl::Minutes(10));
  ledger_.RecordControlHeartbeat("c", Ring::kCanary, clock_.Now());
  clock_.Advance(kTimeout + absl::Seconds(1));
  const RingHealth h = Canary();
  EXPECT_EQ(h.control_agents, 1);
  EXPECT_EQ(h.control_failed, 1);
  EXPECT_EQ(h.control_exposure, absl::Minutes(10));
}

TEST_F(HealthLedgerTest, ControlOutsideTheWindowIsIgnored) {
  ledger_.RecordControlHeartbeat("old", Ring::kCanary, clock_.Now() - absl::Hours(2));
  ledger_.RecordControlCrash("old", Ring::kCanary, clock_.Now() - absl::Hours(1));
  ledger_.RecordControlHeartbeat("c", Ring::kCanary, clock_.Now() - absl::Hours(1));
  clock_.Advance(absl::Minutes(5));
  ledger_.RecordControlHeartbeat("c", Ring::kCanary, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.control_agents, 1);  // "old" was last seen before the window
  EXPECT_EQ(h.control_failed, 0);
  EXPECT_EQ(h.control_exposure, absl::Minutes(5));  // clipped to the window
}

TEST_F(HealthLedgerTest, ControlRingsSelectTheControlGroup) {
  ledger_.RecordControlHeartbeat("early-1", Ring::kEarly, clock_.Now());
  ledger_.RecordControlHeartbeat("broad-1", Ring::kBroad, clock_.Now());
  ledger_.RecordControlHeartbeat("canary-1", Ring::kCanary, clock_.Now());
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(Canary().control_agents, 1);  // default: the ring itself
  const Ring later[] = {Ring::kEarly, Ring::kBroad};
  const RingHealth h =
      ledger_.Summarize(Ring::kCanary, clock_.Now(), kTimeout, stage_started_, later);
  EXPECT_EQ(h.control_agents, 2);
  EXPECT_EQ(h.control_exposure, absl::Minutes(2));
}

TEST_F(HealthLedgerTest, ApplyFailuresAreFailuresOfTheVersion) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplyFailed, clock_.Now());
  ledger_.RecordApply("b", Ring::kCanary, ApplyOutcome::kLoadCheckFailed, clock_.Now());
  ledger_.RecordApply("c", Ring::kCanary, ApplyOutcome::kSignatureRejected, clock_.Now());
  clock_.Advance(absl::Minutes(1));
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());  // retry works
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.attempted, 2);
  EXPECT_EQ(h.apply_failed, 2);  // the failure sticks
  EXPECT_EQ(h.failed, 2);
  EXPECT_EQ(h.applied, 0);
  EXPECT_EQ(h.rejected, 1);  // never ran the version: not a trial
}

TEST_F(HealthLedgerTest, BackOnThePreviousVersionAfterRunningTheNewOneIsARevert) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Minutes(1));
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());
  clock_.Advance(absl::Minutes(1));
  ledger_.RecordHeartbeat("a", Ring::kCanary, false, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.reverted, 1);
  EXPECT_EQ(h.failed, 1);
  EXPECT_EQ(h.exposure, absl::Minutes(2));
}

TEST_F(HealthLedgerTest, PreviousVersionHeartbeatRacingTheApplyIsNotARevert) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Seconds(1));
  // Composed before the apply, delivered after it: no heartbeat on the new version yet.
  ledger_.RecordHeartbeat("a", Ring::kCanary, false, clock_.Now());
  clock_.Advance(absl::Seconds(30));
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.reverted, 0);
  EXPECT_EQ(h.healthy, 1);
}

TEST_F(HealthLedgerTest, AgentReportedRevertIsAFailure) {
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Minutes(3));
  ledger_.RecordApply("a", Ring::kCanary, ApplyOutcome::kReverted, clock_.Now());
  const RingHealth h = Canary();
  EXPECT_EQ(h.attempted, 1);
  EXPECT_EQ(h.reverted, 1);
  EXPECT_EQ(h.failed, 1);
}

TEST_F(HealthLedgerTest, NewVersionHeartbeatOrCrashImpliesTheApply) {
  ledger_.RecordHeartbeat("a", Ring::kCanary, true, clock_.Now());  // apply report lost
  ledger_.RecordCrash("b", Ring::kCanary, clock_.Now(), /*on_new_version=*/true);
  const RingHealth h = Canary();
  EXPECT_EQ(h.attempted, 2);
  EXPECT_EQ(h.healthy, 1);
  EXPECT_EQ(h.crashed, 1);
}

TEST_F(HealthLedgerTest, OtherRingsAreNotCounted) {
  ledger_.RecordApply("e", Ring::kEarly, ApplyOutcome::kApplied, clock_.Now());
  ledger_.RecordApply("c", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  EXPECT_EQ(Canary().attempted, 1);
  EXPECT_EQ(ledger_.Summarize(Ring::kEarly, clock_.Now(), kTimeout, stage_started_).attempted, 1);
}

TEST_F(HealthLedgerTest, CategoriesPartitionTheAttemptedAgents) {
  ledger_.RecordApply("healthy", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  ledger_.RecordApply("crashed", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  ledger_.RecordApply("silent", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  ledger_.RecordApply("failed", Ring::kCanary, ApplyOutcome::kApplyFailed, clock_.Now());
  clock_.Advance(absl::Minutes(20));
  ledger_.RecordApply("pending", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  ledger_.RecordHeartbeat("healthy", Ring::kCanary, true, clock_.Now());
  // Crashed and fell silent: counted once, as crashed.
  ledger_.RecordCrash("crashed", Ring::kCanary, clock_.Now() - absl::Minutes(19), true);
  const RingHealth h = Canary();
  EXPECT_EQ(h.attempted, 5);
  EXPECT_EQ(h.healthy, 1);
  EXPECT_EQ(h.pending, 1);
  EXPECT_EQ(h.crashed, 1);
  EXPECT_EQ(h.silent, 1);
  EXPECT_EQ(h.apply_failed, 1);
  EXPECT_EQ(h.failed, 3);
  EXPECT_EQ(
      h.healthy + h.pending + h.crashed + h.reverted + h.unhealthy + h.silent + h.apply_failed,
      h.attempted);
  EXPECT_EQ(h.process_crashed + h.unclean_shutdowns, h.crashed);
}

TEST_F(HealthLedgerTest, CrashKindsAreCountedApartByTheFirstReport) {
  for (const char* id : {"p1", "p2", "u1", "mixed"}) {
    ledger_.RecordApply(id, Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  }
  clock_.Advance(absl::Minutes(1));
  const absl::Time t = clock_.Now();
  ledger_.RecordCrash("p1", Ring::kCanary, t, true, CrashKind::kProcessCrash);
  ledger_.RecordCrash("p2", Ring::kCanary, t, true, CrashKind::kProcessCrash);
  ledger_.RecordCrash("u1", Ring::kCanary, t, true, CrashKind::kUncleanShutdown);
  // Reports arrive out of order: the earliest crash names the kind.
  ledger_.RecordCrash("mixed", Ring::kCanary, t + absl::Seconds(5), true, CrashKind::kProcessCrash);
  ledger_.RecordCrash("mixed", Ring::kCanary, t, true, CrashKind::kUncleanShutdown);
  const RingHealth h = Canary();
  EXPECT_EQ(h.crashed, 4);
  EXPECT_EQ(h.process_crashed, 2);
  EXPECT_EQ(h.unclean_shutdowns, 2);
  EXPECT_EQ(h.crash_reports, 5);
  EXPECT_EQ(h.failed, 4);
}

TEST_F(HealthLedgerTest, HealthEventsFailAHostOnceTheirWeightReachesTheThreshold) {
  HealthLedger ledger(/*soft_failure_threshold=*/1.0);
  ledger.RecordApply("hot", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  ledger.RecordApply("warm", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  ledger.RecordApply("noise", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  clock_.Advance(absl::Minutes(1));
  for (const char* id : {"hot", "warm", "noise"}) {
    ledger.RecordHeartbeat(id, Ring::kCanary, true, clock_.Now());
  }
  // Four events of weight 0.25 reach 1.0; three stay below; weight-0 kinds never count.
  for (int i = 0; i < 4; ++i) {
    ledger.RecordHealthEvent("hot", Ring::kCanary, 0.25, clock_.Now() + absl::Seconds(i), true);
  }
  for (int i = 0; i < 3; ++i) {
    ledger.RecordHealthEvent("warm", Ring::kCanary, 0.25, clock_.Now(), true);
  }
  for (int i = 0; i < 50; ++i) {
    ledger.RecordHealthEvent("noise", Ring::kCanary, 0, clock_.Now(), true);
  }
  const RingHealth h =
      ledger.Summarize(Ring::kCanary, clock_.Now() + absl::Seconds(10), kTimeout, stage_started_);
  EXPECT_EQ(h.attempted, 3);
  EXPECT_EQ(h.unhealthy, 1);
  EXPECT_EQ(h.healthy, 2);
  EXPECT_EQ(h.failed, 1);
  EXPECT_EQ(h.health_events, 57);
  // Exposure of the unhealthy host ends at the event that crossed the threshold.
  EXPECT_EQ(h.exposure,
            absl::Minutes(1) + absl::Seconds(3) + 2 * (absl::Minutes(1) + absl::Seconds(10)));
  EXPECT_EQ(ledger.Verdict("hot", clock_.Now(), kTimeout), HealthLedger::AgentVerdict::kFailed);
  EXPECT_EQ(ledger.Verdict("warm", clock_.Now(), kTimeout), HealthLedger::AgentVerdict::kHealthy);
}

TEST_F(HealthLedgerTest, HealthEventsOnThePreviousVersionFailTheControlAlike) {
  HealthLedger ledger(/*soft_failure_threshold=*/0.5);
  ledger.RecordControlHeartbeat("c1", Ring::kCanary, clock_.Now());
  ledger.RecordControlHeartbeat("c2", Ring::kCanary, clock_.Now());
  clock_.Advance(absl::Minutes(1));
  ledger.RecordHealthEvent("c1", Ring::kCanary, 0.5, clock_.Now(), /*on_new_version=*/false);
  ledger.RecordHealthEvent("c2", Ring::kCanary, 0.25, clock_.Now(), /*on_new_version=*/false);
  const RingHealth h = ledger.Summarize(Ring::kCanary, clock_.Now(), kTimeout, stage_started_);
  EXPECT_EQ(h.attempted, 0);
  EXPECT_EQ(h.control_agents, 2);
  EXPECT_EQ(h.control_failed, 1);
}

TEST_F(HealthLedgerTest, ACrashOutranksHealthEventsAndEachHostCountsOnce) {
  HealthLedger ledger(/*soft_failure_threshold=*/1.0);
  ledger.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, clock_.Now());
  ledger.RecordHealthEvent("a", Ring::kCanary, 5, clock_.Now(), true);
  ledger.RecordCrash("a", Ring::kCanary, clock_.Now(), true, CrashKind::kUncleanShutdown);
  const RingHealth h = ledger.Summarize(Ring::kCanary, clock_.Now(), kTimeout, stage_started_);
  EXPECT_EQ(h.failed, 1);
  EXPECT_EQ(h.crashed, 1);
  EXPECT_EQ(h.unclean_shutdowns, 1);
  EXPECT_EQ(h.unhealthy, 0);
}

TEST(HealthLedgerScaleTest, HundredThousandAgentsPerRollout) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  HealthLedger ledger;
  constexpr int kAgents = 100'000;
  for (int i = 0; i < kAgents; ++i) {
    const std::string id = absl::StrCat("host-", i);
    if (i % 2 == 0) {
      ledger.RecordApply(id, Ring::kBroad, ApplyOutcome::kApplied, start);
      ledger.RecordHeartbeat(id, Ring::kBroad, true, start + absl::Minutes(1));
    } else {
      ledger.RecordControlHeartbeat(id, Ring::kBroad, start + absl::Minutes(1));
    }
  }
  clock.Advance(absl::Minutes(2));
  const RingHealth h = ledger.Summarize(Ring::kBroad, clock.Now(), kTimeout, start);
  EXPECT_EQ(Fields(h), Fields(ledger.SummarizeByScan(Ring::kBroad, clock.Now(), kTimeout, start)));
  EXPECT_EQ(ledger.agent_count(), static_cast<size_t>(kAgents));
  EXPECT_EQ(h.healthy, kAgents / 2);
  EXPECT_EQ(h.control_agents, kAgents / 2);
  EXPECT_EQ(h.exposure, absl::Minutes(2) * (kAgents / 2));
}

// Random histories: every kind of report, out of order, on agents that change ring and are
// forgotten and fed again, judged with every ring, control set, timeout and window the
// controller uses, and a clock that sometimes steps back. Summarize must equal the scan each time.
TEST(HealthLedgerIncrementalTest, EverySummaryEqualsAFullScanThroughRandomHistories) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  const absl::Time windows[] = {t0, t0 + absl::Minutes(20)};
  const absl::Duration timeouts[] = {absl::Minutes(5), absl::Minutes(15)};
  const std::vector<std::vector<Ring>> control_sets = {{},
                                                       {Ring::kCanary},
                                                       {Ring::kEarly, Ring::kBroad},
                                                       {Ring::kCanary, Ring::kEarly, Ring::kBroad}};
  int64_t summaries = 0, incremental = 0;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
    HealthLedger ledger(1.0);
    absl::Time now = t0;
    for (int step = 0; step < 1500; ++step) {
      now += absl::Seconds(pick(90));
      const std::string id = absl::StrCat("host-", pick(60));
      const Ring ring = pick(20) == 0 ? kAllRings[pick(3)] : kAllRings[pick(60) % 3];
      // Mostly in the past, now and then a report stamped ahead of the clock.
      const absl::Time at =
          pick(50) == 0 ? now + absl::Seconds(pick(120)) : now - absl::Seconds(pick(1800));
      switch (pick(9)) {
        case 0:
          ledger.RecordApply(id, ring, static_cast<ApplyOutcome>(pick(7)), at);
          break;
        case 1:
        case 2:
        case 3:
          ledger.RecordHeartbeat(id, ring, pick(2) == 0, at);
          break;
        case 4:
          ledger.RecordCrash(id, ring, at, pick(2) == 0,
                             pick(2) == 0 ? CrashKind::kProcessCrash : CrashKind::kUncleanShutdown);
          break;
        case 5: {
          const double weights[] = {0, 0.25, 0.5, 1.0};
          ledger.RecordHealthEvent(id, ring, weights[pick(4)], at, pick(2) == 0);
          break;
        }
        case 6:
          if (pick(4) == 0) {
            ledger.Forget(id);
          }
          break;
        default: {
          const Ring judged = kAllRings[pick(3)];
          // The controller judges with one window and one timeout per ring; other calls
          // (another window, a clock stepped back) rebuild.
          const absl::Time window = pick(10) == 0 ? windows[pick(2)] : windows[0];
          const absl::Duration timeout =
              pick(10) == 0 ? timeouts[pick(2)] : timeouts[static_cast<int>(judged) % 2];
          const absl::Time when = pick(30) == 0 ? now - absl::Minutes(pick(10)) : now;
          const std::vector<Ring>& control = control_sets[pick(4)];
          const uint64_t scans_before = ledger.work().scans;
          const RingHealth got = ledger.Summarize(judged, when, timeout, window, control);
          const RingHealth want = ledger.SummarizeByScan(judged, when, timeout, window, control);
          ASSERT_EQ(Fields(got), Fields(want))
              << "seed " << seed << " step " << step << " ring " << RingName(judged);
          ++summaries;
          incremental += ledger.work().scans == scans_before ? 1 : 0;
        }
      }
    }
  }
  // Most calls must take the kept tallies, or this test compares the scan with itself.
  EXPECT_GT(incremental, summaries * 3 / 4) << incremental << " of " << summaries;
}

// Once summarized, a ledger judges what changed: a heartbeat and a crash each move their agent,
// and time passing moves the agents whose timeout ran out, with no walk over every record.
TEST(HealthLedgerIncrementalTest, SummariesAfterTheFirstWalkNothing) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  HealthLedger ledger;
  constexpr int kAgents = 10'000;
  for (int i = 0; i < kAgents; ++i) {
    ledger.RecordApply(absl::StrCat("host-", i), Ring::kBroad, ApplyOutcome::kApplied,
                       t0 + absl::Seconds(i % 60));
  }
  absl::Time now = t0 + absl::Minutes(1);
  RingHealth h = ledger.Summarize(Ring::kBroad, now, kTimeout, t0);
  EXPECT_EQ(h.pending, kAgents);
  const HealthLedger::Work first = ledger.work();
  EXPECT_EQ(first.tally_rebuilds, 1);
  EXPECT_EQ(first.index_rebuilds, 1);

  int64_t changes = 0;
  for (int minute = 2; minute <= 30; ++minute) {
    now = t0 + absl::Minutes(minute);
    // Two thirds of the hosts keep sending heartbeats; one host crashes each minute.
    for (int i = 0; i < kAgents; ++i) {
      if (i % 3 != 0) {
        ledger.RecordHeartbeat(absl::StrCat("host-", i), Ring::kBroad, true, now);
        ++changes;
      }
    }
    ledger.RecordCrash(absl::StrCat("host-", 3 * minute + 1), Ring::kBroad, now, true);
    h = ledger.Summarize(Ring::kBroad, now, kTimeout, t0);
    EXPECT_EQ(Fields(h), Fields(ledger.SummarizeByScan(Ring::kBroad, now, kTimeout, t0)));
  }
  EXPECT_EQ(h.silent, (kAgents + 2) / 3);  // every third host, silent since its apply
  EXPECT_EQ(h.crashed, 29);
  EXPECT_EQ(ledger.work().tally_rebuilds, 1);
  EXPECT_EQ(ledger.work().scans, first.scans);
  // Each change leaves a stale entry in the index, which compacts once they outnumber the
  // agents: its walks add up to no more than one record per change, not one per period.
  const uint64_t walks = ledger.work().index_rebuilds - first.index_rebuilds;
  EXPECT_GE(walks, 1u);
  EXPECT_LE(walks * kAgents, static_cast<uint64_t>(changes));
}

// Agent-time past INT64_MAX microseconds (a million agents over about 107 days) is summed as
// the scan sums Durations, not cut short.
TEST(HealthLedgerIncrementalTest, ExposurePastInt64MicrosecondsEqualsTheScan) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  const absl::Time now = t0 + absl::Hours(24 * 365) * 100'000;
  HealthLedger ledger;
  for (int i = 0; i < 3; ++i) {
    const std::string id = absl::StrCat("a", i);
    ledger.RecordApply(id, Ring::kBroad, ApplyOutcome::kApplied, t0);
    ledger.RecordHeartbeat(id, Ring::kBroad, true, now);
    ledger.RecordControlHeartbeat(absl::StrCat("c", i), Ring::kBroad, t0 + absl::Seconds(1));
    ledger.RecordControlHeartbeat(absl::StrCat("c", i), Ring::kBroad, now);
  }
  const RingHealth h = ledger.Summarize(Ring::kBroad, now, kTimeout, t0);
  EXPECT_EQ(Fields(h), Fields(ledger.SummarizeByScan(Ring::kBroad, now, kTimeout, t0)));
  EXPECT_EQ(h.exposure, (now - t0) * 3);
  EXPECT_EQ(ledger.work().scans, 0u);
}

// Reports stamped after `now`, a window not begun and a negative timeout are judged by the scan:
// the kept tallies assume every event is in the past.
TEST(HealthLedgerIncrementalTest, AReportFromTheFutureIsJudgedByTheScan) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  HealthLedger ledger;
  ledger.RecordApply("a", Ring::kCanary, ApplyOutcome::kApplied, t0);
  ledger.RecordHeartbeat("a", Ring::kCanary, true, t0 + absl::Minutes(10));  // clock ahead
  const uint64_t scans = ledger.work().scans;
  const RingHealth h = ledger.Summarize(Ring::kCanary, t0 + absl::Minutes(5), kTimeout, t0);
  EXPECT_EQ(ledger.work().scans, scans + 1);
  EXPECT_EQ(h.healthy, 1);
  EXPECT_EQ(h.exposure, absl::Minutes(5));
  ledger.Summarize(Ring::kCanary, t0, kTimeout, t0);  // the window has not begun
  ledger.Summarize(Ring::kCanary, t0 + absl::Minutes(20), -absl::Minutes(1), t0);
  EXPECT_EQ(ledger.work().scans, scans + 3);
  // Once the clock passes the report, the tallies take over.
  ledger.Summarize(Ring::kCanary, t0 + absl::Minutes(11), kTimeout, t0);
  EXPECT_EQ(ledger.work().scans, scans + 3);
}

}  // namespace
}  // namespace ringwarden
