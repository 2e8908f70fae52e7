// trust_keeper.h: the root of trust this server runs under, and the uploads of
// trust metadata (roots and floors) that release engineers sign offline.
//
// The server is configured with a pinned root (--root) and its own online key
// (--server-key). Open() trusts the pinned root, follows the stored roots from
// it to the newest one, and stores the pinned root when none is stored yet.
// UploadRoot accepts root N+1 verified against the newest stored root N;
// UploadFloor accepts a floor the current release role signed, at or above the
// stored one. Both store the envelope byte for byte with an audit entry and
// refresh the snapshot. Sync() follows roots another replica stored. The
// server never holds root or release private keys and signs nothing here.
//
//   TrustKeeper trust(store, snapshots, server_key.PublicKey(), clock);
//   RETURN_IF_ERROR(trust.Open(pinned_root_json));
//   manager(..., [&trust] { return trust.ReleaseKeys(); }, ...);
//
// Thread-safety: every method is safe from many threads; the current root is
// guarded by a mutex, its version and the server-key verdict are atomics so
// that polls read them without locking.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "common/trust/trust.h"
#include "server/core/identity.h"
#include "server/core/snapshot.h"
#include "server/storage/store.h"

namespace ringwarden {

// kServerActor is the audit actor of what the server stores on its own.
inline constexpr char kServerActor[] = "ringwarden-server";

class TrustKeeper {
 public:
  // `server_key` is the public half of --server-key. References must outlive
  // the keeper.
  TrustKeeper(TrustStore& store, SnapshotHolder& snapshots, Ed25519PublicKey server_key,
              const Clock& clock);

  // Open trusts `pinned_root_json` (TrustInitialRoot: signed by its own root
  // keys, not expired) and then the newest stored root that chains from it,
  // storing the pinned root when none is stored. FAILED_PRECONDITION when the
  // stored roots do not chain from the pinned one (a different root of the
  // same version, a missing version, a bad signature) or are all older than
  // it. A newest root that has expired is trusted with a warning, so that the
  // rotation that fixes it can be uploaded.
  absl::Status Open(absl::string_view pinned_root_json);

  // UploadRoot verifies `envelope_json` as the next root after the newest
  // stored one (VerifyRootUpdate), refuses one that has expired, stores it and
  // trusts it from now on. INVALID_ARGUMENT for oversized or malformed input,
  // FAILED_PRECONDITION for a version other than newest + 1 or an expired
  // root, PERMISSION_DENIED when the old or the new root keys' threshold did
  // not sign.
  absl::StatusOr<RootRecord> UploadRoot(const std::string& envelope_json, const std::string& reason,
                                        const Principal& actor);
  // UploadFloor verifies `envelope_json` against the current root's release
  // role (VerifyFloor) and stores it as the channel's floor. INVALID_ARGUMENT
  // for oversized or malformed input or an invalid channel name,
  // PERMISSION_DENIED when the release threshold did not sign,
  // FAILED_PRECONDITION for a floor below the stored one. `check`, when set,
  // runs after verification and before storing: it may refuse the upload (the
  // two-person rule holds it) or complete the audit entry (an approval).
  using FloorCheck = std::function<absl::Status(const FloorRecord& floor, AuditRecord& audit)>;
  absl::StatusOr<FloorRecord> UploadFloor(const std::string& envelope_json,
                                          const std::string& reason, const Principal& actor,
                                          const FloorCheck& check = nullptr);

  // Sync trusts roots that another replica stored since: those of `snapshot`
  // above the current version, each verified against the one before it.
  absl::Status Sync(const AssignmentSnapshot& snapshot);

  // Current returns the root trusted now (Open must have succeeded).
  Root Current() const;
  // ReleaseKeys returns the current root's release role: who signs content and floors.
  TrustedKeys ReleaseKeys() const;
  // RootVersion returns the current root's version; 0 before Open.
  int64_t RootVersion() const { return root_version_.load(std::memory_order_acquire); }
  // ServerKeyTrusted reports whether the current root's server role names
  // --server-key. When not, agents refuse this server's signed answers.
  bool ServerKeyTrusted() const { return server_key_trusted_.load(std::memory_order_acquire); }

 private:
  // NewestStoredRoot follows the stored roots from the current one and trusts the newest.
  absl::StatusOr<Root> NewestStoredRoot();
  // IsStoredAsIs reports whether root `version` is stored with the same signed payload.
  bool IsStoredAsIs(int64_t version, absl::string_view envelope_json);
  // Adopt makes `root` the current root and logs what changed.
  void Adopt(Root root);
  void RefreshSnapshot();

  TrustStore& store_;
  SnapshotHolder& snapshots_;
  const Ed25519PublicKey server_key_;
  const Clock& clock_;
  mutable absl::Mutex mu_;
  Root current_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> root_version_{0};
  std::atomic<bool> server_key_trusted_{false};
};

// FollowStoredRoots returns the newest root of `stored` (ascending versions)
// that chains from `trusted`, verifying each version above it against the one
// before (VerifyRootUpdate). Stored roots below trusted.version are skipped;
// one at trusted.version must carry the same signed payload as trusted.
// FAILED_PRECONDITION for a version gap or a different root of the trusted
// version; a verification error names the version that failed. Expiry is not
// checked (the caller decides). Unlike WalkRootChain it has no length cap: the
// cap bounds what an agent walks in one poll, while the server must follow
// every version it stored.
absl::StatusOr<Root> FollowStoredRoots(const Root& trusted, const std::vector<RootRecord>& stored);

}  // namespace ringwarden
