#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ringwarden {
namespace {

constexpr absl::string_view kBearer = "Bearer ";

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<absl::string_view> BearerToken(absl::string_view header) {
  if (!absl::ConsumePrefix(&header, kBearer) || header.empty()) {
    return absl::UnauthenticatedError(
        "missing credentials: send metadata \"authorization: Bearer <token>\"");
  }
  return header;
}

}  // namespace

absl::StatusOr<AdminAuthenticator> AdminAuthenticator::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read admin tokens file ", path));
  }
  std::map<std::string, Principal> by_token;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') {
      continue;
    }
    std::vector<std::string> fields = absl::StrSplit(text, ' ', absl::SkipEmpty());
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": expected \"TOKEN ROLE NAME\""));
    }
    if (fields[0].size() < 16) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": token must be at least 16 characters"));
    }
    auto role = ParseRole(fields[1]);
    if (!role.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": ", role.status().message()));
    }
    by_token[fields[0]] = Principal{fields[2], *role};
  }
  if (by_token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("admin tokens file ", path, " has no tokens"));
  }
  return AdminAuthenticator(std::move(by_token));
}

absl::StatusOr<Principal> AdminAuthenticator::Authorize(absl::string_view header,
                                                        Role needed) const {
  auto token = BearerToken(header);
  if (!token.ok()) {
    return token.status();
  }
  // Compare against every token so timing does not reveal which prefix matched.
  const Principal* found = nullptr;
  for (const auto& [known, principal] : by_token_) {
    if (ConstantTimeEquals(known, *token)) {
      found = &principal;
    }
  }
  if (found == nullptr) {
    return absl::UnauthenticatedError("unknown admin token; check --token or RINGWARDEN_TOKEN");
  }
  if (static_cast<int>(found->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat(
        found->name, " has role ", RoleName(found->role), "; this needs ", RoleName(needed)));
  }
  return *found;
}

}  // namespace ringwarden
