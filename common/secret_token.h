// secret_token.h: bearer secrets that are shown once and stored as hashes.
//
// A token reads "<prefix>_<id>_<secret>": the id (16 hex characters) is public
// and finds the stored record; the secret is 32 random bytes (base64url) of
// which only the SHA-256 is stored. A fast hash is right here: the secret has
// 256 bits of entropy, so there is nothing for a slow hash to protect.
//
//   SecretToken t = MakeSecretToken("rwe");        // t.text goes to the user once
//   ASSIGN_OR_RETURN(ParsedToken p, ParseSecretToken("rwe", text));
//   bool ok = SecretMatches(p, stored_sha256);      // constant time
// Thread-safe: free functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

struct SecretToken {
  std::string id;
  std::string text;           // "<prefix>_<id>_<secret>", shown once
  std::string secret_sha256;  // raw 32 bytes, what is stored
};

// MakeSecretToken draws a new token from the OpenSSL random generator.
SecretToken MakeSecretToken(absl::string_view prefix);

struct ParsedToken {
  std::string id;
  std::string secret_sha256;  // of the presented secret
};

// ParseSecretToken splits a presented token: UNAUTHENTICATED, without echoing
// the secret, when it is not "<prefix>_<16 hex>_<43 base64url>".
absl::StatusOr<ParsedToken> ParseSecretToken(absl::string_view prefix, absl::string_view text);

// SecretMatches compares the presented secret's hash with the stored one in
// constant time.
bool SecretMatches(const ParsedToken& presented, absl::string_view stored_sha256);

}  // namespace ringwarden
