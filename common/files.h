// files.h: reading a whole input file with a bound, for the files operators name on command
// lines (keys, certificates, envelopes, content).
//
//   ASSIGN_OR_RETURN(std::string pem, ReadFileAtMost(ca_file, kMaxPemFileBytes));
//
// The bound makes a wrong path (a disk image, /dev/zero) fail fast instead of filling memory.
// Pipes are read too (`--ca <(kubectl get secret ...)`), up to the bound. Thread-safe: a free
// function.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace ringwarden {

// kMaxPemFileBytes bounds a PEM file of keys or certificates: a chain of a few certificates
// is a few kilobytes.
inline constexpr size_t kMaxPemFileBytes = 1024 * 1024;

// ReadFileAtMost returns the bytes of `path`: NOT_FOUND when it does not exist,
// PERMISSION_DENIED when it may not be opened, INVALID_ARGUMENT when it is larger than
// `limit` bytes or cannot be read (a directory), each naming the path.
absl::StatusOr<std::string> ReadFileAtMost(const std::string& path, size_t limit);

// ReadPemFile reads a file of keys or certificates: ReadFileAtMost with kMaxPemFileBytes, and
// INVALID_ARGUMENT when the file is empty.
absl::StatusOr<std::string> ReadPemFile(const std::string& path);

}  // namespace ringwarden
