#include "cli/watch.h"

#include <signal.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace ringwarden {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;

// The first Ctrl-C ends the watch after the call in flight; a second one, for a
// server that does not answer, ends the process at once (as without the handler).
extern "C" void OnInterrupt(int) {
  if (g_interrupted != 0) {
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
    return;
  }
  g_interrupted = 1;
}

constexpr char kClearScreen[] = "\033[H\033[2J";
constexpr char kCursorHome[] = "\033[H";
constexpr char kClearToEol[] = "\033[K";
constexpr char kClearBelow[] = "\033[J";

bool IsTransient(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

// Screen draws frames: in place on a terminal, one after another otherwise.
class Screen {
 public:
  Screen(const WatchOptions& options, std::ostream& out) : options_(options), out_(out) {}

  void Draw(const std::string& text) {
    if (options_.ansi) {
      // Home, then each line cleared to its end and whatever the last frame left
      // below: no flicker from clearing the whole screen every time.
      out_ << (first_ ? kClearScreen : kCursorHome);
      std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
      if (!lines.empty() && lines.back().empty()) {
        lines.pop_back();  // after the final newline
      }
      for (absl::string_view line : lines) {
        out_ << line << kClearToEol << "\n";
      }
      out_ << kClearBelow;
    } else {
      if (!first_ && options_.format == OutputFormat::kTable) {
        out_ << "\n";
      }
      out_ << text;
    }
    out_.flush();
    first_ = false;
  }

 private:
  const WatchOptions& options_;
  std::ostream& out_;
  bool first_ = true;
};

}  // namespace

absl::StatusOr<WatchResult> WatchRollout(const ExplainFetcher& fetch, const Sleeper& sleep,
                                         const Clock& clock, const WatchOptions& options,
                                         std::ostream& out) {
  Screen screen(options, out);
  std::optional<v1::ExplainRolloutResponse> last;
  std::string last_frame;
  std::optional<absl::Time> failing_since;
  const std::string footer = absl::StrCat(
      "\nrefreshing every ", absl::FormatDuration(options.interval), "; Ctrl-C to stop\n");
  while (true) {
    absl::StatusOr<v1::ExplainRolloutResponse> response = fetch();
    const absl::Time now = clock.Now();
    if (!response.ok()) {
      if (!last.has_value() || !IsTransient(response.status())) {
        return response.status();
      }
      if (!failing_since.has_value()) {
        failing_since = now;
      }
      if (now - *failing_since >= options.give_up_after) {
        return absl::Status(response.status().code(),
                            absl::StrCat(response.status().message(), " (failing since ",
                                         FormatTime(absl::ToUnixSeconds(*failing_since)), ")"));
      }
      const std::string notice =
          absl::StrCat("server unavailable since ", FormatTime(absl::ToUnixSeconds(*failing_since)),
                       ": ", response.status().message(), "; retrying\n");
      if (options.ansi) {
        screen.Draw(absl::StrCat(last_frame, "\n", notice, footer));
      } else if (options.format == OutputFormat::kTable) {
        screen.Draw(notice);
      }
    } else {
      failing_since.reset();
      last = *std::move(response);
      std::ostringstream frame;
      RenderWatchFrame(*last, now, options.format, frame);
      last_frame = frame.str();
      const v1::RolloutState state = last->rollout().state();
      const bool done = IsFinalState(state) || state == v1::HALTED;
      screen.Draw(options.ansi && !done ? absl::StrCat(last_frame, footer) : last_frame);
      if (done) {
        return WatchResult{state == v1::COMPLETED ? WatchEnd::kCompleted : WatchEnd::kStopped,
                           last->rollout()};
      }
    }
    if (!sleep(options.interval)) {
      return WatchResult{WatchEnd::kInterrupted,
                         last.has_value() ? last->rollout() : v1::Rollout()};
    }
  }
}

struct ScopedInterruptSleeper::Saved {
  struct sigaction previous;
};

ScopedInterruptSleeper::ScopedInterruptSleeper() : saved_(std::make_unique<Saved>()) {
  g_interrupted = 0;
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &saved_->previous);
}

ScopedInterruptSleeper::~ScopedInterruptSleeper() { sigaction(SIGINT, &saved_->previous, nullptr); }

bool ScopedInterruptSleeper::Sleep(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (g_interrupted == 0) {
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return true;
    }
    absl::SleepFor(std::min(left, absl::Milliseconds(50)));
  }
  return false;
}

}  // namespace ringwarden
