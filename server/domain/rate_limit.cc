#include "server/domain/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace ringwarden {

TokenBucket::TokenBucket(double rate_per_second, double burst, absl::Time now)
    : rate_per_second_(rate_per_second), burst_(burst), tokens_(burst), last_(now) {}

void TokenBucket::Refill(absl::Time now) {
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - last_) * rate_per_second_);
    last_ = now;
  }
}

double TokenBucket::Tokens(absl::Time now) {
  Refill(now);
  return tokens_;
}

RateDecision TokenBucket::TryTake(absl::Time now, double cost) {
  Refill(now);
  if (tokens_ >= cost) {
    tokens_ -= cost;
    return RateDecision{};
  }
  RateDecision refused;
  refused.allowed = false;
  if (rate_per_second_ <= 0 || cost > burst_) {
    refused.retry_after = absl::InfiniteDuration();
  } else {
    // Rounded up to the millisecond, so a retry at exactly that time finds the token.
    const double ms = std::ceil((cost - tokens_) / rate_per_second_ * 1000.0);
    refused.retry_after = absl::Milliseconds(std::max(1.0, ms));
  }
  return refused;
}

absl::Status ValidateRateLimitOptions(const RateLimitOptions& options) {
  if (!(options.rate_per_second >= 0) || !std::isfinite(options.rate_per_second)) {
    return absl::InvalidArgumentError("--agent-rate must be a number >= 0 (0: no limit)");
  }
  if (!(options.burst >= 1) || !std::isfinite(options.burst)) {
    return absl::InvalidArgumentError("--agent-burst must be at least 1");
  }
  if (options.max_agents < 1) {
    return absl::InvalidArgumentError("--max-tracked-agents must be at least 1");
  }
  return absl::OkStatus();
}

AgentRateLimiter::AgentRateLimiter(RateLimitOptions options, const Clock& clock)
    : options_(options), clock_(clock), buckets_(options.max_agents) {}

RateDecision AgentRateLimiter::Admit(absl::string_view key) {
  if (options_.rate_per_second <= 0) {
    return RateDecision{};
  }
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  RateDecision d =
      buckets_.GetOrInsert(key, TokenBucket(options_.rate_per_second, options_.burst, now))
          .TryTake(now);
  if (!d.allowed) {
    ++refused_;
  }
  return d;
}

size_t AgentRateLimiter::TrackedAgents() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

int64_t AgentRateLimiter::Refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

}  // namespace ringwarden
