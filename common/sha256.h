// sha256.h: SHA-256 digests (OpenSSL 3 EVP) as raw bytes or lowercase hex.
//
//   std::string id = Sha256Hex(payload);  // "e3b0c442..."
// Thread-safe: free functions; the one shared state is OpenSSL's SHA-256
// implementation, fetched once (EVP_sha256() would make OpenSSL look it up again
// for every digest, which costs as much as hashing a short message).
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace ringwarden {

// Sha256 returns the 32-byte raw digest of `data`.
std::string Sha256(absl::string_view data);

// Sha256Hex returns the 64-character lowercase hex digest of `data`.
std::string Sha256Hex(absl::string_view data);

// IsSha256Hex reports whether `s` is exactly 64 lowercase hex characters.
bool IsSha256Hex(absl::string_view s);

}  // namespace ringwarden
