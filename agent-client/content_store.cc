#include "agent-client/content_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace ringwarden::agent {

namespace {

using nlohmann::json;

constexpr absl::string_view kStateFile = ".state.json";
constexpr absl::string_view kIncomingFile = ".incoming";
constexpr int kStateFormat = 1;

// KeepsCurrent says whether applying over `slot` keeps its current version as
// last-known-good: an unproven version never displaces a proven one, but it is
// better than nothing when there is no last-known-good yet.
bool KeepsCurrent(const ChannelSlot& slot) {
  return !slot.current.empty() && (slot.current_known_good || slot.last_known_good.empty());
}

void ApplyToSlot(ChannelSlot& slot, const ContentVersion& version, bool keep) {
  if (keep) {
    slot.last_known_good = slot.current;
  }
  slot.current = version;
  slot.current_known_good = false;
}

void RevertSlot(ChannelSlot& slot) {
  slot.current = slot.last_known_good;
  slot.last_known_good = ContentVersion{};
  slot.current_known_good = true;
}

absl::Status ErrnoStatus(absl::string_view op, absl::string_view path, int err) {
  std::string msg = absl::StrCat(op, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) {
    return absl::NotFoundError(msg);
  }
  if (err == EACCES || err == EPERM) {
    return absl::PermissionDeniedError(msg);
  }
  return absl::InternalError(msg);
}

// WriteFileSynced writes `data` to `path` (truncating) and fsyncs it.
absl::Status WriteFileSynced(const std::string& path, absl::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ErrnoStatus("open", path, errno);
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      ::close(fd);
      return ErrnoStatus("write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("fsync", path, err);
  }
  if (::close(fd) != 0) {
    return ErrnoStatus("close", path, errno);
  }
  return absl::OkStatus();
}

// FsyncDir makes renames inside `dir` durable.
absl::Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return ErrnoStatus("open", dir, errno);
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : ErrnoStatus("fsync", dir, err);
}

absl::Status Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("rename ", from, " ->"), to, errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return ErrnoStatus("open", path, errno);
  }
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      ::close(fd);
      return ErrnoStatus("read", path, err);
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// FileSha256 returns the hex digest of a file, or "" when it cannot be read.
std::string FileSha256(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path);
  return data.ok() ? Sha256Hex(*data) : std::string();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir", dir, errno);
  }
  return absl::OkStatus();
}

json VersionToJson(const ContentVersion& v) {
  return json{{"version", v.version}, {"sha256", v.sha256}, {"size", v.size}};
}

ContentVersion VersionFromJson(const json& j) {
  ContentVersion v;
  v.version = j.at("version").get<int64_t>();
  v.sha256 = j.at("sha256").get<std::string>();
  v.size = j.at("size").get<int64_t>();
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

struct PendingApply {
  std::string channel;
  ContentVersion version;
  bool keep = false;
};

json StateToJson(const AgentState& state, const std::optional<PendingApply>& pending) {
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
           {"blocked_versions", blocked}};
  if (pending.has_value()) {
    out["pending"] = json{{"channel", pending->channel},
                          {"version", VersionToJson(pending->version)},
                          {"keep", pending->keep}};
  }
  return out;
}

