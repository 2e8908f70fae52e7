#include "common/admin_token.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace ringwarden {
namespace {

constexpr size_t kSecretChars = 43;  // ceil(32 * 4 / 3) without padding

bool IsBase64UrlChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

absl::Status Malformed(absl::string_view why) {
  return absl::UnauthenticatedError(
      absl::StrCat("malformed admin token: ", why,
                   "; expected rwt_<id>_<secret> as `ringctl token create` prints it"));
}

}  // namespace

void SecureRandomBytes(unsigned char* out, size_t size) {
  if (RAND_bytes(out, static_cast<int>(size)) != 1) {
    std::cerr << "RAND_bytes failed; refusing to mint a guessable credential" << std::endl;
    std::abort();
  }
}

AdminTokenParts NewAdminTokenParts(const RandomBytesFn& random) {
  unsigned char id[kAdminTokenIdBytes];
  unsigned char secret[kAdminTokenSecretBytes];
  random(id, sizeof(id));
  random(secret, sizeof(secret));
  AdminTokenParts parts;
  parts.id =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(id), sizeof(id)));
  parts.secret.assign(reinterpret_cast<const char*>(secret), sizeof(secret));
  OPENSSL_cleanse(secret, sizeof(secret));
  return parts;
}

std::string FormatAdminToken(const AdminTokenParts& parts) {
  return absl::StrCat(kAdminTokenPrefix, parts.id, "_", absl::WebSafeBase64Escape(parts.secret));
}

bool IsAdminTokenId(absl::string_view id) {
  if (id.size() != 2 * kAdminTokenIdBytes) {
    return false;
  }
  for (char c : id) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<AdminTokenParts> ParseAdminToken(absl::string_view text) {
  if (text.size() > kMaxAdminTokenChars) {
    return Malformed(absl::StrCat("longer than ", kMaxAdminTokenChars, " characters"));
  }
  if (text.substr(0, kAdminTokenPrefix.size()) != kAdminTokenPrefix) {
    return Malformed("it does not start with rwt_");
  }
  text.remove_prefix(kAdminTokenPrefix.size());
  const size_t sep = text.find('_');
  if (sep == absl::string_view::npos || !IsAdminTokenId(text.substr(0, sep))) {
    return Malformed("the id after rwt_ must be 12 lowercase hex characters");
  }
  const absl::string_view encoded = text.substr(sep + 1);
  for (char c : encoded) {
    if (!IsBase64UrlChar(c)) {
      return Malformed("the secret is not base64url");
    }
  }
  AdminTokenParts parts;
  if (encoded.size() != kSecretChars || !absl::WebSafeBase64Unescape(encoded, &parts.secret) ||
      parts.secret.size() != kAdminTokenSecretBytes) {
    return Malformed(absl::StrCat("the secret must be ", kSecretChars, " base64url characters"));
  }
  // The last character carries 2 bits past the 32 bytes; only the form with those bits
  // zero is the token, so one secret has one text.
  if (absl::WebSafeBase64Escape(parts.secret) != encoded) {
    return Malformed("the secret is not canonical base64url");
  }
  parts.id = std::string(text.substr(0, sep));
  return parts;
}

std::string AdminTokenSecretSha256(absl::string_view secret) { return Sha256Hex(secret); }

bool AdminTokenSecretMatches(absl::string_view secret, absl::string_view stored_sha256_hex) {
  const std::string digest = Sha256Hex(secret);
  return digest.size() == stored_sha256_hex.size() &&
         CRYPTO_memcmp(digest.data(), stored_sha256_hex.data(), digest.size()) == 0;
}

std::string AdminTokenTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::Status ValidateAdminTokenTtl(absl::Duration ttl) {
  if (ttl < kMinAdminTokenTtl || ttl > kMaxAdminTokenTtl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token lifetime must be between 1h and 365d, not ", absl::FormatDuration(ttl)));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParseAdminTokenTtl(absl::string_view text) {
  const auto invalid = absl::InvalidArgumentError(
      absl::StrCat("--ttl \"", absl::CHexEscape(text.substr(0, 32)),
                   "\" is not a lifetime; write a whole number and m, h or d, e.g. 90m, 24h, 30d"));
  if (text.size() < 2 || text.size() > 8) {
    return invalid;
  }
  int64_t n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (!absl::ascii_isdigit(c)) {
      return invalid;
    }
  }
  if (!absl::SimpleAtoi(text.substr(0, text.size() - 1), &n) || n <= 0) {
    return invalid;
  }
  absl::Duration unit;
  switch (text.back()) {
    case 'm':
      unit = absl::Minutes(1);
      break;
    case 'h':
      unit = absl::Hours(1);
      break;
    case 'd':
      unit = absl::Hours(24);
      break;
    default:
      return invalid;
  }
  const absl::Duration ttl = n * unit;
  if (absl::Status s = ValidateAdminTokenTtl(ttl); !s.ok()) {
    return s;
  }
  return ttl;
}

}  // namespace ringwarden
