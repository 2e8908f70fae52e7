// sprt.h: Wald's sequential probability ratio tests (SPRT) for failure rates. Two
// forms: one sample of agents against a fixed failure probability, and treated against control
// failure rates per unit of exposure (conditional on the total number of failures).
//
//   SprtResult r = BernoulliSprt(BernoulliCounts{120, 9}, /*p0=*/0.02, /*p1=*/0.06, 0.05, 0.10);
//   if (r.outcome == SprtOutcome::kRejectH0) { /* regression */ }
//
// Pure functions of their arguments; thread-safe.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace ringwarden {

// SprtOutcome is where the log-likelihood ratio stands against Wald's two boundaries.
enum class SprtOutcome {
  kContinue,  // between the boundaries: keep observing
  kAcceptH0,  // at or below the lower boundary: no regression
  kRejectH0,  // at or above the upper boundary: regression
};

// SprtOutcomeName returns "continue", "accept_h0" or "reject_h0".
absl::string_view SprtOutcomeName(SprtOutcome outcome);

// SprtBounds are Wald's boundaries on the log-likelihood ratio.
struct SprtBounds {
  double lower = 0;  // ln(beta / (1 - alpha))
  double upper = 0;  // ln((1 - beta) / alpha)
};

// WaldBounds returns the boundaries for false-rejection rate `alpha` and false-acceptance rate
// `beta`, both in (0, 1) with alpha + beta < 1. exp(LLR) is a non-negative martingale under H0,
// so P(LLR ever reaches upper) <= alpha / (1 - beta) however often it is looked at (Ville's
// inequality); overshoot and finite populations keep the real rate below alpha.
SprtBounds WaldBounds(double alpha, double beta);

// SprtResult is one look at an SPRT.
struct SprtResult {
  double h0 = 0;   // the parameter under H0 (see each test)
  double h1 = 0;   // the parameter under H1
  double llr = 0;  // ln(L(H1) / L(H0))
  SprtBounds bounds;
  SprtOutcome outcome = SprtOutcome::kContinue;
};

// BernoulliCounts is a sample of independent trials, `failures` of which failed.
struct BernoulliCounts {
  int64_t trials = 0;
  int64_t failures = 0;
};

// BernoulliLlr returns ln(L(p1) / L(p0)) for `counts`, with 0 < p0 < p1 < 1.
double BernoulliLlr(BernoulliCounts counts, double p0, double p1);

// BernoulliSprt tests H0: p = p0 against H1: p = p1 (0 < p0 < p1 < 1); h0 = p0, h1 = p1.
SprtResult BernoulliSprt(BernoulliCounts counts, double p0, double p1, double alpha, double beta);

// PoissonCounts is a number of events over an exposure (agent-hours, say; any unit shared by
// the two groups compared).
struct PoissonCounts {
  int64_t events = 0;
  double exposure = 0;
};

// ConditionalPoissonSprt tests H0: treated rate = control rate against H1: treated rate =
// `rate_ratio` (> 1) times the control rate, without knowing the control rate. Given the total
// number of events, each one is treated with probability pi = r*Et / (r*Et + Ec), so the test is
// a Bernoulli SPRT over events with h0 = pi(r = 1) = Et / (Et + Ec) and h1 = pi(rate_ratio): the
// control's own noise is in the likelihood instead of being plugged in as a known rate. Both
// exposures must be > 0.
SprtResult ConditionalPoissonSprt(PoissonCounts treated, PoissonCounts control, double rate_ratio,
                                  double alpha, double beta);

}  // namespace ringwarden
