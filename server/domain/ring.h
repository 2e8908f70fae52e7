// ring.h: rings and ring membership.
//
// Rings are ordered stages: canary -> early -> broad. An agent's ring comes from
// an explicit label override first, else from a stable hash of its agent id
// into 10,000 buckets compared against the configured percentages, so it does
// not change between rollouts unless the policy changes.
//
//   RingPolicy policy;  // canary 1%, early 10%, broad the rest
//   Ring r = AssignRing(policy, "host-42", {{"group", "dogfood"}});
//
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

enum class Ring { kCanary = 0, kEarly = 1, kBroad = 2 };

inline constexpr int kRingCount = 3;
inline constexpr std::array<Ring, kRingCount> kAllRings = {Ring::kCanary, Ring::kEarly,
                                                           Ring::kBroad};
// kBucketCount is how many hash buckets agent ids fall into.
inline constexpr int kBucketCount = 10'000;

// RingName returns "canary", "early" or "broad".
absl::string_view RingName(Ring ring);
// ParseRing is the inverse of RingName; INVALID_ARGUMENT otherwise.
absl::StatusOr<Ring> ParseRing(absl::string_view name);

// LabelOverride puts every agent carrying label key=value into a ring.
struct LabelOverride {
  std::string key;
  std::string value;
  Ring ring = Ring::kCanary;
};

// RingPolicy says how agents are spread over rings.
struct RingPolicy {
  // Buckets (of kBucketCount) in canary and in early; broad takes the rest.
  int canary_buckets = 100;   // 1%
  int early_buckets = 1'000;  // 10%
  // Checked in order before hashing; the first match wins.
  std::vector<LabelOverride> overrides = {{"group", "dogfood", Ring::kCanary}};
  // Mixed into the hash; changing it reshuffles the fleet.
  std::string seed = "ringwarden";
};

// ValidateRingPolicy rejects bucket counts outside [0, kBucketCount] or summing above it.
absl::Status ValidateRingPolicy(const RingPolicy& policy);

// BucketOf returns the agent's stable bucket in [0, kBucketCount).
int BucketOf(absl::string_view seed, absl::string_view agent_id);

// WavePosition places an agent in [0, 1) for broad waves: a wave offering
// share f of the broad ring reaches the agents with position < f. Independent
// of the ring bucket, so waves spread evenly over the broad ring.
// WaveBucket is the bucket behind WavePosition: the position is WaveBucket / kBucketCount.
int WaveBucket(absl::string_view seed, absl::string_view agent_id);
double WavePosition(absl::string_view seed, absl::string_view agent_id);

// AssignRing returns the agent's ring under `policy`.
Ring AssignRing(const RingPolicy& policy, absl::string_view agent_id,
                const std::map<std::string, std::string>& labels);

}  // namespace ringwarden
