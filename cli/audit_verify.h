// audit_verify.h: `ringctl audit verify`: pages through the whole audit log
// oldest first and checks its hash chain (common/audit_chain.h).
//
//   ASSIGN_OR_RETURN(AuditChainHead head,
//                    VerifyAuditLog(FetchFrom(client), {{1200, "9f86d081..."}}));
//   std::cout << head.ToString();  // "1234:ab12..."
//
// The paging is apart from the client so tests feed pages without a server.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/output.h"
#include "common/audit_chain.h"
#include "ringwarden/v1/admin.pb.h"

namespace ringwarden {

// kAuditVerifyPageSize is how many entries one ListAuditLog call asks for (the server's maximum).
inline constexpr int kAuditVerifyPageSize = 1000;

// AuditPageFetcher returns the entries after `after_seq`, oldest first; an
// empty page ends the log.
using AuditPageFetcher = std::function<absl::StatusOr<v1::ListAuditLogResponse>(int64_t after_seq)>;

// ChainEntryFrom returns the fields of `entry` that the chain covers.
AuditChainEntry ChainEntryFrom(const v1::AuditEntry& entry);

// VerifyAuditLog fetches pages until an empty one and verifies every entry
// against the previous one and the `expected` heads. Returns the head (seq is
// the number of entries), DATA_LOSS naming the first bad seq, or the fetch error.
absl::StatusOr<AuditChainHead> VerifyAuditLog(const AuditPageFetcher& fetch,
                                              std::vector<AuditChainHead> expected);

// RenderAuditVerified prints the verified head and the number of entries.
void RenderAuditVerified(const AuditChainHead& head, OutputFormat format, std::ostream& out);

}  // namespace ringwarden
