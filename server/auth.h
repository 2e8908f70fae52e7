// auth.h: who is calling.
//
// Admin callers present "authorization: Bearer <token>"; a tokens file maps
// tokens to a principal name and a role (viewer < releaser < admin). Agents
// present the credential Enroll issued: a stateless token carrying the agent id
// and labels, MACed (HMAC-SHA256) with the fleet secret stored in the database,
// so any replica can check it without a database round trip.
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

// IssueAgentToken returns the credential for `identity`, MACed with `secret`.
std::string IssueAgentToken(const AgentIdentity& identity, absl::string_view secret);

// VerifyAgentToken checks an "authorization" header value against `secret` and
// that it was issued to `agent_id`; UNAUTHENTICATED otherwise.
absl::StatusOr<AgentIdentity> VerifyAgentToken(absl::string_view authorization_header,
                                               absl::string_view agent_id,
                                               absl::string_view secret);

}  // namespace ringwarden
