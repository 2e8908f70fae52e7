#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "server/domain/assignment.h"

namespace ringwarden {
namespace {

LabelPin Pin(std::string key, std::string value, std::string channel, PinPolicy policy) {
  return LabelPin{std::move(key), std::move(value), std::move(channel), policy};
}

const PinPolicy kLatest{PinPolicy::Kind::kLatest, 0};
const PinPolicy kPrevious{PinPolicy::Kind::kPreviousCompleted, 0};
const PinPolicy kSeven{PinPolicy::Kind::kVersion, 7};

TEST(PinPrecedenceTest, AHoldingPinWinsOverLatestWhateverTheOrder) {
  const std::map<std::string, std::string> labels = {{"group", "payments"}, {"site", "eu"}};
  const std::vector<LabelPin> latest_first = {Pin("group", "payments", "rules", kLatest),
                                              Pin("site", "eu", "rules", kPrevious)};
  EXPECT_EQ(EffectivePin(latest_first, "rules", labels), kPrevious);
  const std::vector<LabelPin> holding_first = {Pin("group", "payments", "rules", kPrevious),
                                               Pin("site", "eu", "rules", kLatest)};
  EXPECT_EQ(EffectivePin(holding_first, "rules", labels), kPrevious);
}

TEST(PinPrecedenceTest, AmongHoldingPinsTheFirstInStorageOrderWins) {
  const std::map<std::string, std::string> labels = {{"group", "payments"}, {"site", "eu"}};
  const std::vector<LabelPin> pins = {Pin("group", "payments", "rules", kSeven),
                                      Pin("site", "eu", "rules", kPrevious)};
  EXPECT_EQ(EffectivePin(pins, "rules", labels), kSeven);
}

TEST(PinPrecedenceTest, OnlyPinsOfTheChannelAndTheAgentsExactLabelsApply) {
  const std::vector<LabelPin> pins = {Pin("group", "payments", "other", kPrevious),
                                      Pin("group", "payment", "rules", kPrevious),
                                      Pin("Group", "payments", "rules", kPrevious)};
  EXPECT_EQ(EffectivePin(pins, "rules", {{"group", "payments"}}), std::nullopt);
  EXPECT_EQ(
      EffectivePin({Pin("group", "payments", "rules", kLatest)}, "rules", {{"group", "payments"}}),
      kLatest);
  EXPECT_EQ(EffectivePin({}, "rules", {{"group", "payments"}}), std::nullopt);
}

TEST(PinPrecedenceTest, HoldingPinsAreTheSelectorsThatLeaveAgentsOutOfRolloutHealth) {
  const std::vector<LabelPin> pins = {
      Pin("a", "1", "rules", kLatest), Pin("b", "2", "rules", kPrevious),
      Pin("c", "3", "rules", kSeven), Pin("d", "4", "other", kPrevious)};
  const std::vector<LabelPin> holding = HoldingPins(pins, "rules");
  ASSERT_EQ(holding.size(), 2u);
  EXPECT_EQ(holding[0].label_key, "b");
  EXPECT_EQ(holding[1].label_key, "c");
  EXPECT_FALSE(HoldsBack(kLatest));
  EXPECT_TRUE(HoldsBack(kPrevious));
  EXPECT_TRUE(HoldsBack(kSeven));
}

}  // namespace
}  // namespace ringwarden
