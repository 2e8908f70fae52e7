// work_queue.h: a bounded pool of worker threads for blocking work.
//
// gRPC reactors never block on the database; they hand the work here. A full
// queue refuses new work at once (the caller answers RESOURCE_EXHAUSTED)
// instead of letting latency grow without bound. Work that waited longer than
// `max_wait` before a worker took it runs its `expired` callback instead (the
// caller answers UNAVAILABLE): its client has most likely given up, and running
// it would only delay the work behind it.
// Thread-safety: Submit and StopAccepting may be called from any thread; the
// destructor stops accepting, drains queued work and joins the workers.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace ringwarden {

class WorkQueue {
 public:
  // `clock` must outlive the queue.
  WorkQueue(int threads, size_t capacity, absl::Duration max_wait = absl::InfiniteDuration(),
            const Clock& clock = RealClock::Instance());
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Submit queues `work`; false when the queue is full or shutting down. When
  // the work waits longer than max_wait, `expired` runs instead (if given).
  bool Submit(std::function<void()> work, std::function<void()> expired = nullptr);

  // StopAccepting begins the shutdown: every later Submit is refused, while
  // work already queued still runs. The destructor calls it, then waits.
  void StopAccepting();

  // Depth returns how many items wait.
  size_t Depth() const;
  // Expired counts work that waited too long and ran its `expired` callback.
  int64_t Expired() const;

 private:
  void Loop();

  struct Item {
    std::function<void()> work;
    std::function<void()> expired;
    absl::Time queued_at;
  };
  const size_t capacity_;
  const absl::Duration max_wait_;
  const Clock& clock_;
  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t expired_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace ringwarden
