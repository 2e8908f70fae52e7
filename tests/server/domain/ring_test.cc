#include "server/domain/ring.h"

#include <gtest/gtest.h>

#include <array>

#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

TEST(RingTest, NamesRoundTrip) {
  for (Ring r : kAllRings) {
    auto parsed = ParseRing(RingName(r));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_FALSE(ParseRing("Canary").ok());
  EXPECT_FALSE(ParseRing("").ok());
}

TEST(RingTest, BucketIsStableAndInRange) {
  // Pinned values: a change here reshuffles every fleet in production.
  EXPECT_EQ(BucketOf("ringwarden", "host-1"), BucketOf("ringwarden", "host-1"));
  for (int i = 0; i < 1000; ++i) {
    const int b = BucketOf("ringwarden", absl::StrCat("agent-", i));
    EXPECT_GE(b, 0);
    EXPECT_LT(b, kBucketCount);
  }
  EXPECT_NE(BucketOf("seed-a", "host-1"), BucketOf("seed-b", "host-1"));
}

TEST(RingTest, KnownBucketDoesNotDrift) {
  // printf 'ringwarden:host-1' | sha256sum -> 2b0d756dcdf5cfa4...; the first 8
  // bytes big-endian mod 10000. A change here would reshuffle every fleet.
  EXPECT_EQ(BucketOf("ringwarden", "host-1"), 3588);
}

TEST(RingTest, KnownWaveBucketDoesNotDrift) {
  // The wave bucket is the bucket under the seed "<seed>/wave":
  // printf 'ringwarden/wave:host-1' | sha256sum, the first 8 bytes big-endian mod 10000.
  EXPECT_EQ(WaveBucket("ringwarden", "host-1"), 5419);
  EXPECT_EQ(WaveBucket("fleet-7", "agent-42"), 3410);
  for (int i = 0; i < 1000; ++i) {
    const std::string id = absl::StrCat("agent-", i);
    EXPECT_EQ(WaveBucket("ringwarden", id), BucketOf("ringwarden/wave", id)) << id;
  }
}

TEST(RingTest, PercentagesHoldOver100kIds) {
  RingPolicy policy;  // canary 1%, early 10%, broad 89%
  std::array<int, kRingCount> counts{};
  constexpr int kAgents = 100'000;
  for (int i = 0; i < kAgents; ++i) {
    ++counts[static_cast<int>(AssignRing(policy, absl::StrCat("agent-", i), {}))];
  }
  // Binomial standard deviations: canary ~31, early ~95, broad ~99; allow ~4 sigma.
  EXPECT_NEAR(counts[0], 1'000, 130);
  EXPECT_NEAR(counts[1], 10'000, 400);
  EXPECT_NEAR(counts[2], 89'000, 400);
}

TEST(RingTest, ConfiguredPercentagesAreHonoured) {
  RingPolicy policy;
  policy.canary_buckets = 500;   // 5%
  policy.early_buckets = 2'500;  // 25%
  std::array<int, kRingCount> counts{};
  for (int i = 0; i < 100'000; ++i) {
    ++counts[static_cast<int>(AssignRing(policy, absl::StrCat("h", i), {}))];
  }
  EXPECT_NEAR(counts[0], 5'000, 300);
  EXPECT_NEAR(counts[1], 25'000, 600);
}

TEST(RingTest, RingDoesNotChangeWhenLaterRingsResize) {
  RingPolicy before;
  RingPolicy after = before;
  after.early_buckets = 2'000;
  for (int i = 0; i < 10'000; ++i) {
    const std::string id = absl::StrCat("agent-", i);
    if (AssignRing(before, id, {}) == Ring::kCanary) {
      EXPECT_EQ(AssignRing(after, id, {}), Ring::kCanary) << id;
    }
  }
}

TEST(RingTest, LabelOverrideWinsOverHash) {
  RingPolicy policy;
  policy.canary_buckets = 0;
  policy.early_buckets = 0;
  EXPECT_EQ(AssignRing(policy, "x", {{"group", "dogfood"}}), Ring::kCanary);
  EXPECT_EQ(AssignRing(policy, "x", {{"group", "other"}}), Ring::kBroad);
  policy.overrides.push_back({"tier", "lab", Ring::kEarly});
  EXPECT_EQ(AssignRing(policy, "x", {{"tier", "lab"}}), Ring::kEarly);
  // First matching override wins.
  EXPECT_EQ(AssignRing(policy, "x", {{"tier", "lab"}, {"group", "dogfood"}}), Ring::kCanary);
}

TEST(RingTest, ValidatePolicy) {
  RingPolicy p;
  EXPECT_TRUE(ValidateRingPolicy(p).ok());
  p.canary_buckets = -1;
  EXPECT_EQ(ValidateRingPolicy(p).code(), absl::StatusCode::kInvalidArgument);
  p.canary_buckets = 6'000;
  p.early_buckets = 5'000;
  EXPECT_EQ(ValidateRingPolicy(p).code(), absl::StatusCode::kInvalidArgument);
  p = RingPolicy{};
  p.overrides.push_back({"", "x", Ring::kCanary});
  EXPECT_EQ(ValidateRingPolicy(p).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ringwarden
