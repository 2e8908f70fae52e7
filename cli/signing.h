// signing.h: building signed envelopes offline, as `ringctl content sign`,
// `keys root create`, `keys root sign` and `floor sign` do.
//
//   ASSIGN_OR_RETURN(SignedRoot made, CreateRoot(request));          // maybe unsigned yet
//   ASSIGN_OR_RETURN(SignedRoot signed_once, AddRootSignature(made.envelope_json, key, nullptr));
//
// A payload is serialized once and those bytes become the DSSE payload; nothing
// downstream re-serializes it. A root is signed by several people, each on their
// own machine: CreateRoot may write an envelope without any signature yet and
// AddRootSignature adds one signature at a time. Keys are the PEM files that
// `openssl genpkey -algorithm ed25519` makes. Thread-safety: stateless functions.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/trust/trust.h"

namespace ringwarden {

struct SignRequest {
  std::string key_pem;  // Ed25519 private key (PKCS#8 PEM)
  std::string channel;
  int64_t version = 0;
  std::string payload;
  std::string description;
  absl::Time now;
};

// SignContent returns the DSSE envelope JSON over the content's manifest.
absl::StatusOr<std::string> SignContent(const SignRequest& request);

// PublicKeyFromPem returns the public key of a PEM holding an Ed25519 public
// key ("PUBLIC KEY") or an unencrypted private key ("PRIVATE KEY"), so role keys
// may be given either way. INVALID_ARGUMENT for anything else (RSA, encrypted,
// not PEM), saying what it is.
absl::StatusOr<Ed25519PublicKey> PublicKeyFromPem(absl::string_view pem);

// EnvelopeKind names what a payloadType is: "root", "floor", "content",
// "assignment", or "" for a type that is none of ours.
std::string EnvelopeKind(absl::string_view payload_type);

// ParseEnvelopeForSigning parses the DSSE JSON form as strictly as
// ParseEnvelopeJson but also accepts an envelope without signatures (a root
// that is still being signed). Never use it for anything that trusts the result.
absl::StatusOr<DsseEnvelope> ParseEnvelopeForSigning(absl::string_view json);

// DecodeRootEnvelope decodes the root metadata of `envelope`, which may have no
// signatures yet; no signature is checked.
absl::StatusOr<RootSpec> DecodeRootEnvelope(const DsseEnvelope& envelope);

// KeyRoles names the roles `keyid` has in `root`, as "ROLE vVERSION"
// ("root v2", "release v2"); empty when the root does not name the key.
std::vector<std::string> KeyRoles(const RootSpec& root, absl::string_view keyid);

// RoleKeys are the keys of one role as given on the command line.
struct RoleKeys {
  std::vector<Ed25519PublicKey> keys;
  int threshold = 1;
};

struct RootRequest {
  int64_t version = 0;
  absl::Time expires;
  absl::Time now;
  RoleKeys root;
  RoleKeys release;
  RoleKeys server;
  std::vector<const Ed25519PrivateKey*> signers;  // may be empty: others sign later
};

// SignedRoot is a root envelope and what a person should know about it.
struct SignedRoot {
  std::string envelope_json;
  RootSpec root;
  std::vector<std::string> signer_key_ids;  // every signature the envelope carries, in order
  std::vector<std::string> warnings;        // for stderr: legal, but probably not meant
};

// CreateRoot builds root metadata (EncodeRoot) and returns its envelope with the
// signers' signatures. INVALID_ARGUMENT, naming the flag, for version < 1, an
// expiry not after `now`, a threshold below 1 or above its role's key count, a
// key twice in one role or among the signers, and a server key that is also a
// root or release key (the server holds its key online).
absl::StatusOr<SignedRoot> CreateRoot(const RootRequest& request);

// AddRootSignature adds `key`'s signature to the root envelope `envelope_json`.
// `previous` is the root this one follows (--trusted-root), or null. Refused:
// not a root (INVALID_ARGUMENT); a key that already signed (ALREADY_EXISTS); an
// existing signature by a key this root or `previous` names that does not
// verify, i.e. a payload changed after it was signed (PERMISSION_DENIED); with
// `previous`, a version that does not follow it or a key that is a root key of
// neither (FAILED_PRECONDITION). Signatures it cannot check become warnings.
absl::StatusOr<SignedRoot> AddRootSignature(absl::string_view envelope_json,
                                            const Ed25519PrivateKey& key, const RootSpec* previous);

struct FloorRequest {
  std::vector<const Ed25519PrivateKey*> keys;  // release keys, at least one
  std::string channel;
  int64_t min_version = 0;
  absl::Time now;
};

// SignFloor returns the DSSE envelope JSON over the channel's FloorMetadata
// (EncodeFloor). INVALID_ARGUMENT for a bad channel name, a version < 1 or the
// same key twice.
absl::StatusOr<std::string> SignFloor(const FloorRequest& request);

}  // namespace ringwarden
