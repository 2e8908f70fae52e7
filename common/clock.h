// clock.h: the time source every component takes by injection.
//
// Domain code never calls absl::Now(); it asks a Clock. Production wires
// RealClock; tests use FakeClock and move time with Advance(), never sleep.
// Thread-safety: both implementations are safe to call from any thread.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ringwarden {

// Clock is the injected source of "now".
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// RealClock reads the system wall clock.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // Instance returns a process-wide RealClock (stateless, never destroyed).
  static Clock& Instance() {
    static RealClock* clock = new RealClock();
    return *clock;
  }
};

// FakeClock only moves when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ringwarden
