#include "server/auth.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ringwarden {
namespace {

constexpr absl::string_view kBearer = "Bearer ";

absl::StatusOr<absl::string_view> BearerToken(absl::string_view header) {
  if (!absl::ConsumePrefix(&header, kBearer) || header.empty()) {
    return absl::UnauthenticatedError(
        "missing credentials: send metadata \"authorization: Bearer <token>\"");
  }
  return header;
}

}  // namespace

absl::StatusOr<Principal> AdminAuthenticator::Authorize(absl::string_view header,
                                                        Role needed) const {
  auto token = BearerToken(header);
  if (!token.ok()) {
    return token.status();
  }
  absl::StatusOr<Principal> found = tokens_.Authenticate(*token);
  if (!found.ok()) {
    return found.status();
  }
  if (static_cast<int>(found->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat(
        found->name, " has role ", RoleName(found->role), "; this needs ", RoleName(needed)));
  }
  return *found;
}

}  // namespace ringwarden
