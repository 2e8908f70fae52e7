#include "agent-client/content_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent-client/atomic_file.h"
#include "agent-client/state_codec.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace ringwarden::agent {

namespace {

constexpr absl::string_view kStateFile = ".state.json";
constexpr absl::string_view kIncomingFile = ".incoming";

// FileSha256 returns the hex digest of a file, or "" when it cannot be read.
std::string FileSha256(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  return data.ok() ? Sha256Hex(*data) : std::string();
}

}  // namespace

bool ChannelSlot::KeepsCurrentOnApply() const {
  return !current.empty() && (current_known_good || last_known_good.empty());
}

void ChannelSlot::ApplyVersion(const ContentVersion& version, bool keep) {
  if (keep) {
    last_known_good = current;
  }
  current = version;
  current_known_good = false;
}

void ChannelSlot::RevertToLastKnownGood() {
  current = last_known_good;
  last_known_good = ContentVersion{};
  current_known_good = true;
}

std::vector<ChannelVersion> AgentState::Versions() const {
  std::vector<ChannelVersion> out;
  out.reserve(channels.size());
  for (const auto& [name, slot] : channels) {
    if (!slot.current.empty()) {
      out.push_back(ChannelVersion{name, slot.current.version});
    }
  }
  return out;
}

int64_t AgentState::CurrentVersion(const std::string& channel) const {
  auto it = channels.find(channel);
  return it == channels.end() ? 0 : it->second.current.version;
}

bool AgentState::IsBlocked(const std::string& channel, int64_t version) const {
  auto it = meta.blocked_versions.find(channel);
  return it != meta.blocked_versions.end() &&
         std::find(it->second.begin(), it->second.end(), version) != it->second.end();
}

bool IsValidChannelName(absl::string_view channel) { return ValidateChannelName(channel).ok(); }

// ---- DiskContentStore ----

DiskContentStore::DiskContentStore(std::string dir, int lock_fd)
    : dir_(std::move(dir)), lock_fd_(lock_fd) {}

DiskContentStore::~DiskContentStore() { ::close(lock_fd_); }

absl::StatusOr<std::unique_ptr<DiskContentStore>> DiskContentStore::Open(const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("state directory must not be empty");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return ErrnoStatus("create state directory", dir, ec.value());
  }
  std::string lock_path = absl::StrCat(dir, "/.lock");
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ErrnoStatus("open", lock_path, errno);
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("state directory ", dir, " is in use by another agent process"));
    }
    return ErrnoStatus("flock", lock_path, err);
  }
  return std::unique_ptr<DiskContentStore>(new DiskContentStore(dir, fd));
}

std::string DiskContentStore::ContentPath(const std::string& channel) const {
  return absl::StrCat(dir_, "/", channel, "/current");
}

std::string DiskContentStore::PreviousPath(const std::string& channel) const {
  return absl::StrCat(dir_, "/", channel, "/previous");
}

absl::Status DiskContentStore::WriteState(const AgentState& state,
                                          const ContentVersion* pending_version,
                                          const std::string& pending_channel, bool pending_keep) {
  std::optional<PendingApply> pending;
  if (pending_version != nullptr) {
    pending = PendingApply{pending_channel, *pending_version, pending_keep};
  }
  return WriteFileAtomically(dir_, kStateFile, StateToJson(state, pending));
}

