// The two-person rule: which steps need a second person, and who may decide.
#include "server/domain/approval.h"

#include <gtest/gtest.h>

#include <vector>

namespace ringwarden {
namespace {

const TwoPersonRule kOn{true, absl::Hours(24)};
const TwoPersonRule kOff{false, absl::Hours(24)};

RolloutPosition At(RolloutState state) { return RolloutPosition{state, std::nullopt}; }

TEST(TwoPersonRuleTest, EnteringBroadFromAnyOtherStateNeedsApproval) {
  for (RolloutState from : kAllRolloutStates) {
    for (RolloutState to : kAllRolloutStates) {
      const std::vector<GatedStep> steps =
          StepsNeedingApproval(kOn, StepAsk::Rollout(At(from), At(to), /*force=*/false));
      if (to == RolloutState::kBroad && from != RolloutState::kBroad) {
        EXPECT_EQ(steps, std::vector<GatedStep>{GatedStep::kEnterBroad})
            << RolloutStateName(from) << " -> " << RolloutStateName(to);
      } else {
        EXPECT_TRUE(steps.empty()) << RolloutStateName(from) << " -> " << RolloutStateName(to);
      }
      EXPECT_TRUE(
          StepsNeedingApproval(kOff, StepAsk::Rollout(At(from), At(to), /*force=*/false)).empty());
    }
  }
}

TEST(TwoPersonRuleTest, ResumingIntoBroadEntersBroadAgain) {
  const RolloutPosition halted{RolloutState::kHalted, RolloutState::kBroad};
  EXPECT_EQ(StepsNeedingApproval(kOn, StepAsk::Rollout(halted, At(RolloutState::kBroad), false)),
            std::vector<GatedStep>{GatedStep::kEnterBroad});
}

TEST(TwoPersonRuleTest, AWaveInsideBroadOrCompletionIsNotGated) {
  EXPECT_TRUE(StepsNeedingApproval(
                  kOn, StepAsk::Rollout(At(RolloutState::kBroad), At(RolloutState::kBroad), false))
                  .empty());
  EXPECT_TRUE(StepsNeedingApproval(kOn, StepAsk::Rollout(At(RolloutState::kBroad),
                                                         At(RolloutState::kCompleted), false))
                  .empty());
}

TEST(TwoPersonRuleTest, AnyForceNeedsApproval) {
  EXPECT_EQ(StepsNeedingApproval(
                kOn, StepAsk::Rollout(At(RolloutState::kCanary), At(RolloutState::kEarly), true)),
            std::vector<GatedStep>{GatedStep::kForce});
  EXPECT_EQ(StepsNeedingApproval(
                kOn, StepAsk::Rollout(At(RolloutState::kEarly), At(RolloutState::kBroad), true)),
            (std::vector<GatedStep>{GatedStep::kEnterBroad, GatedStep::kForce}));
  EXPECT_EQ(StepsNeedingApproval(
                kOn, StepAsk::Rollout(At(RolloutState::kBroad), At(RolloutState::kBroad), true)),
            std::vector<GatedStep>{GatedStep::kForce});
  EXPECT_TRUE(StepsNeedingApproval(
                  kOff, StepAsk::Rollout(At(RolloutState::kEarly), At(RolloutState::kBroad), true))
                  .empty());
}

TEST(TwoPersonRuleTest, PinsBelowTheNewestCompletedVersionNeedApproval) {
  struct Case {
    PinPolicy pin;
    int64_t newest_completed;
    bool gated;
  };
  const std::vector<Case> cases = {
      {{PinPolicy::Kind::kLatest, 0}, 5, false},
      {{PinPolicy::Kind::kLatest, 0}, 0, false},
      {{PinPolicy::Kind::kPreviousCompleted, 0}, 5, true},
      {{PinPolicy::Kind::kPreviousCompleted, 0}, 0, true},  // n-1 is a downgrade by definition
      {{PinPolicy::Kind::kVersion, 4}, 5, true},
      {{PinPolicy::Kind::kVersion, 1}, 5, true},
      {{PinPolicy::Kind::kVersion, 5}, 5, false},  // holds at the newest: not older
      {{PinPolicy::Kind::kVersion, 6}, 5, false},
      {{PinPolicy::Kind::kVersion, 3}, 0, false},  // nothing completed yet
  };
  for (const Case& c : cases) {
    const std::vector<GatedStep> on =
        StepsNeedingApproval(kOn, StepAsk::Pin(c.pin, c.newest_completed));
    EXPECT_EQ(on,
              c.gated ? std::vector<GatedStep>{GatedStep::kDowngradePin} : std::vector<GatedStep>{})
        << PinPolicyText(c.pin) << " with newest completed v" << c.newest_completed;
    EXPECT_TRUE(StepsNeedingApproval(kOff, StepAsk::Pin(c.pin, c.newest_completed)).empty());
  }
}

TEST(TwoPersonRuleTest, FloorAndPolicyChangesNeedApprovalOnlyWhenTheRuleIsOn) {
  EXPECT_EQ(StepsNeedingApproval(kOn, StepAsk::Floor()),
            std::vector<GatedStep>{GatedStep::kFloorChange});
  EXPECT_EQ(StepsNeedingApproval(kOn, StepAsk::Policy()),
            std::vector<GatedStep>{GatedStep::kPolicyChange});
  EXPECT_TRUE(StepsNeedingApproval(kOff, StepAsk::Floor()).empty());
  EXPECT_TRUE(StepsNeedingApproval(kOff, StepAsk::Policy()).empty());
}

TEST(TwoPersonRuleTest, TheApprovalTtlIsBounded) {
  EXPECT_TRUE((TwoPersonRule{true, kMinApprovalTtl}).Validate().ok());
  EXPECT_TRUE((TwoPersonRule{true, kMaxApprovalTtl}).Validate().ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      (TwoPersonRule{true, kMinApprovalTtl - absl::Seconds(1)}).Validate()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      (TwoPersonRule{true, kMaxApprovalTtl + absl::Seconds(1)}).Validate()));
  EXPECT_TRUE(absl::IsInvalidArgument((TwoPersonRule{false, absl::ZeroDuration()}).Validate()));
}

TEST(TwoPersonRuleTest, NamesRoundTrip) {
  for (GatedStep s : kAllGatedSteps) {
    EXPECT_EQ(*ParseGatedStep(GatedStepName(s)), s);
  }
  for (ApprovalKind k : {ApprovalKind::kRolloutAction, ApprovalKind::kPin, ApprovalKind::kFloor,
                         ApprovalKind::kPolicy}) {
    EXPECT_EQ(*ParseApprovalKind(ApprovalKindName(k)), k);
  }
  for (ApprovalState s : {ApprovalState::kPending, ApprovalState::kApproved,
                          ApprovalState::kRejected, ApprovalState::kExpired}) {
    EXPECT_EQ(*ParseApprovalState(ApprovalStateName(s)), s);
  }
  EXPECT_FALSE(ParseGatedStep("Enter_Broad").ok());
  EXPECT_FALSE(ParseApprovalKind("").ok());
  EXPECT_FALSE(ParseApprovalState("done").ok());
}

class DecideTest : public ::testing::Test {
 protected:
  const absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  ApprovalTicket ticket_{"ap-0000abcd", "alice", ApprovalState::kPending, now_ + absl::Hours(1),
                         ""};
};

TEST_F(DecideTest, ADifferentPrincipalMayApprove) {
  EXPECT_TRUE(CheckCanDecide(ticket_, "bob", /*approve=*/true, now_).ok());
}

TEST_F(DecideTest, TheRequesterCannotApproveTheirOwnRequest) {
  absl::Status s = CheckCanDecide(ticket_, "alice", /*approve=*/true, now_);
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_NE(s.message().find("two-person rule"), std::string::npos) << s;
  EXPECT_NE(s.message().find("ap-0000abcd"), std::string::npos) << s;
}

TEST_F(DecideTest, TheRequesterMayWithdrawTheirOwnRequest) {
  EXPECT_TRUE(CheckCanDecide(ticket_, "alice", /*approve=*/false, now_).ok());
}

TEST_F(DecideTest, AnExpiredRequestCannotBeDecided) {
  for (bool approve : {true, false}) {
    absl::Status s = CheckCanDecide(ticket_, "bob", approve, now_ + absl::Hours(1));
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_NE(s.message().find("expired"), std::string::npos) << s;
  }
  EXPECT_EQ(EffectiveApprovalState(ApprovalState::kPending, ticket_.expires_at, now_),
            ApprovalState::kPending);
  EXPECT_EQ(EffectiveApprovalState(ApprovalState::kPending, ticket_.expires_at, ticket_.expires_at),
            ApprovalState::kExpired);
  EXPECT_EQ(
      EffectiveApprovalState(ApprovalState::kApproved, ticket_.expires_at, now_ + absl::Hours(2)),
      ApprovalState::kApproved);
}

TEST_F(DecideTest, ADecidedRequestCannotBeDecidedAgain) {
  for (ApprovalState state :
       {ApprovalState::kApproved, ApprovalState::kRejected, ApprovalState::kExpired}) {
    ticket_.state = state;
    ticket_.decided_by = "bob";
    absl::Status s = CheckCanDecide(ticket_, "carol", /*approve=*/true, now_);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_NE(s.message().find(ApprovalStateName(state)), std::string::npos) << s;
  }
}

TEST(ApprovalIdTest, AcceptsOnlyServerIds) {
  EXPECT_TRUE(ValidateApprovalId("ap-0123abcd").ok());
  for (const char* bad : {"", "ap-", "ap-0123abc", "ap-0123abcde", "AP-0123abcd", "ap-0123ABCD",
                          "ro-0123abcd", "ap-0123abc\n", "ap-../../x", "ap-0123abcg"}) {
    absl::Status s = ValidateApprovalId(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << bad;
    EXPECT_NE(s.message().find("ap-1a2b3c4d"), std::string::npos) << s;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateApprovalId(std::string(100000, 'a'))));
}

}  // namespace
}  // namespace ringwarden
