// The leader's in-memory evidence (HealthTracker) against the full read it
// replaces: after every period of random telemetry, relabelling, new stages and
// injected store failures, its ledgers judge every agent exactly as ledgers
// built from a full read would, while it re-reads only the agents that changed.
#include "server/core/health_tracker.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "tests/support/fake_store.h"
#include "tests/support/summary_fields.h"

namespace ringwarden {
namespace {

constexpr char kChannel[] = "rules.behavioral";
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);
constexpr absl::Duration kSilence = absl::Seconds(90);

class HealthTrackerTest : public ::testing::Test {
 protected:
  HealthTrackerTest() {
    rollout_.id = "ro-1";
    rollout_.channel = kChannel;
    rollout_.version = 2;
    rollout_.previous_version = 1;
    rollout_.created_at = kT0;
    rollout_.stage_started_at = kT0;
    rollout_.position.state = RolloutState::kCanary;
    rollout_.broad_fraction = 0.5;
    pins_ = {{"group", "frozen", kChannel, {PinPolicy::Kind::kPreviousCompleted, 0}}};
    // Short enough for hosts to prove themselves, and fall silent, within the test's periods.
    rollout_policy_.slow_start.initial_exposure = 3;
    rollout_policy_.slow_start.probation = absl::Seconds(60);
    for (Ring ring : kAllRings) {
      rollout_policy_.ForRing(ring).silence_timeout = kSilence;
    }
  }

  void Enroll(int agents) {
    TelemetryRows rows;
    for (int i = 0; i < agents; ++i) {
      std::map<std::string, std::string> labels;
      if (i % 7 == 3) {
        labels["group"] = "frozen";
      }
      rows.agents.push_back(AgentUpsert{Id(i), kAllRings[i % 3], labels, "host", kT0});
    }
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  }

  static std::string Id(int i) { return absl::StrCat("agent-", i); }

  // ExpectSameAsFullRead compares the tracked evidence and ledgers with those
  // built from a full read now.
  void ExpectSameAsFullRead(TrackedHealth& tracked) {
    absl::StatusOr<RolloutHealthRows> rows =
        store_.LoadRolloutHealth(HealthQueryFor(rollout_, rollout_.created_at, pins_));
    ASSERT_TRUE(rows.ok()) << rows.status();
    const EvidenceByAgent evidence = GroupByAgent(*rows);
    const HealthLedger stage = BuildLedger(evidence, rollout_, rollout_.stage_started_at, policy_);
    const HealthLedger whole = BuildLedger(evidence, rollout_, rollout_.created_at, policy_);
    HealthLedger& tracked_whole = tracker_.Whole(tracked, rollout_, policy_);
    const absl::Time now = clock_.Now();

    std::set<std::string> want_ids, got_ids;
    for (const auto& [id, e] : evidence) want_ids.insert(id);
    for (const auto& [id, e] : tracked.evidence) got_ids.insert(id);
    EXPECT_EQ(got_ids, want_ids);
    EXPECT_EQ(FirstApply(tracked.evidence, rollout_.stage_started_at),
              FirstApply(evidence, rollout_.stage_started_at));
    EXPECT_EQ(LastApply(tracked.evidence), LastApply(evidence));
    EXPECT_EQ(tracker_.FirstApply(tracked, rollout_.stage_started_at),
              FirstApply(evidence, rollout_.stage_started_at));
    EXPECT_EQ(tracker_.FirstApply(tracked, rollout_.created_at),
              FirstApply(evidence, rollout_.created_at));
    EXPECT_EQ(tracker_.LastApply(tracked), LastApply(evidence));
    EXPECT_EQ(Fields(tracker_.Exposure(tracked, rollout_, rollout_policy_, "seed", now)),
              Fields(ExposureFor(evidence, stage, rollout_, rollout_policy_, "seed", now)));
    EXPECT_EQ(tracked.stage.agent_count(), stage.agent_count());
    EXPECT_EQ(tracked_whole.agent_count(), whole.agent_count());
    for (Ring ring : kAllRings) {
      EXPECT_EQ(TargetedIn(tracked.evidence, ring), TargetedIn(evidence, ring));
      EXPECT_EQ(tracked.targeted[static_cast<int>(ring)], TargetedIn(evidence, ring));
      EXPECT_EQ(
          Fields(
              tracked.stage.Summarize(ring, now, kSilence, rollout_.stage_started_at, kAllRings)),
          Fields(stage.SummarizeByScan(ring, now, kSilence, rollout_.stage_started_at, kAllRings)))
          << RingName(ring);
      EXPECT_EQ(Fields(tracked_whole.Summarize(ring, now, kSilence, rollout_.created_at)),
                Fields(whole.SummarizeByScan(ring, now, kSilence, rollout_.created_at)))
          << RingName(ring);
    }
    for (int i = 0; i < kAgents + 2; ++i) {
      EXPECT_EQ(tracked.stage.Verdict(Id(i), now, kSilence), stage.Verdict(Id(i), now, kSilence))
          << Id(i);
      EXPECT_EQ(tracked_whole.Verdict(Id(i), now, kSilence), whole.Verdict(Id(i), now, kSilence))
          << Id(i);
    }
  }

