// The rollout role against a real PostgreSQL: the stale-revision refusal and
// what is (not) retried, plan side effects, decisions in ring order, and the
// active listing against every final state.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/postgres/pg_pool_internal.h"
#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// RecordingObserver keeps every reported operation and its code.
class RecordingObserver : public StoreObserver {
 public:
  void OnOperation(const char* operation, absl::Duration, absl::StatusCode code) override {
    absl::MutexLock lock(&mu_);
    operations_.emplace_back(operation, code);
  }
  std::vector<std::pair<std::string, absl::StatusCode>> operations() {
    absl::MutexLock lock(&mu_);
    return operations_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<std::string, absl::StatusCode>> operations_ ABSL_GUARDED_BY(mu_);
};

class PgRolloutsTest : public StoreFixture {
 protected:
  // CountUpdateAttempts installs a statement-level trigger that counts every
  // UPDATE of rollouts, including those that affect no row, in a sequence
  // (sequences ignore rollbacks, so attempts that roll back count too), and
  // fails the first `fail_first` of them with `sqlstate`.
  void CountUpdateAttempts(int fail_first = 0, const std::string& sqlstate = "40001") {
    db_.Exec(absl::StrCat(R"sql(
CREATE SEQUENCE rollout_update_attempts;
CREATE FUNCTION count_rollout_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('rollout_update_attempts') <= )sql",
                          fail_first, R"sql( THEN
    RAISE EXCEPTION 'injected failure' USING ERRCODE = ')sql",
                          sqlstate, R"sql(';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER count_rollout_update BEFORE UPDATE ON rollouts
  FOR EACH STATEMENT EXECUTE FUNCTION count_rollout_update();)sql"));
  }

