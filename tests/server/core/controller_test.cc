#include "server/core/controller.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/server/core/core_fixture.h"

namespace ringwarden::testing {
namespace {

// RecordingObserver keeps what the controller reported.
class RecordingObserver final : public ControllerObserver {
 public:
  void OnLeadership(bool leader) override { leadership.push_back(leader); }
  void OnJudgedRollouts(const std::set<std::string>& ids) override { judged = ids; }
  void OnDecision(const RolloutRecord& rollout, Ring ring, int64_t targeted,
                  const Decision& decision, absl::Duration, absl::Duration) override {
    decisions.push_back({rollout.id, ring, targeted, decision.kind});
  }
  void OnAutoStop(Decision::Kind kind, std::optional<absl::Duration> since) override {
    stops.push_back({kind, since});
  }

  struct Seen {
    std::string rollout_id;
    Ring ring;
    int64_t targeted;
    Decision::Kind kind;
  };
  std::vector<bool> leadership;
  std::set<std::string> judged;
  std::vector<Seen> decisions;
  std::vector<std::pair<Decision::Kind, std::optional<absl::Duration>>> stops;
};

class ControllerTest : public CoreFixture {
 protected:
  ControllerTest()
      : controller_(
            store_, store_, snapshots_, policies_, observer_, clock_,
            [this]() -> absl::StatusOr<bool> {
              if (!leader_error_.ok()) {
                return leader_error_;
              }
              return leader_;
            },
            ControllerOptions{}) {}

  void SetUp() override {
    CoreFixture::SetUp();
    Upload(2);
    canary_ = Enroll("c", Ring::kCanary, 20);
    broad_ = Enroll("b", Ring::kBroad, 40);
    Heartbeat(canary_, 0);
    Heartbeat(broad_, 0);
  }

  // CanaryTakesVersion: every canary agent applies v2 and heartbeats on it
  // now and again after the bake.
  void HealthyCanary() { BakeHealthy(canary_, broad_, 2); }

  int RunOnce() {
    absl::StatusOr<int> changed = controller_.RunOnce();
    EXPECT_TRUE(changed.ok()) << changed.status();
    return changed.ok() ? *changed : -1;
  }

  std::vector<AuditRecord> AutomaticAudit(const std::string& rollout_id) {
    absl::StatusOr<std::vector<AuditRecord>> audit = store_.ListAudit(rollout_id, 100);
    EXPECT_TRUE(audit.ok());
    std::vector<AuditRecord> out;
    for (const AuditRecord& a : *audit) {
      if (a.actor == kControllerActor) {
        out.push_back(a);
      }
    }
    return out;
  }

  RecordingObserver observer_;
  bool leader_ = true;
  absl::Status leader_error_;
  Controller controller_;
  std::vector<std::string> canary_;
  std::vector<std::string> broad_;
};

TEST_F(ControllerTest, WaitsDuringTheBakeAndRecordsWhy) {
  StartRollout("ro-1", 2);
  clock_.Advance(absl::Minutes(1));
  Applied(canary_, 2);
  Heartbeat(canary_, 2);
  EXPECT_EQ(RunOnce(), 0);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);
  absl::StatusOr<std::vector<DecisionRecord>> decisions = store_.ListDecisions("ro-1");
  ASSERT_TRUE(decisions.ok());
  ASSERT_EQ(decisions->size(), 1u);
  EXPECT_EQ((*decisions)[0].kind, "wait");
  EXPECT_EQ((*decisions)[0].revision, 1);
  ASSERT_EQ(observer_.decisions.size(), 1u);
  EXPECT_EQ(observer_.decisions[0].targeted, 20);
  EXPECT_EQ(observer_.judged, std::set<std::string>{"ro-1"});
}

TEST_F(ControllerTest, PromotesAHealthyCanaryOnceForTheRevisionItJudged) {
  StartRollout("ro-1", 2);
  HealthyCanary();
  EXPECT_EQ(RunOnce(), 1);
  const RolloutRecord after = Rollout("ro-1");
  EXPECT_EQ(after.position.state, RolloutState::kEarly);
  EXPECT_EQ(after.revision, 2);
  EXPECT_EQ(after.stage_started_at, clock_.Now());  // the early stage bakes afresh
  std::vector<AuditRecord> audit = AutomaticAudit("ro-1");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "rollout.auto_promote");
  EXPECT_EQ(audit[0].from_state, "CANARY");
  EXPECT_EQ(audit[0].to_state, "EARLY");

