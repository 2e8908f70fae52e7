// backoff.h: retry pacing for the agent loop, with the randomness injected.
//
//   SeededRandom random(42);
//   ExponentialBackoff backoff({}, random);
//   absl::Duration wait = backoff.Delay(/*attempt=*/3);  // ~4s, jittered down
//
// Thread-safety: SeededRandom and ExponentialBackoff are safe to share between
// threads (the fleet shares one policy among all its agents).
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ringwarden::agent {

// RandomSource is the injected source of randomness (jitter, fault draws, boot ids).
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Next64 returns 64 uniformly distributed bits.
  virtual uint64_t Next64() = 0;
  // Uniform01 returns a double uniformly distributed in [0, 1).
  double Uniform01() { return static_cast<double>(Next64() >> 11) * 0x1.0p-53; }
};

// SplitMix64 is the 8-byte-state generator behind SeededRandom; exposed so that
// the fleet can keep one per simulated agent without a mutex.
uint64_t SplitMix64(uint64_t& state);

// SeededRandom is a deterministic RandomSource (SplitMix64); equal seeds give
// equal sequences.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next64() override;

 private:
  absl::Mutex mu_;
  uint64_t state_ ABSL_GUARDED_BY(mu_);
};

// BackoffPolicy says how long to wait before retrying after `attempt`
// consecutive failures (attempt >= 1).
class BackoffPolicy {
 public:
  virtual ~BackoffPolicy() = default;
  virtual absl::Duration Delay(int attempt) = 0;
};

struct ExponentialBackoffOptions {
  absl::Duration initial = absl::Seconds(1);
  absl::Duration max = absl::Minutes(5);
  double multiplier = 2.0;
  // Fraction of the delay that is randomized: the result is uniform in
  // [delay * (1 - jitter), delay]. Jitter spreads a fleet that failed together.
  double jitter = 0.5;
};

// ExponentialBackoff grows initial * multiplier^(attempt-1) up to max, jittered.
class ExponentialBackoff final : public BackoffPolicy {
 public:
  ExponentialBackoff(ExponentialBackoffOptions options, RandomSource& random);
  absl::Duration Delay(int attempt) override;

 private:
  const ExponentialBackoffOptions options_;
  RandomSource& random_;
};

// IsRetryable reports whether a failed call should be retried after a backoff:
// UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED and ABORTED.
bool IsRetryable(const absl::Status& status);

}  // namespace ringwarden::agent
