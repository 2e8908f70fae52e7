#include "server/domain/transition.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace ringwarden {
namespace {

using S = RolloutState;
using A = RolloutAction;

RolloutPosition At(S s, std::optional<S> halted_from = std::nullopt) {
  return RolloutPosition{s, halted_from};
}

RolloutPolicy WithWaves(std::vector<double> waves) {
  RolloutPolicy policy;
  policy.broad_waves = std::move(waves);
  return policy;
}

TransitionPlan MustPlan(const RolloutPosition& from, int wave, A action, Initiator initiator,
                        const RolloutPolicy& policy = RolloutPolicy()) {
  absl::StatusOr<TransitionPlan> plan = PlanTransition(from, wave, action, policy, initiator);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : TransitionPlan{};
}

TEST(TransitionPlanTest, PromotionThroughTheStagesBakesAfreshAndCompletesOnlyAtTheEnd) {
  const RolloutPolicy policy = WithWaves({1.0});
  struct Step {
    S from;
    S to;
  };
  for (const Step& step : {Step{S::kPending, S::kCanary}, Step{S::kCanary, S::kEarly},
                           Step{S::kEarly, S::kBroad}, Step{S::kBroad, S::kCompleted}}) {
    SCOPED_TRACE(std::string(RolloutStateName(step.from)));
    const TransitionPlan plan =
        MustPlan(At(step.from), 0, A::kPromote, Initiator::kOperator, policy);
    EXPECT_EQ(plan.from, At(step.from));
    EXPECT_EQ(plan.to, At(step.to));
    EXPECT_TRUE(plan.stage_changed);
    EXPECT_EQ(plan.mark_completed, step.to == S::kCompleted);
    EXPECT_FALSE(plan.revoke_version);
    EXPECT_FALSE(plan.next_wave);
    EXPECT_EQ(plan.audit_action, "rollout.promote");
  }
}

TEST(TransitionPlanTest, EnteringBroadStartsAtTheFirstWave) {
  const TransitionPlan plan =
      MustPlan(At(S::kEarly), 0, A::kPromote, Initiator::kController, WithWaves({0.1, 0.5, 1.0}));
  EXPECT_EQ(plan.to, At(S::kBroad));
  EXPECT_EQ(plan.broad_wave, 0);
  EXPECT_DOUBLE_EQ(plan.broad_fraction, 0.1);
  EXPECT_FALSE(plan.next_wave);
  EXPECT_EQ(plan.audit_action, "rollout.auto_promote");
}

TEST(TransitionPlanTest, WithinBroadAPromotionIsTheNextWaveThenCompletion) {
  const RolloutPolicy policy = WithWaves({0.1, 0.5, 1.0});
  TransitionPlan plan = MustPlan(At(S::kBroad), 0, A::kPromote, Initiator::kController, policy);
  EXPECT_EQ(plan.to, At(S::kBroad));
  EXPECT_TRUE(plan.next_wave);
  EXPECT_TRUE(plan.stage_changed);  // the new wave bakes afresh
  EXPECT_EQ(plan.broad_wave, 1);
  EXPECT_DOUBLE_EQ(plan.broad_fraction, 0.5);
  EXPECT_FALSE(plan.mark_completed);
  EXPECT_EQ(plan.audit_action, "rollout.auto_next_wave");

  plan = MustPlan(At(S::kBroad), 1, A::kPromote, Initiator::kOperator, policy);
  EXPECT_EQ(plan.broad_wave, 2);
  EXPECT_DOUBLE_EQ(plan.broad_fraction, 1.0);
  EXPECT_EQ(plan.audit_action, "rollout.promote");  // an operator's next wave is a promotion

  plan = MustPlan(At(S::kBroad), 2, A::kPromote, Initiator::kController, policy);
  EXPECT_EQ(plan.to, At(S::kCompleted));
  EXPECT_TRUE(plan.mark_completed);
  EXPECT_FALSE(plan.next_wave);
  EXPECT_EQ(plan.audit_action, "rollout.auto_promote");
}

TEST(TransitionPlanTest, HaltFreezesWithoutSideEffectsAndKeepsTheWave) {
  for (S from : {S::kPending, S::kCanary, S::kEarly, S::kBroad}) {
    const TransitionPlan plan = MustPlan(At(from), 1, A::kHalt, Initiator::kController);
    EXPECT_EQ(plan.to, At(S::kHalted, from));
    EXPECT_FALSE(plan.stage_changed);
    EXPECT_FALSE(plan.mark_completed);
    EXPECT_FALSE(plan.revoke_version);
    EXPECT_EQ(plan.broad_wave, kKeepWave);
    EXPECT_EQ(plan.broad_fraction, kKeepWave);
    EXPECT_EQ(plan.audit_action, "rollout.auto_halt");
  }
  EXPECT_EQ(MustPlan(At(S::kCanary), 0, A::kHalt, Initiator::kOperator).audit_action,
            "rollout.halt");
}

TEST(TransitionPlanTest, ResumeReturnsToTheHaltedStageAndRestartsItsWindow) {
  const TransitionPlan plan =
      MustPlan(At(S::kHalted, S::kEarly), 0, A::kResume, Initiator::kOperator);
  EXPECT_EQ(plan.to, At(S::kEarly));
  EXPECT_TRUE(plan.stage_changed);
  EXPECT_FALSE(plan.mark_completed);
  EXPECT_FALSE(plan.revoke_version);
  EXPECT_EQ(plan.broad_wave, kKeepWave);
  EXPECT_EQ(plan.audit_action, "rollout.resume");
}

TEST(TransitionPlanTest, RollbackRevokesTheVersionFromAnyUnfinishedState) {
  for (const RolloutPosition& from : {At(S::kPending), At(S::kCanary), At(S::kEarly), At(S::kBroad),
                                      At(S::kHalted, S::kCanary)}) {
    const TransitionPlan by_operator = MustPlan(from, 0, A::kRollback, Initiator::kOperator);
    EXPECT_EQ(by_operator.to, At(S::kRolledBack));
    EXPECT_TRUE(by_operator.revoke_version);
    EXPECT_FALSE(by_operator.mark_completed);
    EXPECT_FALSE(by_operator.stage_changed);
    EXPECT_EQ(by_operator.audit_action, "rollout.rollback");
    EXPECT_EQ(MustPlan(from, 0, A::kRollback, Initiator::kController).audit_action,
              "rollout.auto_rollback");
  }
}

TEST(TransitionPlanTest, SupersedeCancelsWithoutRevokingOrCompleting) {
  const TransitionPlan plan = MustPlan(At(S::kEarly), 0, A::kCancel, Initiator::kSupersede);
  EXPECT_EQ(plan.to, At(S::kCancelled));
  EXPECT_FALSE(plan.revoke_version);
  EXPECT_FALSE(plan.mark_completed);
  EXPECT_EQ(plan.audit_action, "rollout.supersede");
}

TEST(TransitionPlanTest, ForcedPromotionIsNamedInTheAuditLog) {
  const TransitionPlan plan = MustPlan(At(S::kCanary), 0, A::kPromote, Initiator::kOperatorForced);
  EXPECT_EQ(plan.to, At(S::kEarly));
  EXPECT_EQ(plan.audit_action, "rollout.force_promote");
}

TEST(TransitionPlanTest, IllegalTransitionsAreRefusedWithTheStateMachinesReason) {
  const RolloutPolicy policy;
  for (S final_state : {S::kCompleted, S::kRolledBack, S::kCancelled}) {
    for (A action : {A::kPromote, A::kHalt, A::kResume, A::kRollback, A::kCancel}) {
      absl::StatusOr<TransitionPlan> plan =
          PlanTransition(At(final_state), 0, action, policy, Initiator::kOperator);
      EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition)
          << RolloutStateName(final_state) << " " << RolloutActionName(action);
    }
  }
  absl::StatusOr<TransitionPlan> plan =
      PlanTransition(At(S::kHalted, S::kCanary), 0, A::kPromote, policy, Initiator::kController);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(plan.status().message().find("resume it first"), std::string::npos);
  plan = PlanTransition(At(S::kCanary), 0, A::kResume, policy, Initiator::kOperator);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TransitionPlanTest, InitiatorsCannotTakeActionsThatAreNotTheirs) {
  const RolloutPolicy policy;
  // The controller never resumes or cancels; operators cancel only by superseding;
  // a supersede only cancels; a forced step is only a promotion.
  const struct {
    A action;
    Initiator initiator;
    RolloutPosition from;
  } refused[] = {
      {A::kResume, Initiator::kController, At(S::kHalted, S::kCanary)},
      {A::kCancel, Initiator::kController, At(S::kCanary)},
      {A::kCancel, Initiator::kOperator, At(S::kCanary)},
      {A::kHalt, Initiator::kSupersede, At(S::kCanary)},
      {A::kHalt, Initiator::kOperatorForced, At(S::kCanary)},
  };
  for (const auto& r : refused) {
    absl::StatusOr<TransitionPlan> plan = PlanTransition(r.from, 0, r.action, policy, r.initiator);
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument)
        << RolloutActionName(r.action);
  }
}

TEST(TransitionPlanTest, DecisionsMapToActions) {
  EXPECT_EQ(ActionForDecision(Decision::Kind::kPromote), A::kPromote);
  EXPECT_EQ(ActionForDecision(Decision::Kind::kHalt), A::kHalt);
  EXPECT_EQ(ActionForDecision(Decision::Kind::kRollback), A::kRollback);
  EXPECT_EQ(ActionForDecision(Decision::Kind::kWait), std::nullopt);
}

TEST(TransitionPlanTest, StoredPositionsAreRebuiltOnlyWhenConsistent) {
  EXPECT_EQ(*PositionFromNames("HALTED", "EARLY"), At(S::kHalted, S::kEarly));
  EXPECT_EQ(*PositionFromNames("CANARY", ""), At(S::kCanary));
  EXPECT_EQ(PositionFromNames("CANARY", "EARLY").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PositionFromNames("canary", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PositionFromNames("HALTED", "'; DROP TABLE rollouts; --").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InitialPosition(), At(S::kPending));
  EXPECT_EQ(FinalStateNames(), (std::vector<std::string>{"COMPLETED", "ROLLED_BACK", "CANCELLED"}));
}

}  // namespace
}  // namespace ringwarden