absl::Status StateFromJson(const std::string& text, const std::string& path, AgentState& state,
                           std::optional<PendingApply>& pending) {
  try {
    json j = json::parse(text);
    if (j.at("format").get<int>() != kStateFormat) {
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
      pending = PendingApply{p.at("channel").get<std::string>(), VersionFromJson(p.at("version")),
                             p.at("keep").get<bool>()};
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(
        "state file ", path, " is corrupt (", e.what(),
        "); move it away to start from an empty state (content will be downloaded again)"));
  }
  for (const auto& [name, slot] : state.channels) {
    if (!IsValidChannelName(name)) {
      return absl::DataLossError(
          absl::StrCat("state file ", path, " names invalid channel \"", name, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

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

bool IsValidChannelName(absl::string_view channel) {
  if (channel.empty() || channel.size() > 64 || channel[0] == '.') {
    return false;
  }
  return std::all_of(channel.begin(), channel.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
  });
}

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
  const std::string path = absl::StrCat(dir_, "/", kStateFile);
  const std::string tmp = absl::StrCat(path, ".tmp");
  RETURN_IF_ERROR(WriteFileSynced(tmp, StateToJson(state, pending).dump(2)));
  RETURN_IF_ERROR(Rename(tmp, path));
  return FsyncDir(dir_);
}

absl::Status DiskContentStore::Load() {
  const std::string path = absl::StrCat(dir_, "/", kStateFile);
  AgentState state;
  std::optional<PendingApply> pending;
  absl::StatusOr<std::string> text = ReadFile(path);
  if (absl::IsNotFound(text.status())) {
    state_ = AgentState{};
    return absl::OkStatus();
  }
  if (!text.ok()) {
    return text.status();
  }
  RETURN_IF_ERROR(StateFromJson(*text, path, state, pending));
  bool dirty = false;

  // An apply interrupted by a crash: the journal entry says what was going on.
  if (pending.has_value()) {
    dirty = true;
    const std::string current = ContentPath(pending->channel);
    const std::string previous = PreviousPath(pending->channel);
    ChannelSlot& slot = state.channels[pending->channel];
    if (FileSha256(current) == pending->version.sha256) {
      ApplyToSlot(slot, pending->version, pending->keep);
      state.repairs.push_back(absl::StrCat("finished interrupted apply of ", pending->channel, " v",
                                           pending->version.version));
    } else {
      if (pending->keep && !FileExists(current) && !slot.current.empty() &&
          FileSha256(previous) == slot.current.sha256) {
        RETURN_IF_ERROR(Rename(previous, current));
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
        RevertSlot(slot);  // a revert whose state write was lost
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
        RETURN_IF_ERROR(Rename(previous, current));
        state.repairs.push_back(absl::StrCat("current ", name, " v", slot.current.version,
                                             " damaged; reverted to v",
                                             slot.last_known_good.version));
        RevertSlot(slot);
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
  const bool keep = KeepsCurrent(old);
  // Journal first, so a crash between the renames below is finished or undone by Load.
  RETURN_IF_ERROR(WriteState(state_, &version, channel, keep));
  if (keep && FileExists(current)) {
    RETURN_IF_ERROR(Rename(current, PreviousPath(channel)));
  }
  RETURN_IF_ERROR(Rename(incoming, current));
  RETURN_IF_ERROR(FsyncDir(channel_dir));

  AgentState next = state_;
  ApplyToSlot(next.channels[channel], version, keep);
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
    RETURN_IF_ERROR(Rename(PreviousPath(channel), ContentPath(channel)));
    RevertSlot(next.channels[channel]);
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

// ---- MemoryContentStore ----

absl::Status MemoryContentStore::Apply(const std::string& channel, const ContentVersion& version,
                                       absl::string_view payload) {
  if (!IsValidChannelName(channel)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid channel name \"", channel, "\""));
  }
  ChannelSlot& slot = state_.channels[channel];
  const bool keep = KeepsCurrent(slot);
  if (keep_payloads_) {
    Payloads& p = payloads_[channel];
    if (keep) {
      p.previous = std::move(p.current);
    }
    p.current = std::string(payload);
  }
  ApplyToSlot(slot, version, keep);
  return absl::OkStatus();
}

absl::Status MemoryContentStore::Revert(const std::string& channel) {
  auto found = state_.channels.find(channel);
  if (found == state_.channels.end()) {
    return absl::NotFoundError(absl::StrCat("no content for channel ", channel));
  }
  if (found->second.last_known_good.empty()) {
    state_.channels.erase(found);
    payloads_.erase(channel);
    return absl::OkStatus();
  }
  if (keep_payloads_) {
    Payloads& p = payloads_[channel];
    p.current = std::move(p.previous);
    p.previous.clear();
  }
  RevertSlot(found->second);
  return absl::OkStatus();
}

absl::Status MemoryContentStore::MarkAllKnownGood() {
  for (auto& [name, slot] : state_.channels) {
    slot.current_known_good = true;
  }
  return absl::OkStatus();
}

absl::Status MemoryContentStore::SaveMeta(const AgentMeta& meta) {
  state_.meta = meta;
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemoryContentStore::CurrentPayload(const std::string& channel) const {
  if (!keep_payloads_) {
    return absl::FailedPreconditionError("this MemoryContentStore keeps no payloads");
  }
  auto it = payloads_.find(channel);
  if (it == payloads_.end() || state_.CurrentVersion(channel) == 0) {
    return absl::NotFoundError(absl::StrCat("no content for channel ", channel));
  }
  return it->second.current;
}

}  // namespace ringwarden::agent
