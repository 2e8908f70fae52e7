// dsse.h: DSSE envelopes (https://github.com/secure-systems-lab/dsse) signed with Ed25519.
//
// The signature covers PAE(payloadType, payload) =
//   "DSSEv1" SP len(type) SP type SP len(payload) SP payload
// with lengths in ASCII decimal. The payload bytes are kept exactly as signed and
// never re-serialized. The JSON form is {"payload": b64, "payloadType": str,
// "signatures": [{"keyid": str, "sig": b64}]}.
//
//   ASSIGN_OR_RETURN(DsseEnvelope env, SignEnvelope(kManifestPayloadType, bytes, {&key}));
//   std::string json = EncodeEnvelopeJson(env);
//   ASSIGN_OR_RETURN(DsseEnvelope parsed, ParseEnvelopeJson(json));
//   ASSIGN_OR_RETURN(VerifiedEnvelope v, trusted.Verify(parsed, kManifestPayloadType));
//
// Thread-safety: TrustedKeys is immutable after construction and may be shared.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/ed25519.h"

namespace ringwarden {

// kManifestPayloadType is the payloadType of envelopes over a ContentManifest.
inline constexpr absl::string_view kManifestPayloadType =
    "application/vnd.ringwarden.manifest+protobuf";

// kMaxEnvelopeJsonBytes bounds what ParseEnvelopeJson accepts.
inline constexpr size_t kMaxEnvelopeJsonBytes = 64 * 1024;

// PreAuthEncoding returns PAE(payload_type, payload), the bytes that are signed.
std::string PreAuthEncoding(absl::string_view payload_type, absl::string_view payload);

struct DsseSignature {
  std::string keyid;  // hex SHA-256 of the raw public key; may be empty
  std::string sig;    // raw signature bytes (64 for Ed25519)
};

struct DsseEnvelope {
  std::string payload_type;
  std::string payload;  // raw bytes, exactly as signed
  std::vector<DsseSignature> signatures;
};

// SignEnvelope signs `payload` with every key in `keys` (at least one).
absl::StatusOr<DsseEnvelope> SignEnvelope(absl::string_view payload_type,
                                          absl::string_view payload,
                                          const std::vector<const Ed25519PrivateKey*>& keys);

// EncodeEnvelopeJson returns the standard DSSE JSON form (standard base64 with padding).
std::string EncodeEnvelopeJson(const DsseEnvelope& envelope);

// ParseEnvelopeJson parses the DSSE JSON form strictly: INVALID_ARGUMENT with a
// message a person can act on for oversized input, bad JSON, missing or wrongly
// typed fields, bad base64, or no signatures.
absl::StatusOr<DsseEnvelope> ParseEnvelopeJson(absl::string_view json);

// VerifiedEnvelope is an envelope whose signatures met the trust threshold.
struct VerifiedEnvelope {
  std::string payload_type;
  std::string payload;
  std::vector<std::string> key_ids;  // distinct trusted keys whose signature verified
};

// TrustedKeys holds the public keys content must be signed with, and how many
// distinct trusted keys must sign.
class TrustedKeys {
 public:
  TrustedKeys() = default;
  TrustedKeys(std::vector<Ed25519PublicKey> keys, int threshold = 1);

  // LoadPemFiles reads public-key PEM files; INVALID_ARGUMENT names the bad file,
  // NOT_FOUND the missing one. An empty list is INVALID_ARGUMENT.
  static absl::StatusOr<TrustedKeys> LoadPemFiles(const std::vector<std::string>& paths,
                                                  int threshold = 1);

  // Verify checks `envelope`: INVALID_ARGUMENT if it has no signatures or the
  // payload type differs from `expected_payload_type`; PERMISSION_DENIED when
  // fewer than threshold distinct trusted keys produced a valid signature
  // (untrusted key, wrong signature), saying which key ids were seen.
  absl::StatusOr<VerifiedEnvelope> Verify(const DsseEnvelope& envelope,
                                          absl::string_view expected_payload_type) const;

  int threshold() const { return threshold_; }
  size_t size() const { return keys_.size(); }
  std::vector<std::string> KeyIds() const;

 private:
  std::map<std::string, Ed25519PublicKey> keys_;  // by key id
  int threshold_ = 1;
};

}  // namespace ringwarden
