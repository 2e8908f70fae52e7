#include "common/dsse.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace ringwarden {
namespace {

using Json = nlohmann::json;

// More signatures than any sane threshold needs; the bound caps verification work
// (an entry without keyid is tried against every trusted key).
constexpr size_t kMaxSignatures = 16;
constexpr size_t kMaxKeyFileBytes = 64 * 1024;
// How much of an untrusted string an error message repeats.
constexpr size_t kMaxShownChars = 80;

// Shown renders untrusted text for an error message: escaped and bounded.
std::string Shown(absl::string_view s) {
  std::string out = absl::CHexEscape(s.substr(0, kMaxShownChars));
  if (s.size() > kMaxShownChars) {
    absl::StrAppend(&out, "...");
  }
  return out;
}

bool IsValidUtf8(absl::string_view s) {
  try {
    Json(std::string(s)).dump();
    return true;
  } catch (const Json::type_error&) {
    return false;
  }
}

// DecodeBase64 accepts the standard and the URL-safe alphabet, as the DSSE spec does.
absl::Status DecodeBase64(absl::string_view where, absl::string_view encoded, std::string* out) {
  if (absl::Base64Unescape(encoded, out) || absl::WebSafeBase64Unescape(encoded, out)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(where, " is not valid base64; encode the raw bytes with RFC 4648 base64"));
}

// ParseRejectingDuplicates parses `text`, failing on an object with a repeated
// key: nlohmann keeps the last one silently, another DSSE implementation might
// keep the first, and the two would disagree about which payload was verified.
absl::StatusOr<Json> ParseRejectingDuplicates(absl::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  bool has_duplicate = false;
  std::string duplicate;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second && !has_duplicate) {
          has_duplicate = true;
          duplicate = key;
        }
        break;
      }
      case Json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end(), callback);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("envelope is not valid JSON: ", e.what()));
  }
  if (has_duplicate) {
    return absl::InvalidArgumentError(absl::StrCat("envelope JSON repeats the key \"",
                                                   Shown(duplicate),
                                                   "\" in one object; each key may appear once"));
  }
  return doc;
}

// StringField returns object[name] as a string; `where` names the object for messages.
absl::StatusOr<std::string> StringField(const Json& object, const char* name,
                                        absl::string_view where) {
  auto it = object.find(name);
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " is missing \"", name, "\""));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " field \"", name, "\" must be a string, not ", it->type_name()));
  }
  return it->get<std::string>();
}

absl::StatusOr<DsseSignature> ParseSignature(const Json& entry, size_t index) {
  const std::string where = absl::StrCat("envelope signatures[", index, "]");
  if (!entry.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " must be an object {\"keyid\": ..., \"sig\": ...}, not ", entry.type_name()));
  }
  DsseSignature signature;
  // keyid is optional in DSSE; when present it must be a string.
  if (entry.contains("keyid")) {
    ASSIGN_OR_RETURN(signature.keyid, StringField(entry, "keyid", where));
  }
  ASSIGN_OR_RETURN(std::string sig_b64, StringField(entry, "sig", where));
  RETURN_IF_ERROR(DecodeBase64(absl::StrCat(where, ".sig"), sig_b64, &signature.sig));
  if (signature.sig.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".sig is empty"));
  }
  return signature;
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) {
    const int error = errno;
    std::string reason = std::generic_category().message(error);
    if (error == ENOENT || error == ENOTDIR) {
      return absl::NotFoundError(
          absl::StrCat("trusted key file ", path, " does not exist (", reason, ")"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open trusted key file ", path, ": ", reason));
  }
  std::string contents(kMaxKeyFileBytes + 1, '\0');
  const size_t n = std::fread(&contents[0], 1, contents.size(), file.get());
  if (std::ferror(file.get())) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read trusted key file ", path, ": ",
                                                      std::generic_category().message(errno)));
  }
  if (n > kMaxKeyFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("trusted key file ", path, " is larger than ",
                                                   kMaxKeyFileBytes,
                                                   " bytes; point it at a public-key PEM file"));
  }
  contents.resize(n);
  return contents;
}

}  // namespace

std::string PreAuthEncoding(absl::string_view payload_type, absl::string_view payload) {
  return absl::StrCat("DSSEv1 ", payload_type.size(), " ", payload_type, " ", payload.size(), " ",
                      payload);
}

