#include "server/core/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"

namespace ringwarden {
namespace {

// BlockedWorker occupies one worker until Release(), so that what is submitted
// next waits in the queue: fullness and depth become deterministic. Declare it
// after the queue: its destructor releases the worker, so a test that stops
// early never leaves the queue's destructor waiting.
class BlockedWorker {
 public:
  ~BlockedWorker() { Release(); }

  // Occupy submits the blocking work to `queue` and waits until a worker runs it.
  bool Occupy(WorkQueue& queue) {
    std::shared_ptr<State> state = state_;  // the work may outlive this object
    if (!queue.Submit([state] {
          state->started.Notify();
          state->release.WaitForNotification();
        })) {
      return false;
    }
    state_->started.WaitForNotification();
    return true;
  }

  void Release() {
    if (!state_->release.HasBeenNotified()) {
      state_->release.Notify();
    }
  }

 private:
  struct State {
    absl::Notification started;
    absl::Notification release;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

TEST(WorkQueueTest, RunsSubmittedWork) {
  std::atomic<int> ran{0};
  absl::BlockingCounter done(5);
  WorkQueue queue(2, 10);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(queue.Submit([&] {
      ++ran;
      done.DecrementCount();
    }));
  }
  done.Wait();
  EXPECT_EQ(ran.load(), 5);
}

TEST(WorkQueueTest, RefusesWorkWhenFull) {
  std::atomic<int> ran{0};
  {
    WorkQueue queue(1, 2);
    BlockedWorker blocker;
    ASSERT_TRUE(blocker.Occupy(queue));
    EXPECT_TRUE(queue.Submit([&] { ++ran; }));
    EXPECT_TRUE(queue.Submit([&] { ++ran; }));
    EXPECT_FALSE(queue.Submit([&] { ++ran; }));  // two wait already: full
    EXPECT_EQ(queue.Depth(), 2u);
    blocker.Release();
  }
  EXPECT_EQ(ran.load(), 2);
}

TEST(WorkQueueTest, DepthCountsWaitingWorkNotRunningWork) {
  WorkQueue queue(1, 10);
  BlockedWorker blocker;
  EXPECT_EQ(queue.Depth(), 0u);
  ASSERT_TRUE(blocker.Occupy(queue));
  EXPECT_EQ(queue.Depth(), 0u);  // the blocking work runs; nothing waits
  ASSERT_TRUE(queue.Submit([] {}));
  ASSERT_TRUE(queue.Submit([] {}));
  EXPECT_EQ(queue.Depth(), 2u);
  blocker.Release();
}

TEST(WorkQueueTest, DestructorRunsQueuedWorkAndJoins) {
  std::atomic<int> ran{0};
  auto queue = std::make_unique<WorkQueue>(1, 10);
  BlockedWorker blocker;
  ASSERT_TRUE(blocker.Occupy(*queue));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(queue->Submit([&] { ++ran; }));
  }
  blocker.Release();
  queue.reset();
  EXPECT_EQ(ran.load(), 3);
}

TEST(WorkQueueTest, AfterStopAcceptingSubmitIsRefusedAndQueuedWorkStillRuns) {
  std::atomic<int> ran{0};
  auto queue = std::make_unique<WorkQueue>(2, 10);
  BlockedWorker first;
  BlockedWorker second;
  ASSERT_TRUE(first.Occupy(*queue));
  ASSERT_TRUE(second.Occupy(*queue));
  ASSERT_TRUE(queue->Submit([&] { ++ran; }));
  ASSERT_TRUE(queue->Submit([&] { ++ran; }));

  queue->StopAccepting();

  EXPECT_FALSE(queue->Submit([&] { ran += 100; }));
  EXPECT_EQ(queue->Depth(), 2u);
  first.Release();
  second.Release();
  queue.reset();
  EXPECT_EQ(ran.load(), 2);
}

TEST(WorkQueueTest, WorkThatWaitedTooLongRunsItsExpiredCallbackInstead) {
  FakeClock clock;
  std::atomic<int> ran{0};
  std::atomic<int> expired{0};
  auto queue = std::make_unique<WorkQueue>(1, 10, absl::Seconds(5), clock);
  BlockedWorker blocker;
  ASSERT_TRUE(blocker.Occupy(*queue));
  ASSERT_TRUE(queue->Submit([&] { ++ran; }, [&] { ++expired; }));
  clock.Advance(absl::Seconds(6));
  // Submitted after the wait: fresh when the worker gets to it.
  ASSERT_TRUE(queue->Submit([&] { ran += 10; }, [&] { expired += 10; }));
  // Without an expired callback the work runs however long it waited.
  ASSERT_TRUE(queue->Submit([&] { ran += 100; }));
  clock.Advance(absl::Seconds(1));
  blocker.Release();
  queue.reset();
  EXPECT_EQ(ran.load(), 110);
  EXPECT_EQ(expired.load(), 1);
}

}  // namespace
}  // namespace ringwarden
