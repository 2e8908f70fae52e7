#include "server/assignment_statement.h"

#include <algorithm>

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
