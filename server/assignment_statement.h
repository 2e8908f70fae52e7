// assignment_statement.h: the statement the server signs for each poll.
//
// BuildAssignment turns one poll's resolved answers into the Assignment that
// SignAssignment (common/trust) signs with --server-key: agent id and ring,
// a growing sequence, issue time and expiry, per channel the version with its
// manifest digest and size, revocations and the rollback directive, the
// emergency stop and the root version. AssignmentSequence makes the sequence.
//
//   Assignment a = BuildAssignment(identity.agent_id, ring, answers, stop,
//                                  {sequence.Next(now), now, ttl, trust.RootVersion()});
//   ASSIGN_OR_RETURN(std::string envelope, SignAssignment(a, server_key));
//
// A poll may name the statement its agent holds (GetAssignmentRequest.held);
// when HeldIsCurrent, the answer says so instead of signing the same statement
// again, which keeps the Ed25519 signature off the steady-state poll path.
//
// BuildAssignment and HeldIsCurrent are pure; AssignmentSequence is
// thread-safe (one atomic).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/trust/trust.h"
#include "ringwarden/v1/agent.pb.h"
#include "server/core/snapshot.h"
#include "server/domain/ring.h"

namespace ringwarden {

// --assignment-ttl: how long a signed assignment stays valid, and its bounds.
inline constexpr absl::Duration kDefaultAssignmentTtl = absl::Hours(12);
inline constexpr absl::Duration kMinAssignmentTtl = absl::Minutes(5);
inline constexpr absl::Duration kMaxAssignmentTtl = absl::Hours(24 * 7);

// AssignmentTerms are what every statement of one poll states besides the answers.
struct AssignmentTerms {
  int64_t sequence = 0;
  absl::Time issued;
  absl::Duration ttl = kDefaultAssignmentTtl;
  int64_t root_version = 0;
};

// BuildAssignment states `answers` (AssignmentSnapshot::Resolve) for agent
// `agent_id` in `ring`. A channel whose version has no known manifest digest
// (version 0, or a version the catalog does not hold) is stated as version 0:
// the server never signs a version it cannot name by digest, and an agent
// applies nothing for that channel.
Assignment BuildAssignment(const std::string& agent_id, Ring ring,
                           const std::vector<ChannelAnswer>& answers, bool emergency_stop,
                           const AssignmentTerms& terms);

// ValidateHeld checks the form of a poll's `held`: a sequence >= 1, an expiry
// after the issue time, and a digest of 64 lowercase hex characters.
// INVALID_ARGUMENT names the field.
absl::Status ValidateHeld(const v1::HeldAssignment& held);

// HeldIsCurrent reports whether the statement `held` names states exactly what
// `current` states: `current` with held's sequence, issue and expiry times in
// place of its own serializes (AssignmentPayload) to the bytes whose SHA-256 is
// held.payload_sha256. The statement must also have been issued no later than
// now + kMaxClockSkew and stay valid for at least `min_remaining` after `now`.
// Naming a statement proves and grants nothing: an agent that names one it
// does not hold is answered "current" and has nothing to act on.
bool HeldIsCurrent(const v1::HeldAssignment& held, const Assignment& current, absl::Time now,
                   absl::Duration min_remaining);

// AssignmentSequence numbers statements so that, for every agent, each one
// carries a larger sequence than the one before: the issue time in Unix
// microseconds, raised to one above the last number handed out whenever the
// clock has not moved on (or went back). Strictly increasing within the
// process; across restarts as long as the clock does not go back.
//
// Across replicas an agent may poll one and then another: their numbers are
// comparable only as far as their clocks agree. A replica whose clock lags by
// more than the time between two polls hands out a smaller number, which the
// agent refuses (it keeps running what it has and takes the next answer of a
// replica that is ahead); with NTP-synchronized clocks (milliseconds) and polls
// seconds apart this does not happen.
class AssignmentSequence {
 public:
  int64_t Next(absl::Time now);

 private:
  std::atomic<int64_t> last_{0};
};

}  // namespace ringwarden