  // The same evidence is judged again at once: the early stage has not baked,
  // so nothing more happens, however often the controller runs.
  EXPECT_EQ(RunOnce(), 0);
  EXPECT_EQ(RunOnce(), 0);
  EXPECT_EQ(Rollout("ro-1").revision, 2);
  EXPECT_EQ(AutomaticAudit("ro-1").size(), 1u);
}

TEST_F(ControllerTest, NeverActsOnAStaleRevision) {
  StartRollout("ro-1", 2);
  HealthyCanary();
  // A concurrent change wins between the controller's read and its write.
  store_.FailNext("apply_rollout_change",
                  absl::AbortedError("rollout ro-1 changed concurrently (expected revision 1)"));
  EXPECT_EQ(RunOnce(), 0);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);
  EXPECT_EQ(Rollout("ro-1").revision, 1);
  EXPECT_TRUE(AutomaticAudit("ro-1").empty());
  EXPECT_TRUE(observer_.stops.empty());
  // Judged again on the next period from what is stored now.
  EXPECT_EQ(RunOnce(), 1);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kEarly);
}

TEST_F(ControllerTest, AnOperatorStepBetweenRunsIsNotUndoneOrRepeated) {
  StartRollout("ro-1", 2);
  HealthyCanary();
  ASSERT_TRUE(Step("ro-1", RolloutAction::kHalt).ok());
  EXPECT_EQ(RunOnce(), 0);  // HALTED waits for a person
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kHalted);
  EXPECT_TRUE(AutomaticAudit("ro-1").empty());
  EXPECT_TRUE(observer_.judged.empty());
}

TEST_F(ControllerTest, HaltsACrashingCanaryAndReportsTheStop) {
  StartRollout("ro-1", 2);
  clock_.Advance(absl::Minutes(1));
  Applied(canary_, 2);
  Crashed(std::vector<std::string>(canary_.begin(), canary_.begin() + 8), 2);
  Heartbeat(broad_, 0);
  EXPECT_EQ(RunOnce(), 1);
  const RolloutRecord after = Rollout("ro-1");
  EXPECT_EQ(after.position.state, RolloutState::kHalted);
  EXPECT_EQ(after.position.halted_from, RolloutState::kCanary);
  std::vector<AuditRecord> audit = AutomaticAudit("ro-1");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "rollout.auto_halt");
  EXPECT_NE(audit[0].evidence_json.find("\"explanation\""), std::string::npos);
  ASSERT_EQ(observer_.stops.size(), 1u);
  EXPECT_EQ(observer_.stops[0].first, Decision::Kind::kHalt);
  EXPECT_EQ(observer_.stops[0].second, absl::ZeroDuration());  // crashed as it applied
  // A halted version is not revoked; later runs leave it alone.
  absl::StatusOr<std::vector<ContentRecord>> content = store_.ListContent(kChannel);
  ASSERT_TRUE(content.ok());
  EXPECT_FALSE(content->front().revoked);
  EXPECT_EQ(RunOnce(), 0);
  EXPECT_EQ(AutomaticAudit("ro-1").size(), 1u);
}

TEST_F(ControllerTest, SilenceAfterADownloadHaltsLikeACrash) {
  StartRollout("ro-1", 2);
  clock_.Advance(absl::Minutes(1));
  Fetched(canary_, 2);  // boot-looping hosts never report again
  clock_.Advance(absl::Minutes(16));
  Heartbeat(broad_, 0);
  EXPECT_EQ(RunOnce(), 1);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kHalted);
}

TEST_F(ControllerTest, RollsBackAndRevokesWhenThePolicySaysSo) {
  RolloutPolicy policy = TestPolicy();
  policy.canary.auto_action = AutoAction::kRollback;
  PutPolicy(policy);  // version 2
  NewRollout create;
  create.rollout.id = "ro-1";
  create.rollout.channel = kChannel;
  create.rollout.version = 2;
  create.rollout.policy_name = "default";
  create.rollout.policy_version = 2;
  create.rollout.position =
      PlanTransition(InitialPosition(), 0, RolloutAction::kPromote, policy, Initiator::kOperator)
          ->to;
  ASSERT_TRUE(store_.CreateRollout(create).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  clock_.Advance(absl::Minutes(1));
  Applied(canary_, 2);
  Crashed(std::vector<std::string>(canary_.begin(), canary_.begin() + 8), 2);
  EXPECT_EQ(RunOnce(), 1);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kRolledBack);
  absl::StatusOr<std::vector<ContentRecord>> content = store_.ListContent(kChannel);
  ASSERT_TRUE(content.ok());
  EXPECT_TRUE(content->front().revoked);
  EXPECT_EQ(AutomaticAudit("ro-1").at(0).action, "rollout.auto_rollback");
  // The snapshot the controller refreshed already revokes it for agents.
  EXPECT_TRUE(snapshots_.Current()->IsRevoked(kChannel, 2));
}

