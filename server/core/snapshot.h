// snapshot.h: the in-memory view that answers agent polls.
//
// Built from the database (Store::LoadCatalog) after every admin change and on
// a timer, then swapped in whole; polls read an immutable snapshot and never
// touch the database. It carries what a signed answer needs besides the
// signature: each version's manifest digest, the stored roots of trust and the
// channel floors. Payloads of versions that can be assigned are held here
// so FetchContent streams from memory; unchanged payloads carry over between
// snapshots instead of being read again. What it knows of individual agents
// (their gates) is read whole at the first refresh and every 10 minutes, and
// otherwise as the gates changed since the last refresh, applied over the
// previous snapshot's: a refresh costs the catalog and the changes, not the
// fleet. While the database is down the last snapshot keeps answering.
//
// Thread-safety: AssignmentSnapshot is immutable; SnapshotHolder is safe to use
// from any thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "server/core/identity.h"
#include "server/domain/agent_gate_table.h"
#include "server/domain/assignment.h"
#include "server/storage/store.h"

namespace ringwarden {

// ManifestDigest is what a signed assignment states about one content
// version. Computed once per version when a snapshot first sees it (carried
// over by later snapshots), never per poll.
struct ManifestDigest {
  // Lowercase hex SHA-256 of the release-signed manifest bytes (the DSSE
  // payload of the stored envelope); empty when the stored envelope cannot be
  // parsed, which an upload never lets in.
  std::string manifest_sha256;
  std::string payload_sha256;  // ContentRecord::sha256, to recognize the version
  int64_t size = 0;
};

// ContentBlob is one version ready to hand out.
struct ContentBlob {
  ContentRecord meta;  // without payload
  std::shared_ptr<const std::string> payload;
};

struct ChannelAnswer {
  std::string channel;
  ResolvedAssignment assignment;
  const ContentBlob* blob = nullptr;  // null when version is 0
  // Of assignment.version: null when it is 0 or the catalog does not know it.
  const ManifestDigest* manifest = nullptr;
  std::vector<int64_t> revoked;
};

class AssignmentSnapshot {
 public:
  // Build makes a snapshot; payloads come from `previous` when it has them,
  // else from `store`. When `data` holds only the agent gates changed since
  // `previous` was read (agent_gates_complete false), they apply over its gates.
  static absl::StatusOr<std::shared_ptr<const AssignmentSnapshot>> Build(
      CatalogData data, CatalogStore& store, const AssignmentSnapshot* previous);

  // Gate returns what is on record about one agent (labels, revocation,
  // reset), or null when nothing is.
  const AgentGate* Gate(const std::string& agent_id) const;

  // RingOf returns the ring of an agent under the current ring policy.
  Ring RingOf(const AgentIdentity& agent) const;
  // CurrentVersion is a version an agent says it runs, as its poll names it.
  struct CurrentVersion {
    absl::string_view channel;
    int64_t version = 0;
  };
  // Resolve answers one poll of `agent`, whose ring is `ring` (RingOf(agent): the caller
  // computes it once per poll, as its answer names it too). A channel named twice in
  // `current` runs the version named last. `channels` empty means every known channel. The
  // arguments are views of the poll, so that a poll copies nothing to be answered.
  std::vector<ChannelAnswer> Resolve(const AgentIdentity& agent, Ring ring,
                                     absl::Span<const CurrentVersion> current,
                                     absl::Span<const absl::string_view> channels) const;
  // Blob returns a version held in memory, or null.
  const ContentBlob* Blob(const std::string& channel, int64_t version) const;
  // Manifest returns the digest of any stored version, or null.
  const ManifestDigest* Manifest(const std::string& channel, int64_t version) const;
  bool IsRevoked(const std::string& channel, int64_t version) const;
  bool HasChannel(const std::string& channel) const { return channels_.count(channel) > 0; }

