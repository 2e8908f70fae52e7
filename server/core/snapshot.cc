#include "server/core/snapshot.h"

#include <algorithm>
#include <optional>
#include <set>

#include "common/dsse.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

// NextGeneration numbers snapshots across every SnapshotHolder of the process.
uint64_t NextGeneration() {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

// How many of a channel's newest completed versions stay ready in memory
// (newest and n-1, plus one spare for pins that trail).
constexpr size_t kCompletedVersionsHeld = 3;

// DigestOf parses a stored content envelope and digests its signed payload.
// A stored envelope passed the release signature check at upload, so parsing
// fails only on data written around the server; the digest then stays empty
// and the signed assignment cannot name the version.
ManifestDigest DigestOf(const ContentRecord& content) {
  ManifestDigest digest;
  digest.payload_sha256 = content.sha256;
  digest.size = content.size;
  absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(content.envelope_json);
  if (envelope.ok()) {
    digest.manifest_sha256 = Sha256Hex(envelope->payload);
  }
  return digest;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const AssignmentSnapshot>> AssignmentSnapshot::Build(
    CatalogData data, CatalogStore& store, const AssignmentSnapshot* previous) {
  auto snap = std::make_shared<AssignmentSnapshot>();
  snap->pins_ = std::move(data.pins);
  snap->ring_policy_ = std::move(data.ring_policy);
  if (data.agent_gates_complete) {
    snap->agent_gates_ = AgentGateTable(std::move(data.agent_gates));
  } else if (previous != nullptr) {
    snap->agent_gates_ = previous->agent_gates_.With(std::move(data.agent_gates));
  } else {
    return absl::InternalError("agent gate changes read without a snapshot to apply them to");
  }
  snap->emergency_stop_ = data.emergency_stop;
  snap->agent_token_secret_ = std::move(data.agent_token_secret);

  snap->roots_ = std::move(data.roots);
  std::sort(snap->roots_.begin(), snap->roots_.end(),
            [](const RootRecord& a, const RootRecord& b) { return a.version < b.version; });
  for (FloorRecord& floor : data.floors) {
    std::string channel = floor.channel;
    snap->floors_.emplace(std::move(channel), std::move(floor));
  }

  std::map<std::string, std::map<int64_t, ContentRecord>> content;
  for (ContentRecord& c : data.content) {
    Channel& ch = snap->channels_[c.channel];
    ch.catalog.channel = c.channel;
    if (c.revoked) {
      ch.catalog.revoked.push_back(c.version);
    } else if (c.completed) {
      ch.catalog.completed.push_back(c.version);
    }
    // Stored versions never change: a digest the previous snapshot made is reused.
    const ManifestDigest* known =
        previous != nullptr ? previous->Manifest(c.channel, c.version) : nullptr;
    ch.manifests.emplace(
        c.version, known != nullptr && known->payload_sha256 == c.sha256 ? *known : DigestOf(c));
    content[c.channel][c.version] = std::move(c);
  }
  for (const RolloutRecord& r : data.unfinished_rollouts) {
    Channel& ch = snap->channels_[r.channel];
    ch.catalog.rollout =
        ActiveRollout{r.id, r.version, r.position, r.broad_fraction, r.admitted_fraction};
  }

  for (auto& [name, ch] : snap->channels_) {
    std::sort(ch.catalog.completed.begin(), ch.catalog.completed.end());
    std::sort(ch.catalog.revoked.begin(), ch.catalog.revoked.end());
    std::set<int64_t> wanted;
    const auto& completed = ch.catalog.completed;
    for (size_t i = completed.size() > kCompletedVersionsHeld
                        ? completed.size() - kCompletedVersionsHeld
                        : 0;
         i < completed.size(); ++i) {
      wanted.insert(completed[i]);
    }
    if (ch.catalog.rollout.has_value()) {
      wanted.insert(ch.catalog.rollout->version);
    }
    // Agents on a revoked version are sent to the newest completed one below it.
    for (int64_t revoked : ch.catalog.revoked) {
      for (auto it = completed.rbegin(); it != completed.rend(); ++it) {
        if (*it < revoked) {
          wanted.insert(*it);
          break;
        }
      }
    }
    for (const PinRecord& pin : snap->pins_) {
      if (pin.channel == name && pin.policy.kind == PinPolicy::Kind::kVersion) {
        wanted.insert(pin.policy.version);
      }
    }
    for (int64_t version : wanted) {
      auto it = content[name].find(version);
      if (it == content[name].end() || it->second.revoked) {
        continue;
      }
      ContentBlob blob;
      blob.meta = it->second;
      const ContentBlob* old = previous != nullptr ? previous->Blob(name, version) : nullptr;
      if (old != nullptr && old->meta.sha256 == blob.meta.sha256) {
        blob.payload = old->payload;
      } else {
        ASSIGN_OR_RETURN(ContentRecord full, store.GetContent(name, version));
        blob.payload = std::make_shared<const std::string>(std::move(full.payload));
      }
      ch.blobs.emplace(version, std::move(blob));
    }
  }
  return std::shared_ptr<const AssignmentSnapshot>(std::move(snap));
}

const AgentGate* AssignmentSnapshot::Gate(const std::string& agent_id) const {
  return agent_gates_.Find(agent_id);
}

Ring AssignmentSnapshot::RingOf(const AgentIdentity& agent) const {
  return AssignRing(ring_policy_, agent.agent_id, agent.Labels());
}

std::vector<ChannelAnswer> AssignmentSnapshot::Resolve(
    const AgentIdentity& agent, Ring ring, absl::Span<const CurrentVersion> current,
    absl::Span<const absl::string_view> channels) const {
  std::vector<ChannelAnswer> answers;
  answers.reserve(channels.empty() ? channels_.size() : channels.size());
  // The wave position (a hash of the agent id) matters only on a channel with an active
  // rollout: computed at most once per poll, and not at all without one.
  std::optional<double> wave_position;
  auto answer_one = [&](const std::string& name, const Channel& ch) {
    AgentChannelView view;
    view.ring = ring;
    // The last entry naming the channel counts, as a map filled in order would keep it.
    auto cur = std::find_if(current.rbegin(), current.rend(),
                            [&name](const CurrentVersion& c) { return c.channel == name; });
    view.current_version = cur == current.rend() ? 0 : cur->version;
    view.pin = EffectivePin(pins_, name, agent.Labels());
    if (ch.catalog.rollout.has_value()) {
      if (!wave_position.has_value()) {
        wave_position = WavePosition(ring_policy_.seed, agent.agent_id);
      }
      view.wave_position = *wave_position;
    }
    ChannelAnswer a;
    a.channel = name;
    a.assignment = ResolveAssignment(ch.catalog, view, emergency_stop_);
    a.revoked = ch.catalog.revoked;
    if (a.assignment.version != 0) {
      auto blob = ch.blobs.find(a.assignment.version);
      if (blob == ch.blobs.end()) {
        // Not held in memory (e.g. an old version the agent already runs):
        // tell it to keep what it has.
        a.assignment.version = view.current_version;
        a.assignment.rollback = false;
        blob = ch.blobs.find(view.current_version);
      }
      a.blob = blob == ch.blobs.end() ? nullptr : &blob->second;
      auto manifest = ch.manifests.find(a.assignment.version);
      a.manifest = manifest == ch.manifests.end() ? nullptr : &manifest->second;
    }
    answers.push_back(std::move(a));
  };
  if (channels.empty()) {
    for (const auto& [name, ch] : channels_) {
      answer_one(name, ch);
    }
  } else {
    for (absl::string_view name : channels) {
      auto it = channels_.find(name);
      if (it != channels_.end()) {
        answer_one(it->first, it->second);
      }
    }
  }
  return answers;
}

const ContentBlob* AssignmentSnapshot::Blob(const std::string& channel, int64_t version) const {
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) {
    return nullptr;
  }
  auto it = ch->second.blobs.find(version);
  return it == ch->second.blobs.end() ? nullptr : &it->second;
}

const ManifestDigest* AssignmentSnapshot::Manifest(const std::string& channel,
                                                   int64_t version) const {
  auto ch = channels_.find(channel);
  if (ch == channels_.end()) {
    return nullptr;
  }
  auto it = ch->second.manifests.find(version);
  return it == ch->second.manifests.end() ? nullptr : &it->second;
}

std::vector<const RootRecord*> AssignmentSnapshot::RootsAfter(int64_t version, size_t limit) const {
  std::vector<const RootRecord*> out;
  for (const RootRecord& root : roots_) {
    if (out.size() >= limit) {
      break;
    }
    if (root.version > version) {
      out.push_back(&root);
    }
  }
  return out;
}

const FloorRecord* AssignmentSnapshot::Floor(const std::string& channel) const {
  auto it = floors_.find(channel);
  return it == floors_.end() ? nullptr : &it->second;
}

bool AssignmentSnapshot::IsRevoked(const std::string& channel, int64_t version) const {
  auto ch = channels_.find(channel);
  return ch != channels_.end() && ringwarden::IsRevoked(ch->second.catalog, version);
}

absl::Status SnapshotHolder::Refresh() {
  const uint64_t ticket = asked_.fetch_add(1, std::memory_order_acq_rel) + 1;
  absl::MutexLock refresh_lock(&refresh_mu_);
  if (answered_ >= ticket) {
    return last_outcome_;  // a rebuild that began after this call asked has run
  }
  answered_ = asked_.load(std::memory_order_acquire);
  last_outcome_ = Rebuild();
  return last_outcome_;
}

absl::Status SnapshotHolder::Rebuild() {
  std::shared_ptr<const AssignmentSnapshot> previous = Current();
  const absl::Time now = clock_.Now();
  std::optional<AgentGateCursor> gates_since;
  // A clock stepped back before the last full read reads everything rather than put it off.
  if (previous != nullptr && now >= gates_read_whole_ &&
      now - gates_read_whole_ < gate_full_read_interval_) {
    gates_since = gate_cursor_;
  }
  ASSIGN_OR_RETURN(CatalogData data, store_.LoadCatalog(gates_since));
  const bool whole = data.agent_gates_complete;
  AgentGateCursor cursor = std::move(data.agent_gates_cursor);
  ASSIGN_OR_RETURN(std::shared_ptr<const AssignmentSnapshot> next,
                   AssignmentSnapshot::Build(std::move(data), store_, previous.get()));
  gate_cursor_ = std::move(cursor);
  if (whole) {
    gates_read_whole_ = now;
  }
  absl::MutexLock lock(&mu_);
  current_ = std::move(next);
  generation_.store(NextGeneration(), std::memory_order_release);
  return absl::OkStatus();
}

std::shared_ptr<const AssignmentSnapshot> SnapshotHolder::Current() const {
  // The copy is replaced at this thread's first read after a refresh; a thread that stops
  // reading keeps its last snapshot alive until it exits or reads again.
  struct ThreadCopy {
    const SnapshotHolder* holder = nullptr;
    uint64_t generation = 0;
    std::shared_ptr<const AssignmentSnapshot> snapshot;
  };
  thread_local ThreadCopy copy;
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  if (copy.holder == this && copy.generation == generation && generation != 0) {
    return copy.snapshot;
  }
  absl::MutexLock lock(&mu_);
  copy = ThreadCopy{this, generation_.load(std::memory_order_relaxed), current_};
  return current_;
}

}  // namespace ringwarden
