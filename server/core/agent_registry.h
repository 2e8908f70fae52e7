// agent_registry.h: enrollment tokens and the identity of enrolled agents.
//
// Admins make enrollment tokens (short-lived, capped in uses, carrying the
// labels that decide a ring) and label, revoke or reset agents; agents enroll
// with a token. Every change is audited and reaches this replica's snapshot
// at once (other replicas at their next refresh), so a revocation shuts an
// agent out at its next call. How a credential is minted and checked is the
// transport's business (server/agent_credentials.h).
// Thread-safety: safe to share; state lives in the store and the snapshot.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/core/identity.h"
#include "server/core/snapshot.h"
#include "server/storage/store.h"

namespace ringwarden {

// NewEnrollmentToken is what an admin asks for.
struct NewEnrollmentToken {
  absl::Duration ttl;
  int32_t max_uses = 0;
  std::map<std::string, std::string> labels;
  std::string description;
};

// CreatedEnrollmentToken is the stored token and its text, shown once.
struct CreatedEnrollmentToken {
  EnrollmentTokenRecord record;
  std::string text;
};

// Enrollment is one agent asking to enroll.
struct Enrollment {
  std::string token_text;
  std::string agent_id;
  std::map<std::string, std::string> reported_labels;  // display only
  std::string hostname;
  bool holds_credential = false;  // the call carried this agent's current credential
};

class AgentRegistry {
 public:
  AgentRegistry(AgentDirectory& store, SnapshotHolder& snapshots, const Clock& clock)
      : store_(store), snapshots_(snapshots), clock_(clock) {}

  absl::StatusOr<CreatedEnrollmentToken> CreateToken(const NewEnrollmentToken& request,
                                                     const Principal& actor);
  absl::StatusOr<std::vector<EnrollmentTokenRecord>> ListTokens();
  absl::StatusOr<EnrollmentTokenRecord> RevokeToken(const std::string& id,
                                                    const std::string& reason,
                                                    const Principal& actor);

  // Enroll admits or refuses one enrollment (see AdmitEnrollment) and stores
  // the agent with its token's labels. PERMISSION_DENIED for a malformed token
  // too, never echoing the secret.
  absl::StatusOr<EnrolledAgent> Enroll(const Enrollment& request);

  // Label replaces an agent's assigned labels, and so its ring and pins.
  absl::StatusOr<AgentRecord> Label(const std::string& agent_id,
                                    const std::map<std::string, std::string>& labels,
                                    const std::string& reason, const Principal& actor);
  absl::StatusOr<AgentRecord> Revoke(const std::string& agent_id, const std::string& reason,
                                     const Principal& actor);
  absl::StatusOr<AgentRecord> Reset(const std::string& agent_id, const std::string& reason,
                                    const Principal& actor);

 private:
  void RefreshSnapshot();

  AgentDirectory& store_;
  SnapshotHolder& snapshots_;
  const Clock& clock_;
};

}  // namespace ringwarden
