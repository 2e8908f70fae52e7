#include "server/domain/sprt.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>

#include "gtest/gtest.h"

namespace ringwarden {
namespace {

// Unit draws uniformly from [0, 1) straight from the engine: std::*_distribution differ between
// standard libraries, and a seeded run should be the same run everywhere.
double Unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

TEST(WaldBoundsTest, MatchWaldsFormulas) {
  const SprtBounds b = WaldBounds(0.05, 0.10);
  EXPECT_NEAR(b.upper, std::log(18.0), 1e-12);         // 2.890
  EXPECT_NEAR(b.lower, std::log(0.10 / 0.95), 1e-12);  // -2.251
}

TEST(BernoulliLlrTest, MatchesHandComputation) {
  // 3 failures of 100 against 1% vs 3%: 3 ln 3 + 97 ln(0.97 / 0.99).
  EXPECT_NEAR(BernoulliLlr(BernoulliCounts{100, 3}, 0.01, 0.03),
              3 * std::log(3.0) + 97 * std::log(0.97 / 0.99), 1e-9);
  EXPECT_EQ(BernoulliLlr(BernoulliCounts{0, 0}, 0.01, 0.03), 0.0);
}

TEST(BernoulliSprtTest, ClassifiesAgainstBothBounds) {
  EXPECT_EQ(BernoulliSprt(BernoulliCounts{3, 3}, 0.01, 0.03, 0.05, 0.10).outcome,
            SprtOutcome::kRejectH0);  // 3 ln 3 = 3.30 >= 2.89
  EXPECT_EQ(BernoulliSprt(BernoulliCounts{200, 0}, 0.01, 0.03, 0.05, 0.10).outcome,
            SprtOutcome::kAcceptH0);  // 200 x -0.0204 = -4.08 <= -2.25
  const SprtResult r = BernoulliSprt(BernoulliCounts{50, 1}, 0.01, 0.03, 0.05, 0.10);
  EXPECT_EQ(r.outcome, SprtOutcome::kContinue);
  EXPECT_EQ(r.h0, 0.01);
  EXPECT_EQ(r.h1, 0.03);
}

TEST(ConditionalPoissonSprtTest, SharesAndLlrMatchHandComputation) {
  // Treated 10 failures over 100 agent-hours, control 10 over 900, ratio 3:
  // h0 = 100 / 1000 = 0.1, h1 = 300 / 1200 = 0.25; LLR = 10 ln 2.5 + 10 ln(0.75 / 0.9).
  const SprtResult r =
      ConditionalPoissonSprt(PoissonCounts{10, 100}, PoissonCounts{10, 900}, 3.0, 0.05, 0.10);
  EXPECT_NEAR(r.h0, 0.1, 1e-12);
  EXPECT_NEAR(r.h1, 0.25, 1e-12);
  EXPECT_NEAR(r.llr, 10 * std::log(2.5) + 10 * std::log(0.75 / 0.9), 1e-9);
  EXPECT_EQ(r.outcome, SprtOutcome::kRejectH0);
}

TEST(ConditionalPoissonSprtTest, ControlFailuresPullTowardsHealthy) {
  const SprtResult r =
      ConditionalPoissonSprt(PoissonCounts{1, 100}, PoissonCounts{30, 900}, 3.0, 0.05, 0.10);
  EXPECT_LT(r.llr, 0);
  EXPECT_EQ(r.outcome, SprtOutcome::kAcceptH0);
}

// Under H0, looking after every single trial, the SPRT rejects at most alpha of the time.
TEST(BernoulliSprtTest, FalseRejectionRateUnderContinuousMonitoringIsAtMostAlpha) {
  constexpr int kRuns = 2000;
  constexpr int kMaxTrials = 3000;
  constexpr double kAlpha = 0.05;
  int rejections = 0;
  for (int run = 0; run < kRuns; ++run) {
    std::mt19937_64 rng(7000 + run);
    BernoulliCounts counts;
    for (int i = 0; i < kMaxTrials; ++i) {
      ++counts.trials;
      counts.failures += Unit(rng) < 0.02 ? 1 : 0;
      const SprtOutcome o = BernoulliSprt(counts, 0.02, 0.06, kAlpha, 0.10).outcome;
      if (o == SprtOutcome::kRejectH0) {
        ++rejections;
      }
      if (o != SprtOutcome::kContinue) {
        break;
      }
    }
  }
  const double rate = static_cast<double>(rejections) / kRuns;
  std::printf("Bernoulli SPRT false rejections: %.4f (alpha %.2f)\n", rate, kAlpha);
  EXPECT_LE(rate, kAlpha);
}

// Under H0 (same hazard in both groups, an unknown one), looking after every event, the
// conditional test rejects at most alpha of the time.
TEST(ConditionalPoissonSprtTest, FalseRejectionRateUnderContinuousMonitoringIsAtMostAlpha) {
  constexpr int kRuns = 2000;
  constexpr double kAlpha = 0.05;
  int rejections = 0;
  for (int run = 0; run < kRuns; ++run) {
    std::mt19937_64 rng(9000 + run);
    // 200 treated and 1000 control agents, hazard per hour drawn per run.
    const double hazard = 0.005 + 0.045 * Unit(rng);
    const double treated_agents = 200;
    const double control_agents = 1000;
    const double event_rate = hazard * (treated_agents + control_agents);
    PoissonCounts treated;
    PoissonCounts control;
    double hours = 0;
    for (int events = 0; events < 2000; ++events) {
      hours += -std::log1p(-Unit(rng)) / event_rate;
      treated.exposure = treated_agents * hours;
      control.exposure = control_agents * hours;
      const bool in_treated = Unit(rng) < treated_agents / (treated_agents + control_agents);
      (in_treated ? treated : control).events += 1;
      const SprtOutcome o = ConditionalPoissonSprt(treated, control, 3.0, kAlpha, 0.10).outcome;
      if (o == SprtOutcome::kRejectH0) {
        ++rejections;
      }
      if (o != SprtOutcome::kContinue) {
        break;
      }
    }
  }
  const double rate = static_cast<double>(rejections) / kRuns;
  std::printf("conditional Poisson SPRT false rejections: %.4f (alpha %.2f)\n", rate, kAlpha);
  EXPECT_LE(rate, kAlpha);
}

TEST(SprtOutcomeNameTest, Names) {
  EXPECT_EQ(SprtOutcomeName(SprtOutcome::kContinue), "continue");
  EXPECT_EQ(SprtOutcomeName(SprtOutcome::kAcceptH0), "accept_h0");
  EXPECT_EQ(SprtOutcomeName(SprtOutcome::kRejectH0), "reject_h0");
}

}  // namespace
}  // namespace ringwarden
