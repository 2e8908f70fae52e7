#include "cli/signing.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "ringwarden/v1/content.pb.h"

namespace ringwarden {
namespace {

// kEd25519SignatureBytes is the size of the placeholder DecodeRootEnvelope uses.
constexpr size_t kEd25519SignatureBytes = 64;

bool Contains(const std::vector<std::string>& ids, absl::string_view id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// CheckRole checks one role's flags, naming them (--root-key, --root-threshold).
absl::Status CheckRole(const RoleKeys& role, absl::string_view name) {
  if (role.keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, "-key is required"));
  }
  if (role.threshold < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, "-threshold must be at least 1, not ", role.threshold));
  }
  if (static_cast<size_t>(role.threshold) > role.keys.size()) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, "-threshold ", role.threshold,
                                                   " is more than the ", role.keys.size(), " --",
                                                   name, "-key keys; nobody could ever meet it"));
  }
  std::set<std::string> seen;
  for (const Ed25519PublicKey& key : role.keys) {
    if (!seen.insert(key.KeyId()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, "-key names key ", key.KeyId(), " twice"));
    }
  }
  return absl::OkStatus();
}

TrustRole RoleOf(const RoleKeys& role, std::vector<Ed25519PublicKey>& all_keys) {
  TrustRole out;
  out.threshold = role.threshold;
  for (const Ed25519PublicKey& key : role.keys) {
    out.keyids.push_back(key.KeyId());
    const bool listed = std::any_of(all_keys.begin(), all_keys.end(),
                                    [&](const auto& k) { return k.KeyId() == key.KeyId(); });
    if (!listed) {
      all_keys.push_back(key);
    }
  }
  return out;
}

std::vector<std::string> SignerIds(const DsseEnvelope& envelope) {
  std::vector<std::string> ids;
  for (const DsseSignature& s : envelope.signatures) {
    ids.push_back(s.keyid);
  }
  return ids;
}

}  // namespace

absl::StatusOr<std::string> SignContent(const SignRequest& request) {
  RETURN_IF_ERROR(ValidateChannelName(request.channel));
  if (request.version < 1) {
    return absl::InvalidArgumentError("--version must be >= 1");
  }
  if (request.payload.empty()) {
    return absl::InvalidArgumentError("content file is empty; nothing to sign");
  }
  ASSIGN_OR_RETURN(Ed25519PrivateKey key, Ed25519PrivateKey::FromPem(request.key_pem));
  v1::ContentManifest manifest;
  manifest.set_channel(request.channel);
  manifest.set_version(request.version);
  manifest.set_sha256(Sha256Hex(request.payload));
  manifest.set_size(static_cast<int64_t>(request.payload.size()));
  manifest.set_created_unix(absl::ToUnixSeconds(request.now));
  manifest.set_description(request.description);
  std::string payload;
  if (!manifest.SerializeToString(&payload)) {
    return absl::InternalError("cannot serialize the manifest");
  }
  ASSIGN_OR_RETURN(DsseEnvelope envelope, SignEnvelope(kManifestPayloadType, payload, {&key}));
  return EncodeEnvelopeJson(envelope);
}

absl::StatusOr<Ed25519PublicKey> PublicKeyFromPem(absl::string_view pem) {
  if (absl::StrContains(pem, "PRIVATE KEY-----")) {
    ASSIGN_OR_RETURN(Ed25519PrivateKey key, Ed25519PrivateKey::FromPem(pem));
    return key.PublicKey();
  }
  return Ed25519PublicKey::FromPem(pem);
}

std::string EnvelopeKind(absl::string_view payload_type) {
  if (payload_type == kRootPayloadType) {
    return "root";
  }
  if (payload_type == kFloorPayloadType) {
    return "floor";
  }
  if (payload_type == kManifestPayloadType) {
    return "content";
  }
  if (payload_type == kAssignmentPayloadType) {
    return "assignment";
  }
  return "";
}

