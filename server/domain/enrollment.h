// enrollment.h: who may enroll, and what an agent may present afterwards.
//
// An enrollment token is short-lived, capped in uses and revocable; it carries
// the labels every agent enrolled with it gets (the only labels, with an
// admin's, that decide a ring or a pin). An id that is already enrolled takes
// no new enrollment unless the caller holds that agent's current credential or
// an admin reset the id. After enrollment, a credential is refused when the
// agent was revoked or the credential predates a reset.
// Pure functions over value types; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ringwarden {

// Bounds a token's creator must respect.
inline constexpr absl::Duration kMinEnrollmentTokenTtl = absl::Minutes(1);
inline constexpr absl::Duration kMaxEnrollmentTokenTtl = absl::Hours(24 * 30);
inline constexpr int32_t kMaxEnrollmentTokenUses = 1'000'000;

// EnrollmentTokenState is what enrollment checks about a stored token.
struct EnrollmentTokenState {
  std::string id;
  int32_t max_uses = 0;
  int32_t uses = 0;
  absl::Time expires_at;
  std::optional<absl::Time> revoked_at;
};

// ExistingAgent is what enrollment checks about an id already enrolled.
struct ExistingAgent {
  std::optional<absl::Time> revoked_at;
  bool reenroll_allowed = false;
};

// ValidateNewEnrollmentToken checks the terms of a token about to be made:
// INVALID_ARGUMENT naming the term out of bounds.
absl::Status ValidateNewEnrollmentToken(absl::Duration ttl, int32_t max_uses);

// AdmitEnrollment decides one enrollment: PERMISSION_DENIED for a revoked,
// expired or spent token, a revoked agent, or an enrolled id re-enrolling
// without its current credential (`holds_credential`) or an admin reset.
absl::Status AdmitEnrollment(const EnrollmentTokenState& token,
                             const std::optional<ExistingAgent>& existing, bool holds_credential,
                             const std::string& agent_id, absl::Time now);

// AgentGate is what every replica knows about one agent besides its id: the
// labels an admin or its token gave it, and whether its credentials stand.
struct AgentGate {
  std::map<std::string, std::string> labels;
  std::optional<absl::Time> revoked_at;
  // Credentials issued before this instant are refused (an admin reset).
  std::optional<absl::Time> credentials_valid_after;

  // empty: nothing on record, as for an agent with no gate at all.
  bool empty() const {
    return labels.empty() && !revoked_at.has_value() && !credentials_valid_after.has_value();
  }
  friend bool operator==(const AgentGate& a, const AgentGate& b) {
    return a.labels == b.labels && a.revoked_at == b.revoked_at &&
           a.credentials_valid_after == b.credentials_valid_after;
  }
  friend bool operator!=(const AgentGate& a, const AgentGate& b) { return !(a == b); }
};

// AdmitCredential decides whether a credential for `agent_id` issued at
// `issued_at` may act: PERMISSION_DENIED for a revoked agent or a credential
// that predates a reset. `gate` is null for agents with nothing on record.
absl::Status AdmitCredential(const AgentGate* gate, const std::string& agent_id,
                             absl::Time issued_at);

}  // namespace ringwarden
