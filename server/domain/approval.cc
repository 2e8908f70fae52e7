#include "server/domain/approval.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace ringwarden {

absl::Status TwoPersonRule::Validate() const {
  if (approval_ttl < kMinApprovalTtl || approval_ttl > kMaxApprovalTtl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "approval_ttl_seconds must be between ", absl::ToInt64Seconds(kMinApprovalTtl), " and ",
        absl::ToInt64Seconds(kMaxApprovalTtl), ", got ", absl::ToInt64Seconds(approval_ttl)));
  }
  return absl::OkStatus();
}

absl::string_view GatedStepName(GatedStep step) {
  switch (step) {
    case GatedStep::kEnterBroad:
      return "enter_broad";
    case GatedStep::kForce:
      return "force";
    case GatedStep::kDowngradePin:
      return "downgrade_pin";
    case GatedStep::kFloorChange:
      return "floor_change";
    case GatedStep::kPolicyChange:
      return "policy_change";
  }
  return "unknown";
}

absl::StatusOr<GatedStep> ParseGatedStep(absl::string_view name) {
  for (GatedStep step : kAllGatedSteps) {
    if (GatedStepName(step) == name) {
      return step;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown gated step \"", name, "\""));
}

absl::string_view ApprovalKindName(ApprovalKind kind) {
  switch (kind) {
    case ApprovalKind::kRolloutAction:
      return "rollout";
    case ApprovalKind::kPin:
      return "pin";
    case ApprovalKind::kFloor:
      return "floor";
    case ApprovalKind::kPolicy:
      return "policy";
  }
  return "unknown";
}

absl::StatusOr<ApprovalKind> ParseApprovalKind(absl::string_view name) {
  for (ApprovalKind kind : {ApprovalKind::kRolloutAction, ApprovalKind::kPin, ApprovalKind::kFloor,
                            ApprovalKind::kPolicy}) {
    if (ApprovalKindName(kind) == name) {
      return kind;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown approval kind \"", name, "\""));
}

StepAsk StepAsk::Rollout(const RolloutPosition& from, const RolloutPosition& to, bool force) {
  StepAsk ask;
  ask.kind = ApprovalKind::kRolloutAction;
  ask.from = from;
  ask.to = to;
  ask.force = force;
  return ask;
}

StepAsk StepAsk::Pin(const PinPolicy& pin, int64_t newest_completed) {
  StepAsk ask;
  ask.kind = ApprovalKind::kPin;
  ask.pin = pin;
  ask.newest_completed = newest_completed;
  return ask;
}

StepAsk StepAsk::Floor() {
  StepAsk ask;
  ask.kind = ApprovalKind::kFloor;
  return ask;
}

StepAsk StepAsk::Policy() {
  StepAsk ask;
  ask.kind = ApprovalKind::kPolicy;
  return ask;
}

std::vector<GatedStep> DangerousSteps(const StepAsk& ask) {
  std::vector<GatedStep> steps;
  switch (ask.kind) {
    case ApprovalKind::kRolloutAction:
      if (ask.to.state == RolloutState::kBroad && ask.from.state != RolloutState::kBroad) {
        steps.push_back(GatedStep::kEnterBroad);
      }
      if (ask.force) {
        steps.push_back(GatedStep::kForce);
      }
      break;
    case ApprovalKind::kPin:
      // n-1 is one behind the newest completed version by definition, even
      // before a second version completes; a version pin is a downgrade when
      // it is below the newest completed one.
      if (ask.pin.kind == PinPolicy::Kind::kPreviousCompleted ||
          (ask.pin.kind == PinPolicy::Kind::kVersion && ask.pin.version < ask.newest_completed)) {
        steps.push_back(GatedStep::kDowngradePin);
      }
      break;
    case ApprovalKind::kFloor:
      steps.push_back(GatedStep::kFloorChange);
      break;
    case ApprovalKind::kPolicy:
      steps.push_back(GatedStep::kPolicyChange);
      break;
  }
  return steps;
}

std::vector<GatedStep> StepsNeedingApproval(const TwoPersonRule& rule, const StepAsk& ask) {
  if (!rule.enabled) {
    return {};
  }
  return DangerousSteps(ask);
}

absl::string_view ApprovalStateName(ApprovalState state) {
  switch (state) {
    case ApprovalState::kPending:
      return "pending";
    case ApprovalState::kApproved:
      return "approved";
    case ApprovalState::kRejected:
      return "rejected";
    case ApprovalState::kExpired:
      return "expired";
  }
  return "unknown";
}

absl::StatusOr<ApprovalState> ParseApprovalState(absl::string_view name) {
  for (ApprovalState state : {ApprovalState::kPending, ApprovalState::kApproved,
                              ApprovalState::kRejected, ApprovalState::kExpired}) {
    if (ApprovalStateName(state) == name) {
      return state;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown approval state \"", name, "\""));
}

ApprovalState EffectiveApprovalState(ApprovalState stored, absl::Time expires_at, absl::Time now) {
  if (stored == ApprovalState::kPending && now >= expires_at) {
    return ApprovalState::kExpired;
  }
  return stored;
}

absl::Status CheckCanDecide(const ApprovalTicket& ticket, absl::string_view decider, bool approve,
                            absl::Time now) {
  const ApprovalState state = EffectiveApprovalState(ticket.state, ticket.expires_at, now);
  if (state == ApprovalState::kExpired) {
    return absl::FailedPreconditionError(absl::StrCat(
        "approval request ", ticket.id, " expired at ",
        absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", ticket.expires_at, absl::UTCTimeZone()),
        "; nothing was changed. Ask again"));
  }
  if (state != ApprovalState::kPending) {
    return absl::FailedPreconditionError(
        absl::StrCat("approval request ", ticket.id, " was already ", ApprovalStateName(state),
                     ticket.decided_by.empty() ? "" : absl::StrCat(" by ", ticket.decided_by)));
  }
  if (approve && decider == ticket.requested_by) {
    return absl::PermissionDeniedError(
        absl::StrCat("two-person rule: ", decider, " asked for approval request ", ticket.id,
                     " and cannot approve it; a different principal must approve"));
  }
  return absl::OkStatus();
}

absl::Status ValidateApprovalId(absl::string_view id) {
  bool ok = id.size() == 11 && absl::StartsWith(id, "ap-");
  for (size_t i = 3; ok && i < id.size(); ++i) {
    ok = absl::ascii_isdigit(id[i]) || (id[i] >= 'a' && id[i] <= 'f');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("approval request id \"", absl::CHexEscape(id.substr(0, 64)),
                     "\" is malformed; ids look like ap-1a2b3c4d (see ringctl approvals list)"));
  }
  return absl::OkStatus();
}

}  // namespace ringwarden
