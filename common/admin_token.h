// admin_token.h: the text of an admin credential and how its secret is kept.
//
//   AdminTokenParts parts = NewAdminTokenParts(SecureRandomBytes);
//   std::string text = FormatAdminToken(parts);  // "rwt_3f9a0c12d4e5_Qm9i...", shown once
//   std::string stored = AdminTokenSecretSha256(parts.secret);  // what the database keeps
//   absl::StatusOr<AdminTokenParts> got = ParseAdminToken(text);
//   bool ok = AdminTokenSecretMatches(got->secret, stored);  // constant time
//
// The id is public (listed, audited, used to look the token up); the secret is
// 32 bytes from OpenSSL's RAND_bytes, so a plain SHA-256 of it cannot be
// brute-forced and no slow password hash is needed. Thread-safe: free functions.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ringwarden {

inline constexpr absl::string_view kAdminTokenPrefix = "rwt_";
inline constexpr size_t kAdminTokenIdBytes = 6;       // 12 lowercase hex characters
inline constexpr size_t kAdminTokenSecretBytes = 32;  // 43 characters of unpadded base64url
// kMaxAdminTokenChars bounds what ParseAdminToken looks at.
inline constexpr size_t kMaxAdminTokenChars = 256;

// kMinAdminTokenTtl..kMaxAdminTokenTtl bound how long a token may be valid.
inline constexpr absl::Duration kMinAdminTokenTtl = absl::Hours(1);
inline constexpr absl::Duration kMaxAdminTokenTtl = absl::Hours(24 * 365);

// RandomBytesFn fills `size` bytes at `out` with unpredictable bytes.
using RandomBytesFn = std::function<void(unsigned char* out, size_t size)>;

// SecureRandomBytes is OpenSSL's RAND_bytes; it aborts when the generator fails
// rather than hand out a guessable credential.
void SecureRandomBytes(unsigned char* out, size_t size);

// AdminTokenParts is a token taken apart: the public id and the raw secret.
struct AdminTokenParts {
  std::string id;      // 12 lowercase hex characters
  std::string secret;  // kAdminTokenSecretBytes raw bytes
};

// NewAdminTokenParts draws a fresh id and secret from `random`.
AdminTokenParts NewAdminTokenParts(const RandomBytesFn& random);

// FormatAdminToken returns "rwt_<id>_<secret as unpadded base64url>".
std::string FormatAdminToken(const AdminTokenParts& parts);

// ParseAdminToken takes a token text apart. UNAUTHENTICATED, saying what is
// wrong with its shape (never echoing the secret), when it is not
// "rwt_<12 hex>_<43 base64url characters>".
absl::StatusOr<AdminTokenParts> ParseAdminToken(absl::string_view text);

// IsAdminTokenId reports whether `id` is 12 lowercase hex characters.
bool IsAdminTokenId(absl::string_view id);

// AdminTokenSecretSha256 is the lowercase hex SHA-256 of the raw secret.
std::string AdminTokenSecretSha256(absl::string_view secret);

// AdminTokenSecretMatches compares the secret's digest with `stored_sha256_hex`
// in constant time (CRYPTO_memcmp).
bool AdminTokenSecretMatches(absl::string_view secret, absl::string_view stored_sha256_hex);

// ParseAdminTokenTtl reads "90m", "24h", "30d" (a positive whole number and one
// unit of m, h or d) within kMinAdminTokenTtl..kMaxAdminTokenTtl; INVALID_ARGUMENT otherwise.
absl::StatusOr<absl::Duration> ParseAdminTokenTtl(absl::string_view text);

// AdminTokenTime renders a token's times in messages: "2026-12-03T19:47:17Z" (UTC).
std::string AdminTokenTime(absl::Time t);

// ValidateAdminTokenTtl accepts kMinAdminTokenTtl..kMaxAdminTokenTtl.
absl::Status ValidateAdminTokenTtl(absl::Duration ttl);

}  // namespace ringwarden
