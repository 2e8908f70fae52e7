// sha256.h: SHA-256 digests as raw bytes or lowercase hex, and HMAC-SHA-256 under a key
// prepared once.
//
//   std::string id = Sha256Hex(payload);  // "e3b0c442..."
//   HmacSha256Key key(secret);
//   unsigned char mac[32];
//   key.Mac(body, mac);
//
// The digests are OpenSSL's SHA-256 through its direct interface (SHA256_Init/Update/Final):
// OpenSSL 3.0's EVP interface allocates a context for every digest and for every copy of a
// keyed HMAC context, which on the poll path cost more than the hashing. Thread-safe: free
// functions, and const methods on an HmacSha256Key.
#pragma once

#include <openssl/sha.h>

#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"

namespace ringwarden {

// Sha256 returns the 32-byte raw digest of `data`.
std::string Sha256(absl::string_view data);

// Sha256Hex returns the 64-character lowercase hex digest of `data`.
std::string Sha256Hex(absl::string_view data);

// Sha256Of writes the 32-byte digest of the concatenation of `parts` to `out`, allocating
// nothing: Sha256Of({seed, ":", id}, out) digests what Sha256(absl::StrCat(seed, ":", id))
// does.
void Sha256Of(std::initializer_list<absl::string_view> parts, unsigned char out[32]);

// Sha256HexEquals reports whether `hex` is the lowercase hex digest of `data` (what
// Sha256Hex(data) == hex says), allocating nothing.
bool Sha256HexEquals(absl::string_view data, absl::string_view hex);

// HmacSha256Key is a key made ready for HMAC-SHA-256 (RFC 2104): the hash states after the
// inner and outer padded key, so that each MAC hashes the message and two blocks more, and
// allocates nothing. A key longer than a block is hashed first, as the RFC says.
class HmacSha256Key {
 public:
  explicit HmacSha256Key(absl::string_view key);
  ~HmacSha256Key();  // wipes the key states
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  // Mac writes the 32-byte HMAC-SHA-256 of `data` to `out`.
  void Mac(absl::string_view data, unsigned char out[32]) const;

 private:
  SHA256_CTX inner_;
  SHA256_CTX outer_;
};

// IsSha256Hex reports whether `s` is exactly 64 lowercase hex characters.
bool IsSha256Hex(absl::string_view s);

}  // namespace ringwarden