  bool emergency_stop() const { return emergency_stop_; }
  const std::string& agent_token_secret() const { return agent_token_secret_; }
  const RingPolicy& ring_policy() const { return ring_policy_; }
  // pins lists every pin, as storage orders them (EffectivePin precedence).
  const std::vector<LabelPin>& pins() const { return pins_; }

  // roots lists every stored root of trust, ascending version (as uploaded;
  // the transport verifies the chain).
  const std::vector<RootRecord>& roots() const { return roots_; }
  // RootsAfter returns up to `limit` stored roots above `version`, ascending.
  std::vector<const RootRecord*> RootsAfter(int64_t version, size_t limit) const;
  // Floor returns the channel's stored floor, or null.
  const FloorRecord* Floor(const std::string& channel) const;

 private:
  struct Channel {
    ChannelCatalog catalog;
    std::map<int64_t, ContentBlob> blobs;         // assignable versions only
    std::map<int64_t, ManifestDigest> manifests;  // every stored version
  };

  std::map<std::string, Channel, std::less<>> channels_;  // found by a poll's views
  std::vector<RootRecord> roots_;
  std::map<std::string, FloorRecord> floors_;
  std::vector<PinRecord> pins_;
  AgentGateTable agent_gates_;
  RingPolicy ring_policy_;
  bool emergency_stop_ = false;
  std::string agent_token_secret_;
};

// kDefaultGateFullReadInterval: how often a refresh reads every agent gate
// again, the safety net behind reading the changes.
inline constexpr absl::Duration kDefaultGateFullReadInterval = absl::Minutes(10);

// SnapshotHolder owns the current snapshot and rebuilds it.
class SnapshotHolder {
 public:
  explicit SnapshotHolder(CatalogStore& store, const Clock& clock = RealClock::Instance(),
                          absl::Duration gate_full_read_interval = kDefaultGateFullReadInterval)
      : store_(store), clock_(clock), gate_full_read_interval_(gate_full_read_interval) {}

  // Refresh rebuilds from the database; on error the old snapshot stays. The
  // first refresh, and the first after gate_full_read_interval, reads every
  // agent gate; the others read the gates changed since the last refresh.
  // Callers that ask while a refresh runs share the next one: it begins after
  // each of them asked, so it reads what each committed before asking (many
  // labelled enrollments at once cost a few refreshes, not one each).
  absl::Status Refresh();
  // refreshes_asked counts the calls of Refresh so far.
  uint64_t refreshes_asked() const { return asked_.load(std::memory_order_acquire); }
  // Current returns the latest snapshot (null before the first Refresh). Every call of the
  // agent path reads it: between refreshes a thread reads its own copy, taking no lock.
  std::shared_ptr<const AssignmentSnapshot> Current() const;

 private:
  CatalogStore& store_;
  const Clock& clock_;
  const absl::Duration gate_full_read_interval_;
  absl::Mutex refresh_mu_;  // one rebuild at a time
  std::atomic<uint64_t> asked_{0};
  // Of the last rebuild: the calls it answers (the count of calls when it began), and its outcome.
  uint64_t answered_ ABSL_GUARDED_BY(refresh_mu_) = 0;
  absl::Status last_outcome_ ABSL_GUARDED_BY(refresh_mu_);
  // Where the current snapshot's gates were read up to, and when they were last read whole.
  AgentGateCursor gate_cursor_ ABSL_GUARDED_BY(refresh_mu_);
  absl::Time gates_read_whole_ ABSL_GUARDED_BY(refresh_mu_) = absl::InfinitePast();
  mutable absl::Mutex mu_;
  std::shared_ptr<const AssignmentSnapshot> current_ ABSL_GUARDED_BY(mu_);
  // Changes with current_, to a number no holder of this process used before, so that a
  // thread's copy is never taken for another holder's (or a destroyed one's) snapshot.
  std::atomic<uint64_t> generation_{0};

  absl::Status Rebuild() ABSL_EXCLUSIVE_LOCKS_REQUIRED(refresh_mu_);
};

}  // namespace ringwarden
