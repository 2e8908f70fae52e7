#include "server/domain/rate_limit.h"

#include <algorithm>
#include <cmath>

#include "absl/hash/hash.h"

namespace ringwarden {

RateDecision TakeTokens(double rate_per_second, double burst, BucketLevel& level, absl::Time now,
                        double cost) {
  const int64_t now_ns = absl::ToUnixNanos(now);
  if (now_ns < level.last_ns) {
    // The clock stepped back: count from now, or the bucket would not refill until the clock
    // caught up again while its retry hints promised a token.
    level.last_ns = now_ns;
  } else if (now_ns > level.last_ns) {
    level.tokens = std::min(
        burst, level.tokens + static_cast<double>(now_ns - level.last_ns) * 1e-9 * rate_per_second);
    level.last_ns = now_ns;
  }
  if (level.tokens >= cost) {
    level.tokens -= cost;
    return RateDecision{};
  }
  RateDecision refused;
  refused.allowed = false;
  if (rate_per_second <= 0 || cost > burst) {
    refused.retry_after = absl::InfiniteDuration();
  } else {
    // Rounded up to the millisecond, so a retry at exactly that time finds the token.
    const double ms = std::ceil((cost - level.tokens) / rate_per_second * 1000.0);
    refused.retry_after = absl::Milliseconds(std::max(1.0, ms));
  }
  return refused;
}

TokenBucket::TokenBucket(double rate_per_second, double burst, absl::Time now)
    : rate_per_second_(rate_per_second), burst_(burst), level_{burst, absl::ToUnixNanos(now)} {}

double TokenBucket::Tokens(absl::Time now) {
  TakeTokens(rate_per_second_, burst_, level_, now, 0);
  return level_.tokens;
}

RateDecision TokenBucket::TryTake(absl::Time now, double cost) {
  return TakeTokens(rate_per_second_, burst_, level_, now, cost);
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

namespace {
// One shard per 4,096 remembered agents, at most 16: enough that replicas with many cores
// rarely wait on each other, few enough that a small limit still has room in each shard.
size_t ShardCount(size_t max_agents) { return std::clamp<size_t>(max_agents / 4096, 1, 16); }
}  // namespace

AgentRateLimiter::AgentRateLimiter(RateLimitOptions options, const Clock& clock)
    : options_(options), clock_(clock) {
  const size_t shards = ShardCount(options_.max_agents);
  generation_size_ = std::max<size_t>(1, options_.max_agents / (2 * shards));
  keep_previous_ = 2 * generation_size_ * shards <= options_.max_agents;
  for (size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
  }
}

RateDecision AgentRateLimiter::Admit(absl::string_view key) {
  if (options_.rate_per_second <= 0) {
    return RateDecision{};
  }
  const absl::Time now = clock_.Now();
  const uint64_t hash = absl::Hash<absl::string_view>{}(key);
  Shard& shard = *shards_[(hash >> 32) % shards_.size()];
  RateDecision d;
  {
    absl::MutexLock lock(&shard.mu);
    auto it = shard.current.find(hash);
    if (it == shard.current.end()) {
      // Not seen this generation: the previous one's level, or a full bucket.
      BucketLevel level{options_.burst, absl::ToUnixNanos(now)};
      if (auto old = shard.previous.find(hash); old != shard.previous.end()) {
        level = old->second;
        shard.previous.erase(old);
      }
      if (shard.current.size() >= generation_size_) {
        shard.previous.swap(shard.current);
        shard.current.clear();
        if (!keep_previous_) {
          shard.previous.clear();
        }
      }
      it = shard.current.emplace(hash, level).first;
    }
    d = TakeTokens(options_.rate_per_second, options_.burst, it->second, now, 1.0);
  }
  if (!d.allowed) {
    refused_.fetch_add(1, std::memory_order_relaxed);
  }
  return d;
}

size_t AgentRateLimiter::TrackedAgents() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    n += shard->current.size() + shard->previous.size();
  }
  return n;
}

int64_t AgentRateLimiter::Refused() const { return refused_.load(std::memory_order_relaxed); }

}  // namespace ringwarden
