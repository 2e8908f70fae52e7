#include "server/domain/assignment.h"

#include <gtest/gtest.h>

#include "absl/random/random.h"

namespace ringwarden {
namespace {

using S = RolloutState;

ChannelCatalog Catalog(std::vector<int64_t> completed, std::vector<int64_t> revoked = {},
                       std::optional<ActiveRollout> rollout = std::nullopt) {
  ChannelCatalog c;
  c.channel = "rules.behavioral";
  c.completed = std::move(completed);
  c.revoked = std::move(revoked);
  c.rollout = std::move(rollout);
  return c;
}

ActiveRollout Rollout(int64_t version, S state, std::optional<S> halted_from = std::nullopt) {
  return ActiveRollout{"ro-1", version, RolloutPosition{state, halted_from}};
}

AgentChannelView Agent(Ring ring, int64_t current, std::optional<PinPolicy> pin = std::nullopt) {
  return AgentChannelView{ring, current, pin};
}

TEST(AssignmentTest, NewestCompletedWithoutRollout) {
  auto a = ResolveAssignment(Catalog({1, 2, 3}), Agent(Ring::kBroad, 0), false);
  EXPECT_EQ(a.version, 3);
  EXPECT_FALSE(a.rollback);
  EXPECT_EQ(ResolveAssignment(Catalog({}), Agent(Ring::kBroad, 0), false).version, 0);
}

TEST(AssignmentTest, RolloutReachesOnlyItsRings) {
  const auto catalog = Catalog({3}, {}, Rollout(4, S::kCanary));
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kCanary, 3), false).version, 4);
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kCanary, 3), false).rollout_id, "ro-1");
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kEarly, 3), false).version, 3);
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kBroad, 3), false).version, 3);
  const auto early = Catalog({3}, {}, Rollout(4, S::kEarly));
  EXPECT_EQ(ResolveAssignment(early, Agent(Ring::kEarly, 3), false).version, 4);
  EXPECT_EQ(ResolveAssignment(early, Agent(Ring::kBroad, 3), false).version, 3);
  const auto broad = Catalog({3}, {}, Rollout(4, S::kBroad));
  EXPECT_EQ(ResolveAssignment(broad, Agent(Ring::kBroad, 3), false).version, 4);
  const auto pending = Catalog({3}, {}, Rollout(4, S::kPending));
  EXPECT_EQ(ResolveAssignment(pending, Agent(Ring::kCanary, 3), false).version, 3);
}

TEST(AssignmentTest, HaltedFreezesButHoldersKeepIt) {
  const auto halted = Catalog({3}, {}, Rollout(4, S::kHalted, S::kCanary));
  EXPECT_EQ(ResolveAssignment(halted, Agent(Ring::kCanary, 3), false).version, 3);
  auto keeps = ResolveAssignment(halted, Agent(Ring::kCanary, 4), false);
  EXPECT_EQ(keeps.version, 4);
  EXPECT_FALSE(keeps.rollback);
}

