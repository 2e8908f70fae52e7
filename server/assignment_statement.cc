#include "server/assignment_statement.h"

#include <algorithm>

#include "common/sha256.h"

namespace ringwarden {

Assignment BuildAssignment(const std::string& agent_id, Ring ring,
                           const std::vector<ChannelAnswer>& answers, bool emergency_stop,
                           const AssignmentTerms& terms) {
  Assignment a;
  a.agent_id = agent_id;
  a.ring = std::string(RingName(ring));
  a.sequence = terms.sequence;
  a.issued = terms.issued;
  a.expires = terms.issued + terms.ttl;
  a.emergency_stop = emergency_stop;
  a.root_version = terms.root_version;
  a.channels.reserve(answers.size());
  for (const ChannelAnswer& answer : answers) {
    AssignedChannel c;
    c.channel = answer.channel;
    c.revoked_versions = answer.revoked;
    const ManifestDigest* manifest = answer.manifest;
    if (answer.assignment.version != 0 && manifest != nullptr &&
        !manifest->manifest_sha256.empty()) {
      c.version = answer.assignment.version;
      c.manifest_sha256 = manifest->manifest_sha256;
      c.size = manifest->size;
      c.rollback = answer.assignment.rollback;
    }
    a.channels.push_back(std::move(c));
  }
  return a;
}

absl::Status ValidateHeld(const v1::HeldAssignment& held) {
  if (held.sequence() < 1) {
    return absl::InvalidArgumentError("held.sequence must be >= 1");
  }
  if (held.expires_unix_ms() <= held.issued_unix_ms()) {
    return absl::InvalidArgumentError("held.expires_unix_ms must be after held.issued_unix_ms");
  }
  if (!IsSha256Hex(held.payload_sha256())) {
    return absl::InvalidArgumentError(
        "held.payload_sha256 must be 64 lowercase hex characters (the SHA-256 of the statement's "
        "payload)");
  }
  return absl::OkStatus();
}

bool HeldIsCurrent(const v1::HeldAssignment& held, const Assignment& current, absl::Time now,
                   absl::Duration min_remaining) {
  const absl::Time issued = absl::FromUnixMillis(held.issued_unix_ms());
  const absl::Time expires = absl::FromUnixMillis(held.expires_unix_ms());
  if (issued > now + kMaxClockSkew || expires - now < min_remaining) {
    return false;
  }
  thread_local std::string payload;
  AssignmentPayloadInto(current, held.sequence(), issued, expires, payload);
  return Sha256HexEquals(payload, held.payload_sha256());
}

int64_t AssignmentSequence::Next(absl::Time now) {
  const int64_t clock_micros = absl::ToUnixMicros(now);
  int64_t last = last_.load(std::memory_order_relaxed);
  int64_t next = 0;
  do {
    next = std::max(clock_micros, last + 1);
  } while (!last_.compare_exchange_weak(last, next, std::memory_order_relaxed));
  return next;
}

}  // namespace ringwarden