absl::StatusOr<DsseEnvelope> ParseEnvelopeForSigning(absl::string_view json) {
  if (json.size() <= kMaxEnvelopeJsonBytes) {
    nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object()) {
      auto signatures = doc.find("signatures");
      if (signatures != doc.end() && signatures->is_array() && signatures->empty()) {
        // ParseEnvelopeJson refuses an envelope without signatures, rightly for
        // anything that trusts it. Parse the rest with it and drop the stand-in.
        *signatures = nlohmann::json::array(
            {{{"keyid", ""}, {"sig", absl::Base64Escape(std::string(kEd25519SignatureBytes, 0))}}});
        ASSIGN_OR_RETURN(DsseEnvelope envelope, ParseEnvelopeJson(doc.dump()));
        envelope.signatures.clear();
        return envelope;
      }
    }
  }
  return ParseEnvelopeJson(json);
}

absl::StatusOr<RootSpec> DecodeRootEnvelope(const DsseEnvelope& envelope) {
  if (envelope.payload_type != kRootPayloadType) {
    return absl::InvalidArgumentError(
        absl::StrCat("not root metadata: payloadType is \"",
                     absl::CHexEscape(envelope.payload_type.substr(0, 80)), "\""));
  }
  DsseEnvelope decodable = envelope;
  if (decodable.signatures.empty()) {
    // DecodeRootUnverified checks no signature but needs the envelope to parse,
    // which takes one; a root still being signed has none yet.
    decodable.signatures.push_back({"", std::string(kEd25519SignatureBytes, '\0')});
  }
  return DecodeRootUnverified(EncodeEnvelopeJson(decodable));
}

std::vector<std::string> KeyRoles(const RootSpec& root, absl::string_view keyid) {
  std::vector<std::string> roles;
  for (const auto& [name, role] : {std::pair<const char*, const TrustRole*>{"root", &root.root},
                                   {"release", &root.release},
                                   {"server", &root.server}}) {
    if (Contains(role->keyids, keyid)) {
      roles.push_back(absl::StrCat(name, " v", root.version));
    }
  }
  return roles;
}

absl::StatusOr<SignedRoot> CreateRoot(const RootRequest& request) {
  if (request.version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--version must be at least 1, not ", request.version));
  }
  if (request.expires <= request.now) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--expires ", absl::FormatTime(absl::RFC3339_sec, request.expires, absl::UTCTimeZone()),
        " is not in the future"));
  }
  RETURN_IF_ERROR(CheckRole(request.root, "root"));
  RETURN_IF_ERROR(CheckRole(request.release, "release"));
  RETURN_IF_ERROR(CheckRole(request.server, "server"));

  SignedRoot made;
  made.root.version = request.version;
  made.root.expires = request.expires;
  made.root.root = RoleOf(request.root, made.root.keys);
  made.root.release = RoleOf(request.release, made.root.keys);
  made.root.server = RoleOf(request.server, made.root.keys);
  for (const std::string& id : made.root.server.keyids) {
    if (Contains(made.root.root.keyids, id) || Contains(made.root.release.keyids, id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", id,
                       " is both a --server-key and a --root-key or --release-key; the server "
                       "holds its key online, so that key must not also sign roots or content"));
    }
  }
  for (const std::string& id : made.root.release.keyids) {
    if (Contains(made.root.root.keyids, id)) {
      made.warnings.push_back(absl::StrCat("key ", id,
                                           " is both a root and a release key; a stolen release "
                                           "key could then also rotate the root"));
    }
  }
  ASSIGN_OR_RETURN(std::string payload, EncodeRoot(made.root));

  std::set<std::string> signers;
  for (const Ed25519PrivateKey* key : request.signers) {
    const std::string& id = key->PublicKey().KeyId();
    if (!signers.insert(id).second) {
      return absl::InvalidArgumentError(absl::StrCat("--sign-with names key ", id, " twice"));
    }
    if (!Contains(made.root.root.keyids, id)) {
      made.warnings.push_back(absl::StrCat("--sign-with key ", id, " is not a root key of v",
                                           request.version,
                                           "; its signature counts only if it is "
                                           "a root key of v",
                                           request.version - 1));
    }
  }
  DsseEnvelope envelope{std::string(kRootPayloadType), payload, {}};
  if (!request.signers.empty()) {
    ASSIGN_OR_RETURN(envelope, SignEnvelope(kRootPayloadType, payload, request.signers));
  }
  made.envelope_json = EncodeEnvelopeJson(envelope);
  made.signer_key_ids = SignerIds(envelope);
  return made;
}

