// approval.h: the two-person rule for dangerous steps.
//
// A rollout policy may require that a second principal approves the steps
// that can hurt the whole fleet at once: entering the broad ring, a forced
// promotion, a pin that holds agents below the newest completed version, a
// floor change and a policy change. This file decides which steps need
// approval and whether a request may still be decided; the core stores and
// replays the requests (server/core/approvals.h).
//
//   std::vector<GatedStep> steps =
//       StepsNeedingApproval(policy.two_person, StepAsk::Rollout(from, to, /*force=*/true));
//   if (!steps.empty()) { /* store a request, answer FAILED_PRECONDITION */ }
//
// Pure functions and value types; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/assignment.h"
#include "server/domain/rollout.h"

namespace ringwarden {

// The bounds of TwoPersonRule::approval_ttl: long enough for a colleague to
// answer, short enough that a stale request does not wait for a changed world.
inline constexpr absl::Duration kMinApprovalTtl = absl::Minutes(5);
inline constexpr absl::Duration kMaxApprovalTtl = absl::Hours(7 * 24);

// TwoPersonRule is a policy's setting of the rule; off by default.
struct TwoPersonRule {
  bool enabled = false;
  // How long a request waits for approval before it expires.
  absl::Duration approval_ttl = absl::Hours(24);

  // Validate returns INVALID_ARGUMENT when approval_ttl is outside
  // [kMinApprovalTtl, kMaxApprovalTtl].
  absl::Status Validate() const;
};

// GatedStep is one dangerous step the rule covers.
enum class GatedStep {
  kEnterBroad,    // a rollout starts handing its version to the broad ring
  kForce,         // a promotion with --force (before or regardless of the gate)
  kDowngradePin,  // a pin below the newest completed version, n-1 included
  kFloorChange,   // a release-signed floor upload
  kPolicyChange,  // a new version of a rollout policy
};

inline constexpr GatedStep kAllGatedSteps[] = {GatedStep::kEnterBroad, GatedStep::kForce,
                                               GatedStep::kDowngradePin, GatedStep::kFloorChange,
                                               GatedStep::kPolicyChange};

// GatedStepName returns e.g. "enter_broad", "downgrade_pin"; ParseGatedStep is its inverse.
absl::string_view GatedStepName(GatedStep step);
absl::StatusOr<GatedStep> ParseGatedStep(absl::string_view name);

// ApprovalKind is what an approval request replays when approved.
enum class ApprovalKind { kRolloutAction, kPin, kFloor, kPolicy };

// ApprovalKindName returns "rollout", "pin", "floor" or "policy"; ParseApprovalKind is its inverse.
absl::string_view ApprovalKindName(ApprovalKind kind);
absl::StatusOr<ApprovalKind> ParseApprovalKind(absl::string_view name);

// StepAsk describes what someone asked for, as the rule sees it.
struct StepAsk {
  ApprovalKind kind = ApprovalKind::kRolloutAction;
  // kRolloutAction: where the transition leads and whether it was forced.
  RolloutPosition from;
  RolloutPosition to;
  bool force = false;
  // kPin: the pin and the channel's newest completed version (0: none).
  PinPolicy pin;
  int64_t newest_completed = 0;

  static StepAsk Rollout(const RolloutPosition& from, const RolloutPosition& to, bool force);
  static StepAsk Pin(const PinPolicy& pin, int64_t newest_completed);
  static StepAsk Floor();
  static StepAsk Policy();
};

// DangerousSteps lists the steps of `ask` that the rule covers, whether or
// not the rule is on. A move into BROAD from any other state (a promotion
// from EARLY, a resume of a rollout halted in BROAD) enters the broad ring;
// a further wave inside BROAD does not.
std::vector<GatedStep> DangerousSteps(const StepAsk& ask);

// StepsNeedingApproval is DangerousSteps when `rule` is on, else empty.
std::vector<GatedStep> StepsNeedingApproval(const TwoPersonRule& rule, const StepAsk& ask);

// ApprovalState is where an approval request stands.
enum class ApprovalState { kPending, kApproved, kRejected, kExpired };

// ApprovalStateName returns "pending", "approved", "rejected" or "expired";
// ParseApprovalState is its inverse.
absl::string_view ApprovalStateName(ApprovalState state);
absl::StatusOr<ApprovalState> ParseApprovalState(absl::string_view name);

// EffectiveApprovalState is `stored`, except that a pending request whose
// expiry has passed at `now` is expired.
ApprovalState EffectiveApprovalState(ApprovalState stored, absl::Time expires_at, absl::Time now);

// ApprovalTicket is what deciding a request depends on.
struct ApprovalTicket {
  std::string id;
  std::string requested_by;
  ApprovalState state = ApprovalState::kPending;  // as stored
  absl::Time expires_at;
  std::string decided_by;
};

// CheckCanDecide says whether `decider` may approve (or, when `approve` is
// false, reject) `ticket` at `now`: FAILED_PRECONDITION when the request is
// expired or already decided, PERMISSION_DENIED when the one who asked tries
// to approve their own request (the two-person rule). Anyone allowed to
// decide may reject, the one who asked included (a withdrawal).
absl::Status CheckCanDecide(const ApprovalTicket& ticket, absl::string_view decider, bool approve,
                            absl::Time now);

// ValidateApprovalId accepts the ids the server hands out: "ap-" and 8
// lowercase hex digits. INVALID_ARGUMENT otherwise, saying what one looks like.
absl::Status ValidateApprovalId(absl::string_view id);

}  // namespace ringwarden
