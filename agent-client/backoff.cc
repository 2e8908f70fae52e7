#include "agent-client/backoff.h"

#include <algorithm>
#include <cmath>

namespace ringwarden::agent {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SeededRandom::Next64() {
  absl::MutexLock lock(&mu_);
  return SplitMix64(state_);
}

ExponentialBackoff::ExponentialBackoff(ExponentialBackoffOptions options, RandomSource& random)
    : options_(options), random_(random) {}

absl::Duration ExponentialBackoff::Delay(int attempt) {
  attempt = std::max(attempt, 1);
  const double max_seconds = absl::ToDoubleSeconds(options_.max);
  // Computed in floating point and capped before it can overflow.
  double seconds = absl::ToDoubleSeconds(options_.initial) *
                   std::pow(std::max(options_.multiplier, 1.0), std::min(attempt - 1, 64));
  seconds = std::min(seconds, max_seconds);
  const double jitter = std::clamp(options_.jitter, 0.0, 1.0);
  seconds *= 1.0 - jitter * random_.Uniform01();
  return absl::Seconds(seconds);
}

bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

}  // namespace ringwarden::agent
