#include "common/outcomes.h"

#include <gtest/gtest.h>

namespace ringwarden {
namespace {

TEST(OutcomesTest, EveryApplyOutcomeRoundTripsThroughItsNameAndWireNumber) {
  for (ApplyOutcome o :
       {ApplyOutcome::kApplied, ApplyOutcome::kSignatureRejected, ApplyOutcome::kDigestMismatch,
        ApplyOutcome::kApplyFailed, ApplyOutcome::kLoadCheckFailed, ApplyOutcome::kReverted}) {
    EXPECT_EQ(*ParseApplyOutcome(ApplyOutcomeName(o)), o);
    EXPECT_EQ(*ApplyOutcomeFromWire(static_cast<int>(o)), o);
  }
  EXPECT_EQ(ApplyOutcomeName(ApplyOutcome::kLoadCheckFailed), "LOAD_CHECK_FAILED");
}

TEST(OutcomesTest, UnknownOrUnspecifiedOutcomesAreRefused) {
  EXPECT_EQ(ParseApplyOutcome("UNSPECIFIED").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseApplyOutcome("applied").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseApplyOutcome("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyOutcomeFromWire(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyOutcomeFromWire(7).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyOutcomeFromWire(-1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OutcomesTest, RefusalsAreTheOutcomesWhereTheVersionNeverRan) {
  EXPECT_TRUE(IsRefusal(ApplyOutcome::kSignatureRejected));
  EXPECT_TRUE(IsRefusal(ApplyOutcome::kDigestMismatch));
  EXPECT_FALSE(IsRefusal(ApplyOutcome::kApplyFailed));
  EXPECT_FALSE(IsRefusal(ApplyOutcome::kApplied));
}

TEST(OutcomesTest, CrashKindsRoundTripAndUnknownOnesAreRefused) {
  for (CrashKind k : {CrashKind::kProcessCrash, CrashKind::kUncleanShutdown}) {
    EXPECT_EQ(*ParseCrashKind(CrashKindName(k)), k);
    EXPECT_EQ(*CrashKindFromWire(static_cast<int>(k)), k);
  }
  EXPECT_EQ(CrashKindName(CrashKind::kUncleanShutdown), "UNCLEAN_SHUTDOWN");
  EXPECT_EQ(ParseCrashKind("UNSPECIFIED").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CrashKindFromWire(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CrashKindFromWire(3).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ringwarden
