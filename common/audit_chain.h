// audit_chain.h: the audit log's hash chain: the canonical encoding of an
// entry, its hash, and a verifier that walks the chain oldest first.
//
//   AuditChainVerifier verifier({{1200, "9f86d081..."}});  // heads recorded earlier
//   for (const AuditChainEntry& e : page) {
//     RETURN_IF_ERROR(verifier.Add(e));  // DATA_LOSS "seq 7: edited entry: ..."
//   }
//   ASSIGN_OR_RETURN(AuditChainHead head, verifier.Finish());  // head.ToString() "1234:ab12..."
//
// PostgreSQL computes the same hash in a trigger (migrations/0005_audit_chain.sql);
// both must agree byte for byte. Pure: no I/O. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

// kAuditGenesisHash is the prev_hash of seq 1.
inline constexpr absl::string_view kAuditGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// AuditChainEntry is one audit entry as the chain covers it.
struct AuditChainEntry {
  int64_t seq = 0;
  std::string prev_hash;
  std::string entry_hash;
  int64_t at_unix_micros = 0;
  std::string actor;
  std::string action;
  std::string rollout_id;  // "" when the entry concerns no rollout
  std::string from_state;
  std::string to_state;
  std::string reason;
  std::string evidence_json;  // exactly as hashed: PostgreSQL's jsonb text
};

// AuditChainEncoding returns the bytes whose SHA-256 is the entry_hash (version 1):
// "ringwarden.audit.v1\n" followed by ten netstrings "<byte length>:<bytes>," of
// seq, prev_hash, at_unix_micros (decimal), actor, action, rollout_id, from_state,
// to_state, reason and evidence_json. The length prefixes make it unambiguous
// whatever bytes a field holds. `entry.entry_hash` is not part of it.
std::string AuditChainEncoding(const AuditChainEntry& entry);

// AuditChainHash returns the lowercase hex SHA-256 of AuditChainEncoding(entry).
std::string AuditChainHash(const AuditChainEntry& entry);

// AuditChainHead names one entry of the chain by position and hash; operators
// record it ("SEQ:HASH") to check later that the chain still holds it.
struct AuditChainHead {
  int64_t seq = 0;
  std::string hash;
  // ToString returns "SEQ:HASH".
  std::string ToString() const;
};

// ParseAuditChainHead parses "SEQ:HASH": SEQ a positive decimal, HASH 64
// lowercase hex characters. INVALID_ARGUMENT names what is wrong.
absl::StatusOr<AuditChainHead> ParseAuditChainHead(absl::string_view text);

// AuditChainVerifier checks a chain fed oldest first, one entry at a time, so a
// log of any length verifies in constant memory. Every failure is DATA_LOSS
// with a message "seq N: <what>: <detail>" naming the first bad seq; what is
// one of "malformed entry", "missing entry", "edited entry", "broken link",
// "fork" and "expected head absent". After a failure every call returns it.
class AuditChainVerifier {
 public:
  // `expected` are heads recorded earlier; each must still be in the chain
  // with the same hash (a later head proves the earlier ones).
  explicit AuditChainVerifier(std::vector<AuditChainHead> expected = {});

  // Add checks the next entry: seq follows the previous one (1 first),
  // prev_hash links to the previous entry_hash, entry_hash is the hash of the
  // entry's contents, and an expected head at this seq has this hash.
  absl::Status Add(const AuditChainEntry& entry);

  // Finish checks that no expected head lies beyond the end of the chain and
  // returns the head: the last entry (seq 0 and kAuditGenesisHash when empty).
  // seq is also the number of entries.
  absl::StatusOr<AuditChainHead> Finish();

  // last_seq is the seq of the last entry accepted (0 before the first).
  int64_t last_seq() const { return last_seq_; }

 private:
  absl::Status Fail(int64_t seq, absl::string_view what, absl::string_view detail);

  std::multimap<int64_t, std::string> expected_;
  int64_t last_seq_ = 0;
  std::string last_hash_{kAuditGenesisHash};
  absl::Status failure_;
};

}  // namespace ringwarden
