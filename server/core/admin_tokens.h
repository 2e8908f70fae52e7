// admin_tokens.h: admin credentials: who may call AdminService, with which role,
// until when.
//
//   AdminTokens tokens(store, clock, SecureRandomBytes);
//   ASSIGN_OR_RETURN(IssuedAdminToken t, tokens.Create("ci", Role::kReleaser, absl::Hours(24),
//                                                      "deploy pipeline", caller));
//   std::cout << t.token;  // shown once; the store keeps only its secret's SHA-256
//   ASSIGN_OR_RETURN(Principal p, tokens.Authenticate(t.token));
//
// Authenticate reads the store on every call (admin calls are rare), so a
// revocation takes effect at the next call on every replica. Every change is
// audited in the transaction that makes it. Thread-safety: safe from many
// threads; the store and clock must be, and must outlive this object.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/admin_token.h"
#include "common/clock.h"
#include "server/core/identity.h"
#include "server/storage/store.h"

namespace ringwarden {

// kBootstrapActor is who the audit log names for the first admin token.
inline constexpr char kBootstrapActor[] = "bootstrap-admin";

// IssuedAdminToken is a new token: what is stored and the text shown once.
struct IssuedAdminToken {
  AdminTokenRecord record;
  std::string token;
};

// ValidateAdminTokenName accepts 1-64 characters of [A-Za-z0-9._@-].
absl::Status ValidateAdminTokenName(absl::string_view name);

class AdminTokens {
 public:
  AdminTokens(AdminTokenStore& store, const Clock& clock, RandomBytesFn random);

  // Authenticate maps a token text to its principal. UNAUTHENTICATED when it is
  // malformed, unknown (or its secret is wrong), revoked or expired, each with
  // its own message; revocation and expiry are told only to a caller who
  // showed the right secret.
  absl::StatusOr<Principal> Authenticate(absl::string_view token) const;

  // Create issues a token for `name` with `role`, valid for `ttl`
  // (kMinAdminTokenTtl..kMaxAdminTokenTtl). PERMISSION_DENIED when `role` is
  // above the caller's own.
  absl::StatusOr<IssuedAdminToken> Create(const std::string& name, Role role, absl::Duration ttl,
                                          const std::string& reason, const Principal& by);

  // Bootstrap issues the first admin token. FAILED_PRECONDITION when an
  // unexpired, unrevoked admin token exists.
  absl::StatusOr<IssuedAdminToken> Bootstrap(const std::string& name, absl::Duration ttl);

  // List returns every token, oldest first (secrets were never stored).
  absl::StatusOr<std::vector<AdminTokenRecord>> List() const;

  // Revoke revokes token `id` from now on. FAILED_PRECONDITION when it is the
  // last live admin token, unless `force` (which needs a reason).
  absl::StatusOr<AdminTokenRecord> Revoke(const std::string& id, bool force,
                                          const std::string& reason, const Principal& by);

 private:
  absl::StatusOr<IssuedAdminToken> Issue(const std::string& name, Role role, absl::Duration ttl,
                                         const std::string& actor, const std::string& action,
                                         const std::string& reason, bool only_if_no_live_admin);

  AdminTokenStore& store_;
  const Clock& clock_;
  RandomBytesFn random_;
};

}  // namespace ringwarden
