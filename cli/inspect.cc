#include "cli/inspect.h"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/signing.h"
#include "common/dsse.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/trust/trust.h"
#include "ringwarden/v1/content.pb.h"
#include "ringwarden/v1/trust.pb.h"

namespace ringwarden {
namespace {

using json = nlohmann::json;

// KnownKey is a key some root names, with its roles there ("root v2", ...).
struct KnownKey {
  Ed25519PublicKey key;
  std::vector<std::string> roles;
};

void AddKnownKeys(const RootSpec& root, std::vector<KnownKey>& known) {
  for (const Ed25519PublicKey& key : root.keys) {
    const std::vector<std::string> roles = KeyRoles(root, key.KeyId());
    auto it = std::find_if(known.begin(), known.end(),
                           [&](const KnownKey& k) { return k.key.KeyId() == key.KeyId(); });
    if (it == known.end()) {
      known.push_back({key, roles});
    } else {
      it->roles.insert(it->roles.end(), roles.begin(), roles.end());
    }
  }
}

// SignaturesJson checks each signature against the key it names (any known key
// when it names none): valid true or false, or null when no known key fits.
json SignaturesJson(const DsseEnvelope& envelope, const std::vector<KnownKey>& known) {
  const std::string pae = PreAuthEncoding(envelope.payload_type, envelope.payload);
  json out = json::array();
  for (const DsseSignature& s : envelope.signatures) {
    std::vector<const KnownKey*> candidates;
    for (const KnownKey& k : known) {
      if (s.keyid.empty() || k.key.KeyId() == s.keyid) {
        candidates.push_back(&k);
      }
    }
    json valid = nullptr;
    std::string keyid = s.keyid;
    std::vector<std::string> roles;
    for (const KnownKey* k : candidates) {
      if (k->key.Verify(pae, s.sig)) {
        valid = true;
        keyid = k->key.KeyId();
        roles = k->roles;
        break;
      }
    }
    if (valid.is_null() && !candidates.empty()) {
      valid = false;
      if (!s.keyid.empty()) {
        roles = candidates.front()->roles;
      }
    }
    out.push_back({{"keyid", keyid}, {"valid", valid}, {"roles", roles}});
  }
  return out;
}

json Check(const std::string& name, const absl::Status& status, const std::string& ok_message) {
  return {{"name", name},
          {"ok", status.ok()},
          {"message", status.ok() ? ok_message : std::string(status.message())}};
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

json NotExpiredCheck(absl::Time expires, absl::Time now) {
  if (expires <= now) {
    return Check("not_expired",
                 absl::FailedPreconditionError(absl::StrCat("expired at ", FormatRfc3339(expires))),
                 "");
  }
  return Check("not_expired", absl::OkStatus(),
               absl::StrCat("valid until ", FormatRfc3339(expires)));
}

json RoleJson(const TrustRole& role) {
  return {{"keyids", role.keyids}, {"threshold", role.threshold}};
}

// RootUpdateStatus: is the root in `envelope` the trusted root itself, or a
// valid next version of it?
absl::Status RootUpdateStatus(const Root& trusted, const RootSpec& next,
                              const DsseEnvelope& envelope, absl::string_view envelope_json) {
  if (next.version == trusted.version) {
    if (Sha256Hex(envelope.payload) == trusted.payload_sha256) {
      return absl::OkStatus();
    }
    return absl::PermissionDeniedError(absl::StrCat("root v", next.version,
                                                    " differs from the trusted root v",
                                                    trusted.version, " of the same version"));
  }
  if (next.version < trusted.version) {
    return absl::FailedPreconditionError(
        absl::StrCat("root v", next.version, " is older than the trusted root v", trusted.version));
  }
  return VerifyRootUpdate(trusted, envelope_json).status();
}

// RootReport fills the "root" object and the root's checks.
absl::Status RootReport(const InspectRequest& request, const DsseEnvelope& envelope,
                        const std::optional<RootSpec>& trusted_spec,
                        const std::optional<Root>& trusted, json& report) {
  ASSIGN_OR_RETURN(RootSpec root, DecodeRootEnvelope(envelope));
  std::vector<KnownKey> known;
  AddKnownKeys(root, known);
  if (trusted_spec.has_value()) {
    AddKnownKeys(*trusted_spec, known);
  }
  report["signatures"] = SignaturesJson(envelope, known);
  std::set<std::string> own_root_signers;
  for (const json& s : report["signatures"]) {
    const std::string id = s["keyid"];
    if (s["valid"] == true &&
        std::find(root.root.keyids.begin(), root.root.keyids.end(), id) != root.root.keyids.end()) {
      own_root_signers.insert(id);
    }
  }
  std::vector<std::string> keyids;
  for (const Ed25519PublicKey& key : root.keys) {
    keyids.push_back(key.KeyId());
  }
  report["root"] = {{"version", root.version},
                    {"expires_unix", absl::ToUnixSeconds(root.expires)},
                    {"expired", root.expires <= request.now},
                    {"keyids", keyids},
                    {"roles",
                     {{"root", RoleJson(root.root)},
                      {"release", RoleJson(root.release)},
                      {"server", RoleJson(root.server)}}},
                    {"root_signatures", own_root_signers.size()}};
  report["checks"].push_back(Check("initial_root",
                                   TrustInitialRoot(request.envelope_json, request.now).status(),
                                   "signed by a threshold of its own root keys and not expired"));
  report["checks"].push_back(NotExpiredCheck(root.expires, request.now));
  if (trusted.has_value()) {
    report["checks"].push_back(
        Check("root_update", RootUpdateStatus(*trusted, root, envelope, request.envelope_json),
              root.version == trusted->version
                  ? "the trusted root itself"
                  : absl::StrCat("follows the trusted root v", trusted->version,
                                 ": signed by a threshold of its root keys and of its own")));
  }
  return absl::OkStatus();
}

template <typename Message>
absl::StatusOr<Message> ParsePayload(const DsseEnvelope& envelope, const std::string& path) {
  Message message;
  if (!message.ParseFromString(envelope.payload)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": the signed payload is not a valid ",
                                                   EnvelopeKind(envelope.payload_type)));
  }
  return message;
}

// SignedPayloadReport fills the object of a floor, content manifest or
// assignment and, with a trusted root, the check of its signer role.
absl::Status SignedPayloadReport(const InspectRequest& request, const DsseEnvelope& envelope,
                                 const std::optional<Root>& trusted, json& report) {
  const std::string kind = EnvelopeKind(envelope.payload_type);
  if (kind == "floor") {
    ASSIGN_OR_RETURN(auto floor, ParsePayload<v1::FloorMetadata>(envelope, request.path));
    report["floor"] = {{"channel", floor.channel()},
                       {"min_version", floor.min_version()},
                       {"created_unix", floor.created_unix()}};
    if (trusted.has_value()) {
      report["checks"].push_back(Check("release_signed",
                                       VerifyFloor(*trusted, request.envelope_json).status(),
                                       "signed by a threshold of the release keys"));
    }
  } else if (kind == "content") {
    ASSIGN_OR_RETURN(auto manifest, ParsePayload<v1::ContentManifest>(envelope, request.path));
    report["content"] = {{"channel", manifest.channel()},
                         {"version", manifest.version()},
                         {"sha256", manifest.sha256()},
                         {"size", manifest.size()},
                         {"created_unix", manifest.created_unix()},
                         {"description", manifest.description()}};
    if (trusted.has_value()) {
      report["checks"].push_back(Check(
          "release_signed", trusted->release_keys.Verify(envelope, kManifestPayloadType).status(),
          "signed by a threshold of the release keys"));
    }
  } else {
    ASSIGN_OR_RETURN(auto statement, ParsePayload<v1::AssignmentStatement>(envelope, request.path));
    json channels = json::array();
    for (const v1::AssignedChannel& c : statement.channels()) {
      channels.push_back({{"channel", c.channel()},
                          {"version", c.version()},
                          {"manifest_sha256", c.manifest_sha256()},
                          {"size", c.size()},
                          {"revoked_versions", std::vector<int64_t>(c.revoked_versions().begin(),
                                                                    c.revoked_versions().end())},
                          {"rollback", c.rollback()}});
    }
    const absl::Time expires = absl::FromUnixMillis(statement.expires_unix_ms());
    report["assignment"] = {{"agent_id", statement.agent_id()},
                            {"ring", statement.ring()},
                            {"sequence", statement.sequence()},
                            {"issued_unix_ms", statement.issued_unix_ms()},
                            {"expires_unix_ms", statement.expires_unix_ms()},
                            {"expired", expires <= request.now},
                            {"emergency_stop", statement.emergency_stop()},
                            {"root_version", statement.root_version()},
                            {"channels", channels}};
    if (trusted.has_value()) {
      report["checks"].push_back(Check(
          "server_signed", trusted->server_keys.Verify(envelope, kAssignmentPayloadType).status(),
          "signed by a threshold of the server keys"));
    }
    report["checks"].push_back(NotExpiredCheck(expires, request.now));
  }
  std::vector<KnownKey> known;
  if (trusted.has_value()) {
    ASSIGN_OR_RETURN(RootSpec trusted_spec, DecodeRootUnverified(trusted->envelope_json));
    AddKnownKeys(trusted_spec, known);
  }
  report["signatures"] = SignaturesJson(envelope, known);
  return absl::OkStatus();
}

// --- table rendering ---

std::string Yes(bool b) { return b ? "yes" : "no"; }

std::string JoinOrDash(const json& strings) {
  std::vector<std::string> parts;
  for (const json& s : strings) {
    parts.push_back(s.is_string() ? s.get<std::string>() : s.dump());
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

void PrintFields(const std::vector<std::pair<std::string, std::string>>& fields,
                 std::ostream& out) {
  size_t width = 0;
  for (const auto& [name, value] : fields) {
    width = std::max(width, name.size());
  }
  for (const auto& [name, value] : fields) {
    out << "  " << name << std::string(width - name.size() + 2, ' ') << value << "\n";
  }
}

std::string Expiry(int64_t unix_seconds, bool expired) {
  return absl::StrCat(FormatTime(unix_seconds), expired ? " (EXPIRED)" : "");
}

void PrintRoot(const json& report, std::ostream& out) {
  const json& root = report["root"];
  out << report["file"].get<std::string>() << ": root metadata v" << root["version"].get<int64_t>()
      << "\n";
  PrintFields({{"expires", Expiry(root["expires_unix"], root["expired"])},
               {"payload sha256", report["payload_sha256"]}},
              out);
  out << "\n";
  Table t({"ROLE", "THRESHOLD", "KEY IDS"});
  for (const char* name : {"root", "release", "server"}) {
    const json& role = root["roles"][name];
    const json& ids = role["keyids"];
    for (size_t i = 0; i < ids.size(); ++i) {
      t.Add({i == 0 ? name : "",
             i == 0 ? absl::StrCat(role["threshold"].get<int>(), " of ", ids.size()) : "", ids[i]});
    }
  }
  t.Print(out);
}

void PrintSignedPayload(const json& report, std::ostream& out) {
  const std::string file = report["file"];
  const std::string sha = report["payload_sha256"];
  if (report.contains("floor")) {
    const json& f = report["floor"];
    out << file << ": floor of " << f["channel"].get<std::string>() << ": never below v"
        << f["min_version"].get<int64_t>() << "\n";
    PrintFields({{"signed at", FormatTime(f["created_unix"])}, {"payload sha256", sha}}, out);
  } else if (report.contains("content")) {
    const json& c = report["content"];
    out << file << ": content manifest " << c["channel"].get<std::string>() << " v"
        << c["version"].get<int64_t>() << "\n";
    PrintFields(
        {{"sha256", c["sha256"]},
         {"size", absl::StrCat(c["size"].get<int64_t>(), " bytes")},
         {"signed at", FormatTime(c["created_unix"])},
         {"description", c["description"].get<std::string>().empty() ? "-" : c["description"]},
         {"payload sha256", sha}},
        out);
  } else {
    const json& a = report["assignment"];
    out << file << ": assignment for " << a["agent_id"].get<std::string>() << " ("
        << a["ring"].get<std::string>() << " ring), sequence " << a["sequence"].get<int64_t>()
        << "\n";
    PrintFields({{"issued", FormatTime(a["issued_unix_ms"].get<int64_t>() / 1000)},
                 {"expires", Expiry(a["expires_unix_ms"].get<int64_t>() / 1000, a["expired"])},
                 {"emergency stop", Yes(a["emergency_stop"])},
                 {"root version", absl::StrCat(a["root_version"].get<int64_t>())},
                 {"payload sha256", sha}},
                out);
    out << "\n";
    Table t({"CHANNEL", "VERSION", "SIZE", "MANIFEST", "ROLLBACK", "REVOKED"});
    for (const json& c : a["channels"]) {
      t.Add({c["channel"], absl::StrCat(c["version"].get<int64_t>()),
             absl::StrCat(c["size"].get<int64_t>()),
             c["manifest_sha256"].get<std::string>().substr(0, 12), Yes(c["rollback"]),
             JoinOrDash(c["revoked_versions"])});
    }
    t.Print(out);
  }
}

void PrintSignatures(const json& report, std::ostream& out) {
  out << "\n";
  if (report["signatures"].empty()) {
    out << "no signatures yet\n";
    return;
  }
  bool unchecked = false;
  Table t({"SIGNED BY", "ROLES", "SIGNATURE"});
  for (const json& s : report["signatures"]) {
    std::string verdict = "not checked: no key for it";
    if (s["valid"].is_boolean()) {
      verdict = s["valid"] == true ? "valid" : "INVALID";
    } else {
      unchecked = true;
    }
    const std::string keyid = s["keyid"];
    t.Add({keyid.empty() ? "(no key id)" : keyid, JoinOrDash(s["roles"]), verdict});
  }
  t.Print(out);
  if (unchecked && report["trusted_root"].is_null()) {
    out << "pass --trusted-root ROOT.json to check signatures by keys this file does not name\n";
  }
}

void PrintChecks(const json& report, std::ostream& out) {
  const json& trusted = report["trusted_root"];
  if (trusted.is_null() && report["checks"].empty()) {
    return;
  }
  out << "\n";
  if (!trusted.is_null()) {
    out << "checked against --trusted-root " << trusted["file"].get<std::string>() << " (root v"
        << trusted["version"].get<int64_t>() << ")\n";
  }
  Table t({"CHECK", "RESULT", "DETAIL"});
  for (const json& c : report["checks"]) {
    t.Add({c["name"], c["ok"] == true ? "ok" : "FAILED", c["message"]});
  }
  t.Print(out);
}

}  // namespace

absl::StatusOr<Inspection> InspectEnvelope(const InspectRequest& request) {
  absl::StatusOr<DsseEnvelope> parsed = ParseEnvelopeForSigning(request.envelope_json);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(request.path, ": ", parsed.status().message()));
  }
  const DsseEnvelope& envelope = *parsed;
  const std::string kind = EnvelopeKind(envelope.payload_type);
  if (kind.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(request.path,
                                                   " is not a ringwarden envelope: payloadType \"",
                                                   envelope.payload_type, "\""));
  }

  std::optional<RootSpec> trusted_spec;
  std::optional<Root> trusted;
  json trusted_json = nullptr;
  if (!request.trusted_root_path.empty()) {
    absl::StatusOr<RootSpec> spec = DecodeRootUnverified(request.trusted_root_json);
    // An expired trusted root still verifies its successor; its expiry is reported.
    absl::StatusOr<Root> root = spec.ok() ? TrustRootSignatures(request.trusted_root_json)
                                          : absl::StatusOr<Root>(spec.status());
    if (!root.ok()) {
      return absl::Status(root.status().code(),
                          absl::StrCat("--trusted-root ", request.trusted_root_path, ": ",
                                       root.status().message()));
    }
    trusted_spec = *std::move(spec);
    trusted = *std::move(root);
    trusted_json = {{"file", request.trusted_root_path},
                    {"version", trusted->version},
                    {"expires_unix", absl::ToUnixSeconds(trusted->expires)},
                    {"expired", trusted->expires <= request.now}};
  }

  Inspection result;
  json& report = result.report;
  report = {{"file", request.path},
            {"kind", kind},
            {"payload_type", envelope.payload_type},
            {"payload_sha256", Sha256Hex(envelope.payload)},
            {"trusted_root", trusted_json},
            {"checks", json::array()}};
  if (kind == "root") {
    RETURN_IF_ERROR(RootReport(request, envelope, trusted_spec, trusted, report));
  } else {
    RETURN_IF_ERROR(SignedPayloadReport(request, envelope, trusted, report));
  }
  if (trusted.has_value()) {
    for (const json& check : report["checks"]) {
      if (check["ok"] == false) {
        result.verdict = absl::PermissionDeniedError(
            absl::StrCat(request.path, " does not verify against --trusted-root ",
                         request.trusted_root_path, ": ", check["message"].get<std::string>()));
        break;
      }
    }
  }
  return result;
}

void RenderInspection(const json& report, OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kJson) {
    out << report.dump() << "\n";
    return;
  }
  if (report["kind"] == "root") {
    PrintRoot(report, out);
  } else {
    PrintSignedPayload(report, out);
  }
  PrintSignatures(report, out);
  PrintChecks(report, out);
}

}  // namespace ringwarden
