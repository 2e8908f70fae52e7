// audit_chain_entry.h: an AuditRecord as the audit hash chain covers it
// (common/audit_chain.h), for stores and tests that check or build the chain.
// Thread-safe: a pure function.
#pragma once

#include "absl/time/time.h"
#include "common/audit_chain.h"
#include "server/storage/records.h"

namespace ringwarden {

// ChainEntryOf returns the fields of `a` that the audit hash chain covers.
inline AuditChainEntry ChainEntryOf(const AuditRecord& a) {
  AuditChainEntry e;
  e.seq = a.seq;
  e.prev_hash = a.prev_hash;
  e.entry_hash = a.entry_hash;
  e.at_unix_micros = absl::ToUnixMicros(a.at);
  e.actor = a.actor;
  e.action = a.action;
  e.rollout_id = a.rollout_id;
  e.from_state = a.from_state;
  e.to_state = a.to_state;
  e.reason = a.reason;
  e.evidence_json = a.evidence_json;
  return e;
}

}  // namespace ringwarden