TEST(AssignmentTest, HostsWhoseVersionMayBeTakenBackPollSooner) {
  auto pace = [](const ChannelCatalog& c, Ring ring, int64_t current) {
    return ResolveAssignment(c, Agent(ring, current), false).pace;
  };
  // On trial in the small rings: half the interval, so a halt reaches them quickly.
  EXPECT_EQ(pace(Catalog({3}, {}, Rollout(4, S::kCanary)), Ring::kCanary, 4), PollPace::kSoon);
  EXPECT_EQ(pace(Catalog({3}, {}, Rollout(4, S::kEarly)), Ring::kCanary, 4), PollPace::kSoon);
  // In BROAD the whole fleet may run it: the normal pace, which capacity is sized for.
  EXPECT_EQ(pace(Catalog({3}, {}, Rollout(4, S::kBroad)), Ring::kBroad, 4), PollPace::kNormal);
  // Offered the version but not running it yet: it will fetch now, nothing to hurry.
  EXPECT_EQ(pace(Catalog({3}, {}, Rollout(4, S::kCanary)), Ring::kCanary, 3), PollPace::kNormal);
  // Halted: a rollback may follow; a quarter of the interval for those running it only.
  const auto halted = Catalog({3}, {}, Rollout(4, S::kHalted, S::kCanary));
  EXPECT_EQ(pace(halted, Ring::kCanary, 4), PollPace::kUrgent);
  EXPECT_EQ(pace(halted, Ring::kCanary, 3), PollPace::kNormal);
  // Halted in BROAD: most of the fleet runs it, so the normal pace.
  const auto halted_broad = Catalog({3}, {}, Rollout(4, S::kHalted, S::kBroad));
  EXPECT_EQ(pace(halted_broad, Ring::kBroad, 4), PollPace::kNormal);
  // Rolled back: told to leave, and to come back soon until it has.
  const auto revoked = Catalog({3}, {4});
  const ResolvedAssignment back = ResolveAssignment(revoked, Agent(Ring::kCanary, 4), false);
  EXPECT_TRUE(back.rollback);
  EXPECT_EQ(back.version, 3);
  EXPECT_EQ(back.pace, PollPace::kUrgent);
  EXPECT_EQ(pace(revoked, Ring::kCanary, 3), PollPace::kNormal);
  // Unrelated hosts keep the normal pace.
  EXPECT_EQ(pace(Catalog({3}), Ring::kBroad, 3), PollPace::kNormal);
  EXPECT_DOUBLE_EQ(PollPaceFactor(PollPace::kNormal), 1.0);
  EXPECT_DOUBLE_EQ(PollPaceFactor(PollPace::kSoon), 0.5);
  EXPECT_DOUBLE_EQ(PollPaceFactor(PollPace::kUrgent), 0.25);
}

TEST(AssignmentTest, RevokedVersionGoesBackAndIsNeverHandedOut) {
  const auto catalog = Catalog({3}, {4});
  auto a = ResolveAssignment(catalog, Agent(Ring::kCanary, 4), false);
  EXPECT_EQ(a.version, 3);
  EXPECT_TRUE(a.rollback);
  // Even during an emergency stop, leaving a revoked version is allowed.
  auto stopped = ResolveAssignment(catalog, Agent(Ring::kCanary, 4), true);
  EXPECT_EQ(stopped.version, 3);
  EXPECT_TRUE(stopped.rollback);
  // A pin naming the revoked version falls back below it.
  auto pinned = ResolveAssignment(
      catalog, Agent(Ring::kBroad, 0, PinPolicy{PinPolicy::Kind::kVersion, 4}), false);
  EXPECT_EQ(pinned.version, 3);
  // Nothing completed below: the agent is told 0 (remove).
  auto none = ResolveAssignment(Catalog({}, {1}), Agent(Ring::kCanary, 1), false);
  EXPECT_EQ(none.version, 0);
  EXPECT_TRUE(none.rollback);
}

TEST(AssignmentTest, EmergencyStopHandsOutNothingNew) {
  const auto catalog = Catalog({3}, {}, Rollout(4, S::kBroad));
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kCanary, 3), true).version, 3);
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kCanary, 0), true).version, 0);
}

TEST(AssignmentTest, NeverDowngradesWithoutRevocation) {
  // Agent runs a cancelled rollout's version 5; newest completed is 3.
  auto a = ResolveAssignment(Catalog({3}), Agent(Ring::kCanary, 5), false);
  EXPECT_EQ(a.version, 5);
  EXPECT_FALSE(a.rollback);
}

TEST(AssignmentTest, PinsWinOverRollouts) {
  const auto catalog = Catalog({1, 2, 3}, {}, Rollout(4, S::kBroad));
  const PinPolicy n1{PinPolicy::Kind::kPreviousCompleted, 0};
  const PinPolicy v2{PinPolicy::Kind::kVersion, 2};
  const PinPolicy latest{PinPolicy::Kind::kLatest, 0};
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kCanary, 0, n1), false).version, 2);
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kCanary, 0, v2), false).version, 2);
  EXPECT_EQ(ResolveAssignment(catalog, Agent(Ring::kCanary, 3, latest), false).version, 4);
  // A pinned agent ahead of its pin is told to go back.
  auto back = ResolveAssignment(catalog, Agent(Ring::kCanary, 3, n1), false);
  EXPECT_EQ(back.version, 2);
  EXPECT_TRUE(back.rollback);
  // n-1 with a single completed version is that version.
  EXPECT_EQ(ResolveAssignment(Catalog({7}), Agent(Ring::kBroad, 0, n1), false).version, 7);
  // Pinned agents never get a newer version than the pin allows.
  for (Ring r : kAllRings) {
    EXPECT_LE(ResolveAssignment(catalog, Agent(r, 0, v2), false).version, 2);
  }
}

