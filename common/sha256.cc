// The direct SHA-256 interface is deprecated in OpenSSL 3.0 in favour of EVP, whose contexts
// allocate on every use (sha256.h). It is the same implementation, and OpenSSL keeps it.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "common/sha256.h"

#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/escaping.h"

namespace ringwarden {
namespace {

constexpr size_t kBlock = 64;

// Check stops the process when OpenSSL fails to hash, which only a broken install does:
// returning a wrong digest would be worse than stopping.
void Check(int ok) {
  if (ok != 1) {
    std::fprintf(stderr, "ringwarden: OpenSSL SHA-256 failed\n");
    std::abort();
  }
}

void Digest(absl::string_view data, unsigned char out[32]) { Sha256Of({data}, out); }

}  // namespace

std::string Sha256(absl::string_view data) {
  unsigned char digest[32];
  Digest(data, digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

HmacSha256Key::HmacSha256Key(absl::string_view key) {
  unsigned char block[kBlock] = {};
  if (key.size() > kBlock) {
    Digest(key, block);
  } else {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) {
    pad[i] = block[i] ^ 0x36;
  }
  Check(SHA256_Init(&inner_));
  Check(SHA256_Update(&inner_, pad, kBlock));
  for (size_t i = 0; i < kBlock; ++i) {
    pad[i] = block[i] ^ 0x5c;
  }
  Check(SHA256_Init(&outer_));
  Check(SHA256_Update(&outer_, pad, kBlock));
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(pad, sizeof(pad));
}

HmacSha256Key::~HmacSha256Key() {
  OPENSSL_cleanse(&inner_, sizeof(inner_));
  OPENSSL_cleanse(&outer_, sizeof(outer_));
}

void HmacSha256Key::Mac(absl::string_view data, unsigned char out[32]) const {
  SHA256_CTX ctx = inner_;
  unsigned char inner_digest[32];
  Check(SHA256_Update(&ctx, data.data(), data.size()));
  Check(SHA256_Final(inner_digest, &ctx));
  ctx = outer_;
  Check(SHA256_Update(&ctx, inner_digest, sizeof(inner_digest)));
  Check(SHA256_Final(out, &ctx));
  OPENSSL_cleanse(&ctx, sizeof(ctx));
  OPENSSL_cleanse(inner_digest, sizeof(inner_digest));
}

std::string Sha256Hex(absl::string_view data) { return absl::BytesToHexString(Sha256(data)); }

void Sha256Of(std::initializer_list<absl::string_view> parts, unsigned char out[32]) {
  SHA256_CTX ctx;
  Check(SHA256_Init(&ctx));
  for (absl::string_view part : parts) {
    Check(SHA256_Update(&ctx, part.data(), part.size()));
  }
  Check(SHA256_Final(out, &ctx));
  OPENSSL_cleanse(&ctx, sizeof(ctx));
}

bool Sha256HexEquals(absl::string_view data, absl::string_view hex) {
  if (hex.size() != 64) {
    return false;
  }
  unsigned char digest[32];
  Digest(data, digest);
  static constexpr char kHex[] = "0123456789abcdef";
  char text[64];
  for (size_t i = 0; i < sizeof(digest); ++i) {
    text[2 * i] = kHex[digest[i] >> 4];
    text[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  // Both sides are public (a statement's digest the agent sent and one the server computes):
  // a plain comparison leaks nothing.
  return absl::string_view(text, sizeof(text)) == hex;
}

bool IsSha256Hex(absl::string_view s) {
  if (s.size() != 64) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace ringwarden
