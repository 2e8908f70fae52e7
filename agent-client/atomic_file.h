// atomic_file.h: POSIX file helpers for crash-safe writes (write, fsync, rename, fsync dir).
//
//   RETURN_IF_ERROR(WriteFileAtomically(dir, ".state.json", json_text));
//   ASSIGN_OR_RETURN(std::string text, ReadFile(absl::StrCat(dir, "/.state.json")));
//
// A file replaced with WriteFileAtomically is, after a crash at any point, either
// the old or the new one, never a mix; a returned OK means the new one is durable.
// Errors carry the operation, the path and strerror: NOT_FOUND for ENOENT,
// PERMISSION_DENIED for EACCES/EPERM, INTERNAL otherwise.
// Thread-safety: stateless functions; concurrent writers of one path must
// coordinate themselves (the DiskContentStore holds an flock on its directory).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ringwarden::agent {

// ErrnoStatus maps `err` (an errno value) from `op` on `path` to a status.
absl::Status ErrnoStatus(absl::string_view op, absl::string_view path, int err);

// WriteFileSynced writes `data` to `path` (created 0600 or truncated) and fsyncs it.
// Not atomic by itself: a crash may leave a partial file at `path`.
absl::Status WriteFileSynced(const std::string& path, absl::string_view data);

// FsyncDir makes creations, renames and removals inside `dir` durable.
absl::Status FsyncDir(const std::string& dir);

// RenameFile renames `from` to `to`, replacing `to` atomically.
absl::Status RenameFile(const std::string& from, const std::string& to);

// WriteFileAtomically replaces `<dir>/<name>` with `data`: writes and fsyncs
// `<dir>/<name>.tmp`, renames it over the file and fsyncs `dir`.
absl::Status WriteFileAtomically(const std::string& dir, absl::string_view name,
                                 absl::string_view data);

// ReadFile returns the whole content of `path`.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// FileExists reports whether `path` names anything (stat succeeds).
bool FileExists(const std::string& path);

// MakeDir creates `dir` (mode 0700); an existing `dir` is fine. Parents must exist.
absl::Status MakeDir(const std::string& dir);

}  // namespace ringwarden::agent
