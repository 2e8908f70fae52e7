// files.h: ringctl's bound on the content files it reads (with ReadFileAtMost, from
// common/files.h), and its atomic write of envelopes. Thread-safety: stateless functions.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ringwarden {

// kMaxReadBytes bounds content files (the server accepts at most 16 MiB).
inline constexpr size_t kMaxReadBytes = 16 * 1024 * 1024;

// WriteFileAtomically writes `data` to PATH.tmp and renames it over `path`.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data);

}  // namespace ringwarden