absl::Status DiskContentStore::Load() {
  const std::string path = absl::StrCat(dir_, "/", kStateFile);
  absl::StatusOr<std::string> text = ReadFile(path);
  if (absl::IsNotFound(text.status())) {
    state_ = AgentState{};
    return absl::OkStatus();
  }
  if (!text.ok()) {
    return text.status();
  }
  ASSIGN_OR_RETURN(StoredState stored, StateFromJson(*text, path));
  AgentState& state = stored.state;
  const std::optional<PendingApply>& pending = stored.pending;
  bool dirty = false;

  // An apply interrupted by a crash: the journal entry says what was going on.
  if (pending.has_value()) {
    dirty = true;
    const std::string current = ContentPath(pending->channel);
    const std::string previous = PreviousPath(pending->channel);
    ChannelSlot& slot = state.channels[pending->channel];
    if (FileSha256(current) == pending->version.sha256) {
      slot.ApplyVersion(pending->version, pending->keep);
      state.repairs.push_back(absl::StrCat("finished interrupted apply of ", pending->channel, " v",
                                           pending->version.version));
    } else {
      if (pending->keep && !FileExists(current) && !slot.current.empty() &&
          FileSha256(previous) == slot.current.sha256) {
        RETURN_IF_ERROR(RenameFile(previous, current));
        // The old last-known-good file was overwritten by that rename.
        slot.last_known_good = ContentVersion{};
      }
      state.repairs.push_back(absl::StrCat("undid interrupted apply of ", pending->channel, " v",
                                           pending->version.version));
    }
    ::unlink(absl::StrCat(dir_, "/", pending->channel, "/", kIncomingFile).c_str());
    if (slot.current.empty() && slot.last_known_good.empty()) {
      state.channels.erase(pending->channel);
    }
  }

  // Check every file against its digest; a damaged file is never loaded.
  for (auto it = state.channels.begin(); it != state.channels.end();) {
    const std::string& name = it->first;
    ChannelSlot& slot = it->second;
    const std::string current = ContentPath(name);
    const std::string previous = PreviousPath(name);
    if (!slot.last_known_good.empty() && FileSha256(previous) != slot.last_known_good.sha256) {
      if (FileSha256(current) == slot.last_known_good.sha256 && !FileExists(previous)) {
        slot.RevertToLastKnownGood();  // a revert whose state write was lost
        state.repairs.push_back(absl::StrCat("finished interrupted revert of ", name));
      } else {
        slot.last_known_good = ContentVersion{};
        state.repairs.push_back(absl::StrCat("dropped damaged last-known-good of ", name));
      }
      dirty = true;
    }
    if (!slot.current.empty() && FileSha256(current) != slot.current.sha256) {
      dirty = true;
      if (!slot.last_known_good.empty()) {
        RETURN_IF_ERROR(RenameFile(previous, current));
        state.repairs.push_back(absl::StrCat("current ", name, " v", slot.current.version,
                                             " damaged; reverted to v",
                                             slot.last_known_good.version));
        slot.RevertToLastKnownGood();
      } else {
        ::unlink(current.c_str());
        state.repairs.push_back(
            absl::StrCat("current ", name, " v", slot.current.version, " damaged; dropped"));
        it = state.channels.erase(it);
        continue;
      }
    }
    ++it;
  }
  if (dirty) {
    RETURN_IF_ERROR(WriteState(state, nullptr, "", false));
  }
  state_ = std::move(state);
  return absl::OkStatus();
}

absl::Status DiskContentStore::Apply(const std::string& channel, const ContentVersion& version,
                                     absl::string_view payload) {
  if (!IsValidChannelName(channel)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid channel name \"", channel, "\""));
  }
  if (static_cast<int64_t>(payload.size()) != version.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload of ", payload.size(), " bytes, expected ", version.size));
  }
  const std::string channel_dir = absl::StrCat(dir_, "/", channel);
  const std::string incoming = absl::StrCat(channel_dir, "/", kIncomingFile);
  const std::string current = ContentPath(channel);
  RETURN_IF_ERROR(MakeDir(channel_dir));
  RETURN_IF_ERROR(WriteFileSynced(incoming, payload));

  auto found = state_.channels.find(channel);
  const ChannelSlot old = found == state_.channels.end() ? ChannelSlot{} : found->second;
  const bool keep = old.KeepsCurrentOnApply();
  // Journal first, so a crash between the renames below is finished or undone by Load.
  RETURN_IF_ERROR(WriteState(state_, &version, channel, keep));
  if (keep && FileExists(current)) {
    RETURN_IF_ERROR(RenameFile(current, PreviousPath(channel)));
  }
  RETURN_IF_ERROR(RenameFile(incoming, current));
  RETURN_IF_ERROR(FsyncDir(channel_dir));

  AgentState next = state_;
  next.channels[channel].ApplyVersion(version, keep);
  // The apply is committed by the rename; should this write fail, the journal
  // entry lets the next Load finish it, so the in-memory state moves on regardless.
  WriteState(next, nullptr, "", false).IgnoreError();
  state_ = std::move(next);
  return absl::OkStatus();
}

absl::Status DiskContentStore::Revert(const std::string& channel) {
  auto found = state_.channels.find(channel);
  if (found == state_.channels.end()) {
    return absl::NotFoundError(absl::StrCat("no content for channel ", channel));
  }
  AgentState next = state_;
  if (found->second.last_known_good.empty()) {
    if (::unlink(ContentPath(channel).c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("unlink", ContentPath(channel), errno);
    }
    next.channels.erase(channel);
  } else {
    RETURN_IF_ERROR(RenameFile(PreviousPath(channel), ContentPath(channel)));
    next.channels[channel].RevertToLastKnownGood();
  }
  RETURN_IF_ERROR(FsyncDir(absl::StrCat(dir_, "/", channel)));
  // As in Apply: the rename (or unlink) is the commit point and Load recognizes it.
  WriteState(next, nullptr, "", false).IgnoreError();
  state_ = std::move(next);
  return absl::OkStatus();
}

absl::Status DiskContentStore::MarkAllKnownGood() {
  AgentState next = state_;
  for (auto& [name, slot] : next.channels) {
    slot.current_known_good = true;
  }
  RETURN_IF_ERROR(WriteState(next, nullptr, "", false));
  state_ = std::move(next);
  return absl::OkStatus();
}

absl::Status DiskContentStore::SaveMeta(const AgentMeta& meta) {
  AgentState next = state_;
  next.meta = meta;
  RETURN_IF_ERROR(WriteState(next, nullptr, "", false));
  state_ = std::move(next);
  return absl::OkStatus();
}

}  // namespace ringwarden::agent
