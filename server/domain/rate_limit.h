// rate_limit.h: per-agent token buckets, so that no agent can starve another.
//
// Each agent owns a bucket of `burst` tokens refilled at `rate_per_second`; every call
// takes one. A call that finds the bucket empty is refused with the time until a token is
// back, which the transport sends to the agent as a retry hint. Buckets live in an LruMap,
// so memory is bounded by `max_agents` whatever the number of identities: a forgotten agent
// comes back with a full bucket, which costs at most one burst.
//
//   AgentRateLimiter limiter({/*rate_per_second=*/2, /*burst=*/40, /*max_agents=*/100'000},
//                            clock);
//   RateDecision d = limiter.Admit("host-1");
//   if (!d.allowed) { /* RESOURCE_EXHAUSTED, retry after d.retry_after */ }
//
// Pure: the clock is injected, nothing sleeps. Thread-safety: AgentRateLimiter is safe from
// any thread (one mutex); TokenBucket is a value the caller serializes.
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/domain/lru_map.h"

namespace ringwarden {

// RateDecision is the answer to one call: allowed, or refused with how long until the
// bucket holds a token again.
struct RateDecision {
  bool allowed = true;
  absl::Duration retry_after = absl::ZeroDuration();
};

// TokenBucket holds up to `burst` tokens, refilled continuously at `rate_per_second`.
class TokenBucket {
 public:
  // TokenBucket starts full at `now`.
  TokenBucket(double rate_per_second, double burst, absl::Time now);

  // TryTake takes `cost` tokens at `now` if the bucket holds them; otherwise it takes
  // nothing and says how long until it will.
  RateDecision TryTake(absl::Time now, double cost = 1.0);

  // Tokens is the content at `now` (refills, takes nothing).
  double Tokens(absl::Time now);

 private:
  void Refill(absl::Time now);

  double rate_per_second_;
  double burst_;
  double tokens_;
  absl::Time last_;
};

struct RateLimitOptions {
  // Sustained calls per second per agent; 0 turns the limiter off.
  double rate_per_second = 2.0;
  // Calls an idle agent may make at once.
  double burst = 40.0;
  // Agents whose buckets are remembered; the least recently seen is forgotten first.
  size_t max_agents = 200'000;
};

// ValidateRateLimitOptions: INVALID_ARGUMENT naming the option out of range (rate >= 0,
// burst >= 1, max_agents >= 1).
absl::Status ValidateRateLimitOptions(const RateLimitOptions& options);

// AgentRateLimiter keeps one TokenBucket per key (an agent id), at most max_agents of them.
class AgentRateLimiter {
 public:
  // `clock` must outlive the limiter.
  AgentRateLimiter(RateLimitOptions options, const Clock& clock);

  // Admit takes one token from `key`'s bucket.
  RateDecision Admit(absl::string_view key);

  size_t TrackedAgents() const;
  // Refused counts calls refused so far.
  int64_t Refused() const;

 private:
  const RateLimitOptions options_;
  const Clock& clock_;
  mutable absl::Mutex mu_;
  LruMap<TokenBucket> buckets_ ABSL_GUARDED_BY(mu_);
  int64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ringwarden
