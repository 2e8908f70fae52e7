#include "server/core/health_feed.h"

#include <gtest/gtest.h>

namespace ringwarden {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

RolloutRecord Rollout() {
  RolloutRecord r;
  r.id = "ro-1";
  r.channel = "rules.behavioral";
  r.version = 2;
  r.previous_version = 1;
  return r;
}

AgentHealthRow Agent(std::string id, Ring ring, int64_t version, absl::Time since,
                     absl::Time last_seen) {
  return AgentHealthRow{std::move(id), ring, version, since, last_seen, std::nullopt};
}

TEST(HealthFeedTest, DownloadThenSilenceIsASuspectedCrash) {
  RolloutHealthRows rows;
  // a-1 downloaded v2 and never spoke again (a boot loop reports nothing).
  rows.agents.push_back(Agent("a-1", Ring::kCanary, 1, kT0, kT0 + absl::Seconds(1)));
  rows.fetches.push_back({"a-1", "rules.behavioral", 2, kT0 + absl::Seconds(2)});
  // a-2 applied and keeps heartbeating on v2.
  rows.agents.push_back(
      Agent("a-2", Ring::kCanary, 2, kT0 + absl::Seconds(3), kT0 + absl::Seconds(60)));
  rows.applies.push_back(
      {"a-2", "rules.behavioral", 2, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(2)});
  // c-1 is control on v1.
  rows.agents.push_back(Agent("c-1", Ring::kBroad, 1, kT0, kT0 + absl::Seconds(60)));
  HealthLedger ledger = BuildLedger(rows, Rollout(), kT0, HealthEventPolicy{});
  RingHealth h = ledger.Summarize(Ring::kCanary, kT0 + absl::Seconds(61), absl::Seconds(30), kT0,
                                  {Ring::kCanary, Ring::kEarly, Ring::kBroad});
  EXPECT_EQ(h.attempted, 2);
  EXPECT_EQ(h.silent, 1);
  EXPECT_EQ(h.healthy, 1);
  // a-1 was control on v1 until it downloaded v2; c-1 throughout.
  EXPECT_EQ(h.control_agents, 2);
  EXPECT_EQ(h.control_failed, 0);
}

TEST(HealthFeedTest, HealthEventsWeighByThePolicyAndCrashKindsStayApart) {
  const std::string ch = "rules.behavioral";
  RolloutHealthRows rows;
  for (const char* id : {"hot", "cool", "proc", "boot", "ctl"}) {
    const int64_t version = std::string(id) == "ctl" ? 1 : 2;
    rows.agents.push_back(Agent(id, Ring::kCanary, version, kT0, kT0 + absl::Seconds(60)));
    if (version == 2) {
      rows.applies.push_back({id, ch, 2, ApplyOutcome::kApplied, "", kT0});
    }
  }
  // Two load_check_slow (weight 0.5 each) fail "hot"; cpu_high is not weighed by this policy.
  rows.health_events.push_back({"hot", "load_check_slow", ch, 2, "", kT0 + absl::Seconds(5)});
  rows.health_events.push_back({"hot", "load_check_slow", ch, 2, "", kT0 + absl::Seconds(6)});
  rows.health_events.push_back({"cool", "cpu_high", ch, 2, "", kT0 + absl::Seconds(5)});
  rows.health_events.push_back({"cool", "load_check_slow", ch, 2, "", kT0 + absl::Seconds(5)});
  // The same events on the previous version fail the control host alike.
  rows.health_events.push_back({"ctl", "load_check_slow", ch, 1, "", kT0 + absl::Seconds(5)});
  rows.health_events.push_back({"ctl", "load_check_slow", ch, 1, "", kT0 + absl::Seconds(7)});
  // Events from before the window do not count.
  rows.health_events.push_back({"cool", "load_check_slow", ch, 2, "", kT0 - absl::Seconds(1)});
  rows.crashes.push_back({"proc", CrashKind::kProcessCrash, ch, 2, "", kT0 + absl::Seconds(9)});
  rows.crashes.push_back({"boot", CrashKind::kUncleanShutdown, ch, 2, "", kT0 + absl::Seconds(9)});
  HealthEventPolicy weights;
  weights.weights = {{"load_check_slow", 0.5}};
  weights.failure_threshold = 1.0;
  HealthLedger ledger = BuildLedger(rows, Rollout(), kT0, weights);
  RingHealth h = ledger.Summarize(Ring::kCanary, kT0 + absl::Seconds(61), absl::Minutes(5), kT0);
  EXPECT_EQ(h.attempted, 4);
  EXPECT_EQ(h.unhealthy, 1);
  EXPECT_EQ(h.healthy, 1);
  EXPECT_EQ(h.crashed, 2);
  EXPECT_EQ(h.process_crashed, 1);
  EXPECT_EQ(h.unclean_shutdowns, 1);
  EXPECT_EQ(h.health_events, 4);
  EXPECT_EQ(h.failed, 3);
  EXPECT_EQ(h.control_agents, 1);
  EXPECT_EQ(h.control_failed, 1);

  // With no weights the same events are stored evidence and nothing more.
  HealthEventPolicy none;
  none.weights.clear();
  RingHealth quiet = BuildLedger(rows, Rollout(), kT0, none)
                         .Summarize(Ring::kCanary, kT0 + absl::Seconds(61), absl::Minutes(5), kT0);
  EXPECT_EQ(quiet.unhealthy, 0);
  EXPECT_EQ(quiet.failed, 2);
  EXPECT_EQ(quiet.control_failed, 0);
}

TEST(HealthFeedTest, HealthEventsCountInTimeOrderOncePerWindowAndProveLife) {
  const std::string ch = "rules.behavioral";
  RolloutHealthRows rows;
  // "late" applied at kT0 and then only reported events (no heartbeat); rows come newest first.
  rows.agents.push_back(Agent("late", Ring::kCanary, 2, kT0, kT0 + absl::Seconds(1)));
  rows.applies.push_back({"late", ch, 2, ApplyOutcome::kApplied, "", kT0});
  for (int i = 3; i >= 0; --i) {
    rows.health_events.push_back({"late", "cpu_high", ch, 2, "", kT0 + absl::Minutes(10 + i)});
  }
  // "old" took v2 before the window (an earlier wave): its events in the window do not count.
  rows.agents.push_back(
      Agent("old", Ring::kCanary, 2, kT0 - absl::Hours(1), kT0 + absl::Minutes(14)));
  rows.health_events.push_back({"old", "boot_loop", ch, 2, "", kT0 + absl::Minutes(5)});
  // A weight that is not exact in binary still reaches an equal threshold.
  rows.agents.push_back(Agent("odd", Ring::kCanary, 2, kT0, kT0 + absl::Minutes(14)));
  rows.applies.push_back({"odd", ch, 2, ApplyOutcome::kApplied, "", kT0});
  rows.health_events.push_back({"odd", "memory_high", ch, 2, "", kT0 + absl::Minutes(1)});
  HealthEventPolicy weights;
  weights.weights = {{"cpu_high", 0.25}, {"boot_loop", 1}, {"memory_high", 0.7}};
  weights.failure_threshold = 0.7;
  HealthLedger ledger = BuildLedger(rows, Rollout(), kT0, weights);
  const absl::Time now = kT0 + absl::Minutes(14);
  RingHealth h = ledger.Summarize(Ring::kCanary, now, absl::Minutes(5), kT0);
  // late: 0.75 >= 0.7 at its third event (t0+12m), not at the first row read (t0+13m).
  EXPECT_EQ(h.attempted, 2);  // "old" is judged in its own window, not this one
  EXPECT_EQ(h.unhealthy, 2);
  EXPECT_EQ(h.silent, 0);  // events are signs of life
  EXPECT_EQ(h.exposure, absl::Minutes(12) + absl::Minutes(1));
  EXPECT_EQ(ledger.Verdict("old", now, absl::Minutes(5)), HealthLedger::AgentVerdict::kUntried);
}

TEST(HealthFeedTest, TheBootLoopBreakersRevertIsAFailureOfTheVersionItLeft) {
  const std::string ch = "rules.behavioral";
  RolloutHealthRows rows;
  // Crashed on load three times, never heartbeated on v2, and the breaker put v1 back: only the
  // download and the agent's REVERTED report name v2 (the crash reports were lost).
  rows.agents.push_back(Agent("looper", Ring::kCanary, 1, kT0, kT0 + absl::Seconds(60)));
  rows.fetches.push_back({"looper", ch, 2, kT0 + absl::Seconds(1)});
  rows.applies.push_back({"looper", ch, 2, ApplyOutcome::kReverted,
                          "boot-loop breaker: boot marker found 3 times", kT0 + absl::Seconds(40)});
  rows.agents.push_back(Agent("fine", Ring::kCanary, 2, kT0, kT0 + absl::Seconds(60)));
  rows.applies.push_back({"fine", ch, 2, ApplyOutcome::kApplied, "", kT0});
  HealthLedger ledger = BuildLedger(rows, Rollout(), kT0, HealthEventPolicy{});
  RingHealth h = ledger.Summarize(Ring::kCanary, kT0 + absl::Seconds(61), absl::Minutes(5), kT0);
  EXPECT_EQ(h.attempted, 2);
  EXPECT_EQ(h.reverted, 1);
  EXPECT_EQ(h.failed, 1);
  EXPECT_EQ(h.healthy, 1);
  EXPECT_EQ(ledger.Verdict("looper", kT0 + absl::Seconds(61), absl::Minutes(5)),
            HealthLedger::AgentVerdict::kFailed);
}

TEST(HealthFeedTest, ReportedOutcomesWinOverDownloads) {
  RolloutHealthRows rows;
  rows.agents.push_back(Agent("a-1", Ring::kCanary, 1, kT0, kT0 + absl::Seconds(60)));
  rows.fetches.push_back({"a-1", "rules.behavioral", 2, kT0 + absl::Seconds(1)});
  rows.applies.push_back(
      {"a-1", "rules.behavioral", 2, ApplyOutcome::kSignatureRejected, "", kT0 + absl::Seconds(1)});
  HealthLedger ledger = BuildLedger(rows, Rollout(), kT0, HealthEventPolicy{});
  RingHealth h = ledger.Summarize(Ring::kCanary, kT0 + absl::Seconds(61), absl::Seconds(30), kT0,
                                  {Ring::kCanary});
  EXPECT_EQ(h.attempted, 0);  // refused before running: not a trial
  EXPECT_EQ(h.rejected, 1);
  EXPECT_EQ(h.failed, 0);
}

TEST(HealthFeedTest, CrashesCountOnTheVersionInEffect) {
  RolloutHealthRows rows;
  rows.agents.push_back(
      Agent("a-1", Ring::kCanary, 2, kT0 + absl::Seconds(1), kT0 + absl::Seconds(50)));
  rows.applies.push_back(
      {"a-1", "rules.behavioral", 2, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(1)});
  rows.crashes.push_back(
      {"a-1", CrashKind::kUncleanShutdown, "rules.behavioral", 2, "", kT0 + absl::Seconds(20)});
  rows.agents.push_back(Agent("c-1", Ring::kEarly, 1, kT0, kT0 + absl::Seconds(50)));
  rows.crashes.push_back(
      {"c-1", CrashKind::kProcessCrash, "rules.behavioral", 1, "", kT0 + absl::Seconds(10)});
  HealthLedger ledger = BuildLedger(rows, Rollout(), kT0, HealthEventPolicy{});
  RingHealth h = ledger.Summarize(Ring::kCanary, kT0 + absl::Seconds(51), absl::Seconds(30), kT0,
                                  {Ring::kCanary, Ring::kEarly});
  EXPECT_EQ(h.crashed, 1);
  EXPECT_EQ(h.control_failed, 1);
}

TEST(HealthFeedTest, EvidenceBeforeTheWindowIsIgnored) {
  // A resumed stage starts a new window: the old silence does not count again.
  RolloutHealthRows rows;
  rows.agents.push_back(Agent("a-1", Ring::kCanary, 1, kT0, kT0 + absl::Seconds(1)));
  rows.fetches.push_back({"a-1", "rules.behavioral", 2, kT0 + absl::Seconds(2)});
  const absl::Time window = kT0 + absl::Minutes(10);
  HealthLedger ledger = BuildLedger(rows, Rollout(), window, HealthEventPolicy{});
  RingHealth h = ledger.Summarize(Ring::kCanary, window + absl::Minutes(5), absl::Seconds(30),
                                  window, {Ring::kCanary});
  EXPECT_EQ(h.attempted, 0);
  EXPECT_EQ(h.silent, 0);
}

TEST(HealthFeedTest, UnknownAgentsAreIgnored) {
  RolloutHealthRows rows;
  rows.fetches.push_back({"ghost", "rules.behavioral", 2, kT0});
  rows.applies.push_back({"ghost", "rules.behavioral", 2, ApplyOutcome::kApplyFailed, "", kT0});
  rows.crashes.push_back({"ghost", CrashKind::kProcessCrash, "rules.behavioral", 2, "", kT0});
  HealthLedger ledger = BuildLedger(rows, Rollout(), kT0, HealthEventPolicy{});
  EXPECT_EQ(ledger.agent_count(), 0u);
}

}  // namespace
}  // namespace ringwarden
