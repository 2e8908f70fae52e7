// auth.h: who is calling.
//
// Admin callers present "authorization: Bearer <token>"; the token is looked up
// in the database (AdminTokens) on every call, which gives its principal name
// and role (viewer < releaser < admin). Agents are authenticated by
// server/agent_credentials.h.
// Thread-safety: safe to share; Authorize reads the database, so it runs on the
// admin work queue, never on a gRPC thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/admin_tokens.h"
#include "server/core/identity.h"

namespace ringwarden {

// AdminAuthenticator maps bearer tokens to principals through `tokens`, which
// must outlive it.
class AdminAuthenticator {
 public:
  explicit AdminAuthenticator(const AdminTokens& tokens) : tokens_(tokens) {}

  // Authorize returns the principal for an "authorization" header value if its
  // role is at least `needed`: UNAUTHENTICATED without credentials or with a
  // malformed, unknown, revoked or expired token (AdminTokens::Authenticate
  // says which), PERMISSION_DENIED with too small a role.
  absl::StatusOr<Principal> Authorize(absl::string_view authorization_header, Role needed) const;

 private:
  const AdminTokens& tokens_;
};

}  // namespace ringwarden
