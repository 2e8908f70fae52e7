#include "server/core/work_queue.h"

namespace ringwarden {

WorkQueue::WorkQueue(int threads, size_t capacity) : capacity_(capacity) {
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

WorkQueue::~WorkQueue() {
  StopAccepting();
  for (std::thread& t : threads_) {
    t.join();
  }
}

void WorkQueue::StopAccepting() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
}

bool WorkQueue::Submit(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= capacity_) {
    return false;
  }
  queue_.push_back(std::move(work));
  return true;
}

size_t WorkQueue::Depth() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void WorkQueue::Loop() {
  while (true) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkQueue* q)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) { return q->stopping_ || !q->queue_.empty(); },
          this));
      if (queue_.empty()) {
        return;  // stopping and drained
      }
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

}  // namespace ringwarden
