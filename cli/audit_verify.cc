#include "cli/audit_verify.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "common/status_macros.h"

namespace ringwarden {

AuditChainEntry ChainEntryFrom(const v1::AuditEntry& e) {
  AuditChainEntry out;
  out.seq = e.seq();
  out.prev_hash = e.prev_hash();
  out.entry_hash = e.entry_hash();
  out.at_unix_micros = e.at_unix_micros();
  out.actor = e.actor();
  out.action = e.action();
  out.rollout_id = e.rollout_id();
  out.from_state = e.from_state();
  out.to_state = e.to_state();
  out.reason = e.reason();
  out.evidence_json = e.evidence_json();
  return out;
}

absl::StatusOr<AuditChainHead> VerifyAuditLog(const AuditPageFetcher& fetch,
                                              std::vector<AuditChainHead> expected) {
  AuditChainVerifier verifier(std::move(expected));
  while (true) {
    ASSIGN_OR_RETURN(v1::ListAuditLogResponse page, fetch(verifier.last_seq()));
    if (page.entries().empty()) {
      break;
    }
    // Every accepted entry raises last_seq, so the next page starts further on.
    for (const v1::AuditEntry& e : page.entries()) {
      RETURN_IF_ERROR(verifier.Add(ChainEntryFrom(e)));
    }
  }
  return verifier.Finish();
}

void RenderAuditVerified(const AuditChainHead& head, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << nlohmann::json{{"intact", true}, {"entries", head.seq}, {"head", head.ToString()}}.dump()
        << "\n";
    return;
  }
  if (head.seq == 0) {
    out << "audit log intact: no entries yet\n";
    return;
  }
  out << "audit log intact: " << head.seq << " entries\n"
      << "head " << head.ToString() << "\n"
      << "record the head; `ringctl audit verify --expect " << head.ToString()
      << "` later proves the log still holds it unchanged\n";
}

}  // namespace ringwarden