absl::StatusOr<SignedRoot> AddRootSignature(absl::string_view envelope_json,
                                            const Ed25519PrivateKey& key,
                                            const RootSpec* previous) {
  ASSIGN_OR_RETURN(DsseEnvelope envelope, ParseEnvelopeForSigning(envelope_json));
  SignedRoot result;
  ASSIGN_OR_RETURN(result.root, DecodeRootEnvelope(envelope));
  const RootSpec& root = result.root;
  if (previous != nullptr && previous->version + 1 != root.version) {
    return absl::FailedPreconditionError(
        absl::StrCat("this is root v", root.version, ", but --trusted-root is v", previous->version,
                     "; root v", root.version, " follows v", root.version - 1));
  }
  const std::string pae = PreAuthEncoding(envelope.payload_type, envelope.payload);
  const std::string& signer = key.PublicKey().KeyId();

  std::vector<Ed25519PublicKey> known = root.keys;
  if (previous != nullptr) {
    known.insert(known.end(), previous->keys.begin(), previous->keys.end());
  }
  for (const DsseSignature& existing : envelope.signatures) {
    if (existing.keyid == signer || key.PublicKey().Verify(pae, existing.sig)) {
      return absl::AlreadyExistsError(absl::StrCat("root v", root.version,
                                                   " already carries a signature by key ", signer,
                                                   "; each key signs once"));
    }
    // A signature without a key id is checked against every key at hand.
    auto named = std::find_if(known.begin(), known.end(), [&](const auto& k) {
      return existing.keyid.empty() ? k.Verify(pae, existing.sig) : k.KeyId() == existing.keyid;
    });
    if (named == known.end()) {
      const std::string what = existing.keyid.empty()
                                   ? "a signature without a key id"
                                   : absl::StrCat("the signature by key ",
                                                  absl::CHexEscape(existing.keyid.substr(0, 80)));
      result.warnings.push_back(absl::StrCat("cannot check ", what, ": no key of ",
                                             previous == nullptr
                                                 ? "this root fits it (pass --trusted-root)"
                                                 : "this root or --trusted-root fits it"));
    } else if (!named->Verify(pae, existing.sig)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the signature by key ", existing.keyid,
          " does not verify: the payload was changed after it was signed (or the signature is "
          "damaged); start again from the file that signer wrote"));
    }
  }

  const bool own_root_key = Contains(root.root.keyids, signer);
  const bool previous_root_key = previous != nullptr && Contains(previous->root.keyids, signer);
  if (!own_root_key && !previous_root_key) {
    if (previous != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("key ", signer, " is a root key of neither v", root.version, " nor v",
                       previous->version, "; its signature would not count"));
    }
    result.warnings.push_back(absl::StrCat("key ", signer, " is not a root key of v", root.version,
                                           "; its signature counts only if it is "
                                           "a root key of v",
                                           root.version - 1, " (pass --trusted-root to check)"));
  }
  ASSIGN_OR_RETURN(std::string signature, key.Sign(pae));
  envelope.signatures.push_back({signer, std::move(signature)});
  result.envelope_json = EncodeEnvelopeJson(envelope);
  result.signer_key_ids = SignerIds(envelope);
  return result;
}

absl::StatusOr<std::string> SignFloor(const FloorRequest& request) {
  if (request.keys.empty()) {
    return absl::InvalidArgumentError("--key is required");
  }
  std::set<std::string> seen;
  for (const Ed25519PrivateKey* key : request.keys) {
    if (!seen.insert(key->PublicKey().KeyId()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--key names key ", key->PublicKey().KeyId(), " twice"));
    }
  }
  ASSIGN_OR_RETURN(std::string payload,
                   EncodeFloor(request.channel, request.min_version, request.now));
  ASSIGN_OR_RETURN(DsseEnvelope envelope, SignEnvelope(kFloorPayloadType, payload, request.keys));
  return EncodeEnvelopeJson(envelope);
}

}  // namespace ringwarden
