// work_queue.h: a bounded pool of worker threads for blocking work.
//
// gRPC reactors never block on the database; they hand the work here. A full
// queue refuses new work at once (the caller answers RESOURCE_EXHAUSTED)
// instead of letting latency grow without bound.
// Thread-safety: Submit and StopAccepting may be called from any thread; the
// destructor stops accepting, drains queued work and joins the workers.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ringwarden {

class WorkQueue {
 public:
  WorkQueue(int threads, size_t capacity);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Submit queues `work`; false when the queue is full or shutting down.
  bool Submit(std::function<void()> work);

  // StopAccepting begins the shutdown: every later Submit is refused, while
  // work already queued still runs. The destructor calls it, then waits.
  void StopAccepting();

  // Depth returns how many items wait.
  size_t Depth() const;

 private:
  void Loop();

  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ringwarden
