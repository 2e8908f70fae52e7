#include "agent-client/load_check.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

extern char** environ;

namespace ringwarden::agent {

namespace {

// WaitWithTimeout waits for `pid` up to `timeout` using a pidfd, so no polling
// loop and no sleeps; returns false on timeout.
bool WaitWithTimeout(pid_t pid, absl::Duration timeout, int* wstatus) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    struct pollfd pfd = {pidfd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
    int rc;
    do {
      rc = ::poll(&pfd, 1, ms);
    } while (rc < 0 && errno == EINTR);
    ::close(pidfd);
    if (rc == 0) {
      return false;
    }
  }
  // Either the child exited or pidfds are unavailable (old kernel): block.
  while (::waitpid(pid, wstatus, 0) < 0) {
    if (errno != EINTR) {
      *wstatus = 0;
      return true;
    }
  }
  return true;
}

}  // namespace

std::string ShellQuote(absl::string_view s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

CommandLoadChecker::CommandLoadChecker(std::string command, absl::Duration timeout)
    : command_(std::move(command)), timeout_(timeout) {}

std::string CommandLoadChecker::Render(const LoadCheckRequest& request) const {
  std::string out =
      absl::StrReplaceAll(command_, {{"{path}", ShellQuote(request.path)},
                                     {"{channel}", ShellQuote(request.channel)},
                                     {"{version}", ShellQuote(absl::StrCat(request.version))}});
  if (command_.find("{path}") == std::string::npos) {
    absl::StrAppend(&out, " ", ShellQuote(request.path));
  }
  return out;
}

absl::Status CommandLoadChecker::Check(const LoadCheckRequest& request) {
  if (request.path.empty()) {
    return absl::FailedPreconditionError(
        "load-check command needs a content file, but the store keeps none");
  }
  const std::string cmd = Render(request);
  // posix_spawn rather than fork: this process has gRPC threads.
  const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
  pid_t pid;
  int rc =
      ::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("cannot run load check: ", std::strerror(rc)));
  }
  int wstatus = 0;
  if (!WaitWithTimeout(pid, timeout_, &wstatus)) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    return absl::DeadlineExceededError(absl::StrCat("load check `", cmd, "` did not finish within ",
                                                    absl::FormatDuration(timeout_)));
  }
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
    return absl::OkStatus();
  }
  if (WIFSIGNALED(wstatus)) {
    return absl::FailedPreconditionError(
        absl::StrCat("load check `", cmd, "` killed by signal ", WTERMSIG(wstatus)));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("load check `", cmd, "` exited with status ", WEXITSTATUS(wstatus)));
}

}  // namespace ringwarden::agent
