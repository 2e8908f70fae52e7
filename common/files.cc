#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

absl::Status OpenError(const std::string& path, int err) {
  const std::string message = absl::StrCat("cannot read ", path, ": ", std::strerror(err));
  if (err == ENOENT) {
    return absl::NotFoundError(message);
  }
  if (err == EACCES || err == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<std::string> ReadFileAtMost(const std::string& path, size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return OpenError(path, errno);
  }
  std::string data;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return OpenError(path, err);
    }
    if (n == 0) {
      break;
    }
    // Checked per chunk, so an endless source stops one chunk past the limit.
    if (data.size() + static_cast<size_t>(n) > limit) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is larger than the limit of ", limit, " bytes"));
    }
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFileAtMost(path, kMaxPemFileBytes);
  if (pem.ok() && pem->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is empty"));
  }
  return pem;
}

}  // namespace ringwarden
