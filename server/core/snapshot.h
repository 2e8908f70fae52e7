// snapshot.h: the in-memory view that answers agent polls.
//
// Built from the database (Store::LoadCatalog) after every admin change and on
// a timer, then swapped in whole; polls read an immutable snapshot and never
// touch the database. Payloads of versions that can be assigned are held here
// so FetchContent streams from memory; unchanged payloads carry over between
// snapshots instead of being read again. While the database is down the last
// snapshot keeps answering.
// Thread-safety: AssignmentSnapshot is immutable; SnapshotHolder is safe to use
// from any thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/identity.h"
#include "server/domain/assignment.h"
#include "server/storage/store.h"

namespace ringwarden {

// ContentBlob is one version ready to hand out.
struct ContentBlob {
  ContentRecord meta;  // without payload
  std::shared_ptr<const std::string> payload;
};

struct ChannelAnswer {
  std::string channel;
  ResolvedAssignment assignment;
  const ContentBlob* blob = nullptr;  // null when version is 0
  std::vector<int64_t> revoked;
};

class AssignmentSnapshot {
 public:
  // Build makes a snapshot; payloads come from `previous` when it has them,
  // else from `store`.
  static absl::StatusOr<std::shared_ptr<const AssignmentSnapshot>> Build(
      CatalogData data, CatalogStore& store, const AssignmentSnapshot* previous);

  // RingOf returns the ring of an agent under the current ring policy.
  Ring RingOf(const AgentIdentity& agent) const;
  // Resolve answers one poll. `channels` empty means every known channel.
  std::vector<ChannelAnswer> Resolve(const AgentIdentity& agent,
                                     const std::map<std::string, int64_t>& current,
                                     const std::vector<std::string>& channels) const;
  // Blob returns a version held in memory, or null.
  const ContentBlob* Blob(const std::string& channel, int64_t version) const;
  bool IsRevoked(const std::string& channel, int64_t version) const;
  bool HasChannel(const std::string& channel) const { return channels_.count(channel) > 0; }

  bool emergency_stop() const { return emergency_stop_; }
  const std::string& agent_token_secret() const { return agent_token_secret_; }
  const RingPolicy& ring_policy() const { return ring_policy_; }
  // pins lists every pin, as storage orders them (EffectivePin precedence).
  const std::vector<LabelPin>& pins() const { return pins_; }

 private:
  struct Channel {
    ChannelCatalog catalog;
    std::map<int64_t, ContentBlob> blobs;  // assignable versions only
  };

  std::map<std::string, Channel> channels_;
  std::vector<PinRecord> pins_;
  RingPolicy ring_policy_;
  bool emergency_stop_ = false;
  std::string agent_token_secret_;
};

// SnapshotHolder owns the current snapshot and rebuilds it.
class SnapshotHolder {
 public:
  explicit SnapshotHolder(CatalogStore& store) : store_(store) {}

  // Refresh rebuilds from the database; on error the old snapshot stays.
  absl::Status Refresh();
  // Current returns the latest snapshot (null before the first Refresh).
  std::shared_ptr<const AssignmentSnapshot> Current() const;

 private:
  CatalogStore& store_;
  absl::Mutex refresh_mu_;  // one rebuild at a time
  mutable absl::Mutex mu_;
  std::shared_ptr<const AssignmentSnapshot> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ringwarden
