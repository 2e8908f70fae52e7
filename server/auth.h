// auth.h: who is calling.
//
// Admin callers present "authorization: Bearer <token>"; a tokens file maps
// tokens to a principal name and a role (viewer < releaser < admin). Agents
// are authenticated by server/agent_credentials.h.
// Thread-safety: immutable after construction; safe to share.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/identity.h"

namespace ringwarden {

// AdminAuthenticator maps bearer tokens to principals.
class AdminAuthenticator {
 public:
  AdminAuthenticator() = default;
  explicit AdminAuthenticator(std::map<std::string, Principal> by_token)
      : by_token_(std::move(by_token)) {}

  // LoadFile reads lines "TOKEN ROLE NAME" ('#' comments, blank lines ignored).
  // Tokens must be at least 16 characters.
  static absl::StatusOr<AdminAuthenticator> LoadFile(const std::string& path);

  // Authorize returns the principal for an "authorization" header value if its
  // role is at least `needed`: UNAUTHENTICATED without a known token,
  // PERMISSION_DENIED with too small a role.
  absl::StatusOr<Principal> Authorize(absl::string_view authorization_header, Role needed) const;

 private:
  std::map<std::string, Principal> by_token_;
};

}  // namespace ringwarden
