// pg_store_internal.h: what the files implementing PgStore share.
// Private to ringwarden_postgres (it includes pqxx); no public header includes it.
//
// Conversions between rows and records, the text[] parameters that carry
// domain words into SQL, and the audit append every change commits with.
// Thread-safety: pure functions, except AppendAudit (the caller's transaction).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/storage/records.h"

namespace ringwarden {

// Timestamps cross the driver as Unix microseconds (see sql.h).
inline int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time TimeFromMicros(const pqxx::field& f) {
  return absl::FromUnixMicros(f.as<int64_t>());
}
// OptionalTimeFromMicros maps SQL NULL to nullopt.
std::optional<absl::Time> OptionalTimeFromMicros(const pqxx::field& f);

// TextArray writes `values` as a PostgreSQL array literal for a `$n::text[]`
// parameter: every element quoted and escaped, so any text is data.
// (libpqxx 6 cannot pass a container as an array parameter.)
std::string TextArray(const std::vector<std::string>& values);
// KeyIdsFromJson reads a `array_to_json(key_ids)::text` column.
std::vector<std::string> KeyIdsFromJson(const pqxx::field& field);
// RingOrderParam is the ring names in kAllRings order, as a text[] parameter.
const std::string& RingOrderParam();
// FinalStatesParam is FinalStateNames() as a text[] parameter.
const std::string& FinalStatesParam();

// ParseStored reads back a stored domain word; a value this build cannot parse
// is INTERNAL (the stored data is wrong, not the request).
template <typename T>
absl::StatusOr<T> ParseStored(absl::StatusOr<T> parsed, absl::string_view column) {
  if (!parsed.ok()) {
    return absl::InternalError(
        absl::StrCat("stored ", column, " cannot be read: ", parsed.status().message()));
  }
  return parsed;
}

// RolloutFromRow reads the columns of sql::kGetRollout / kListRollouts.
absl::StatusOr<RolloutRecord> RolloutFromRow(const pqxx::row& row);
absl::StatusOr<std::vector<RolloutRecord>> RolloutsFromResult(const pqxx::result& result);

// RootsFromResult / FloorsFromResult read the columns of sql::kListRoots / kListFloors.
std::vector<RootRecord> RootsFromResult(const pqxx::result& result);
std::vector<FloorRecord> FloorsFromResult(const pqxx::result& result);

// AgentFromRow reads the columns of RINGWARDEN_AGENT_COLUMNS (sql.h).
absl::StatusOr<AgentRecord> AgentFromRow(const pqxx::row& row);
// AgentGatesFromResult reads sql::kListAgentGates.
absl::flat_hash_map<std::string, AgentGate> AgentGatesFromResult(const pqxx::result& result);

// AppendAudit adds `audit` to the log in `tx`, so it commits with the change it records.
void AppendAudit(PgTx& tx, const AuditRecord& audit);

// ClaimApproval decides the request `audit.approval` names as approved in
// `tx`, with the approver's audit entry, so it commits with the change that
// executes it; FAILED_PRECONDITION when the request is no longer pending or
// has expired. Nothing to do without a claim.
absl::Status ClaimApproval(PgTx& tx, const AuditRecord& audit);

}  // namespace ringwarden
