// transition.h: the one place that decides what a rollout transition does.
//
// The state machine (rollout.h) says which positions may follow which; a
// TransitionPlan adds everything that must commit with the change: whether the
// stage bakes afresh, whether the version becomes completed or is revoked, the
// broad wave and its share, and the audit action. Release operations and the
// controller both ask PlanTransition and apply the plan as it is; neither
// derives a side effect on its own.
//
//   ASSIGN_OR_RETURN(TransitionPlan plan,
//                    PlanTransition(rollout.position, rollout.broad_wave,
//                                   RolloutAction::kPromote, policy, Initiator::kController));
//   // plan.to, plan.stage_changed, plan.mark_completed, plan.audit_action, ...
//
// Pure functions; thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/domain/decision.h"
#include "server/domain/decision_policy.h"
#include "server/domain/rollout.h"

namespace ringwarden {

// Initiator is who asked for a transition; it names the audit action.
enum class Initiator {
  kOperator,        // a release engineer through ringctl
  kOperatorForced,  // a promotion before the stage gate passed (--force --reason)
  kController,      // the automatic health gates
  kSupersede,       // a newer rollout of the channel cancels this one
};

// kKeepWave marks "keep the stored broad wave (or fraction)" in a plan.
inline constexpr int kKeepWave = -1;

// TransitionPlan is a complete transition: the next position and its side effects.
struct TransitionPlan {
  RolloutPosition from;
  RolloutPosition to;
  // The stage (or broad wave) starts anew: bake time and the judged window restart.
  bool stage_changed = false;
  // The version becomes a completed version of its channel.
  bool mark_completed = false;
  // The version is revoked forever.
  bool revoke_version = false;
  // Stayed BROAD and was offered to a larger share of the broad ring.
  bool next_wave = false;
  // The broad wave index and its share of the broad ring; kKeepWave keeps the stored values.
  int broad_wave = kKeepWave;
  double broad_fraction = kKeepWave;
  // The stage's exposure budget restarts (exposure.h): 0 (nobody admitted until the leader
  // admits the first hosts) under slow start, 1 without; kKeepWave keeps it (waves, resume).
  double admitted_fraction = kKeepWave;
  // The audit log action, e.g. "rollout.promote", "rollout.auto_halt".
  std::string audit_action;
};

// PlanTransition plans `action` on a rollout at `from` and `broad_wave` under
// `policy` (its broad waves). FAILED_PRECONDITION when the state machine refuses
// the action; INVALID_ARGUMENT when `initiator` cannot take it (only operators
// resume, only a supersede cancels, only the controller cannot cancel).
absl::StatusOr<TransitionPlan> PlanTransition(const RolloutPosition& from, int broad_wave,
                                              RolloutAction action, const RolloutPolicy& policy,
                                              Initiator initiator);

// InitialPosition is where a new rollout starts before any transition: PENDING.
RolloutPosition InitialPosition();

// ActionForDecision maps an automatic decision to the action it takes; nullopt for kWait.
std::optional<RolloutAction> ActionForDecision(Decision::Kind kind);

}  // namespace ringwarden
