// files.h: the few file operations ringctl needs (reading inputs, writing envelopes).
//
// Reads are bounded so a wrong path (a disk image, /dev/zero) fails fast instead of
// filling memory. Thread-safety: stateless functions.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ringwarden {

// kMaxReadBytes bounds content files (the server accepts at most 16 MiB).
inline constexpr size_t kMaxReadBytes = 16 * 1024 * 1024;

// ReadFile returns the file's bytes; NOT_FOUND if it cannot be opened,
// INVALID_ARGUMENT if it is larger than `limit`.
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t limit = kMaxReadBytes);

// WriteFileAtomically writes `data` to PATH.tmp and renames it over `path`.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data);

}  // namespace ringwarden