TEST(AssignmentTest, PinParsing) {
  EXPECT_EQ(ParsePinPolicy("latest")->kind, PinPolicy::Kind::kLatest);
  EXPECT_EQ(ParsePinPolicy("n-1")->kind, PinPolicy::Kind::kPreviousCompleted);
  EXPECT_EQ(ParsePinPolicy("42")->version, 42);
  for (const char* bad : {"", "0", "-3", "n-2", "42x", "latest ", "99999999999999999999999"}) {
    EXPECT_EQ(ParsePinPolicy(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  for (const char* text : {"latest", "n-1", "17"}) {
    EXPECT_EQ(PinPolicyText(*ParsePinPolicy(text)), text);
  }
}

TEST(AssignmentTest, PollJitterStaysInBounds) {
  absl::BitGen rng(std::seed_seq{7});
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (int i = 0; i < 10'000; ++i) {
    absl::Duration d = NextPollDelay(absl::Seconds(30), 0.2, rng);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_GE(lo, absl::Seconds(24));
  EXPECT_LE(hi, absl::Seconds(36));
  EXPECT_LT(lo, absl::Seconds(25));  // jitter actually spreads
  EXPECT_GT(hi, absl::Seconds(35));
  EXPECT_EQ(NextPollDelay(absl::Seconds(30), 0.0, rng), absl::Seconds(30));
}

}  // namespace
}  // namespace ringwarden

namespace ringwarden {
namespace {

TEST(AssignmentWaveTest, BroadWaveReachesOnlyItsShare) {
  ChannelCatalog c;
  c.channel = "rules.behavioral";
  c.completed = {3};
  c.rollout = ActiveRollout{"ro-1", 4, RolloutPosition{RolloutState::kBroad, std::nullopt}, 0.25};
  AgentChannelView inside{Ring::kBroad, 3, std::nullopt, 0.10};
  AgentChannelView outside{Ring::kBroad, 3, std::nullopt, 0.60};
  AgentChannelView early{Ring::kEarly, 3, std::nullopt, 0.90};
  EXPECT_EQ(ResolveAssignment(c, inside, false).version, 4);
  EXPECT_EQ(ResolveAssignment(c, outside, false).version, 3);
  EXPECT_EQ(ResolveAssignment(c, early, false).version, 4);  // earlier rings are fully reached
  // Waves spread evenly: about a quarter of 100k agents fall below 0.25.
  int below = 0;
  for (int i = 0; i < 100'000; ++i) {
    below += WavePosition("ringwarden", "agent-" + std::to_string(i)) < 0.25 ? 1 : 0;
  }
  EXPECT_NEAR(below, 25'000, 600);
}

}  // namespace
}  // namespace ringwarden

namespace ringwarden {
namespace {

TEST(AssignmentPinTest, PinToAnUnshippedVersionHoldsAtTheCompletedOneBelow) {
  ChannelCatalog c;
  c.channel = "rules.behavioral";
  c.completed = {1, 2};
  c.rollout =
      ActiveRollout{"ro-4", 4, RolloutPosition{RolloutState::kHalted, RolloutState::kCanary}};
  const PinPolicy to_halted{PinPolicy::Kind::kVersion, 4};
  const PinPolicy to_uploaded{PinPolicy::Kind::kVersion, 3};
  for (Ring r : kAllRings) {
    EXPECT_EQ(ResolveAssignment(c, AgentChannelView{r, 0, to_halted}, false).version, 2);
    EXPECT_EQ(ResolveAssignment(c, AgentChannelView{r, 2, to_uploaded}, false).version, 2);
  }
  const PinPolicy before_anything{PinPolicy::Kind::kVersion, 1};
  EXPECT_EQ(ResolveAssignment(c, AgentChannelView{Ring::kBroad, 0, before_anything}, false).version,
            1);
}

}  // namespace
}  // namespace ringwarden
