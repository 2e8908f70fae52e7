// Token buckets and the per-agent limiter on a FakeClock: nothing sleeps.
#include "server/domain/rate_limit.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "server/domain/lru_map.h"

namespace ringwarden {
namespace {

TEST(TokenBucketTest, BurstThenRefusesWithTheTimeUntilTheNextToken) {
  FakeClock clock;
  TokenBucket bucket(/*rate_per_second=*/2, /*burst=*/3, clock.Now());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(bucket.TryTake(clock.Now()).allowed) << i;
  }
  RateDecision refused = bucket.TryTake(clock.Now());
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, absl::Milliseconds(500));
  // A refusal takes nothing: the hint stays the same a moment later, minus the moment.
  clock.Advance(absl::Milliseconds(200));
  EXPECT_EQ(bucket.TryTake(clock.Now()).retry_after, absl::Milliseconds(300));
  clock.Advance(absl::Milliseconds(300));
  EXPECT_TRUE(bucket.TryTake(clock.Now()).allowed);
  EXPECT_FALSE(bucket.TryTake(clock.Now()).allowed);
}

TEST(TokenBucketTest, RefillsNoFurtherThanTheBurst) {
  FakeClock clock;
  TokenBucket bucket(10, 5, clock.Now());
  EXPECT_TRUE(bucket.TryTake(clock.Now(), 5).allowed);
  clock.Advance(absl::Hours(1));
  EXPECT_DOUBLE_EQ(bucket.Tokens(clock.Now()), 5);
  // A clock that steps back neither refills nor drains.
  clock.Advance(-absl::Minutes(30));
  EXPECT_DOUBLE_EQ(bucket.Tokens(clock.Now()), 5);
}

TEST(TokenBucketTest, AfterTheClockStepsBackRefillingResumesFromTheEarlierTime) {
  FakeClock clock;
  TokenBucket bucket(/*rate_per_second=*/1, /*burst=*/2, clock.Now());
  ASSERT_TRUE(bucket.TryTake(clock.Now(), 2).allowed);
  clock.Advance(-absl::Minutes(30));
  EXPECT_FALSE(bucket.TryTake(clock.Now()).allowed);
  // One second later by the stepped-back clock, one token is back, as the hint promised;
  // counting from before the step, none would be for half an hour.
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(bucket.TryTake(clock.Now()).allowed);
}

TEST(TokenBucketTest, ACostAboveTheBurstNeverFits) {
  FakeClock clock;
  TokenBucket bucket(1, 2, clock.Now());
  RateDecision d = bucket.TryTake(clock.Now(), 3);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, absl::InfiniteDuration());
}

TEST(AgentRateLimiterTest, AFloodingAgentIsRefusedWhileAnotherIsServed) {
  FakeClock clock;
  AgentRateLimiter limiter({/*rate_per_second=*/1, /*burst=*/10, /*max_agents=*/100}, clock);
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) {
    allowed += limiter.Admit("flooder").allowed ? 1 : 0;
  }
  EXPECT_EQ(allowed, 10);
  EXPECT_EQ(limiter.Refused(), 990);
  EXPECT_TRUE(limiter.Admit("quiet").allowed);
  RateDecision d = limiter.Admit("flooder");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(limiter.Admit("flooder").allowed);
}

TEST(AgentRateLimiterTest, MemoryIsBoundedByMaxAgents) {
  FakeClock clock;
  AgentRateLimiter limiter({1, 2, /*max_agents=*/50}, clock);
  for (int i = 0; i < 10'000; ++i) {
    limiter.Admit(absl::StrCat("agent-", i));
    ASSERT_LE(limiter.TrackedAgents(), 50u) << i;
  }
  // Forgetting is by generation: at least the last half of the limit is remembered.
  EXPECT_GE(limiter.TrackedAgents(), 25u);
}

