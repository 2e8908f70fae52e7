#include "server/domain/rollout.h"

#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

absl::Status Refuse(const RolloutPosition& from, RolloutAction action, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat("cannot ", RolloutActionName(action),
                                                    " a rollout in state ",
                                                    RolloutStateName(from.state), ": ", why));
}

}  // namespace

absl::string_view RolloutStateName(RolloutState state) {
  switch (state) {
    case RolloutState::kPending:
      return "PENDING";
    case RolloutState::kCanary:
      return "CANARY";
    case RolloutState::kEarly:
      return "EARLY";
    case RolloutState::kBroad:
      return "BROAD";
    case RolloutState::kCompleted:
      return "COMPLETED";
    case RolloutState::kHalted:
      return "HALTED";
    case RolloutState::kRolledBack:
      return "ROLLED_BACK";
    case RolloutState::kCancelled:
      return "CANCELLED";
  }
  return "UNKNOWN";
}

absl::StatusOr<RolloutState> ParseRolloutState(absl::string_view name) {
  for (RolloutState s : kAllRolloutStates) {
    if (RolloutStateName(s) == name) {
      return s;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown rollout state \"", name, "\""));
}

absl::string_view RolloutActionName(RolloutAction action) {
  switch (action) {
    case RolloutAction::kPromote:
      return "promote";
    case RolloutAction::kHalt:
      return "halt";
    case RolloutAction::kResume:
      return "resume";
    case RolloutAction::kRollback:
      return "roll back";
    case RolloutAction::kCancel:
      return "cancel";
  }
  return "unknown";
}

absl::StatusOr<RolloutPosition> PositionFromNames(absl::string_view state,
                                                  absl::string_view halted_from) {
  RolloutPosition position;
  absl::StatusOr<RolloutState> parsed = ParseRolloutState(state);
  if (!parsed.ok()) {
    return parsed.status();
  }
  position.state = *parsed;
  if (!halted_from.empty()) {
    absl::StatusOr<RolloutState> from = ParseRolloutState(halted_from);
    if (!from.ok()) {
      return from.status();
    }
    if (position.state != RolloutState::kHalted) {
      return absl::InvalidArgumentError(
          absl::StrCat("a ", state, " rollout cannot be halted from ", halted_from));
    }
    position.halted_from = *from;
  }
  return position;
}

std::vector<std::string> FinalStateNames() {
  std::vector<std::string> out;
  for (RolloutState s : kAllRolloutStates) {
    if (IsFinal(s)) {
      out.emplace_back(RolloutStateName(s));
    }
  }
  return out;
}

bool IsFinal(RolloutState state) {
  return state == RolloutState::kCompleted || state == RolloutState::kRolledBack ||
         state == RolloutState::kCancelled;
}

bool IsStage(RolloutState state) { return StageRing(state).has_value(); }

std::optional<Ring> StageRing(RolloutState state) {
  switch (state) {
    case RolloutState::kCanary:
      return Ring::kCanary;
    case RolloutState::kEarly:
      return Ring::kEarly;
    case RolloutState::kBroad:
      return Ring::kBroad;
    default:
      return std::nullopt;
  }
}

absl::StatusOr<RolloutPosition> ApplyRolloutAction(const RolloutPosition& from,
                                                   RolloutAction action) {
  if (IsFinal(from.state)) {
    return Refuse(from, action, "the rollout is finished");
  }
  switch (action) {
    case RolloutAction::kPromote:
      switch (from.state) {
        case RolloutState::kPending:
          return RolloutPosition{RolloutState::kCanary, std::nullopt};
        case RolloutState::kCanary:
          return RolloutPosition{RolloutState::kEarly, std::nullopt};
        case RolloutState::kEarly:
          return RolloutPosition{RolloutState::kBroad, std::nullopt};
        case RolloutState::kBroad:
          return RolloutPosition{RolloutState::kCompleted, std::nullopt};
        case RolloutState::kHalted:
          return Refuse(from, action, "resume it first (ringctl rollout resume)");
        default:
          break;
      }
      break;
    case RolloutAction::kHalt:
      if (from.state == RolloutState::kHalted) {
        return Refuse(from, action, "it is already halted");
      }
      return RolloutPosition{RolloutState::kHalted, from.state};
    case RolloutAction::kResume:
      if (from.state != RolloutState::kHalted || !from.halted_from.has_value()) {
        return Refuse(from, action, "only a HALTED rollout can be resumed");
      }
      return RolloutPosition{*from.halted_from, std::nullopt};
    case RolloutAction::kRollback:
      return RolloutPosition{RolloutState::kRolledBack, std::nullopt};
    case RolloutAction::kCancel:
      return RolloutPosition{RolloutState::kCancelled, std::nullopt};
  }
  return Refuse(from, action, "not a legal transition");
}

absl::StatusOr<PromotionStep> NextPromotion(const RolloutPosition& from, int broad_wave,
                                            const std::vector<double>& broad_waves) {
  const std::vector<double> waves = broad_waves.empty() ? std::vector<double>{1.0} : broad_waves;
  PromotionStep step;
  if (from.state == RolloutState::kBroad && broad_wave + 1 < static_cast<int>(waves.size())) {
    step.to = from;
    step.broad_wave = broad_wave + 1;
    step.broad_fraction = waves[step.broad_wave];
    step.next_wave = true;
    return step;
  }
  auto to = ApplyRolloutAction(from, RolloutAction::kPromote);
  if (!to.ok()) {
    return to.status();
  }
  step.to = *to;
  if (to->state == RolloutState::kBroad) {
    step.broad_wave = 0;
    step.broad_fraction = waves[0];
  } else {
    step.broad_wave = broad_wave;
    step.broad_fraction = 1.0;
  }
  return step;
}

bool ReachesRing(const RolloutPosition& position, Ring ring) {
  std::optional<Ring> widest = StageRing(position.state);
  return widest.has_value() && static_cast<int>(ring) <= static_cast<int>(*widest);
}

}  // namespace ringwarden
