#include "common/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"

namespace ringwarden {
namespace {

// Sha256Md is SHA-256 as OpenSSL implements it, fetched once for the process.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    if (fetched == nullptr) {
      std::fprintf(stderr, "ringwarden: OpenSSL has no SHA-256\n");
      std::abort();
    }
    return fetched;
  }();
  return md;
}

}  // namespace

std::string Sha256(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  // EVP_Digest only fails on allocation failure or a broken OpenSSL install;
  // returning a wrong digest would be worse than stopping.
  if (EVP_Digest(data.data(), data.size(), digest, &digest_len, Sha256Md(), nullptr) != 1 ||
      digest_len != 32) {
    std::fprintf(stderr, "ringwarden: OpenSSL SHA-256 failed\n");
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(digest), digest_len);
}

std::string Sha256Hex(absl::string_view data) { return absl::BytesToHexString(Sha256(data)); }

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
