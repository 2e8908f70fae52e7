// ed25519.h: Ed25519 keys, signatures and key ids (OpenSSL 3 EVP).
//
//   ASSIGN_OR_RETURN(auto key, Ed25519PrivateKey::FromPem(pem));
//   ASSIGN_OR_RETURN(std::string sig, key.Sign(message));
//   bool ok = key.PublicKey().Verify(message, sig);
//
// Keys load from PEM (PKCS#8 private, SubjectPublicKeyInfo public), so keys made
// by `openssl genpkey -algorithm ed25519` work. A key id is the lowercase hex
// SHA-256 of the raw 32-byte public key. Objects are immutable after creation and
// safe to share between threads.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace ringwarden {

// Ed25519PublicKey verifies signatures.
class Ed25519PublicKey {
 public:
  // FromPem parses a PEM "PUBLIC KEY" block; INVALID_ARGUMENT when it is not Ed25519.
  static absl::StatusOr<Ed25519PublicKey> FromPem(absl::string_view pem);
  // FromRaw takes the 32-byte raw public key.
  static absl::StatusOr<Ed25519PublicKey> FromRaw(absl::string_view raw);

  // Raw returns the 32-byte raw public key.
  const std::string& Raw() const { return raw_; }
  // KeyId returns the lowercase hex SHA-256 of Raw().
  const std::string& KeyId() const { return key_id_; }
  // ToPem returns the SubjectPublicKeyInfo PEM form.
  std::string ToPem() const;
  // Verify reports whether `signature` (64 raw bytes) signs `message`.
  bool Verify(absl::string_view message, absl::string_view signature) const;

 private:
  explicit Ed25519PublicKey(std::string raw);
  std::string raw_;
  std::string key_id_;
};

// Ed25519PrivateKey signs messages. It keeps OpenSSL's parsed key, so that a
// signature costs one Ed25519 operation: deriving the key from the seed again
// would cost a second one on every call (the server signs on its poll path).
class Ed25519PrivateKey {
 public:
  // Generate makes a fresh key from the OpenSSL CSPRNG.
  static absl::StatusOr<Ed25519PrivateKey> Generate();
  // FromPem parses a PEM "PRIVATE KEY" (PKCS#8) block; INVALID_ARGUMENT when it is not Ed25519.
  static absl::StatusOr<Ed25519PrivateKey> FromPem(absl::string_view pem);
  // FromSeed takes the 32-byte private seed (RFC 8032 "secret key").
  static absl::StatusOr<Ed25519PrivateKey> FromSeed(absl::string_view seed);

  // Sign returns the 64-byte signature of `message`.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;
  // PublicKey returns the matching public key.
  const Ed25519PublicKey& PublicKey() const { return public_key_; }
  // ToPem returns the PKCS#8 PEM form (unencrypted).
  std::string ToPem() const;

 private:
  Ed25519PrivateKey(std::shared_ptr<evp_pkey_st> pkey, Ed25519PublicKey public_key);
  std::shared_ptr<evp_pkey_st> pkey_;  // never modified once made; shared by copies
  Ed25519PublicKey public_key_;
};

}  // namespace ringwarden
