#include "agent-client/state_codec.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/trust/trust.h"
#include "nlohmann/json.hpp"

namespace ringwarden::agent {

namespace {

using nlohmann::json;

json VersionToJson(const ContentVersion& v) {
  return json{{"version", v.version},
              {"sha256", v.sha256},
              {"size", v.size},
              {"manifest_sha256", v.manifest_sha256}};
}

// VersionFromJson reads a version; without "manifest_sha256" (format 1, an
// apply journalled before format 2) the manifest is unknown.
ContentVersion VersionFromJson(const json& j) {
  ContentVersion v;
  v.version = j.at("version").get<int64_t>();
  v.sha256 = j.at("sha256").get<std::string>();
  v.size = j.at("size").get<int64_t>();
  if (j.contains("manifest_sha256")) {
    v.manifest_sha256 = j.at("manifest_sha256").get<std::string>();
  }
  return v;
}

json VersionsToJson(const std::vector<ChannelVersion>& versions) {
  json out = json::object();
  for (const ChannelVersion& cv : versions) {
    out[cv.channel] = cv.version;
  }
  return out;
}

std::vector<ChannelVersion> VersionsFromJson(const json& j) {
  std::vector<ChannelVersion> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    out.push_back(ChannelVersion{it.key(), it.value().get<int64_t>()});
  }
  return out;
}

absl::Status Corrupt(absl::string_view path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(
      "state file ", path, " is corrupt (", what,
      "); move it away to start from an empty state (content will be downloaded again)"));
}

// ValidateChannelNames checks every channel name the state names.
absl::Status ValidateChannelNames(const StoredState& stored) {
  std::vector<absl::string_view> names;
  for (const auto& [name, slot] : stored.state.channels) {
    names.push_back(name);
  }
  for (const auto& [name, versions] : stored.state.meta.blocked_versions) {
    names.push_back(name);
  }
  for (const ChannelVersion& cv : stored.state.meta.boot_marker.versions) {
    names.push_back(cv.channel);
  }
  if (stored.pending.has_value()) {
    names.push_back(stored.pending->channel);
  }
  for (absl::string_view name : names) {
    absl::Status status = ValidateChannelName(name);
    if (!status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string StateToJson(const AgentState& state, const std::optional<PendingApply>& pending) {
  json channels = json::object();
  for (const auto& [name, slot] : state.channels) {
    channels[name] = json{{"current", VersionToJson(slot.current)},
                          {"current_known_good", slot.current_known_good},
                          {"last_known_good", VersionToJson(slot.last_known_good)}};
  }
  json blocked = json::object();
  for (const auto& [name, versions] : state.meta.blocked_versions) {
    blocked[name] = versions;
  }
  json out{{"format", kStateFormat},
           {"channels", channels},
           {"boot_marker",
            {{"present", state.meta.boot_marker.present},
             {"hits", state.meta.boot_marker.hits},
             {"versions", VersionsToJson(state.meta.boot_marker.versions)}}},
           {"running", state.meta.running},
           {"next_batch_seq", state.meta.next_batch_seq},
           {"blocked_versions", blocked},
           {"trust", json::parse(EncodeTrustState(state.meta.trust))},
           {"trusted_root", state.meta.trusted_root}};
  if (!state.meta.credential.agent_id.empty()) {
    const AgentCredential& c = state.meta.credential;
    out["credential"] = {{"agent_id", c.agent_id},
                         {"token", c.token},
                         {"key_pem", c.key_pem},
                         {"cert_pem", c.cert_pem},
                         {"expires_unix", absl::ToUnixSeconds(c.expires)}};
  }
  if (pending.has_value()) {
    out["pending"] = json{{"channel", pending->channel},
                          {"version", VersionToJson(pending->version)},
                          {"keep", pending->keep}};
  }
  // Invalid UTF-8 (never in valid names or hex digests) must not throw here.
  return out.dump(2, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<StoredState> StateFromJson(absl::string_view text, absl::string_view path) {
  StoredState stored;
  AgentState& state = stored.state;
  try {
    json j = json::parse(text.begin(), text.end());
    const int format = j.at("format").get<int>();
    if (format < kOldestStateFormat || format > kStateFormat) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": unsupported state format ", j.at("format").dump()));
    }
    for (auto it = j.at("channels").begin(); it != j.at("channels").end(); ++it) {
      ChannelSlot slot;
      slot.current = VersionFromJson(it.value().at("current"));
      slot.current_known_good = it.value().at("current_known_good").get<bool>();
      slot.last_known_good = VersionFromJson(it.value().at("last_known_good"));
      state.channels[it.key()] = slot;
    }
    const json& marker = j.at("boot_marker");
    state.meta.boot_marker.present = marker.at("present").get<bool>();
    state.meta.boot_marker.hits = marker.at("hits").get<int>();
    state.meta.boot_marker.versions = VersionsFromJson(marker.at("versions"));
    state.meta.running = j.at("running").get<bool>();
    state.meta.next_batch_seq = j.at("next_batch_seq").get<int64_t>();
    for (auto it = j.at("blocked_versions").begin(); it != j.at("blocked_versions").end(); ++it) {
      state.meta.blocked_versions[it.key()] = it.value().get<std::vector<int64_t>>();
    }
    if (j.contains("pending")) {
      const json& p = j.at("pending");
      stored.pending = PendingApply{p.at("channel").get<std::string>(),
                                    VersionFromJson(p.at("version")), p.at("keep").get<bool>()};
    }
    if (format >= 2) {
      const json& trust = j.at("trust");
      if (!trust.is_object()) {
        return Corrupt(path, "\"trust\" is not an object");
      }
      absl::StatusOr<AgentTrustState> decoded = DecodeTrustState(trust.dump());
      if (!decoded.ok()) {
        return Corrupt(path, decoded.status().message());
      }
      state.meta.trust = *std::move(decoded);
      state.meta.trusted_root = j.at("trusted_root").get<std::string>();
    }
    if (j.contains("credential")) {
      const json& c = j.at("credential");
      AgentCredential& out = state.meta.credential;
      out.agent_id = c.at("agent_id").get<std::string>();
      out.token = c.at("token").get<std::string>();
      out.key_pem = c.at("key_pem").get<std::string>();
      out.cert_pem = c.at("cert_pem").get<std::string>();
      out.expires = absl::FromUnixSeconds(c.at("expires_unix").get<int64_t>());
    }
  } catch (const json::exception& e) {
    return Corrupt(path, e.what());
  }
  absl::Status names = ValidateChannelNames(stored);
  if (!names.ok()) {
    return Corrupt(path, names.message());
  }
  return stored;
}

}  // namespace ringwarden::agent
