#include "server/domain/enrollment.h"

#include "absl/strings/str_cat.h"

namespace ringwarden {

absl::Status ValidateNewEnrollmentToken(absl::Duration ttl, int32_t max_uses) {
  if (ttl < kMinEnrollmentTokenTtl || ttl > kMaxEnrollmentTokenTtl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ttl must be between ", absl::FormatDuration(kMinEnrollmentTokenTtl), " and ",
        absl::FormatDuration(kMaxEnrollmentTokenTtl), "; got ", absl::FormatDuration(ttl)));
  }
  if (max_uses < 1 || max_uses > kMaxEnrollmentTokenUses) {
    return absl::InvalidArgumentError(absl::StrCat("max_uses must be between 1 and ",
                                                   kMaxEnrollmentTokenUses, "; got ", max_uses));
  }
  return absl::OkStatus();
}

absl::Status AdmitEnrollment(const EnrollmentTokenState& token,
                             const std::optional<ExistingAgent>& existing, bool holds_credential,
                             const std::string& agent_id, absl::Time now) {
  if (token.revoked_at.has_value()) {
    return absl::PermissionDeniedError(
        absl::StrCat("enrollment token ", token.id, " was revoked at ",
                     absl::FormatTime(*token.revoked_at, absl::UTCTimeZone())));
  }
  if (now >= token.expires_at) {
    return absl::PermissionDeniedError(
        absl::StrCat("enrollment token ", token.id, " expired at ",
                     absl::FormatTime(token.expires_at, absl::UTCTimeZone()),
                     "; ask for a new one (ringctl enroll-token create)"));
  }
  if (token.uses >= token.max_uses) {
    return absl::PermissionDeniedError(absl::StrCat("enrollment token ", token.id,
                                                    " is spent: ", token.uses, " of ",
                                                    token.max_uses, " uses taken"));
  }
  if (existing.has_value()) {
    if (existing->revoked_at.has_value()) {
      return absl::PermissionDeniedError(
          absl::StrCat("agent ", agent_id, " was revoked at ",
                       absl::FormatTime(*existing->revoked_at, absl::UTCTimeZone()),
                       "; an admin must reset it (ringctl agents reset) before it enrolls again"));
    }
    if (!existing->reenroll_allowed && !holds_credential) {
      return absl::PermissionDeniedError(absl::StrCat(
          "agent ", agent_id,
          " is already enrolled; enrolling it again needs its current credential or an admin "
          "reset (ringctl agents reset ",
          agent_id, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status AdmitCredential(const AgentGate* gate, const std::string& agent_id,
                             absl::Time issued_at) {
  if (gate == nullptr) {
    return absl::OkStatus();
  }
  if (gate->revoked_at.has_value()) {
    return absl::PermissionDeniedError(
        absl::StrCat("agent ", agent_id, " was revoked at ",
                     absl::FormatTime(*gate->revoked_at, absl::UTCTimeZone())));
  }
  if (gate->credentials_valid_after.has_value() && issued_at < *gate->credentials_valid_after) {
    return absl::PermissionDeniedError(absl::StrCat(
        "this credential of agent ", agent_id, " predates the reset at ",
        absl::FormatTime(*gate->credentials_valid_after, absl::UTCTimeZone()), "; enroll again"));
  }
  return absl::OkStatus();
}

}  // namespace ringwarden
