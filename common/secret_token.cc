#include "common/secret_token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace ringwarden {
namespace {

constexpr size_t kIdBytes = 8;
constexpr size_t kSecretBytes = 32;
constexpr size_t kSecretChars = 43;  // base64url of 32 bytes, unpadded

std::string RandomBytes(size_t n) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
    // Without randomness no credential may be made at all.
    std::abort();
  }
  return bytes;
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && (c < 'a' || c > 'f')) {
      return false;
    }
  }
  return true;
}

}  // namespace

SecretToken MakeSecretToken(absl::string_view prefix) {
  SecretToken token;
  token.id = absl::BytesToHexString(RandomBytes(kIdBytes));
  const std::string secret = absl::WebSafeBase64Escape(RandomBytes(kSecretBytes));
  token.text = absl::StrCat(prefix, "_", token.id, "_", secret);
  token.secret_sha256 = Sha256(secret);
  return token;
}

absl::StatusOr<ParsedToken> ParseSecretToken(absl::string_view prefix, absl::string_view text) {
  const size_t want = prefix.size() + 1 + 2 * kIdBytes + 1 + kSecretChars;
  const absl::string_view id =
      text.size() == want ? text.substr(prefix.size() + 1, 2 * kIdBytes) : absl::string_view();
  if (text.size() != want || text.substr(0, prefix.size()) != prefix ||
      text[prefix.size()] != '_' || !IsLowerHex(id) || text[want - kSecretChars - 1] != '_') {
    return absl::UnauthenticatedError(absl::StrCat("malformed token: expected \"", prefix,
                                                   "_<id>_<secret>\" as ringctl printed it"));
  }
  const absl::string_view secret = text.substr(want - kSecretChars);
  std::string raw;
  if (!absl::WebSafeBase64Unescape(secret, &raw) || raw.size() != kSecretBytes) {
    return absl::UnauthenticatedError(
        absl::StrCat("malformed token: the secret of ", prefix, "_", id, " is not base64url"));
  }
  return ParsedToken{std::string(id), Sha256(secret)};
}

bool SecretMatches(const ParsedToken& presented, absl::string_view stored_sha256) {
  return presented.secret_sha256.size() == stored_sha256.size() &&
         CRYPTO_memcmp(presented.secret_sha256.data(), stored_sha256.data(),
                       stored_sha256.size()) == 0;
}

}  // namespace ringwarden
