#include "server/core/admin_tokens.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

// Evidence is what the audit log keeps of a token: never its secret or hash.
std::string TokenEvidence(const AdminTokenRecord& t) {
  return nlohmann::json{{"token_id", t.id},
                        {"name", t.name},
                        {"role", t.role},
                        {"expires_at", AdminTokenTime(t.expires_at)}}
      .dump();
}

}  // namespace

absl::Status ValidateAdminTokenName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    ok = ok && (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '@' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("token name \"", absl::CHexEscape(name.substr(0, 64)),
                     "\" must be 1-64 characters of letters, digits and . _ @ -"));
  }
  return absl::OkStatus();
}

AdminTokens::AdminTokens(AdminTokenStore& store, const Clock& clock, RandomBytesFn random)
    : store_(store), clock_(clock), random_(std::move(random)) {}

absl::StatusOr<Principal> AdminTokens::Authenticate(absl::string_view token) const {
  ASSIGN_OR_RETURN(AdminTokenParts parts, ParseAdminToken(token));
  absl::StatusOr<AdminTokenRecord> stored = store_.GetAdminToken(parts.id);
  if (absl::IsNotFound(stored.status()) ||
      (stored.ok() && !AdminTokenSecretMatches(parts.secret, stored->secret_sha256))) {
    // A wrong secret reads like an unknown id: the answer tells nothing about the secret.
    return absl::UnauthenticatedError(absl::StrCat("unknown admin token rwt_", parts.id,
                                                   "_...; check --token or RINGWARDEN_TOKEN"));
  }
  if (!stored.ok()) {
    return stored.status();
  }
  if (stored->revoked_at.has_value()) {
    return absl::UnauthenticatedError(
        absl::StrCat("admin token ", stored->id, " (", stored->name, ") was revoked at ",
                     AdminTokenTime(*stored->revoked_at), "; ask an admin for a new one"));
  }
  if (clock_.Now() >= stored->expires_at) {
    return absl::UnauthenticatedError(
        absl::StrCat("admin token ", stored->id, " (", stored->name, ") expired at ",
                     AdminTokenTime(stored->expires_at), "; ask an admin for a new one"));
  }
  absl::StatusOr<Role> role = ParseRole(stored->role);
  if (!role.ok()) {
    return absl::InternalError(absl::StrCat("stored role of admin token ", stored->id,
                                            " cannot be read: ", role.status().message()));
  }
  return Principal{stored->name, *role};
}

absl::StatusOr<IssuedAdminToken> AdminTokens::Issue(const std::string& name, Role role,
                                                    absl::Duration ttl, const std::string& actor,
                                                    const std::string& action,
                                                    const std::string& reason,
                                                    bool only_if_no_live_admin) {
  RETURN_IF_ERROR(ValidateAdminTokenName(name));
  RETURN_IF_ERROR(ValidateAdminTokenTtl(ttl));
  if (reason.size() > 1024) {
    return absl::InvalidArgumentError("reason must be at most 1024 characters");
  }
  const AdminTokenParts parts = NewAdminTokenParts(random_);
  IssuedAdminToken issued;
  AdminTokenRecord& t = issued.record;
  t.id = parts.id;
  t.name = name;
  t.role = std::string(RoleName(role));
  t.secret_sha256 = AdminTokenSecretSha256(parts.secret);
  t.created_at = clock_.Now();
  t.created_by = actor;
  t.expires_at = t.created_at + ttl;
  AuditRecord audit;
  audit.actor = actor;
  audit.action = action;
  audit.reason = reason;
  audit.evidence_json = TokenEvidence(t);
  RETURN_IF_ERROR(store_.InsertAdminToken(
      t, only_if_no_live_admin ? std::string(RoleName(Role::kAdmin)) : std::string(), audit));
  issued.token = FormatAdminToken(parts);
  return issued;
}

absl::StatusOr<IssuedAdminToken> AdminTokens::Create(const std::string& name, Role role,
                                                     absl::Duration ttl, const std::string& reason,
                                                     const Principal& by) {
  if (static_cast<int>(role) > static_cast<int>(by.role)) {
    return absl::PermissionDeniedError(absl::StrCat(by.name, " has role ", RoleName(by.role),
                                                    "; it cannot create a token with role ",
                                                    RoleName(role), ", above its own"));
  }
  return Issue(name, role, ttl, by.name, "token.create", reason, /*only_if_no_live_admin=*/false);
}

absl::StatusOr<IssuedAdminToken> AdminTokens::Bootstrap(const std::string& name,
                                                        absl::Duration ttl) {
  return Issue(name, Role::kAdmin, ttl, kBootstrapActor, "token.bootstrap",
               "first admin token, written by ringwarden-server bootstrap-admin",
               /*only_if_no_live_admin=*/true);
}

absl::StatusOr<std::vector<AdminTokenRecord>> AdminTokens::List() const {
  return store_.ListAdminTokens();
}

absl::StatusOr<AdminTokenRecord> AdminTokens::Revoke(const std::string& id, bool force,
                                                     const std::string& reason,
                                                     const Principal& by) {
  if (!IsAdminTokenId(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id \"", absl::CHexEscape(id.substr(0, 64)),
                     "\" must be 12 lowercase hex characters (see ringctl token list)"));
  }
  if (force && reason.empty()) {
    return absl::InvalidArgumentError("--force needs --reason (it is audited)");
  }
  if (reason.size() > 1024) {
    return absl::InvalidArgumentError("reason must be at most 1024 characters");
  }
  ASSIGN_OR_RETURN(AdminTokenRecord token, store_.GetAdminToken(id));
  const absl::Time now = clock_.Now();
  AuditRecord audit;
  audit.actor = by.name;
  audit.action = force ? "token.revoke_forced" : "token.revoke";
  audit.reason = reason;
  audit.evidence_json = TokenEvidence(token);
  RETURN_IF_ERROR(store_.RevokeAdminToken(
      id, now, by.name, force ? std::string() : std::string(RoleName(Role::kAdmin)), audit));
  token.revoked_at = now;
  token.revoked_by = by.name;
  return token;
}

}  // namespace ringwarden
