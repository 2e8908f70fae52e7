#include "server/core/work_queue.h"

namespace ringwarden {

WorkQueue::WorkQueue(int threads, size_t capacity, absl::Duration max_wait, const Clock& clock)
    : capacity_(capacity), max_wait_(max_wait), clock_(clock) {
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

bool WorkQueue::Submit(std::function<void()> work, std::function<void()> expired) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= capacity_) {
    return false;
  }
  queue_.push_back(Item{std::move(work), std::move(expired), now});
  return true;
}

int64_t WorkQueue::Expired() const {
  absl::MutexLock lock(&mu_);
  return expired_;
}

size_t WorkQueue::Depth() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void WorkQueue::Loop() {
  while (true) {
    Item item;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkQueue* q)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) { return q->stopping_ || !q->queue_.empty(); },
          this));
      if (queue_.empty()) {
        return;  // stopping and drained
      }
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    if (item.expired && clock_.Now() - item.queued_at > max_wait_) {
      {
        absl::MutexLock lock(&mu_);
        ++expired_;
      }
      item.expired();
      continue;
    }
    item.work();
  }
}

}  // namespace ringwarden