  static constexpr int kAgents = 60;
  FakeClock clock_{kT0};
  testing::FakeStore store_{clock_};
  HealthTracker tracker_{store_, clock_};
  RolloutRecord rollout_;
  std::vector<LabelPin> pins_;
  HealthEventPolicy policy_;
  RolloutPolicy rollout_policy_;
};

TEST_F(HealthTrackerTest, JudgesExactlyAsAFullReadThroughRandomPeriods) {
  Enroll(kAgents);
  std::mt19937 rng(20261204);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const char* kinds[] = {"cpu_high", "boot_loop", "revert_failed", "unknown_kind"};
  const ApplyOutcome outcomes[] = {ApplyOutcome::kApplied, ApplyOutcome::kLoadCheckFailed,
                                   ApplyOutcome::kReverted, ApplyOutcome::kSignatureRejected};
  int compared = 0;
  for (int period = 0; period < 120; ++period) {
    clock_.Advance(absl::Seconds(1 + pick(20)));
    const absl::Time now = clock_.Now();
    // Reports may be late, or stamped before the stage began.
    auto when = [&] { return now - absl::Seconds(pick(40)); };
    TelemetryRows rows;
    for (int n = pick(12); n > 0; --n) {
      // Now and then an agent that never enrolled: its rows are dropped.
      const std::string id = Id(pick(kAgents + 2));
      const int64_t version = 1 + pick(3);
      switch (pick(5)) {
        case 0:
          rows.heartbeats.push_back(
              {id, {{kChannel, version}}, absl::StrCat("b", pick(2)), when()});
          break;
        case 1:
          rows.applies.push_back({id, kChannel, 2, outcomes[pick(4)], "", when()});
          break;
        case 2:
          rows.fetches.push_back({id, kChannel, 2, when()});
          break;
        case 3:
          rows.crashes.push_back({id, CrashKind::kProcessCrash, kChannel, version, "", when()});
          break;
        default:
          rows.health_events.push_back({id, kinds[pick(4)], kChannel, version, "", when()});
      }
    }
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
    if (pick(10) == 0) {  // an operator relabels a host: a pin may now hold it back, or free it
      const int i = pick(kAgents);
      std::map<std::string, std::string> labels;
      if (pick(2) == 0) {
        labels["group"] = "frozen";
      }
      ASSERT_TRUE(store_.LabelAgent(Id(i), labels, kAllRings[pick(3)], AuditRecord{}).ok());
    }
    if (pick(25) == 0) {  // the rollout moved to a new stage
      rollout_.stage_started_at = now;
      const RolloutState stages[] = {RolloutState::kCanary, RolloutState::kEarly,
                                     RolloutState::kBroad};
      rollout_.position.state = stages[pick(3)];
      rollout_.admitted_fraction = 0;
    }
    if (pick(4) == 0) {  // the budget admitted more of the ring
      rollout_.admitted_fraction = std::min(1.0, rollout_.admitted_fraction + pick(40) / 100.0);
    }
    if (pick(12) == 0) {  // the database fails the period's read
      store_.FailNext(pick(2) == 0 ? "read_health_changes" : "load_rollout_health",
                      absl::UnavailableError("connection lost"));
    }
    absl::Status synced = tracker_.Sync();
    if (!synced.ok()) {
      EXPECT_TRUE(absl::IsUnavailable(synced)) << synced;
      continue;  // the controller judges nothing this period
    }
    absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
    if (!tracked.ok()) {
      EXPECT_TRUE(absl::IsUnavailable(tracked.status())) << tracked.status();
      continue;
    }
    // An injected failure no call met this period must not fail the comparison's own read.
    store_.FailNext("load_rollout_health", absl::UnavailableError("unused"), 0);
    ExpectSameAsFullRead(**tracked);
    ++compared;
  }
  EXPECT_GT(compared, 80);
  // Loaded whole once per reload period (and again after an injected failure of a load), not
  // once per period.
  const int64_t reloads = (clock_.Now() - kT0) / HealthTrackerOptions().reload_every;
  EXPECT_GE(reloads, 1);
  EXPECT_LE(tracker_.stats().full_loads, 2 + reloads);
  EXPECT_GT(tracker_.stats().stage_rebuilds, 0);
  // The exposure view and the apply bounds are built once per stage or load, then kept.
  EXPECT_LE(tracker_.stats().wave_builds,
            tracker_.stats().full_loads + tracker_.stats().stage_rebuilds + 1);
  EXPECT_LT(tracker_.stats().apply_scans, compared);
}

// The first and last apply are kept as agents change, and found again when the agent that held
// one leaves the rollout's evidence (here held back by a pin), taking its rows with it.
TEST_F(HealthTrackerTest, AnApplyBoundHeldByAnAgentThatLeavesIsFoundAgain) {
  Enroll(10);
  TelemetryRows rows;
  rows.applies = {{Id(1), kChannel, 2, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(1)},
                  {Id(2), kChannel, 2, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(2)},
                  {Id(4), kChannel, 2, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(9)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(tracker_.Sync().ok());
  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  EXPECT_EQ(tracker_.FirstApply(**tracked, kT0), kT0 + absl::Seconds(1));
  EXPECT_EQ(tracker_.LastApply(**tracked), kT0 + absl::Seconds(9));
  const int64_t scans = tracker_.stats().apply_scans;

  // A later apply moves the last one without a scan; an earlier one of a new agent the first.
  rows = TelemetryRows{};
  rows.applies = {{Id(5), kChannel, 2, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(10)},
                  {Id(6), kChannel, 2, ApplyOutcome::kApplied, "", kT0 + absl::Milliseconds(500)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());
  tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  EXPECT_EQ(tracker_.FirstApply(**tracked, kT0), kT0 + absl::Milliseconds(500));
  EXPECT_EQ(tracker_.LastApply(**tracked), kT0 + absl::Seconds(10));
  EXPECT_EQ(tracker_.stats().apply_scans, scans);

  // The pin on group=frozen holds agents 6 and 5 back: their rows leave the evidence.
  for (int i : {5, 6}) {
    ASSERT_TRUE(
        store_.LabelAgent(Id(i), {{"group", "frozen"}}, kAllRings[i % 3], AuditRecord{}).ok());
  }
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());
  tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  EXPECT_EQ(tracker_.FirstApply(**tracked, kT0), kT0 + absl::Seconds(1));
  EXPECT_EQ(tracker_.LastApply(**tracked), kT0 + absl::Seconds(9));
  EXPECT_EQ(tracker_.stats().apply_scans, scans + 2);
}

// A leader with no active rollout reads only the feed's horizon: a fleet at rest sends
// heartbeats that nothing needs. The first rollout tracked afterwards is loaded whole.
TEST_F(HealthTrackerTest, WithNothingTrackedThePeriodReadsNoChanges) {
  Enroll(50);
  ASSERT_TRUE(tracker_.Sync().ok());
  TelemetryRows rows;
  for (int i = 0; i < 50; ++i) {
    rows.heartbeats.push_back({Id(i), {{kChannel, 1}}, "b", kT0 + absl::Seconds(1)});
  }
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());
  EXPECT_EQ(tracker_.stats().changes_read, 0);

  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  EXPECT_EQ(tracker_.stats().full_loads, 1);
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());
  EXPECT_GT(tracker_.stats().changes_read, 0);
  tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  ExpectSameAsFullRead(**tracked);
}

TEST_F(HealthTrackerTest, RereadsOnlyTheAgentsThatChanged) {
  Enroll(1000);
  ASSERT_TRUE(tracker_.Sync().ok());
  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  const int loads = store_.Calls("load_rollout_health");

  TelemetryRows rows;
  rows.heartbeats = {{Id(1), {{kChannel, 2}}, "b", kT0 + absl::Seconds(5)},
                     {Id(2), {{kChannel, 1}}, "b", kT0 + absl::Seconds(5)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());
  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());

  EXPECT_EQ(tracker_.stats().agents_reread, 2);
  EXPECT_EQ(tracker_.stats().full_loads, 1);
  EXPECT_EQ(store_.Calls("load_rollout_health"), loads + 1);
  EXPECT_EQ((*tracked)->evidence.at(Id(1)).agent.version, 2);

  // A period with no change reads nothing but the feed.
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());
  EXPECT_EQ(store_.Calls("load_rollout_health"), loads + 1);
  ExpectSameAsFullRead(**tracked);

