// rollout.h: the rollout state machine.
//
// PENDING -> CANARY -> EARLY -> BROAD -> COMPLETED by promotion; any active
// state may be HALTED (and resumed to where it stopped), ROLLED_BACK or
// CANCELLED. COMPLETED, ROLLED_BACK and CANCELLED are final.
//
//   ASSIGN_OR_RETURN(RolloutPosition next, ApplyRolloutAction(pos, RolloutAction::kPromote));
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/domain/ring.h"

namespace ringwarden {

enum class RolloutState {
  kPending,
  kCanary,
  kEarly,
  kBroad,
  kCompleted,
  kHalted,
  kRolledBack,
  kCancelled,
};

enum class RolloutAction { kPromote, kHalt, kResume, kRollback, kCancel };

inline constexpr RolloutState kAllRolloutStates[] = {
    RolloutState::kPending,    RolloutState::kCanary,    RolloutState::kEarly,
    RolloutState::kBroad,      RolloutState::kCompleted, RolloutState::kHalted,
    RolloutState::kRolledBack, RolloutState::kCancelled,
};

// RolloutStateName returns the contract name, e.g. "CANARY", "ROLLED_BACK".
absl::string_view RolloutStateName(RolloutState state);
absl::StatusOr<RolloutState> ParseRolloutState(absl::string_view name);
// RolloutActionName returns e.g. "promote".
absl::string_view RolloutActionName(RolloutAction action);

// IsFinal reports COMPLETED, ROLLED_BACK and CANCELLED.
bool IsFinal(RolloutState state);
// IsStage reports CANARY, EARLY and BROAD: the states that hand the version out.
bool IsStage(RolloutState state);
// StageRing returns the widest ring a stage state reaches; nullopt for non-stages.
std::optional<Ring> StageRing(RolloutState state);

// RolloutPosition is where a rollout is; halted_from is set only when HALTED.
struct RolloutPosition {
  RolloutState state = RolloutState::kPending;
  std::optional<RolloutState> halted_from;

  friend bool operator==(const RolloutPosition& a, const RolloutPosition& b) {
    return a.state == b.state && a.halted_from == b.halted_from;
  }
};

// PositionFromNames rebuilds a stored position from its state name and the
// name of the state it was halted from ("" when not halted); INVALID_ARGUMENT
// for unknown names or a halted_from on a rollout that is not HALTED.
absl::StatusOr<RolloutPosition> PositionFromNames(absl::string_view state,
                                                  absl::string_view halted_from);
// FinalStateNames lists the names of the final states, for storage filters.
std::vector<std::string> FinalStateNames();

// ApplyRolloutAction returns the position after `action`, or FAILED_PRECONDITION
// with a message naming the state and what is allowed from it.
absl::StatusOr<RolloutPosition> ApplyRolloutAction(const RolloutPosition& from,
                                                   RolloutAction action);

// PromotionStep is where one promotion leads, broad waves included.
struct PromotionStep {
  RolloutPosition to;
  int broad_wave = 0;
  double broad_fraction = 1.0;
  bool next_wave = false;  // stayed BROAD, offered to a larger share of the broad ring
};

// NextPromotion promotes by one step: within BROAD through the cumulative
// `broad_waves` (e.g. {0.1, 0.25, 0.5, 1.0}), otherwise to the next state.
// Entering BROAD starts at the first wave; an empty list means one wave of 1.0.
absl::StatusOr<PromotionStep> NextPromotion(const RolloutPosition& from, int broad_wave,
                                            const std::vector<double>& broad_waves);

// ReachesRing reports whether a rollout at `position` hands its version to
// agents of `ring` that do not have it yet (HALTED reaches nobody new).
bool ReachesRing(const RolloutPosition& position, Ring ring);

}  // namespace ringwarden
