// PgStore's admin token role: the hashed admin credentials. Bootstrap and
// revocation check "is another live admin token there?" under a table lock,
// so two admins revoking each other's last tokens at once cannot both succeed.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/admin_token.h"
#include "common/status_macros.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "server/postgres/pg_store_internal.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

std::vector<AdminTokenRecord> AdminTokensFromResult(const pqxx::result& result) {
  std::vector<AdminTokenRecord> out;
  out.reserve(result.size());
  for (const pqxx::row& row : result) {
    AdminTokenRecord t;
    t.id = row[0].as<std::string>();
    t.name = row[1].as<std::string>();
    t.role = row[2].as<std::string>();
    t.secret_sha256 = row[3].as<std::string>();
    t.created_at = TimeFromMicros(row[4]);
    t.created_by = row[5].as<std::string>();
    t.expires_at = TimeFromMicros(row[6]);
    t.revoked_at = OptionalTimeFromMicros(row[7]);
    t.revoked_by = row[8].as<std::string>();
    out.push_back(std::move(t));
  }
  return out;
}

int64_t CountLive(PgTx& tx, const std::string& role, absl::Time at, const std::string& except_id) {
  return tx.Exec1(sql::kCountLiveAdminTokens, role, ToMicros(at), except_id)[0].as<int64_t>();
}

}  // namespace

absl::Status PgStore::InsertAdminToken(const AdminTokenRecord& token,
                                       const std::string& refuse_if_live_role,
                                       const AuditRecord& audit) {
  return pool_->Run("insert_admin_token", "storing the admin token", [&](PgTx& tx) -> absl::Status {
    if (!refuse_if_live_role.empty()) {
      tx.Exec(sql::kLockAdminTokens);
      if (CountLive(tx, refuse_if_live_role, token.created_at, "") > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("an unexpired ", refuse_if_live_role,
                         " token already exists; use `ringctl token create` with it"));
      }
    }
    tx.Exec(sql::kInsertAdminToken, token.id, token.name, token.role, token.secret_sha256,
            ToMicros(token.created_at), token.created_by, ToMicros(token.expires_at));
    AppendAudit(tx, audit);
    return absl::OkStatus();
  });
}

absl::StatusOr<AdminTokenRecord> PgStore::GetAdminToken(const std::string& id) {
  std::vector<AdminTokenRecord> found;
  RETURN_IF_ERROR(pool_->Run("get_admin_token", "reading the admin token", [&](PgTx& tx) {
    found = AdminTokensFromResult(tx.Exec(sql::kListAdminTokens, id));
    return absl::OkStatus();
  }));
  if (id.empty() || found.empty()) {
    return absl::NotFoundError(absl::StrCat("no admin token ", id));
  }
  return std::move(found.front());
}

absl::StatusOr<std::vector<AdminTokenRecord>> PgStore::ListAdminTokens() {
  std::vector<AdminTokenRecord> out;
  RETURN_IF_ERROR(pool_->Run("list_admin_tokens", "listing admin tokens", [&](PgTx& tx) {
    out = AdminTokensFromResult(tx.Exec(sql::kListAdminTokens, ""));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PgStore::RevokeAdminToken(const std::string& id, absl::Time at, const std::string& by,
                                       const std::string& keep_live_role,
                                       const AuditRecord& audit) {
  return pool_->Run(
      "revoke_admin_token", "revoking the admin token", [&](PgTx& tx) -> absl::Status {
        tx.Exec(sql::kLockAdminTokens);
        const std::vector<AdminTokenRecord> found =
            AdminTokensFromResult(tx.Exec(sql::kListAdminTokens, id));
        if (id.empty() || found.empty()) {
          return absl::NotFoundError(absl::StrCat("no admin token ", id));
        }
        const AdminTokenRecord& token = found.front();
        if (token.revoked_at.has_value()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "admin token ", id, " was already revoked at ", AdminTokenTime(*token.revoked_at)));
        }
        if (!keep_live_role.empty() && token.role == keep_live_role && token.expires_at > at &&
            CountLive(tx, keep_live_role, at, id) == 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("admin token ", id, " is the last unexpired ", keep_live_role,
                           " token; revoking it would lock everyone out. Create another ",
                           keep_live_role, " token first, or pass --force"));
        }
        tx.Exec(sql::kRevokeAdminToken, id, ToMicros(at), by);
        AppendAudit(tx, audit);
        return absl::OkStatus();
      });
}

}  // namespace ringwarden
