// The --watch loop with canned responses and a FakeClock: no server, no sleeping.
#include "cli/watch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <sstream>

#include "absl/strings/str_split.h"
#include "tests/cli/test_util.h"

namespace ringwarden::cli_testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

class WatchTest : public ::testing::Test {
 protected:
  void Script(std::vector<absl::StatusOr<v1::RolloutState>> steps) {
    for (const auto& s : steps) {
      if (!s.ok()) {
        responses_.push_back(s.status());
        continue;
      }
      v1::ExplainRolloutResponse x;
      *x.mutable_rollout() = RolloutIn(*s);
      responses_.push_back(x);
    }
  }

  absl::StatusOr<WatchResult> Watch(WatchOptions options, int interrupt_after = -1) {
    ExplainFetcher fetch = [this]() -> absl::StatusOr<v1::ExplainRolloutResponse> {
      ++fetches_;
      if (responses_.empty()) {
        return absl::InternalError("script ran out");
      }
      auto r = responses_.front();
      if (responses_.size() > 1) {
        responses_.pop_front();
      }
      return r;
    };
    Sleeper sleep = [this, interrupt_after](absl::Duration d) {
      slept_ += d;
      clock_.Advance(d);
      return interrupt_after < 0 || fetches_ < interrupt_after;
    };
    return WatchRollout(fetch, sleep, clock_, options, out_);
  }

  std::deque<absl::StatusOr<v1::ExplainRolloutResponse>> responses_;
  FakeClock clock_;
  std::ostringstream out_;
  int fetches_ = 0;
  absl::Duration slept_;
};

TEST_F(WatchTest, EndsCompletedAfterEveryStage) {
  Script({v1::CANARY, v1::EARLY, v1::BROAD, v1::COMPLETED});
  WatchOptions o;
  o.interval = absl::Seconds(2);
  auto result = Watch(o);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end, WatchEnd::kCompleted);
  EXPECT_EQ(result->rollout.state(), v1::COMPLETED);
  EXPECT_EQ(fetches_, 4);
  EXPECT_EQ(slept_, absl::Seconds(6));
  std::vector<std::string> frames = absl::StrSplit(out_.str(), "\n\nrollout ");
  EXPECT_THAT(frames, SizeIs(4));
  EXPECT_THAT(out_.str(), Not(HasSubstr("\033")));
  EXPECT_THAT(out_.str(), Not(HasSubstr("Ctrl-C")));  // no footer in logs
}

TEST_F(WatchTest, HaltedRolledBackAndCancelledStop) {
  for (v1::RolloutState s : {v1::HALTED, v1::ROLLED_BACK, v1::CANCELLED}) {
    responses_.clear();
    Script({v1::CANARY, s});
    auto result = Watch({});
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->end, WatchEnd::kStopped);
    EXPECT_EQ(result->rollout.state(), s);
  }
}

TEST_F(WatchTest, PendingKeepsWatching) {
  Script({v1::PENDING, v1::PENDING, v1::CANARY, v1::COMPLETED});
  auto result = Watch({});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(fetches_, 4);
}

TEST_F(WatchTest, AnsiRedrawsInPlace) {
  Script({v1::CANARY, v1::EARLY, v1::COMPLETED});
  WatchOptions o;
  o.ansi = true;
  o.interval = absl::Milliseconds(200);
  ASSERT_TRUE(Watch(o).ok());
  const std::string s = out_.str();
  EXPECT_THAT(s, StartsWith("\033[H\033[2J"));         // clear once
  EXPECT_EQ(s.find("\033[2J", 7), std::string::npos);  // then only cursor home
  std::vector<std::string> homes = absl::StrSplit(s, "\033[H");
  EXPECT_THAT(homes, SizeIs(4));          // 3 frames
  EXPECT_THAT(s, HasSubstr("\033[K\n"));  // lines cleared to their end
  EXPECT_THAT(s, HasSubstr("refreshing every 200ms; Ctrl-C to stop"));
  const std::string last = homes.back();
  EXPECT_THAT(last, HasSubstr("COMPLETED"));
  EXPECT_THAT(last, Not(HasSubstr("Ctrl-C")));  // the end needs no hint
}

TEST_F(WatchTest, InterruptReturnsTheLastRollout) {
  Script({v1::CANARY, v1::EARLY, v1::BROAD});
  auto result = Watch({}, /*interrupt_after=*/2);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->end, WatchEnd::kInterrupted);
  EXPECT_EQ(result->rollout.state(), v1::EARLY);
}

TEST_F(WatchTest, FirstFailureIsReturned) {
  Script({absl::UnavailableError("down")});
  auto result = Watch({});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(WatchTest, TransientFailuresAreRetried) {
  Script({v1::CANARY, absl::UnavailableError("restarting"), absl::DeadlineExceededError("slow"),
          v1::COMPLETED});
  auto result = Watch({});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->end, WatchEnd::kCompleted);
  EXPECT_THAT(out_.str(), HasSubstr("server unavailable since"));
}

TEST_F(WatchTest, NonTransientFailureEndsTheWatch) {
  Script({v1::CANARY, absl::PermissionDeniedError("token revoked")});
  auto result = Watch({});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(WatchTest, GivesUpAfterLongOutage) {
  Script({v1::CANARY, absl::UnavailableError("gone")});  // the last step repeats
  WatchOptions o;
  o.interval = absl::Seconds(10);
  o.give_up_after = absl::Minutes(1);
  auto result = Watch(o);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.status().message(), HasSubstr("failing since"));
  EXPECT_EQ(fetches_, 8);  // 1 good + failures at 0, 10, ..., 60 s
}

}  // namespace
}  // namespace ringwarden::cli_testing
