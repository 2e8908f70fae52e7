#include "common/trust/trust.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "ringwarden/v1/content.pb.h"
#include "ringwarden/v1/trust.pb.h"

namespace ringwarden {
namespace {

constexpr int kMaxKeysPerRoot = 64;
constexpr int kMaxAssignedChannels = 256;
constexpr int kMaxRevokedPerChannel = 1024;
constexpr absl::string_view kRingNames[] = {"canary", "early", "broad"};

std::string Serialize(const google::protobuf::MessageLite& message) {
  std::string out;
  message.SerializeToString(&out);
  return out;
}

template <typename Message>
absl::StatusOr<Message> ParsePayload(absl::string_view payload, absl::string_view what) {
  Message message;
  if (!message.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(absl::StrCat("signed payload is not a valid ", what));
  }
  return message;
}

absl::StatusOr<DsseEnvelope> ParseTyped(absl::string_view envelope_json,
                                        absl::string_view payload_type, absl::string_view what) {
  ASSIGN_OR_RETURN(DsseEnvelope envelope, ParseEnvelopeJson(envelope_json));
  if (envelope.payload_type != payload_type) {
    // A manifest offered as an assignment, a root as a floor, ...: type confusion.
    return absl::InvalidArgumentError(absl::StrCat(
        "envelope payloadType is \"", absl::CHexEscape(envelope.payload_type.substr(0, 80)),
        "\", not a ", what, " (\"", payload_type, "\")"));
  }
  return envelope;
}

absl::Status ValidateRole(const TrustRole& role, absl::string_view name,
                          const std::set<std::string>& known) {
  if (role.keyids.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the ", name, " role names no key"));
  }
  std::set<std::string> seen;
  for (const std::string& id : role.keyids) {
    if (!known.count(id)) {
      return absl::InvalidArgumentError(absl::StrCat("the ", name, " role names key ",
                                                     absl::CHexEscape(id.substr(0, 80)),
                                                     ", which the root does not list"));
    }
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the ", name, " role names key ", id, " twice"));
    }
  }
  if (role.threshold < 1 || static_cast<size_t>(role.threshold) > role.keyids.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the ", name, " role threshold ", role.threshold,
                                                   " must be between 1 and ", role.keyids.size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const RootSpec& spec) {
  if (spec.version < 1) {
    return absl::InvalidArgumentError("root version must be >= 1");
  }
  if (spec.keys.empty() || spec.keys.size() > kMaxKeysPerRoot) {
    return absl::InvalidArgumentError(
        absl::StrCat("a root lists 1 to ", kMaxKeysPerRoot, " keys, not ", spec.keys.size()));
  }
  std::set<std::string> known;
  for (const Ed25519PublicKey& key : spec.keys) {
    if (!known.insert(key.KeyId()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", key.KeyId(), " is listed twice; list each key once"));
    }
  }
  RETURN_IF_ERROR(ValidateRole(spec.root, "root", known));
  RETURN_IF_ERROR(ValidateRole(spec.release, "release", known));
  RETURN_IF_ERROR(ValidateRole(spec.server, "server", known));
  return absl::OkStatus();
}

void RoleToProto(const TrustRole& role, v1::TrustRole* out) {
  for (const std::string& id : role.keyids) {
    out->add_keyids(id);
  }
  out->set_threshold(role.threshold);
}

TrustRole RoleFromProto(const v1::TrustRole& role) {
  TrustRole out;
  out.keyids.assign(role.keyids().begin(), role.keyids().end());
  out.threshold = role.threshold();
  return out;
}

absl::StatusOr<RootSpec> SpecFromPayload(absl::string_view payload) {
  ASSIGN_OR_RETURN(v1::RootMetadata m, ParsePayload<v1::RootMetadata>(payload, "root metadata"));
  RootSpec spec;
  spec.version = m.version();
  spec.expires = absl::FromUnixSeconds(m.expires_unix());
  if (m.keys_size() > kMaxKeysPerRoot) {
    return absl::InvalidArgumentError(
        absl::StrCat("a root lists at most ", kMaxKeysPerRoot, " keys, not ", m.keys_size()));
  }
  for (const v1::TrustKey& k : m.keys()) {
    ASSIGN_OR_RETURN(Ed25519PublicKey key, Ed25519PublicKey::FromRaw(k.public_key()));
    if (key.KeyId() != k.keyid()) {
      return absl::InvalidArgumentError(absl::StrCat("root lists key id ",
                                                     absl::CHexEscape(k.keyid().substr(0, 80)),
                                                     " for a key whose id is ", key.KeyId()));
    }
    spec.keys.push_back(std::move(key));
  }
  spec.root = RoleFromProto(m.root());
  spec.release = RoleFromProto(m.release());
  spec.server = RoleFromProto(m.server());
  RETURN_IF_ERROR(ValidateSpec(spec));
  return spec;
}

TrustedKeys RoleKeys(const RootSpec& spec, const TrustRole& role) {
  std::vector<Ed25519PublicKey> keys;
  for (const Ed25519PublicKey& key : spec.keys) {
    if (std::find(role.keyids.begin(), role.keyids.end(), key.KeyId()) != role.keyids.end()) {
      keys.push_back(key);
    }
  }
  return TrustedKeys(std::move(keys), role.threshold);
}

// DecodeRoot parses a root envelope and builds its key sets; no signature is checked.
absl::StatusOr<std::pair<Root, DsseEnvelope>> DecodeRoot(absl::string_view envelope_json) {
  ASSIGN_OR_RETURN(DsseEnvelope envelope, ParseTyped(envelope_json, kRootPayloadType, "root"));
  ASSIGN_OR_RETURN(RootSpec spec, SpecFromPayload(envelope.payload));
  Root root;
  root.version = spec.version;
  root.expires = spec.expires;
  root.root_keys = RoleKeys(spec, spec.root);
  root.release_keys = RoleKeys(spec, spec.release);
  root.server_keys = RoleKeys(spec, spec.server);
  root.envelope_json = std::string(envelope_json);
  root.payload_sha256 = Sha256Hex(envelope.payload);
  return std::make_pair(std::move(root), std::move(envelope));
}

absl::Status Signed(const TrustedKeys& keys, const DsseEnvelope& envelope,
                    absl::string_view payload_type, absl::string_view by) {
  absl::StatusOr<VerifiedEnvelope> verified = keys.Verify(envelope, payload_type);
  if (!verified.ok()) {
    return absl::Status(verified.status().code(),
                        absl::StrCat(by, ": ", verified.status().message()));
  }
  return absl::OkStatus();
}

absl::Status NotExpired(const Root& root, absl::Time now) {
  if (root.expires <= now) {
    return absl::FailedPreconditionError(
        absl::StrCat("root version ", root.version, " expired at ",
                     absl::FormatTime(absl::RFC3339_sec, root.expires, absl::UTCTimeZone()),
                     "; the release team must sign a new root"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsRingName(absl::string_view ring) {
  return std::find(std::begin(kRingNames), std::end(kRingNames), ring) != std::end(kRingNames);
}

absl::StatusOr<std::string> EncodeRoot(const RootSpec& spec) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  v1::RootMetadata m;
  m.set_version(spec.version);
  m.set_expires_unix(absl::ToUnixSeconds(spec.expires));
  for (const Ed25519PublicKey& key : spec.keys) {
    v1::TrustKey* k = m.add_keys();
    k->set_keyid(key.KeyId());
    k->set_public_key(key.Raw());
  }
  RoleToProto(spec.root, m.mutable_root());
  RoleToProto(spec.release, m.mutable_release());
  RoleToProto(spec.server, m.mutable_server());
  return Serialize(m);
}

absl::StatusOr<RootSpec> DecodeRootUnverified(absl::string_view envelope_json) {
  ASSIGN_OR_RETURN(DsseEnvelope envelope, ParseTyped(envelope_json, kRootPayloadType, "root"));
  return SpecFromPayload(envelope.payload);
}

absl::StatusOr<Root> TrustRootSignatures(absl::string_view envelope_json) {
  ASSIGN_OR_RETURN(auto decoded, DecodeRoot(envelope_json));
  auto& [root, envelope] = decoded;
  RETURN_IF_ERROR(
      Signed(root.root_keys, envelope, kRootPayloadType,
             absl::StrCat("root version ", root.version, " is not signed by its own root keys")));
  return std::move(root);
}

absl::StatusOr<Root> TrustInitialRoot(absl::string_view envelope_json, absl::Time now) {
  ASSIGN_OR_RETURN(Root root, TrustRootSignatures(envelope_json));
  RETURN_IF_ERROR(NotExpired(root, now));
  return root;
}

absl::StatusOr<Root> VerifyRootUpdate(const Root& trusted, absl::string_view next_json) {
  ASSIGN_OR_RETURN(auto decoded, DecodeRoot(next_json));
  auto& [next, envelope] = decoded;
  if (next.version != trusted.version + 1) {
    return absl::FailedPreconditionError(absl::StrCat("root version ", next.version,
                                                      " does not follow the trusted version ",
                                                      trusted.version, "; roots go one by one"));
  }
  RETURN_IF_ERROR(Signed(
      trusted.root_keys, envelope, kRootPayloadType,
      absl::StrCat("root version ", next.version, " is not signed by a threshold of version ",
                   trusted.version, "'s root keys")));
  RETURN_IF_ERROR(Signed(next.root_keys, envelope, kRootPayloadType,
                         absl::StrCat("root version ", next.version,
                                      " is not signed by a threshold of its own root keys")));
  return std::move(next);
}

absl::StatusOr<Root> WalkRootChain(const Root& trusted, const std::vector<std::string>& updates,
                                   absl::Time now) {
  Root current = trusted;
  int walked = 0;
  for (const std::string& update : updates) {
    ASSIGN_OR_RETURN(DsseEnvelope envelope, ParseTyped(update, kRootPayloadType, "root"));
    ASSIGN_OR_RETURN(RootSpec spec, SpecFromPayload(envelope.payload));
    if (spec.version <= current.version) {
      if (spec.version == current.version &&
          Sha256Hex(envelope.payload) != current.payload_sha256) {
        return absl::PermissionDeniedError(absl::StrCat(
            "root version ", spec.version, " was changed without a new version number"));
      }
      continue;  // already trusted
    }
    if (++walked > kMaxRootChain) {
      return absl::FailedPreconditionError(absl::StrCat(
          "more than ", kMaxRootChain, " root versions in one update; update the pinned root"));
    }
    ASSIGN_OR_RETURN(current, VerifyRootUpdate(current, update));
  }
  RETURN_IF_ERROR(NotExpired(current, now));
  return current;
}

absl::StatusOr<std::string> EncodeFloor(absl::string_view channel, int64_t min_version,
                                        absl::Time created) {
  RETURN_IF_ERROR(ValidateChannelName(channel));
  if (min_version < 1) {
    return absl::InvalidArgumentError("a floor's minimum version must be >= 1");
  }
  v1::FloorMetadata m;
  m.set_channel(std::string(channel));
  m.set_min_version(min_version);
  m.set_created_unix(absl::ToUnixSeconds(created));
  return Serialize(m);
}

absl::StatusOr<Floor> VerifyFloor(const Root& root, absl::string_view envelope_json) {
  ASSIGN_OR_RETURN(DsseEnvelope envelope, ParseTyped(envelope_json, kFloorPayloadType, "floor"));
  RETURN_IF_ERROR(Signed(root.release_keys, envelope, kFloorPayloadType,
                         "floor is not signed by a threshold of the release keys"));
  ASSIGN_OR_RETURN(v1::FloorMetadata m,
                   ParsePayload<v1::FloorMetadata>(envelope.payload, "floor metadata"));
  RETURN_IF_ERROR(ValidateChannelName(m.channel()));
  if (m.min_version() < 1) {
    return absl::InvalidArgumentError("a floor's minimum version must be >= 1");
  }
  return Floor{m.channel(), m.min_version(), std::string(envelope_json)};
}

std::string AssignmentPayload(const Assignment& a) {
  return AssignmentPayload(a, a.sequence, a.issued, a.expires);
}

std::string AssignmentPayload(const Assignment& a, int64_t sequence, absl::Time issued,
                              absl::Time expires) {
  std::string out;
  AssignmentPayloadInto(a, sequence, issued, expires, out);
  return out;
}

void AssignmentPayloadInto(const Assignment& a, int64_t sequence, absl::Time issued,
                           absl::Time expires, std::string& out) {
  // Clear keeps the message's strings and channel entries for the next statement.
  thread_local v1::AssignmentStatement m;
  m.Clear();
  m.set_agent_id(a.agent_id);
  m.set_ring(a.ring);
  m.set_sequence(sequence);
  m.set_issued_unix_ms(absl::ToUnixMillis(issued));
  m.set_expires_unix_ms(absl::ToUnixMillis(expires));
  for (const AssignedChannel& c : a.channels) {
    v1::AssignedChannel* out = m.add_channels();
    out->set_channel(c.channel);
    out->set_version(c.version);
    out->set_manifest_sha256(c.manifest_sha256);
    out->set_size(c.size);
    for (int64_t v : c.revoked_versions) {
      out->add_revoked_versions(v);
    }
    out->set_rollback(c.rollback);
  }
  m.set_emergency_stop(a.emergency_stop);
  m.set_root_version(a.root_version);
  out.clear();
  m.AppendToString(&out);
}

absl::StatusOr<std::string> SignAssignment(const Assignment& a, const Ed25519PrivateKey& key) {
  ASSIGN_OR_RETURN(DsseEnvelope envelope,
                   SignEnvelope(kAssignmentPayloadType, AssignmentPayload(a), {&key}));
  return EncodeEnvelopeJson(envelope);
}

absl::StatusOr<Assignment> VerifyAssignment(const Root& root, absl::string_view envelope_json,
                                            absl::string_view agent_id, absl::Time now) {
  if (envelope_json.empty()) {
    return absl::PermissionDeniedError("the answer carries no signed assignment");
  }
  ASSIGN_OR_RETURN(DsseEnvelope envelope,
                   ParseTyped(envelope_json, kAssignmentPayloadType, "assignment"));
  RETURN_IF_ERROR(Signed(root.server_keys, envelope, kAssignmentPayloadType,
                         absl::StrCat("assignment is not signed by the server keys of root "
                                      "version ",
                                      root.version)));
  ASSIGN_OR_RETURN(v1::AssignmentStatement m,
                   ParsePayload<v1::AssignmentStatement>(envelope.payload, "assignment"));
  if (m.agent_id() != agent_id) {
    return absl::PermissionDeniedError(absl::StrCat("assignment is for agent \"",
                                                    absl::CHexEscape(m.agent_id().substr(0, 128)),
                                                    "\", not this one"));
  }
  if (!IsRingName(m.ring())) {
    return absl::InvalidArgumentError("assignment names no valid ring");
  }
  Assignment a;
  a.agent_id = m.agent_id();
  a.ring = m.ring();
  a.sequence = m.sequence();
  a.issued = absl::FromUnixMillis(m.issued_unix_ms());
  a.expires = absl::FromUnixMillis(m.expires_unix_ms());
  a.emergency_stop = m.emergency_stop();
  a.root_version = m.root_version();
  a.payload_sha256 = Sha256Hex(envelope.payload);
  if (a.sequence < 1) {
    return absl::InvalidArgumentError("assignment sequence must be >= 1");
  }
  if (a.issued > now + kMaxClockSkew) {
    return absl::FailedPreconditionError(
        "assignment was issued in the future; check this machine's clock");
  }
  if (a.expires + kMaxClockSkew <= now) {
    return absl::FailedPreconditionError(
        absl::StrCat("assignment expired at ",
                     absl::FormatTime(absl::RFC3339_sec, a.expires, absl::UTCTimeZone()),
                     "; the server has not answered with a fresh one"));
  }
  if (m.channels_size() > kMaxAssignedChannels) {
    return absl::InvalidArgumentError("assignment names too many channels");
  }
  for (const v1::AssignedChannel& c : m.channels()) {
    RETURN_IF_ERROR(ValidateChannelName(c.channel()));
    if (c.version() < 0 || c.size() < 0 || c.revoked_versions_size() > kMaxRevokedPerChannel ||
        (c.version() > 0 && !IsSha256Hex(c.manifest_sha256()))) {
      return absl::InvalidArgumentError(
          absl::StrCat("assignment for channel ", c.channel(), " is malformed"));
    }
    AssignedChannel out;
    out.channel = c.channel();
    out.version = c.version();
    out.manifest_sha256 = c.manifest_sha256();
    out.size = c.size();
    out.revoked_versions.assign(c.revoked_versions().begin(), c.revoked_versions().end());
    out.rollback = c.rollback();
    a.channels.push_back(std::move(out));
  }
  return a;
}

absl::StatusOr<VerifiedContent> VerifyContentEnvelope(const Root& root,
                                                      absl::string_view envelope_json,
                                                      const AssignedChannel& expected) {
  ASSIGN_OR_RETURN(DsseEnvelope envelope,
                   ParseTyped(envelope_json, kManifestPayloadType, "content manifest"));
  RETURN_IF_ERROR(Signed(root.release_keys, envelope, kManifestPayloadType,
                         "content is not signed by a threshold of the release keys"));
  VerifiedContent out;
  out.manifest_sha256 = Sha256Hex(envelope.payload);
  if (out.manifest_sha256 != expected.manifest_sha256) {
    return absl::PermissionDeniedError(absl::StrCat(
        "content manifest digest ", out.manifest_sha256, " is not the one the assignment names (",
        absl::CHexEscape(expected.manifest_sha256.substr(0, 64)), ")"));
  }
  ASSIGN_OR_RETURN(v1::ContentManifest m,
                   ParsePayload<v1::ContentManifest>(envelope.payload, "content manifest"));
  if (m.channel() != expected.channel || m.version() != expected.version ||
      m.size() != expected.size || m.size() < 0 || !IsSha256Hex(m.sha256())) {
    return absl::PermissionDeniedError(
        absl::StrCat("signed manifest (", absl::CHexEscape(m.channel().substr(0, 64)), " v",
                     m.version(), ", ", m.size(), " bytes) does not match the assignment (",
                     expected.channel, " v", expected.version, ", ", expected.size, " bytes)"));
  }
  out.channel = m.channel();
  out.version = m.version();
  out.sha256 = m.sha256();
  out.size = m.size();
  return out;
}

absl::StatusOr<std::vector<ChannelDecision>> AcceptAssignment(
    AgentTrustState& state, const Assignment& a, const std::vector<Floor>& floors,
    const std::map<std::string, int64_t>& current) {
  if (!state.ring.empty() && a.ring != state.ring) {
    return absl::FailedPreconditionError(
        absl::StrCat("assignment is for the ", a.ring, " ring; this agent is in ", state.ring));
  }
  if (a.sequence < state.last_sequence) {
    return absl::FailedPreconditionError(absl::StrCat("assignment sequence ", a.sequence,
                                                      " is older than the accepted ",
                                                      state.last_sequence, ": a replayed answer"));
  }
  if (a.sequence == state.last_sequence && a.payload_sha256 != state.last_payload_sha256) {
    return absl::FailedPreconditionError(absl::StrCat("assignment sequence ", a.sequence,
                                                      " was already accepted with other content"));
  }
  AgentTrustState next = state;
  for (const Floor& floor : floors) {
    int64_t& known = next.floors[floor.channel];
    known = std::max(known, floor.min_version);
  }
  std::vector<ChannelDecision> decisions;
  for (const AssignedChannel& c : a.channels) {
    std::vector<int64_t>& revoked = next.revoked[c.channel];
    for (int64_t v : c.revoked_versions) {
      if (std::find(revoked.begin(), revoked.end(), v) == revoked.end() &&
          revoked.size() < static_cast<size_t>(kMaxRevokedPerChannel)) {
        revoked.push_back(v);
      }
    }
    std::sort(revoked.begin(), revoked.end());
    ChannelDecision d;
    d.channel = c;
    auto cur_it = current.find(c.channel);
    const int64_t running = cur_it == current.end() ? 0 : cur_it->second;
    const auto floor_it = next.floors.find(c.channel);
    const int64_t floor = floor_it == next.floors.end() ? 0 : floor_it->second;
    if (c.version == 0 || c.version == running) {
      // nothing to do
    } else if (std::binary_search(revoked.begin(), revoked.end(), c.version)) {
      d.refused = true;
      d.reason = absl::StrCat(c.channel, " v", c.version, " is revoked");
    } else if (c.version < floor) {
      d.refused = true;
      d.reason = absl::StrCat(c.channel, " v", c.version, " is below the signed floor v", floor);
    } else if (c.version < running && !c.rollback) {
      d.refused = true;
      d.reason = absl::StrCat(c.channel, " v", c.version, " is older than v", running,
                              ": refusing to go back without a rollback directive");
    } else if (a.emergency_stop) {
      // An emergency stop: apply nothing new until it is lifted.
    } else {
      d.apply = true;
    }
    decisions.push_back(std::move(d));
  }
  next.last_sequence = a.sequence;
  next.last_payload_sha256 = a.payload_sha256;
  state = std::move(next);
  return decisions;
}

void RecordRun(AgentTrustState& state, absl::string_view channel, int64_t version) {
  int64_t& highest = state.highest[std::string(channel)];
  highest = std::max(highest, version);
}

std::string EncodeTrustState(const AgentTrustState& state) {
  nlohmann::json j = {{"ring", state.ring},
                      {"last_sequence", state.last_sequence},
                      {"last_payload_sha256", state.last_payload_sha256},
                      {"floors", state.floors},
                      {"highest", state.highest},
                      {"revoked", state.revoked}};
  return j.dump();
}

absl::StatusOr<AgentTrustState> DecodeTrustState(absl::string_view json) {
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError("trust state is not a JSON object");
  }
  AgentTrustState state;
  try {
    state.ring = j.at("ring").get<std::string>();
    state.last_sequence = j.at("last_sequence").get<int64_t>();
    state.last_payload_sha256 = j.at("last_payload_sha256").get<std::string>();
    state.floors = j.at("floors").get<std::map<std::string, int64_t>>();
    state.highest = j.at("highest").get<std::map<std::string, int64_t>>();
    if (j.contains("revoked")) {
      state.revoked = j.at("revoked").get<std::map<std::string, std::vector<int64_t>>>();
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("trust state is malformed: ", e.what()));
  }
  if (!state.ring.empty() && !IsRingName(state.ring)) {
    return absl::InvalidArgumentError("trust state names an unknown ring");
  }
  for (const auto* m : {&state.floors, &state.highest}) {
    for (const auto& [channel, version] : *m) {
      RETURN_IF_ERROR(ValidateChannelName(channel));
      if (version < 0) {
        return absl::InvalidArgumentError("trust state holds a negative version");
      }
    }
  }
  for (const auto& [channel, versions] : state.revoked) {
    RETURN_IF_ERROR(ValidateChannelName(channel));
    (void)versions;
  }
  return state;
}

}  // namespace ringwarden
