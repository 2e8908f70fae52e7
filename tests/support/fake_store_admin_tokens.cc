// FakeStore's admin token role, with PgStore's refusals and codes.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tests/support/fake_store.h"

namespace ringwarden::testing {

int FakeStore::LiveAdminTokens(const std::string& role, absl::Time at,
                               absl::string_view except_id) const {
  return static_cast<int>(
      std::count_if(admin_tokens_.begin(), admin_tokens_.end(), [&](const AdminTokenRecord& t) {
        return t.role == role && !t.revoked_at.has_value() && t.expires_at > at &&
               t.id != except_id;
      }));
}

absl::Status FakeStore::InsertAdminToken(const AdminTokenRecord& token,
                                         const std::string& refuse_if_live_role,
                                         const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("insert_admin_token"));
  if (!refuse_if_live_role.empty() &&
      LiveAdminTokens(refuse_if_live_role, token.created_at, "") > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("an unexpired ", refuse_if_live_role,
                     " token already exists; use `ringctl token create` with it"));
  }
  for (const AdminTokenRecord& t : admin_tokens_) {
    if (t.id == token.id) {
      return absl::AlreadyExistsError(absl::StrCat("admin token id ", token.id, " is taken"));
    }
  }
  if (token.secret_sha256.size() != 64 || token.expires_at <= token.created_at) {
    return absl::InternalError("admin token violates a check constraint");
  }
  admin_tokens_.push_back(token);
  AppendAudit(audit);
  return absl::OkStatus();
}

absl::StatusOr<AdminTokenRecord> FakeStore::GetAdminToken(const std::string& id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("get_admin_token"));
  for (const AdminTokenRecord& t : admin_tokens_) {
    if (t.id == id) {
      return t;
    }
  }
  return absl::NotFoundError(absl::StrCat("no admin token ", id));
}

absl::StatusOr<std::vector<AdminTokenRecord>> FakeStore::ListAdminTokens() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("list_admin_tokens"));
  return admin_tokens_;
}

absl::Status FakeStore::RevokeAdminToken(const std::string& id, absl::Time at,
                                         const std::string& by, const std::string& keep_live_role,
                                         const AuditRecord& audit) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(BeginCall("revoke_admin_token"));
  auto it = std::find_if(admin_tokens_.begin(), admin_tokens_.end(),
                         [&](const AdminTokenRecord& t) { return t.id == id; });
  if (it == admin_tokens_.end()) {
    return absl::NotFoundError(absl::StrCat("no admin token ", id));
  }
  if (it->revoked_at.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat("admin token ", id, " was already revoked"));
  }
  if (!keep_live_role.empty() && it->role == keep_live_role && it->expires_at > at &&
      LiveAdminTokens(keep_live_role, at, id) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("admin token ", id, " is the last unexpired ", keep_live_role, " token"));
  }
  it->revoked_at = at;
  it->revoked_by = by;
  AppendAudit(audit);
  return absl::OkStatus();
}

}  // namespace ringwarden::testing
