// PgStore's audit role: the append-only, hash-chained trail. Changes append
// their entry in their own transaction (AppendAudit), and the table's trigger
// chains it (migrations/0005_audit_chain.sql); ListAudit* read.
#include <utility>

#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

// AuditFromRow reads the columns of sql::kListAudit.
AuditRecord AuditFromRow(const pqxx::row& row) {
  AuditRecord a;
  a.id = row[0].as<int64_t>();
  a.at = TimeFromMicros(row[1]);
  a.actor = row[2].as<std::string>();
  a.action = row[3].as<std::string>();
  a.rollout_id = row[4].as<std::string>();
  a.from_state = row[5].as<std::string>();
  a.to_state = row[6].as<std::string>();
  a.reason = row[7].as<std::string>();
  a.evidence_json = row[8].as<std::string>();
  a.seq = row[9].as<int64_t>();
  a.prev_hash = row[10].as<std::string>();
  a.entry_hash = row[11].as<std::string>();
  return a;
}

}  // namespace

void AppendAudit(PgTx& tx, const AuditRecord& a) {
  tx.Exec(sql::kInsertAudit, a.actor, a.action, a.rollout_id, a.from_state, a.to_state, a.reason,
          a.evidence_json);
}

absl::StatusOr<std::vector<AuditRecord>> PgStore::ListAudit(const std::string& rollout_id,
                                                            int limit) {
  std::vector<AuditRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_audit", "reading the audit log", [&](PgTx& tx) {
    out.clear();
    for (const pqxx::row& row : tx.Exec(sql::kListAudit, rollout_id, limit)) {
      out.push_back(AuditFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<AuditRecord>> PgStore::ListAuditOldestFirst(
    const std::string& rollout_id, int64_t after_seq, int limit) {
  std::vector<AuditRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_audit_oldest_first", "reading the audit log", [&](PgTx& tx) {
    out.clear();
    for (const pqxx::row& row : tx.Exec(sql::kListAuditOldestFirst, rollout_id, after_seq, limit)) {
      out.push_back(AuditFromRow(row));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace ringwarden
