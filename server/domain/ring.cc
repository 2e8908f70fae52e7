#include "server/domain/ring.h"

#include <cstring>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace ringwarden {

absl::string_view RingName(Ring ring) {
  switch (ring) {
    case Ring::kCanary:
      return "canary";
    case Ring::kEarly:
      return "early";
    case Ring::kBroad:
      return "broad";
  }
  return "unknown";
}

absl::StatusOr<Ring> ParseRing(absl::string_view name) {
  for (Ring ring : kAllRings) {
    if (RingName(ring) == name) {
      return ring;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ring \"", name, "\"; expected canary, early or broad"));
}

absl::Status ValidateRingPolicy(const RingPolicy& policy) {
  if (policy.canary_buckets < 0 || policy.early_buckets < 0 ||
      policy.canary_buckets + policy.early_buckets > kBucketCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring buckets must be >= 0 and canary + early <= ", kBucketCount,
                     "; got canary ", policy.canary_buckets, ", early ", policy.early_buckets));
  }
  for (const LabelOverride& o : policy.overrides) {
    if (o.key.empty()) {
      return absl::InvalidArgumentError("ring label override needs a label key");
    }
  }
  return absl::OkStatus();
}

namespace {

// BucketOfDigest is the bucket of SHA-256(parts...): the first 8 bytes, big-endian, modulo
// the bucket count. A cryptographic hash keeps buckets stable across processes, builds and
// platforms (absl::Hash is salted per process) and uniform for any id scheme. Every poll
// places its agent, so this allocates nothing.
int BucketOfDigest(std::initializer_list<absl::string_view> parts) {
  unsigned char digest[32];
  Sha256Of(parts, digest);
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value = (value << 8) | digest[i];
  }
  return static_cast<int>(value % kBucketCount);
}

}  // namespace

int BucketOf(absl::string_view seed, absl::string_view agent_id) {
  return BucketOfDigest({seed, ":", agent_id});
}

int WaveBucket(absl::string_view seed, absl::string_view agent_id) {
  // The bucket of the seed "<seed>/wave".
  return BucketOfDigest({seed, "/wave", ":", agent_id});
}

double WavePosition(absl::string_view seed, absl::string_view agent_id) {
  return WaveBucket(seed, agent_id) / static_cast<double>(kBucketCount);
}

Ring AssignRing(const RingPolicy& policy, absl::string_view agent_id,
                const std::map<std::string, std::string>& labels) {
  for (const LabelOverride& o : policy.overrides) {
    auto it = labels.find(o.key);
    if (it != labels.end() && it->second == o.value) {
      return o.ring;
    }
  }
  const int bucket = BucketOf(policy.seed, agent_id);
  if (bucket < policy.canary_buckets) {
    return Ring::kCanary;
  }
  if (bucket < policy.canary_buckets + policy.early_buckets) {
    return Ring::kEarly;
  }
  return Ring::kBroad;
}

}  // namespace ringwarden