TEST(AgentRateLimiterTest, AnAgentThatKeepsCallingIsNotForgottenInAFloodOfNewIds) {
  FakeClock clock;
  // 16 shards of 3,125 keys per generation: an agent is kept while fewer than about 50,000
  // other agents call between two of its calls.
  AgentRateLimiter limiter({/*rate_per_second=*/1, /*burst=*/5, /*max_agents=*/100'000}, clock);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(limiter.Admit("flooder").allowed);
    ASSERT_TRUE(limiter.Admit("early").allowed);
  }
  ASSERT_FALSE(limiter.Admit("early").allowed);
  // A million other ids, ten times the limit, arrive while the flooder calls after every
  // 20,000 of them: were its drained bucket forgotten, it would come back full.
  for (int i = 0; i < 1'000'000; ++i) {
    limiter.Admit(absl::StrCat("id-", i));
    if (i % 20'000 == 0) {
      ASSERT_FALSE(limiter.Admit("flooder").allowed) << i;
    }
  }
  EXPECT_LE(limiter.TrackedAgents(), 100'000u);
  EXPECT_GE(limiter.TrackedAgents(), 50'000u);
  // "early", drained before the flood and silent since, was forgotten: its bucket is full.
  EXPECT_TRUE(limiter.Admit("early").allowed);
}

TEST(AgentRateLimiterTest, NeverRemembersMoreThanMaxAgents) {
  FakeClock clock;
  // One key, a few, and limits that the shard count does not divide.
  for (size_t max_agents : {1u, 2u, 3u, 4'097u, 10'007u, 70'001u}) {
    AgentRateLimiter limiter({1, 2, max_agents}, clock);
    for (size_t i = 0; i < 3 * max_agents + 100; ++i) {
      limiter.Admit(absl::StrCat("agent-", i));
      ASSERT_LE(limiter.TrackedAgents(), max_agents) << max_agents << " after " << i;
    }
    EXPECT_GE(limiter.TrackedAgents(), 1u);
  }
}

TEST(AgentRateLimiterTest, AForgottenAgentComesBackWithAFullBucket) {
  FakeClock clock;
  AgentRateLimiter limiter({/*rate_per_second=*/1, /*burst=*/2, /*max_agents=*/4}, clock);
  ASSERT_TRUE(limiter.Admit("a").allowed);
  ASSERT_TRUE(limiter.Admit("a").allowed);
  ASSERT_FALSE(limiter.Admit("a").allowed);
  // Two generations of two keys each: four other ids push "a" out.
  for (const char* id : {"b", "c", "d", "e"}) {
    limiter.Admit(id);
  }
  EXPECT_TRUE(limiter.Admit("a").allowed);
  EXPECT_TRUE(limiter.Admit("a").allowed);
  EXPECT_FALSE(limiter.Admit("a").allowed);
}

TEST(AgentRateLimiterTest, RateZeroTurnsTheLimiterOff) {
  FakeClock clock;
  AgentRateLimiter limiter({0, 1, 10}, clock);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(limiter.Admit("a").allowed);
  }
  EXPECT_EQ(limiter.TrackedAgents(), 0u);
}

TEST(AgentRateLimiterTest, OptionsOutOfRangeNameTheFlag) {
  EXPECT_EQ(ValidateRateLimitOptions({-1, 1, 1}).message().find("--agent-rate"), 0u);
  EXPECT_EQ(ValidateRateLimitOptions({1, 0.5, 1}).message().find("--agent-burst"), 0u);
  EXPECT_EQ(ValidateRateLimitOptions({1, 1, 0}).message().find("--max-tracked-agents"), 0u);
  EXPECT_TRUE(ValidateRateLimitOptions({}).ok());
}

TEST(LruMapTest, EvictsTheLeastRecentlyUsed) {
  LruMap<int> map(3);
  map.GetOrInsert("a", 1);
  map.GetOrInsert("b", 2);
  map.GetOrInsert("c", 3);
  map.GetOrInsert("a", 0) = 10;  // touches a: b is now the oldest
  map.GetOrInsert("d", 4);
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(map.Find("b"), nullptr);
  ASSERT_NE(map.Find("a"), nullptr);
  EXPECT_EQ(*map.Find("a"), 10);
  EXPECT_EQ(map.evictions(), 1);
}

TEST(LruMapTest, GetMarksAPresentKeyRecentAndInsertsNothing) {
  LruMap<int> map(2);
  map.GetOrInsert("a", 1);
  map.GetOrInsert("b", 2);
  EXPECT_EQ(map.Get("absent"), nullptr);
  EXPECT_EQ(map.size(), 2u);
  ASSERT_NE(map.Get("a"), nullptr);  // a is now the most recent: b goes first
  *map.Get("a") = 11;
  map.GetOrInsert("c", 3);
  EXPECT_EQ(map.Find("b"), nullptr);
  ASSERT_NE(map.Find("a"), nullptr);
  EXPECT_EQ(*map.Find("a"), 11);
}

TEST(LruMapTest, StaysAtCapacityUnderManyKeys) {
  LruMap<std::string> map(1000);
  for (int i = 0; i < 100'000; ++i) {
    map.GetOrInsert(absl::StrCat("host-", i), "x");
  }
  EXPECT_EQ(map.size(), 1000u);
  EXPECT_EQ(map.evictions(), 99'000);
  EXPECT_NE(map.Find("host-99999"), nullptr);
  EXPECT_EQ(map.Find("host-98999"), nullptr);
  EXPECT_EQ(LruMap<int>(0).capacity(), 1u);
}

}  // namespace
}  // namespace ringwarden
