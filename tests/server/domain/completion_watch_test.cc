#include "server/domain/completion_watch.h"

#include <gtest/gtest.h>

namespace ringwarden {
namespace {

const absl::Time kLastApply = absl::FromUnixSeconds(1'800'000'000);  // 2027-01-15 08:00:00 UTC

Decision Promote() {
  Decision d;
  d.kind = Decision::Kind::kPromote;
  d.reason = Decision::Reason::kGatePassed;
  d.gate_passed = true;
  return d;
}

TEST(CompletionWatchTest, APromotionWaitsUntilTheLastHostHasRunTheVersionForTheWatch) {
  Decision d = Promote();
  EXPECT_TRUE(
      HoldForCompletionWatch(absl::Hours(1), kLastApply, kLastApply + absl::Minutes(59), d));
  EXPECT_EQ(d.kind, Decision::Kind::kWait);
  EXPECT_EQ(d.reason, Decision::Reason::kGatePassed);
  EXPECT_TRUE(d.gate_passed);
  ASSERT_EQ(d.evidence.waiting_for.size(), 1u);
  EXPECT_EQ(d.evidence.waiting_for[0],
            "the post-completion watch: every ring is judged until 2027-01-15 09:00:00 UTC (1h "
            "after the last host took the version)");
  EXPECT_EQ(d.summary, "wait: waiting for " + d.evidence.waiting_for[0]);

  Decision done = Promote();
  EXPECT_FALSE(
      HoldForCompletionWatch(absl::Hours(1), kLastApply, kLastApply + absl::Hours(1), done));
  EXPECT_EQ(done.kind, Decision::Kind::kPromote);
  EXPECT_TRUE(done.evidence.waiting_for.empty());
}

TEST(CompletionWatchTest, HaltsWaitsZeroWatchesAndUntakenVersionsPassUntouched) {
  for (Decision::Kind kind :
       {Decision::Kind::kHalt, Decision::Kind::kRollback, Decision::Kind::kWait}) {
    Decision d;
    d.kind = kind;
    EXPECT_FALSE(HoldForCompletionWatch(absl::Hours(1), kLastApply, kLastApply, d));
    EXPECT_EQ(d.kind, kind);
    EXPECT_TRUE(d.evidence.waiting_for.empty());
  }
  Decision zero = Promote();
  EXPECT_FALSE(HoldForCompletionWatch(absl::ZeroDuration(), kLastApply, kLastApply, zero));
  EXPECT_EQ(zero.kind, Decision::Kind::kPromote);
  Decision nobody = Promote();
  EXPECT_FALSE(HoldForCompletionWatch(absl::Hours(1), std::nullopt, kLastApply, nobody));
  EXPECT_EQ(nobody.kind, Decision::Kind::kPromote);
}

TEST(CompletionWatchTest, ThePolicyBoundsTheWatch) {
  RolloutPolicy p = DefaultRolloutPolicy();
  EXPECT_EQ(p.watch_after_completion, absl::Hours(1));
  p.watch_after_completion = absl::Hours(24 * 7);
  EXPECT_TRUE(p.Validate().ok());
  p.watch_after_completion = absl::Hours(24 * 7) + absl::Seconds(1);
  EXPECT_EQ(std::string(p.Validate().message()),
            "watch_after_completion_seconds must be in [0, 7 days], got 168h1s");
  p.watch_after_completion = -absl::Seconds(1);
  EXPECT_EQ(std::string(p.Validate().message()),
            "watch_after_completion_seconds must be in [0, 7 days], got -1s");
}

}  // namespace
}  // namespace ringwarden
