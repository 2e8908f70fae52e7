// maced_token.h: an --insecure agent token built the way the server's issuer builds one
// ("rwa2.<base64url body>.<base64url HMAC-SHA-256 of the body>"), but with OpenSSL's
// one-shot HMAC instead of the server's code, so that tests and fuzz targets can MAC any
// body, malformed ones included, and check the server against an independent computation.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ringwarden::testing {

// MacedToken is the token an issuer holding `secret` would make of the body `claims`.
inline std::string MacedToken(absl::string_view claims, absl::string_view secret) {
  const std::string body = absl::WebSafeBase64Escape(claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  return absl::StrCat("rwa2.", body, ".",
                      absl::WebSafeBase64Escape(absl::string_view(
                          reinterpret_cast<const char*>(mac), static_cast<size_t>(len))));
}

}  // namespace ringwarden::testing
