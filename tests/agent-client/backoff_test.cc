#include "agent-client/backoff.h"

#include "agent-client/load_check.h"
#include "gtest/gtest.h"

namespace ringwarden::agent {
namespace {

// FixedRandom always returns the same bits.
class FixedRandom final : public RandomSource {
 public:
  explicit FixedRandom(uint64_t bits) : bits_(bits) {}
  uint64_t Next64() override { return bits_; }

 private:
  uint64_t bits_;
};

TEST(ExponentialBackoffTest, GrowsAndCapsWithoutJitterAtZeroDraw) {
  FixedRandom zero(0);
  ExponentialBackoff backoff({absl::Seconds(1), absl::Seconds(10), 2.0, 0.5}, zero);
  EXPECT_EQ(backoff.Delay(1), absl::Seconds(1));
  EXPECT_EQ(backoff.Delay(2), absl::Seconds(2));
  EXPECT_EQ(backoff.Delay(4), absl::Seconds(8));
  EXPECT_EQ(backoff.Delay(5), absl::Seconds(10));
  EXPECT_EQ(backoff.Delay(1000), absl::Seconds(10));
  EXPECT_EQ(backoff.Delay(0), absl::Seconds(1));
}

TEST(ExponentialBackoffTest, JitterTakesUpToTheConfiguredFraction) {
  FixedRandom max(~uint64_t{0});
  ExponentialBackoff backoff({absl::Seconds(1), absl::Seconds(10), 2.0, 0.5}, max);
  const absl::Duration d = backoff.Delay(3);  // 4s, minus up to half
  EXPECT_GE(d, absl::Seconds(2));
  EXPECT_LT(d, absl::Milliseconds(2001));
}

TEST(SeededRandomTest, DeterministicPerSeed) {
  SeededRandom a(42);
  SeededRandom b(42);
  SeededRandom c(43);
  const uint64_t first = a.Next64();
  EXPECT_EQ(first, b.Next64());
  EXPECT_NE(first, c.Next64());
  for (int i = 0; i < 1000; ++i) {
    const double u = a.Uniform01();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(IsRetryableTest, OnlyTransientCodes) {
  EXPECT_TRUE(IsRetryable(absl::UnavailableError("")));
  EXPECT_TRUE(IsRetryable(absl::ResourceExhaustedError("")));
  EXPECT_TRUE(IsRetryable(absl::DeadlineExceededError("")));
  EXPECT_FALSE(IsRetryable(absl::PermissionDeniedError("")));
  EXPECT_FALSE(IsRetryable(absl::FailedPreconditionError("")));
  EXPECT_FALSE(IsRetryable(absl::OkStatus()));
}

TEST(CommandLoadCheckerTest, QuotesEverySubstitution) {
  CommandLoadChecker check("validate --channel {channel} {path}");
  EXPECT_EQ(check.Render({"rules.x", 3, "/var/lib/it's here/current", ""}),
            "validate --channel 'rules.x' '/var/lib/it'\\''s here/current'");
  CommandLoadChecker append("validate");
  EXPECT_EQ(append.Render({"rules.x", 3, "/p; rm -rf /", ""}), "validate '/p; rm -rf /'");
  EXPECT_EQ(ShellQuote("$(x)"), "'$(x)'");
}

TEST(CommandLoadCheckerTest, RunsTheCommandAndReportsExitStatus) {
  LoadCheckRequest request{"rules.x", 3, "/etc/hostname", ""};
  EXPECT_TRUE(CommandLoadChecker("test -e {path}").Check(request).ok());
  absl::Status failed = CommandLoadChecker("exit 3 #").Check(request);
  EXPECT_EQ(failed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(failed.message().find("exited with status 3"), std::string::npos);
  absl::Status slow = CommandLoadChecker("sleep 5 #", absl::Milliseconds(100)).Check(request);
  EXPECT_EQ(slow.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CommandLoadChecker("true").Check({"rules.x", 3, "", ""}).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ringwarden::agent
