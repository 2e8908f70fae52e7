// watch.h: `ringctl rollout status ID --watch`, a live view until the rollout ends.
//
//   ScopedInterruptSleeper sleeper;  // Ctrl-C ends the watch instead of the process
//   auto end = WatchRollout(fetch, [&](absl::Duration d) { return sleeper.Sleep(d); },
//                           RealClock::Instance(), {.interval = absl::Seconds(2)}, std::cout);
//
// The loop is independent of gRPC: it takes a fetch function, a sleeper and a clock,
// so tests drive it with canned responses and a FakeClock. Thread-safety: WatchRollout
// is a plain function; ScopedInterruptSleeper owns process-wide SIGINT handling, so
// only one may exist at a time.
#pragma once

#include <functional>
#include <memory>
#include <ostream>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/output.h"
#include "common/clock.h"
#include "ringwarden/v1/admin.pb.h"

namespace ringwarden {

struct WatchOptions {
  absl::Duration interval = absl::Seconds(2);
  // Redraw in place with ANSI escapes (stdout is a terminal); otherwise frames follow
  // each other separated by a blank line (JSON: one line per frame).
  bool ansi = false;
  OutputFormat format = OutputFormat::kTable;
  // Transient failures (UNAVAILABLE, DEADLINE_EXCEEDED) after the first frame are
  // retried until they have lasted this long; a restarting server does not end a watch.
  absl::Duration give_up_after = absl::Minutes(5);
};

enum class WatchEnd {
  kCompleted,    // COMPLETED
  kStopped,      // HALTED, ROLLED_BACK or CANCELLED
  kInterrupted,  // the sleeper reported Ctrl-C
};

struct WatchResult {
  WatchEnd end = WatchEnd::kInterrupted;
  v1::Rollout rollout;  // as last seen
};

using ExplainFetcher = std::function<absl::StatusOr<v1::ExplainRolloutResponse>()>;
// Sleeper waits `d`; it returns false when the user interrupted the wait.
using Sleeper = std::function<bool(absl::Duration)>;

// WatchRollout fetches and draws a frame every `options.interval` until the rollout
// is COMPLETED, HALTED, ROLLED_BACK or CANCELLED, or the sleeper is interrupted.
// Returns the fetch error if the first fetch fails, a non-transient one fails, or
// transient ones outlast `give_up_after`.
absl::StatusOr<WatchResult> WatchRollout(const ExplainFetcher& fetch, const Sleeper& sleep,
                                         const Clock& clock, const WatchOptions& options,
                                         std::ostream& out);

// ScopedInterruptSleeper catches SIGINT while it lives (restoring the previous
// handler afterwards) and sleeps in short slices so Ctrl-C is noticed at once. A
// second Ctrl-C (say, while a call hangs) kills the process as usual.
class ScopedInterruptSleeper {
 public:
  ScopedInterruptSleeper();
  ~ScopedInterruptSleeper();
  ScopedInterruptSleeper(const ScopedInterruptSleeper&) = delete;
  ScopedInterruptSleeper& operator=(const ScopedInterruptSleeper&) = delete;

  // Sleep waits `d`; false if SIGINT arrived (before or during the wait).
  bool Sleep(absl::Duration d);

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

}  // namespace ringwarden
