#include "agent-client/signals.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "absl/time/clock.h"

namespace ringwarden::agent {

namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockStopSignals() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

bool WaitForStopSignal(absl::Duration timeout) {
  const sigset_t set = StopSignals();
  // Bounded so that the conversion cannot overflow; callers loop anyway.
  timeout = std::clamp(timeout, absl::ZeroDuration(), absl::Hours(24));
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    struct timespec ts = absl::ToTimespec(std::max(deadline - absl::Now(), absl::ZeroDuration()));
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      return true;
    }
    if (sig < 0 && errno == EINTR) {
      continue;
    }
    return false;  // EAGAIN: timed out
  }
}

}  // namespace ringwarden::agent