absl::StatusOr<DsseEnvelope> SignEnvelope(absl::string_view payload_type, absl::string_view payload,
                                          const std::vector<const Ed25519PrivateKey*>& keys) {
  if (keys.empty()) {
    return absl::InvalidArgumentError("SignEnvelope needs at least one signing key");
  }
  if (keys.size() > kMaxSignatures) {
    return absl::InvalidArgumentError(absl::StrCat("SignEnvelope got ", keys.size(),
                                                   " keys; envelopes carry at most ",
                                                   kMaxSignatures, " signatures"));
  }
  // The JSON form cannot carry other bytes, so such an envelope could never be parsed.
  if (!IsValidUtf8(payload_type)) {
    return absl::InvalidArgumentError("payload type must be valid UTF-8");
  }
  DsseEnvelope envelope;
  envelope.payload_type = std::string(payload_type);
  envelope.payload = std::string(payload);
  const std::string pae = PreAuthEncoding(payload_type, payload);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("signing key ", i, " is null"));
    }
    ASSIGN_OR_RETURN(std::string sig, keys[i]->Sign(pae));
    envelope.signatures.push_back(DsseSignature{keys[i]->PublicKey().KeyId(), std::move(sig)});
  }
  return envelope;
}

std::string EncodeEnvelopeJson(const DsseEnvelope& envelope) {
  Json signatures = Json::array();
  for (const DsseSignature& s : envelope.signatures) {
    Json entry = Json::object();
    entry["keyid"] = s.keyid;
    entry["sig"] = absl::Base64Escape(s.sig);
    signatures.push_back(std::move(entry));
  }
  Json doc = Json::object();
  doc["payload"] = absl::Base64Escape(envelope.payload);
  doc["payloadType"] = envelope.payload_type;
  doc["signatures"] = std::move(signatures);
  // Replace rather than throw on invalid UTF-8: SignEnvelope never produces it,
  // and a hand-built envelope with it fails verification either way.
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

absl::StatusOr<DsseEnvelope> ParseEnvelopeJson(absl::string_view json) {
  if (json.size() > kMaxEnvelopeJsonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("envelope JSON is ", json.size(),
                                                   " bytes, over the limit of ",
                                                   kMaxEnvelopeJsonBytes, " bytes"));
  }
  ASSIGN_OR_RETURN(Json doc, ParseRejectingDuplicates(json));
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "envelope JSON must be an object with \"payload\", \"payloadType\" and \"signatures\", "
        "not ",
        doc.type_name()));
  }
  DsseEnvelope envelope;
  ASSIGN_OR_RETURN(std::string payload_b64, StringField(doc, "payload", "envelope"));
  RETURN_IF_ERROR(DecodeBase64("envelope payload", payload_b64, &envelope.payload));
  ASSIGN_OR_RETURN(envelope.payload_type, StringField(doc, "payloadType", "envelope"));

  auto sigs = doc.find("signatures");
  if (sigs == doc.end()) {
    return absl::InvalidArgumentError("envelope is missing \"signatures\"");
  }
  if (!sigs->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("envelope field \"signatures\" must be an array, not ", sigs->type_name()));
  }
  if (sigs->empty()) {
    return absl::InvalidArgumentError("envelope has no signatures; sign it before publishing");
  }
  if (sigs->size() > kMaxSignatures) {
    return absl::InvalidArgumentError(absl::StrCat(
        "envelope has ", sigs->size(), " signatures; at most ", kMaxSignatures, " are accepted"));
  }
  for (size_t i = 0; i < sigs->size(); ++i) {
    ASSIGN_OR_RETURN(DsseSignature signature, ParseSignature((*sigs)[i], i));
    envelope.signatures.push_back(std::move(signature));
  }
  return envelope;
}

// The constructor cannot fail, so it does not check `threshold`; Verify refuses
// to accept anything while the threshold is out of range. LoadPemFiles checks it.
TrustedKeys::TrustedKeys(std::vector<Ed25519PublicKey> keys, int threshold)
    : threshold_(threshold) {
  for (Ed25519PublicKey& key : keys) {
    std::string id = key.KeyId();
    keys_.emplace(std::move(id), std::move(key));
  }
}