  // Heartbeats that move nothing but last_seen are applied from the feed's values: no re-read.
  const int before = store_.Calls("load_rollout_health");
  rows.heartbeats = {{Id(1), {{kChannel, 2}}, "b", kT0 + absl::Seconds(9)},
                     {Id(2), {{kChannel, 1}}, "b2", kT0 + absl::Seconds(9)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());
  EXPECT_EQ(store_.Calls("load_rollout_health"), before);
  EXPECT_EQ(tracker_.stats().agents_reread, 2);
  EXPECT_EQ(tracker_.stats().heartbeats_applied, 2);
  EXPECT_EQ((*tracked)->evidence.at(Id(2)).agent.last_seen, kT0 + absl::Seconds(9));
  ExpectSameAsFullRead(**tracked);
}

TEST_F(HealthTrackerTest, ANewStageIsRebuiltFromMemory) {
  Enroll(30);
  TelemetryRows rows;
  rows.applies = {{Id(0), kChannel, 2, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(1)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  ASSERT_TRUE(tracker_.Sync().ok());
  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  const int loads = store_.Calls("load_rollout_health");

  clock_.Advance(absl::Seconds(10));
  rollout_.stage_started_at = clock_.Now();
  ASSERT_TRUE(tracker_.Sync().ok());
  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());

  EXPECT_EQ(store_.Calls("load_rollout_health"), loads);
  EXPECT_EQ(tracker_.stats().stage_rebuilds, 1);
  EXPECT_EQ((*tracked)->window_start, rollout_.stage_started_at);
  // The apply came before the new stage: not treated evidence of it.
  EXPECT_EQ((*tracked)->stage.Verdict(Id(0), clock_.Now(), kSilence),
            HealthLedger::AgentVerdict::kUntried);
  ExpectSameAsFullRead(**tracked);
}

TEST_F(HealthTrackerTest, ChangedPinsReloadTheRollout) {
  Enroll(30);
  ASSERT_TRUE(tracker_.Sync().ok());
  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  EXPECT_EQ(tracker_.stats().full_loads, 1);

  pins_.clear();  // the frozen group is released
  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  EXPECT_EQ(tracker_.stats().full_loads, 2);
  EXPECT_EQ((*tracked)->evidence.size(), 30u);
  ExpectSameAsFullRead(**tracked);

  // A pin of another channel, or one that does not hold back, changes nothing.
  pins_ = {{"group", "frozen", "rules.network", {PinPolicy::Kind::kPreviousCompleted, 0}},
           {"group", "fast", kChannel, {PinPolicy::Kind::kLatest, 0}}};
  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  EXPECT_EQ(tracker_.stats().full_loads, 2);
}

TEST_F(HealthTrackerTest, AFeedNotReadForTooLongIsNotTrusted) {
  Enroll(10);
  ASSERT_TRUE(tracker_.Sync().ok());
  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  clock_.Advance(absl::Minutes(3));  // the leader stalled; the feed may be trimmed since
  ASSERT_TRUE(tracker_.Sync().ok());
  EXPECT_EQ(tracker_.tracked_rollouts(), 0u);
  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  EXPECT_EQ(tracker_.stats().full_loads, 2);
  ExpectSameAsFullRead(**tracked);
}

TEST_F(HealthTrackerTest, EverythingIsLoadedAgainEveryReloadPeriod) {
  Enroll(10);
  ASSERT_TRUE(tracker_.Sync().ok());
  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  for (int i = 0; i < 11; ++i) {  // 9 min 10 s of periods: no reload yet
    clock_.Advance(absl::Seconds(50));
    ASSERT_TRUE(tracker_.Sync().ok());
    ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  }
  EXPECT_EQ(tracker_.stats().full_loads, 1);
  clock_.Advance(absl::Seconds(50));  // 10 min since the load
  ASSERT_TRUE(tracker_.Sync().ok());
  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  EXPECT_EQ(tracker_.stats().full_loads, 2);
  ExpectSameAsFullRead(**tracked);
}

TEST_F(HealthTrackerTest, AFailedReadLosesNoChange) {
  Enroll(10);
  ASSERT_TRUE(tracker_.Sync().ok());
  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  TelemetryRows rows;
  rows.applies = {{Id(4), kChannel, 2, ApplyOutcome::kLoadCheckFailed, "", kT0}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());

  store_.FailNext("load_rollout_health", absl::UnavailableError("down"));
  EXPECT_TRUE(absl::IsUnavailable(tracker_.Sync()));
  store_.FailNext("read_health_changes", absl::UnavailableError("down"));
  EXPECT_TRUE(absl::IsUnavailable(tracker_.Sync()));
  ASSERT_TRUE(tracker_.Sync().ok());

  EXPECT_EQ((*tracked)->stage.Verdict(Id(4), clock_.Now(), kSilence),
            HealthLedger::AgentVerdict::kFailed);
  ExpectSameAsFullRead(**tracked);
}

TEST_F(HealthTrackerTest,
       AHorizonHeldOpenIsTimedFromTheFirstReadThatFoundItAndItsWritesArriveAfter) {
  Enroll(10);
  ASSERT_TRUE(tracker_.Sync().ok());
  absl::StatusOr<TrackedHealth*> tracked = tracker_.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  EXPECT_EQ(tracker_.held_back(), absl::ZeroDuration());

  // Under steady short writes a read nearly always finds one running: the horizon moves, so
  // nothing is held back.
  store_.BusyHealthChanges(true);
  for (int i = 0; i < 4; ++i) {
    TelemetryRows beat;
    beat.heartbeats = {{Id(i), {{kChannel, 1}}, "boot", kT0 + absl::Seconds(i)}};
    ASSERT_TRUE(store_.WriteTelemetry(beat).ok());
    clock_.Advance(absl::Seconds(5));
    ASSERT_TRUE(tracker_.Sync().ok());
    EXPECT_EQ(tracker_.held_back(), absl::ZeroDuration()) << i;
  }
  store_.BusyHealthChanges(false);
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());  // none running: the horizon is free
  EXPECT_EQ(tracker_.held_back(), absl::ZeroDuration());

  store_.HoldHealthChanges(true);  // a transaction left open
  TelemetryRows rows;
  rows.applies = {{Id(4), kChannel, 2, ApplyOutcome::kLoadCheckFailed, "", kT0}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(absl::Seconds(5));
    ASSERT_TRUE(tracker_.Sync().ok());
    EXPECT_EQ(tracker_.held_back(), absl::Seconds(5 * i)) << i;
  }
  // The write waits behind the held horizon: the evidence does not have it yet.
  EXPECT_EQ((*tracked)->stage.Verdict(Id(4), clock_.Now(), kSilence),
            HealthLedger::AgentVerdict::kUntried);

  store_.HoldHealthChanges(false);
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(tracker_.Sync().ok());
  EXPECT_EQ(tracker_.held_back(), absl::ZeroDuration());
  EXPECT_EQ((*tracked)->stage.Verdict(Id(4), clock_.Now(), kSilence),
            HealthLedger::AgentVerdict::kFailed);
  ExpectSameAsFullRead(**tracked);

  // Held again, across the 10-minute reload (which reads at the same horizon) and a failed
  // read: still timed from the first read that found it.
  store_.HoldHealthChanges(true);
  for (int i = 0; i < 13; ++i) {
    clock_.Advance(absl::Seconds(50));
    ASSERT_TRUE(tracker_.Sync().ok());
    ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  }
  EXPECT_EQ(tracker_.stats().full_loads, 2);
  EXPECT_EQ(tracker_.held_back(), absl::Seconds(50 * 12));
  store_.FailNext("read_health_changes", absl::UnavailableError("down"));
  clock_.Advance(absl::Seconds(50));
  EXPECT_FALSE(tracker_.Sync().ok());
  EXPECT_EQ(tracker_.held_back(), absl::Seconds(50 * 12));
}

TEST_F(HealthTrackerTest, RefusesToTrackBeforeReadingTheFeedAndForgetsOnClear) {
  Enroll(5);
  absl::StatusOr<TrackedHealth*> early = tracker_.Track(rollout_, pins_, policy_);
  EXPECT_TRUE(absl::IsFailedPrecondition(early.status())) << early.status();

  ASSERT_TRUE(tracker_.Sync().ok());
  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  tracker_.Retain({"ro-1"});
  EXPECT_EQ(tracker_.tracked_rollouts(), 1u);
  tracker_.Retain({"ro-2"});
  EXPECT_EQ(tracker_.tracked_rollouts(), 0u);

  ASSERT_TRUE(tracker_.Track(rollout_, pins_, policy_).ok());
  tracker_.Clear();  // leadership lost
  EXPECT_EQ(tracker_.tracked_rollouts(), 0u);
  EXPECT_TRUE(absl::IsFailedPrecondition(tracker_.Track(rollout_, pins_, policy_).status()));
}

TEST_F(HealthTrackerTest, ManyChangedAgentsAreReadInBoundedChunks) {
  HealthTrackerOptions options;
  options.max_agents_per_read = 7;
  HealthTracker small(store_, clock_, options);
  Enroll(50);
  ASSERT_TRUE(small.Sync().ok());
  ASSERT_TRUE(small.Track(rollout_, pins_, policy_).ok());
  const int loads = store_.Calls("load_rollout_health");
  TelemetryRows rows;
  for (int i = 0; i < 50; ++i) {
    rows.heartbeats.push_back({Id(i), {{kChannel, 2}}, "b", kT0 + absl::Seconds(i)});
  }
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  ASSERT_TRUE(small.Sync().ok());
  EXPECT_EQ(store_.Calls("load_rollout_health") - loads, 8);  // ceil(50 / 7)
  EXPECT_EQ(small.stats().agents_reread, 50);
  absl::StatusOr<TrackedHealth*> tracked = small.Track(rollout_, pins_, policy_);
  ASSERT_TRUE(tracked.ok());
  int on_new = 0;
  for (const auto& [id, e] : (*tracked)->evidence) {
    on_new += e.agent.version == 2 ? 1 : 0;
  }
  EXPECT_EQ(on_new, 50 - 7);  // all but the held-back group
}

}  // namespace
}  // namespace ringwarden
