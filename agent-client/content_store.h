// content_store.h: where an agent keeps applied content, its last-known-good
// copy and its own bookkeeping (boot-loop marker, unclean-shutdown flag, batch seq,
// trust state and the newest root it accepted).
//
// DiskContentStore is the real agent's: <dir>/<channel>/current and
// <dir>/<channel>/previous (last-known-good) plus <dir>/.state.json, every change
// written to a temp file, fsynced, renamed and the directory fsynced (atomic_file.h);
// the state file's format is in state_codec.h. The fleet simulator's in-memory
// store lives in sim/memory_content_store.h, outside the real agent.
// Thread-safety: stores are not thread-safe; each is owned by one Agent.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent-client/types.h"
#include "common/trust/trust.h"

namespace ringwarden::agent {

// ContentVersion identifies stored content; version 0 means "none".
struct ContentVersion {
  ContentVersion() = default;
  ContentVersion(int64_t version, std::string sha256, int64_t size,
                 std::string manifest_sha256 = "")
      : version(version),
        sha256(std::move(sha256)),
        size(size),
        manifest_sha256(std::move(manifest_sha256)) {}

  int64_t version = 0;
  std::string sha256;  // lowercase hex of the payload
  int64_t size = 0;
  // Lowercase hex SHA-256 of the release-signed manifest the payload was
  // verified against; empty when unknown (state written before format 2).
  std::string manifest_sha256;

  bool empty() const { return version == 0; }
  friend bool operator==(const ContentVersion& a, const ContentVersion& b) {
    return a.version == b.version && a.sha256 == b.sha256 && a.size == b.size &&
           a.manifest_sha256 == b.manifest_sha256;
  }
};

// ChannelSlot is what a store holds for one channel.
struct ChannelSlot {
  ContentVersion current;
  // True once the current version ran through a healthy interval (or was
  // reverted to); only then does the next Apply keep it as last-known-good.
  bool current_known_good = false;
  ContentVersion last_known_good;  // empty: nothing to revert to

  // KeepsCurrentOnApply says whether applying over this slot keeps its current
  // version as last-known-good: an unproven version never displaces a proven one,
  // but it is better than nothing when there is no last-known-good yet.
  bool KeepsCurrentOnApply() const;
  // ApplyVersion makes `version` current (not yet known good); the old current
  // version becomes last-known-good when `keep` (see KeepsCurrentOnApply).
  void ApplyVersion(const ContentVersion& version, bool keep);
  // RevertToLastKnownGood makes the last-known-good version current and known good.
  void RevertToLastKnownGood();
};

// BootMarker is written before content is loaded and cleared after a healthy
// interval; a marker found at start means the previous run died while loading
// or running that content.
struct BootMarker {
  bool present = false;
  std::vector<ChannelVersion> versions;  // in effect when written
  int hits = 0;  // consecutive starts that found the marker with these versions
};

// AgentMeta is the agent's persisted bookkeeping besides content.
struct AgentMeta {
  BootMarker boot_marker;
  // Set while the agent runs, cleared by a clean shutdown; found set at start
  // it means the previous run ended uncleanly.
  bool running = false;
  // Lower bound of the next telemetry batch number, persisted so that a restarted
  // agent never reuses a number the server has already acknowledged.
  int64_t next_batch_seq = 1;
  // Versions refused locally (boot-loop breaker, failed load check), by channel.
  std::map<std::string, std::vector<int64_t>> blocked_versions;
  // What refuses rollback and freeze attacks: ring from enrollment, newest
  // accepted assignment sequence, floors, highest versions run, revocations.
  AgentTrustState trust;
  // The newest root envelope (JSON) accepted through a root update; empty while
  // the pinned root (--root) is the newest.
  std::string trusted_root;
  // The agent's own credential, kept across restarts: an enrollment token
  // enrolls an id once. The state file is private to the agent (mode 0600).
  AgentCredential credential;
};

// AgentState is everything a store persists.
struct AgentState {
  std::map<std::string, ChannelSlot> channels;
  AgentMeta meta;
  // What Load had to repair (interrupted apply, damaged file); not persisted.
  std::vector<std::string> repairs;

  // Versions returns the current version of every channel held, by channel name.
  std::vector<ChannelVersion> Versions() const;
  // CurrentVersion returns the current version of `channel`, 0 if none.
  int64_t CurrentVersion(const std::string& channel) const;
  bool IsBlocked(const std::string& channel, int64_t version) const;
};

// IsValidChannelName is ValidateChannelName (common/names.h), the one channel-name
// rule, as a bool; a valid channel name is always a safe directory name.
bool IsValidChannelName(absl::string_view channel);

// ContentStore is the agent's persistent state.
class ContentStore {
 public:
  virtual ~ContentStore() = default;

  // Load reads the persisted state, finishing or undoing an apply that was
  // interrupted by a crash. Call once before anything else.
  virtual absl::Status Load() = 0;
  virtual const AgentState& state() const = 0;

  // Apply makes `payload` (already verified) the current content of `channel`,
  // atomically. The old current version becomes last-known-good when it is known
  // good or when there is no last-known-good yet; otherwise the existing
  // last-known-good is kept, so an unproven version never displaces a proven one.
  virtual absl::Status Apply(const std::string& channel, const ContentVersion& version,
                             absl::string_view payload) = 0;
  // Revert makes the last-known-good version of `channel` current again (known
  // good afterwards). Without a last-known-good it removes the channel's content:
  // no content is better than content that failed. NOT_FOUND for an unknown channel.
  virtual absl::Status Revert(const std::string& channel) = 0;
  // MarkAllKnownGood marks every channel's current version known good.
  virtual absl::Status MarkAllKnownGood() = 0;
  // SaveMeta persists `meta`; on failure the previous meta stays in effect.
  virtual absl::Status SaveMeta(const AgentMeta& meta) = 0;

  // ContentPath returns the file holding the current content of `channel`, for
  // a load-check command; empty when the store keeps no files.
  virtual std::string ContentPath(const std::string& channel) const = 0;
};

// DiskContentStore keeps content and state under one directory, locked against a
// second agent with flock().
class DiskContentStore final : public ContentStore {
 public:
  // Open creates `dir` if needed and locks it; FAILED_PRECONDITION when another
  // process holds the lock.
  static absl::StatusOr<std::unique_ptr<DiskContentStore>> Open(const std::string& dir);
  ~DiskContentStore() override;

  absl::Status Load() override;
  const AgentState& state() const override { return state_; }
  absl::Status Apply(const std::string& channel, const ContentVersion& version,
                     absl::string_view payload) override;
  absl::Status Revert(const std::string& channel) override;
  absl::Status MarkAllKnownGood() override;
  absl::Status SaveMeta(const AgentMeta& meta) override;
  std::string ContentPath(const std::string& channel) const override;

  // PreviousPath returns the last-known-good file of `channel`.
  std::string PreviousPath(const std::string& channel) const;
  const std::string& dir() const { return dir_; }

 private:
  DiskContentStore(std::string dir, int lock_fd);
  absl::Status WriteState(const AgentState& state, const ContentVersion* pending_version,
                          const std::string& pending_channel, bool pending_keep);

  const std::string dir_;
  const int lock_fd_;
  AgentState state_;
};

}  // namespace ringwarden::agent
