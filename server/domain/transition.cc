#include "server/domain/transition.h"

#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

absl::StatusOr<std::string> AuditAction(RolloutAction action, Initiator initiator, bool next_wave) {
  switch (initiator) {
    case Initiator::kController:
      switch (action) {
        case RolloutAction::kPromote:
          return std::string(next_wave ? "rollout.auto_next_wave" : "rollout.auto_promote");
        case RolloutAction::kHalt:
          return std::string("rollout.auto_halt");
        case RolloutAction::kRollback:
          return std::string("rollout.auto_rollback");
        case RolloutAction::kResume:
        case RolloutAction::kCancel:
          break;
      }
      break;
    case Initiator::kOperatorForced:
      if (action == RolloutAction::kPromote) {
        return std::string("rollout.force_promote");
      }
      break;
    case Initiator::kSupersede:
      if (action == RolloutAction::kCancel) {
        return std::string("rollout.supersede");
      }
      break;
    case Initiator::kOperator:
      switch (action) {
        case RolloutAction::kPromote:
          return std::string("rollout.promote");
        case RolloutAction::kHalt:
          return std::string("rollout.halt");
        case RolloutAction::kResume:
          return std::string("rollout.resume");
        case RolloutAction::kRollback:
          return std::string("rollout.rollback");
        case RolloutAction::kCancel:
          break;  // a rollout is cancelled only by superseding it
      }
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("a rollout cannot be told to ", RolloutActionName(action), " this way"));
}

}  // namespace

absl::StatusOr<TransitionPlan> PlanTransition(const RolloutPosition& from, int broad_wave,
                                              RolloutAction action, const RolloutPolicy& policy,
                                              Initiator initiator) {
  TransitionPlan plan;
  plan.from = from;
  if (action == RolloutAction::kPromote) {
    absl::StatusOr<PromotionStep> step = NextPromotion(from, broad_wave, policy.broad_waves);
    if (!step.ok()) {
      return step.status();
    }
    plan.to = step->to;
    plan.next_wave = step->next_wave;
    plan.broad_wave = step->broad_wave;
    plan.broad_fraction = step->broad_fraction;
    plan.stage_changed = true;  // a new stage or wave bakes afresh
  } else {
    absl::StatusOr<RolloutPosition> to = ApplyRolloutAction(from, action);
    if (!to.ok()) {
      return to.status();
    }
    plan.to = *to;
    // A resumed stage bakes afresh and is judged on new evidence only.
    plan.stage_changed = action == RolloutAction::kResume;
  }
  if (action == RolloutAction::kPromote && !plan.next_wave && IsStage(plan.to.state)) {
    plan.admitted_fraction = policy.slow_start.enabled ? 0.0 : 1.0;
  }
  plan.mark_completed = plan.to.state == RolloutState::kCompleted;
  plan.revoke_version = plan.to.state == RolloutState::kRolledBack;
  absl::StatusOr<std::string> audit = AuditAction(action, initiator, plan.next_wave);
  if (!audit.ok()) {
    return audit.status();
  }
  plan.audit_action = *std::move(audit);
  return plan;
}

RolloutPosition InitialPosition() { return RolloutPosition{}; }

std::optional<RolloutAction> ActionForDecision(Decision::Kind kind) {
  switch (kind) {
    case Decision::Kind::kPromote:
      return RolloutAction::kPromote;
    case Decision::Kind::kHalt:
      return RolloutAction::kHalt;
    case Decision::Kind::kRollback:
      return RolloutAction::kRollback;
    case Decision::Kind::kWait:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace ringwarden