TEST_F(ControllerTest, TakesNoDecisionDuringAnEmergencyStop) {
  StartRollout("ro-1", 2);
  HealthyCanary();
  ASSERT_TRUE(store_.SetEmergencyStop(true, AuditAs("emergency_stop.activate")).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  EXPECT_EQ(RunOnce(), 0);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);
  EXPECT_TRUE(store_.ListDecisions("ro-1")->empty());
  ASSERT_TRUE(store_.SetEmergencyStop(false, AuditAs("emergency_stop.lift")).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  EXPECT_EQ(RunOnce(), 1);
}

TEST_F(ControllerTest, TakesNoDecisionWhileNotLeader) {
  StartRollout("ro-1", 2);
  HealthyCanary();
  leader_ = false;
  EXPECT_EQ(RunOnce(), 0);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);
  EXPECT_TRUE(store_.ListDecisions("ro-1")->empty());
  EXPECT_EQ(observer_.leadership, std::vector<bool>{false});
  EXPECT_TRUE(observer_.judged.empty());  // a follower publishes no per-rollout series

  leader_error_ = absl::UnavailableError("database unreachable");
  EXPECT_EQ(controller_.RunOnce().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);

  leader_error_ = absl::OkStatus();
  leader_ = true;
  EXPECT_EQ(RunOnce(), 1);
}

TEST_F(ControllerTest, AStorageFailureOnOneRolloutDoesNotStopTheOthers) {
  StartRollout("ro-1", 2);
  HealthyCanary();
  store_.FailNext("load_rollout_health", absl::UnavailableError("database unreachable"));
  absl::StatusOr<int> result = controller_.RunOnce();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(result.status().message().find("ro-1"), std::string::npos);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);
  EXPECT_EQ(RunOnce(), 1);
}

TEST_F(ControllerTest, WalksTheBroadWavesThenCompletes) {
  StartRollout("ro-1", 2);
  ASSERT_TRUE(Step("ro-1", RolloutAction::kPromote).ok());  // EARLY
  ASSERT_TRUE(Step("ro-1", RolloutAction::kPromote).ok());  // BROAD, wave 0 (50%)
  EXPECT_EQ(Rollout("ro-1").broad_wave, 0);
  EXPECT_DOUBLE_EQ(Rollout("ro-1").broad_fraction, 0.5);
  clock_.Advance(absl::Minutes(1));
  Applied(broad_, 2);
  Heartbeat(broad_, 2);
  clock_.Advance(absl::Minutes(10));
  Heartbeat(broad_, 2);
  EXPECT_EQ(RunOnce(), 1);
  RolloutRecord r = Rollout("ro-1");
  EXPECT_EQ(r.position.state, RolloutState::kBroad);
  EXPECT_EQ(r.broad_wave, 1);
  EXPECT_DOUBLE_EQ(r.broad_fraction, 1.0);
  EXPECT_EQ(AutomaticAudit("ro-1").at(0).action, "rollout.auto_next_wave");
  // The new wave is judged on the agents it newly reached, from its own start.
  const std::vector<std::string> second_wave = Enroll("w", Ring::kBroad, 20);
  clock_.Advance(absl::Minutes(1));
  Applied(second_wave, 2);
  Heartbeat(second_wave, 2);
  EXPECT_EQ(RunOnce(), 0);  // the new wave has not baked
  clock_.Advance(absl::Minutes(10));
  Heartbeat(second_wave, 2);
  Heartbeat(broad_, 2);
  EXPECT_EQ(RunOnce(), 1);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCompleted);
  absl::StatusOr<std::vector<ContentRecord>> content = store_.ListContent(kChannel);
  EXPECT_TRUE(content->front().completed);
  EXPECT_TRUE(observer_.judged.count("ro-1"));
  EXPECT_EQ(RunOnce(), 0);
  EXPECT_TRUE(observer_.judged.empty());
}

}  // namespace
}  // namespace ringwarden::testing