absl::StatusOr<TrustedKeys> TrustedKeys::LoadPemFiles(const std::vector<std::string>& paths,
                                                      int threshold) {
  if (paths.empty()) {
    return absl::InvalidArgumentError("no trusted public key files given; name at least one");
  }
  std::vector<Ed25519PublicKey> keys;
  std::map<std::string, std::string> path_by_id;
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(std::string pem, ReadKeyFile(path));
    absl::StatusOr<Ed25519PublicKey> key = Ed25519PublicKey::FromPem(pem);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("trusted key file ", path, ": ", key.status().message()));
    }
    auto [it, inserted] = path_by_id.emplace(key->KeyId(), path);
    if (!inserted) {
      // A repeated key would make a threshold of N look met by fewer people.
      return absl::InvalidArgumentError(absl::StrCat("trusted key files ", it->second, " and ",
                                                     path, " hold the same key ", it->first,
                                                     "; list each key once"));
    }
    keys.push_back(*std::move(key));
  }
  if (threshold < 1 || static_cast<size_t>(threshold) > keys.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("signature threshold ", threshold,
                     " must be between 1 and the number of trusted keys (", keys.size(), ")"));
  }
  return TrustedKeys(std::move(keys), threshold);
}

absl::StatusOr<VerifiedEnvelope> TrustedKeys::Verify(
    const DsseEnvelope& envelope, absl::string_view expected_payload_type) const {
  if (keys_.empty()) {
    return absl::FailedPreconditionError(
        "no trusted keys are configured, so no envelope can be verified");
  }
  if (threshold_ < 1 || static_cast<size_t>(threshold_) > keys_.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("signature threshold ", threshold_,
                     " must be between 1 and the number of trusted keys (", keys_.size(), ")"));
  }
  if (envelope.signatures.empty()) {
    return absl::InvalidArgumentError("envelope has no signatures; sign it before publishing");
  }
  if (envelope.signatures.size() > kMaxSignatures) {
    return absl::InvalidArgumentError(absl::StrCat("envelope has ", envelope.signatures.size(),
                                                   " signatures; at most ", kMaxSignatures,
                                                   " are accepted"));
  }
  if (envelope.payload_type != expected_payload_type) {
    return absl::InvalidArgumentError(absl::StrCat("envelope payloadType is \"",
                                                   Shown(envelope.payload_type), "\", expected \"",
                                                   expected_payload_type, "\""));
  }

  const std::string pae = PreAuthEncoding(envelope.payload_type, envelope.payload);
  std::vector<std::string> verified;  // distinct key ids, in signature order
  std::vector<std::string> problems;
  for (size_t i = 0; i < envelope.signatures.size(); ++i) {
    const DsseSignature& s = envelope.signatures[i];
    const std::string who = s.keyid.empty()
                                ? absl::StrCat("signature ", i, " (no keyid)")
                                : absl::StrCat("signature ", i, " keyid ", Shown(s.keyid));
    const std::string* signer = nullptr;
    if (!s.keyid.empty()) {
      auto it = keys_.find(s.keyid);
      if (it == keys_.end()) {
        problems.push_back(absl::StrCat(who, ": key is not trusted"));
        continue;
      }
      if (!it->second.Verify(pae, s.sig)) {
        problems.push_back(absl::StrCat(who, ": signature is invalid for this payload"));
        continue;
      }
      signer = &it->first;
    } else {
      for (const auto& [id, key] : keys_) {
        if (key.Verify(pae, s.sig)) {
          signer = &id;
          break;
        }
      }
      if (signer == nullptr) {
        problems.push_back(absl::StrCat(who, ": no trusted key verifies it"));
        continue;
      }
    }
    if (std::find(verified.begin(), verified.end(), *signer) != verified.end()) {
      problems.push_back(
          absl::StrCat(who, ": repeats a signature by key ", *signer, ", counted once"));
      continue;
    }
    verified.push_back(*signer);
  }

  if (verified.size() < static_cast<size_t>(threshold_)) {
    std::string message = absl::StrCat("envelope is signed by ", verified.size(),
                                       " distinct trusted key(s), ", threshold_, " required");
    if (!verified.empty()) {
      absl::StrAppend(&message, "; verified: ", absl::StrJoin(verified, ", "));
    }
    if (!problems.empty()) {
      absl::StrAppend(&message, "; ", absl::StrJoin(problems, "; "));
    }
    return absl::PermissionDeniedError(message);
  }
  return VerifiedEnvelope{envelope.payload_type, envelope.payload, std::move(verified)};
}

std::vector<std::string> TrustedKeys::KeyIds() const {
  std::vector<std::string> ids;
  ids.reserve(keys_.size());
  for (const auto& entry : keys_) {
    ids.push_back(entry.first);
  }
  return ids;
}

}  // namespace ringwarden
