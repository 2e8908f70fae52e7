#include "server/domain/rollout.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <tuple>

namespace ringwarden {
namespace {

using S = RolloutState;
using A = RolloutAction;

constexpr S kStates[] = {S::kPending,   S::kCanary, S::kEarly,      S::kBroad,
                         S::kCompleted, S::kHalted, S::kRolledBack, S::kCancelled};
constexpr A kActions[] = {A::kPromote, A::kHalt, A::kResume, A::kRollback, A::kCancel};

RolloutPosition At(S s, std::optional<S> halted_from = std::nullopt) {
  return RolloutPosition{s, halted_from};
}

// The whole transition table: every (state, action) pair, legal or not.
std::optional<RolloutPosition> Expected(const RolloutPosition& from, A action) {
  if (IsFinal(from.state)) {
    return std::nullopt;
  }
  switch (action) {
    case A::kPromote: {
      static const std::map<S, S> next = {{S::kPending, S::kCanary},
                                          {S::kCanary, S::kEarly},
                                          {S::kEarly, S::kBroad},
                                          {S::kBroad, S::kCompleted}};
      auto it = next.find(from.state);
      if (it == next.end()) {
        return std::nullopt;
      }
      return At(it->second);
    }
    case A::kHalt:
      if (from.state == S::kHalted) {
        return std::nullopt;
      }
      return At(S::kHalted, from.state);
    case A::kResume:
      if (from.state != S::kHalted) {
        return std::nullopt;
      }
      return At(*from.halted_from);
    case A::kRollback:
      return At(S::kRolledBack);
    case A::kCancel:
      return At(S::kCancelled);
  }
  return std::nullopt;
}

TEST(RolloutStateMachineTest, EveryTransitionLegalAndIllegal) {
  int legal = 0;
  int illegal = 0;
  for (S s : kStates) {
    std::vector<RolloutPosition> froms;
    if (s == S::kHalted) {
      for (S h : {S::kPending, S::kCanary, S::kEarly, S::kBroad}) {
        froms.push_back(At(S::kHalted, h));
      }
    } else {
      froms.push_back(At(s));
    }
    for (const RolloutPosition& from : froms) {
      for (A a : kActions) {
        auto got = ApplyRolloutAction(from, a);
        auto want = Expected(from, a);
        if (want.has_value()) {
          ASSERT_TRUE(got.ok()) << RolloutStateName(s) << " " << RolloutActionName(a) << ": "
                                << got.status();
          EXPECT_EQ(*got, *want) << RolloutStateName(s) << " " << RolloutActionName(a);
          ++legal;
        } else {
          ASSERT_FALSE(got.ok()) << RolloutStateName(s) << " " << RolloutActionName(a);
          EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
          EXPECT_NE(got.status().message().find(RolloutStateName(s)), absl::string_view::npos)
              << "message should name the state: " << got.status().message();
          ++illegal;
        }
      }
    }
  }
  EXPECT_EQ(legal + illegal, (7 + 4) * 5);
  EXPECT_GT(illegal, 15);
}

TEST(RolloutStateMachineTest, HappyPathReachesCompleted) {
  RolloutPosition p = At(S::kPending);
  for (S want : {S::kCanary, S::kEarly, S::kBroad, S::kCompleted}) {
    auto next = ApplyRolloutAction(p, A::kPromote);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->state, want);
    p = *next;
  }
}

TEST(RolloutStateMachineTest, HaltedCannotBePromotedAndResumesWhereItStopped) {
  auto halted = ApplyRolloutAction(At(S::kEarly), A::kHalt);
  ASSERT_TRUE(halted.ok());
  EXPECT_EQ(halted->state, S::kHalted);
  EXPECT_EQ(halted->halted_from, S::kEarly);
  auto promote = ApplyRolloutAction(*halted, A::kPromote);
  EXPECT_EQ(promote.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(promote.status().message().find("resume"), absl::string_view::npos);
  auto resumed = ApplyRolloutAction(*halted, A::kResume);
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(*resumed, At(S::kEarly));
}

TEST(RolloutStateMachineTest, ReachesRing) {
  EXPECT_FALSE(ReachesRing(At(S::kPending), Ring::kCanary));
  EXPECT_TRUE(ReachesRing(At(S::kCanary), Ring::kCanary));
  EXPECT_FALSE(ReachesRing(At(S::kCanary), Ring::kEarly));
  EXPECT_TRUE(ReachesRing(At(S::kEarly), Ring::kCanary));
  EXPECT_TRUE(ReachesRing(At(S::kEarly), Ring::kEarly));
  EXPECT_FALSE(ReachesRing(At(S::kEarly), Ring::kBroad));
  for (Ring r : kAllRings) {
    EXPECT_TRUE(ReachesRing(At(S::kBroad), r));
    EXPECT_FALSE(ReachesRing(At(S::kHalted, S::kBroad), r));
    EXPECT_FALSE(ReachesRing(At(S::kRolledBack), r));
    EXPECT_FALSE(ReachesRing(At(S::kCompleted), r));
  }
}

TEST(RolloutStateMachineTest, StateNamesRoundTrip) {
  for (S s : kStates) {
    auto parsed = ParseRolloutState(RolloutStateName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(ParseRolloutState("canary").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ringwarden

namespace ringwarden {
namespace {

TEST(NextPromotionTest, WalksBroadWavesThenCompletes) {
  const std::vector<double> waves = {0.1, 0.5, 1.0};
  auto step = NextPromotion({RolloutState::kEarly, std::nullopt}, 0, waves);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->to.state, RolloutState::kBroad);
  EXPECT_EQ(step->broad_wave, 0);
  EXPECT_DOUBLE_EQ(step->broad_fraction, 0.1);
  step = NextPromotion(step->to, step->broad_wave, waves);
  EXPECT_TRUE(step->next_wave);
  EXPECT_DOUBLE_EQ(step->broad_fraction, 0.5);
  step = NextPromotion(step->to, step->broad_wave, waves);
  EXPECT_DOUBLE_EQ(step->broad_fraction, 1.0);
  step = NextPromotion(step->to, step->broad_wave, waves);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->to.state, RolloutState::kCompleted);
  EXPECT_FALSE(step->next_wave);
}

TEST(NextPromotionTest, NoWavesMeansOneFullWave) {
  auto step = NextPromotion({RolloutState::kEarly, std::nullopt}, 0, {});
  ASSERT_TRUE(step.ok());
  EXPECT_DOUBLE_EQ(step->broad_fraction, 1.0);
  step = NextPromotion(step->to, 0, {});
  EXPECT_EQ(step->to.state, RolloutState::kCompleted);
}

TEST(NextPromotionTest, HaltedAndFinalRefuse) {
  EXPECT_EQ(
      NextPromotion({RolloutState::kHalted, RolloutState::kBroad}, 0, {0.5, 1.0}).status().code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(NextPromotion({RolloutState::kCompleted, std::nullopt}, 0, {}).ok());
}

}  // namespace
}  // namespace ringwarden