  int UpdateAttempts() {
    return std::stoi(db_.Query(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM rollout_update_attempts"));
  }

  RolloutChange Change(const std::string& id, int64_t expected_revision, RolloutState to,
                       std::string action) {
    RolloutChange change;
    change.rollout_id = id;
    change.expected_revision = expected_revision;
    change.plan.to.state = to;
    change.plan.audit_action = action;
    change.audit = Audit(std::move(action));
    return change;
  }

  std::string AuditCount(const std::string& action) {
    return db_.Query(absl::StrCat("SELECT count(*) FROM audit_log WHERE action = '", action, "'"));
  }

  RecordingObserver observer_;
};

TEST_F(PgRolloutsTest, StaleRevisionIsAbortedOnceAndNeverRetried) {
  StartRollout("ro-1", {RolloutState::kBroad, std::nullopt});
  CountUpdateAttempts();
  store_.SetObserver(&observer_);

  RolloutChange complete =
      Change("ro-1", /*expected_revision=*/7, RolloutState::kCompleted, "rollout.promote");
  complete.plan.mark_completed = true;
  const absl::Status status = store_.ApplyRolloutChange(complete);

  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_THAT(status.message(),
              HasSubstr("rollout ro-1 changed concurrently (expected revision 7)"));
  EXPECT_EQ(UpdateAttempts(), 1);  // refused once, not retried
  EXPECT_THAT(observer_.operations(),
              ElementsAre(Pair("change_rollout", absl::StatusCode::kAborted)));
  auto rollout = store_.GetRollout("ro-1");
  ASSERT_TRUE(rollout.ok()) << rollout.status();
  EXPECT_EQ(rollout->revision, 1);
  EXPECT_EQ(rollout->position.state, RolloutState::kBroad);
  EXPECT_EQ(db_.Query("SELECT completed_at IS NULL FROM content WHERE version = 1"), "t");
  EXPECT_EQ(AuditCount("rollout.promote"), "0");
}

TEST_F(PgRolloutsTest, SerializationFailureIsRetriedAndCommitsOnce) {
  StartRollout("ro-1", {RolloutState::kCanary, std::nullopt});
  CountUpdateAttempts(/*fail_first=*/1, "40001");
  store_.SetObserver(&observer_);

  const absl::Status status =
      store_.ApplyRolloutChange(Change("ro-1", 1, RolloutState::kEarly, "rollout.promote"));

  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(UpdateAttempts(), 2);
  EXPECT_THAT(observer_.operations(), ElementsAre(Pair("change_rollout", absl::StatusCode::kOk)));
  auto rollout = store_.GetRollout("ro-1");
  ASSERT_TRUE(rollout.ok()) << rollout.status();
  EXPECT_EQ(rollout->revision, 2);
  EXPECT_EQ(rollout->position.state, RolloutState::kEarly);
  EXPECT_EQ(AuditCount("rollout.promote"), "1");
}

TEST_F(PgRolloutsTest, PersistentAbortsAreUnavailableAfterBoundedRetries) {
  int channel = 0;
  for (const char* sqlstate : {"40001", "40P01"}) {  // serialization failure, deadlock
    SCOPED_TRACE(sqlstate);
    const std::string id = absl::StrCat("ro-", sqlstate);
    StartRollout(id, {RolloutState::kCanary, std::nullopt}, 1, absl::StrCat("ch.", channel++));
    db_.Exec(
        "DROP TRIGGER IF EXISTS count_rollout_update ON rollouts; "
        "DROP FUNCTION IF EXISTS count_rollout_update; "
        "DROP SEQUENCE IF EXISTS rollout_update_attempts");
    CountUpdateAttempts(/*fail_first=*/1000, sqlstate);

    const absl::Status status =
        store_.ApplyRolloutChange(Change(id, 1, RolloutState::kEarly, "rollout.promote"));

    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_THAT(status.message(), HasSubstr("database kept aborting the transaction; retry later"));
    EXPECT_EQ(UpdateAttempts(), RetryPolicy().max_attempts);
    auto rollout = store_.GetRollout(id);
    ASSERT_TRUE(rollout.ok()) << rollout.status();
    EXPECT_EQ(rollout->revision, 1);
  }
  EXPECT_EQ(AuditCount("rollout.promote"), "0");
}

TEST_F(PgRolloutsTest, PlanSideEffectsCommitWithTheChange) {
  StartRollout("ro-complete", {RolloutState::kBroad, std::nullopt}, 1, "ch.complete");
  StartRollout("ro-rollback", {RolloutState::kCanary, std::nullopt}, 1, "ch.rollback");
  StartRollout("ro-wave", {RolloutState::kEarly, std::nullopt}, 1, "ch.wave");
  auto wave_before = store_.GetRollout("ro-wave");
  ASSERT_TRUE(wave_before.ok());

  RolloutChange complete = Change("ro-complete", 1, RolloutState::kCompleted, "rollout.promote");
  complete.plan.mark_completed = true;
  ASSERT_TRUE(store_.ApplyRolloutChange(complete).ok());
  RolloutChange rollback = Change("ro-rollback", 1, RolloutState::kRolledBack, "rollout.rollback");
  rollback.plan.revoke_version = true;
  ASSERT_TRUE(store_.ApplyRolloutChange(rollback).ok());
  RolloutChange wave = Change("ro-wave", 1, RolloutState::kBroad, "rollout.promote");
  wave.plan.stage_changed = true;
  wave.plan.broad_wave = 1;
  wave.plan.broad_fraction = 0.5;
  ASSERT_TRUE(store_.ApplyRolloutChange(wave).ok());

  EXPECT_EQ(db_.Query("SELECT completed_at IS NOT NULL AND revoked_at IS NULL FROM content "
                      "WHERE channel = 'ch.complete'"),
            "t");
  EXPECT_EQ(db_.Query("SELECT revoked_at IS NOT NULL AND completed_at IS NULL FROM content "
                      "WHERE channel = 'ch.rollback'"),
            "t");
  auto after = store_.GetRollout("ro-wave");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->revision, 2);
  EXPECT_EQ(after->broad_wave, 1);
  EXPECT_DOUBLE_EQ(after->broad_fraction, 0.5);
  EXPECT_GT(after->stage_started_at, wave_before->stage_started_at);
  EXPECT_EQ(AuditCount("rollout.promote"), "2");
  EXPECT_EQ(AuditCount("rollout.rollback"), "1");
}

TEST_F(PgRolloutsTest, ExposureGrowsWithoutARevisionAndRestartsWithTheStage) {
  StartRollout("ro-1", {RolloutState::kCanary, std::nullopt});
  auto before = store_.GetRollout("ro-1");
  ASSERT_TRUE(before.ok());
  EXPECT_DOUBLE_EQ(before->admitted_fraction, 1.0);  // the column default: a whole ring

  RolloutChange restart = Change("ro-1", 1, RolloutState::kEarly, "rollout.promote");
  restart.plan.stage_changed = true;
  restart.plan.admitted_fraction = 0;
  ASSERT_TRUE(store_.ApplyRolloutChange(restart).ok());
  auto r = store_.GetRollout("ro-1");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->admitted_fraction, 0);
  EXPECT_EQ(r->admitted_hosts, 0);

  ASSERT_TRUE(store_.UpdateExposure("ro-1", 2, 0.125, 10).ok());
  ASSERT_TRUE(store_.UpdateExposure("ro-1", 2, 0.0625, 12).ok());  // never shrinks
  r = store_.GetRollout("ro-1");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->admitted_fraction, 0.125);
  EXPECT_EQ(r->admitted_hosts, 12);
  EXPECT_EQ(r->revision, 2);

  const absl::Status stale = store_.UpdateExposure("ro-1", 1, 0.5, 40);
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(stale.message(),
            "rollout ro-1 changed concurrently (expected revision 1); re-read and retry");
  EXPECT_FALSE(store_.UpdateExposure("ro-1", 2, 1.5, 40).ok());  // the CHECK constraint

  RolloutChange wave = Change("ro-1", 2, RolloutState::kEarly, "rollout.promote");
  ASSERT_TRUE(store_.ApplyRolloutChange(wave).ok());  // kKeepWave keeps the budget
  r = store_.GetRollout("ro-1");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->admitted_fraction, 0.125);
}

