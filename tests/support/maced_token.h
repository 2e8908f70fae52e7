// maced_token.h: --insecure agent tokens built the way the server's issuer builds them, but
// with OpenSSL's one-shot HMAC instead of the server's code, so that tests and fuzz targets
// can MAC any claims, malformed ones included, and check the server against an independent
// computation:
//   MacedToken:     "rwa3.<fields>.<base64url HMAC-SHA-256 of "rwa3.<fields>">", where the
//                   issuer writes the fields "<iat>.<exp>.<agent id>";
//   MacedJsonToken: "rwa2.<base64url body>.<base64url HMAC-SHA-256 of the body>", the format
//                   issued before rwa3, whose body is JSON {id, iat, exp}.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ringwarden::testing {

// Base64urlHmac is the base64url HMAC-SHA-256 of `data` under `secret`.
inline std::string Base64urlHmac(absl::string_view data, absl::string_view secret) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(mac), static_cast<size_t>(len)));
}

// MacedToken is the rwa3 token an issuer holding `secret` would make of `fields`.
inline std::string MacedToken(absl::string_view fields, absl::string_view secret) {
  const std::string maced = absl::StrCat("rwa3.", fields);
  return absl::StrCat(maced, ".", Base64urlHmac(maced, secret));
}

// MacedJsonToken is the rwa2 token an issuer holding `secret` would make of the body `claims`.
inline std::string MacedJsonToken(absl::string_view claims, absl::string_view secret) {
  const std::string body = absl::WebSafeBase64Escape(claims);
  return absl::StrCat("rwa2.", body, ".", Base64urlHmac(body, secret));
}

}  // namespace ringwarden::testing
