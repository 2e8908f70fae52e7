// rate_limit.h: per-agent token buckets, so that no agent can starve another.
//
// Each agent owns a bucket of `burst` tokens refilled at `rate_per_second`; every call
// takes one. A call that finds the bucket empty is refused with the time until a token is
// back, which the transport sends to the agent as a retry hint. Memory is bounded by
// `max_agents` whatever the number of identities: buckets not touched for a while are
// forgotten, and a forgotten agent comes back with a full bucket, which costs at most one
// burst.
//
//   AgentRateLimiter limiter({/*rate_per_second=*/2, /*burst=*/40, /*max_agents=*/100'000},
//                            clock);
//   RateDecision d = limiter.Admit("host-1");
//   if (!d.allowed) { /* RESOURCE_EXHAUSTED, retry after d.retry_after */ }
//
// Pure: the clock is injected, nothing sleeps. Thread-safety: AgentRateLimiter is safe from
// any thread (a mutex per shard of agents); TokenBucket is a value the caller serializes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace ringwarden {

// RateDecision is the answer to one call: allowed, or refused with how long until the
// bucket holds a token again.
struct RateDecision {
  bool allowed = true;
  absl::Duration retry_after = absl::ZeroDuration();
};

// BucketLevel is what a bucket holds between calls; its rate and burst are its owner's.
struct BucketLevel {
  double tokens = 0;
  int64_t last_ns = 0;  // when `tokens` was counted, Unix nanoseconds
};

// TakeTokens refills `level` to `now` (never past `burst`; a clock that steps back neither
// refills nor drains, and refilling resumes from the earlier time) and takes `cost` tokens if it
// holds them; otherwise it takes nothing and says how long until it will.
RateDecision TakeTokens(double rate_per_second, double burst, BucketLevel& level, absl::Time now,
                        double cost);

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
  double rate_per_second_;
  double burst_;
  BucketLevel level_;
};

struct RateLimitOptions {
  // Sustained calls per second per agent; 0 turns the limiter off.
  double rate_per_second = 2.0;
  // Calls an idle agent may make at once.
  double burst = 40.0;
  // At most this many buckets are remembered; those not touched for longest are forgotten
  // first, by generation (AgentRateLimiter).
  size_t max_agents = 200'000;
};

// ValidateRateLimitOptions: INVALID_ARGUMENT naming the option out of range (rate >= 0,
// burst >= 1, max_agents >= 1).
absl::Status ValidateRateLimitOptions(const RateLimitOptions& options);

// AgentRateLimiter keeps one bucket per key (an agent id), at most max_agents of them.
//
// Every call of every agent passes here, so the layout is chosen for the poll path: a key is
// kept as a 64-bit hash of the agent id with a 16-byte level beside it in one flat table (no
// node, no copy of the id), and keys are split over shards that each have their own lock.
// Two keys whose hashes collide share a bucket; with a 64-bit hash that takes billions of
// agents to happen by chance, and it only makes the pair share one rate.
//
// Forgetting is by generation, not exact recency: a shard fills its current generation; when
// that is full it becomes the previous one and the generation before it is forgotten. A key
// found in the previous generation moves to the current one. So an agent is kept as long as
// at most max_agents / (2 x shards) other keys enter its shard between two of its calls:
// about max_agents / 2 other agents in all. A fleet calling in turn is remembered whole up to
// about half of max_agents, and not beyond; the LRU table this replaced kept all of it, at
// three to five times the bytes per agent.
class AgentRateLimiter {
 public:
  // `clock` must outlive the limiter.
  AgentRateLimiter(RateLimitOptions options, const Clock& clock);

  // Admit takes one token from `key`'s bucket.
  RateDecision Admit(absl::string_view key);

  // TrackedAgents is how many buckets are remembered (at most max_agents).
  size_t TrackedAgents() const;
  // Refused counts calls refused so far.
  int64_t Refused() const;

 private:
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<uint64_t, BucketLevel> current ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<uint64_t, BucketLevel> previous ABSL_GUARDED_BY(mu);
  };

  const RateLimitOptions options_;
  const Clock& clock_;
  // Keys per generation of one shard: two generations of every shard fit in max_agents.
  size_t generation_size_ = 1;
  // False when even two generations of one key do not fit (max_agents of 1): a full
  // generation is then forgotten at once instead of kept as the previous one.
  bool keep_previous_ = true;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<int64_t> refused_{0};
};

}  // namespace ringwarden