TEST_F(PgRolloutsTest, AFailedAuditEntryCommitsNoSideEffect) {
  StartRollout("ro-1", {RolloutState::kBroad, std::nullopt});
  RolloutChange complete = Change("ro-1", 1, RolloutState::kCompleted, "rollout.promote");
  complete.plan.mark_completed = true;
  complete.audit.evidence_json = "{not json";  // the audit insert fails after the update

  EXPECT_FALSE(store_.ApplyRolloutChange(complete).ok());

  auto rollout = store_.GetRollout("ro-1");
  ASSERT_TRUE(rollout.ok());
  EXPECT_EQ(rollout->revision, 1);
  EXPECT_EQ(rollout->position.state, RolloutState::kBroad);
  EXPECT_EQ(db_.Query("SELECT completed_at IS NULL FROM content WHERE version = 1"), "t");
}

TEST_F(PgRolloutsTest, UnknownRolloutIsNotFound) {
  EXPECT_EQ(
      store_.ApplyRolloutChange(Change("nope", 1, RolloutState::kEarly, "rollout.promote")).code(),
      absl::StatusCode::kNotFound);
}

TEST_F(PgRolloutsTest, ListDecisionsIsInRingOrder) {
  StartRollout("ro-1", {RolloutState::kBroad, std::nullopt});
  const absl::Time at = absl::FromUnixSeconds(1'800'000'000);
  // Stored out of ring order, and the canary decision replaced once.
  for (auto [ring, kind, revision] :
       {std::make_tuple(Ring::kBroad, "wait", 3), std::make_tuple(Ring::kCanary, "wait", 1),
        std::make_tuple(Ring::kEarly, "promote", 2),
        std::make_tuple(Ring::kCanary, "promote", 1)}) {
    DecisionRecord d;
    d.rollout_id = "ro-1";
    d.ring = ring;
    d.kind = kind;
    d.reason = "gate_passed";
    d.evaluated_at = at + absl::Seconds(revision);
    d.revision = revision;
    ASSERT_TRUE(store_.UpsertDecision(d).ok());
  }

  auto decisions = store_.ListDecisions("ro-1");

  ASSERT_TRUE(decisions.ok()) << decisions.status();
  ASSERT_EQ(decisions->size(), 3u);
  EXPECT_EQ((*decisions)[0].ring, Ring::kCanary);
  EXPECT_EQ((*decisions)[0].kind, "promote");
  EXPECT_EQ((*decisions)[1].ring, Ring::kEarly);
  EXPECT_EQ((*decisions)[2].ring, Ring::kBroad);
  EXPECT_EQ((*decisions)[2].revision, 3);
  EXPECT_EQ((*decisions)[2].evaluated_at, at + absl::Seconds(3));
  EXPECT_TRUE(store_.ListDecisions("other")->empty());
}

TEST_F(PgRolloutsTest, ActiveOnlyLeavesOutEveryFinalState) {
  std::set<std::string> all, active;
  int channel = 0;
  for (RolloutState state : kAllRolloutStates) {
    const std::string id = absl::StrCat("ro-", RolloutStateName(state));
    RolloutPosition position{state, std::nullopt};
    if (state == RolloutState::kHalted) {
      position.halted_from = RolloutState::kEarly;
    }
    StartRollout(id, position, 1, absl::StrCat("ch.", channel++));
    all.insert(id);
    if (!IsFinal(state)) {
      active.insert(id);
    }
  }
  ASSERT_EQ(all.size() - active.size(), 3u);  // COMPLETED, ROLLED_BACK, CANCELLED

  auto ids = [](const std::vector<RolloutRecord>& rollouts) {
    std::set<std::string> out;
    for (const RolloutRecord& r : rollouts) {
      out.insert(r.id);
    }
    return out;
  };
  auto listed_active = store_.ListRollouts("", /*active_only=*/true, 100);
  ASSERT_TRUE(listed_active.ok()) << listed_active.status();
  EXPECT_EQ(ids(*listed_active), active);
  auto listed_all = store_.ListRollouts("", /*active_only=*/false, 100);
  ASSERT_TRUE(listed_all.ok());
  EXPECT_EQ(ids(*listed_all), all);
  EXPECT_EQ(store_.ListRollouts("", false, 2)->size(), 2u);
  auto catalog = store_.LoadCatalog(std::nullopt);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  EXPECT_EQ(ids(catalog->unfinished_rollouts), active);

  channel = 0;
  for (RolloutState state : kAllRolloutStates) {
    SCOPED_TRACE(RolloutStateName(state));
    auto unfinished = store_.GetUnfinishedRollout(absl::StrCat("ch.", channel++));
    ASSERT_TRUE(unfinished.ok());
    EXPECT_EQ(unfinished->has_value(), !IsFinal(state));
    auto rollout = store_.GetRollout(absl::StrCat("ro-", RolloutStateName(state)));
    ASSERT_TRUE(rollout.ok());
    EXPECT_EQ(rollout->position.state, state);
  }
  auto halted = store_.GetRollout("ro-HALTED");
  ASSERT_TRUE(halted.ok());
  EXPECT_EQ(halted->position.halted_from, RolloutState::kEarly);
}

}  // namespace
}  // namespace ringwarden
