#include "server/domain/sprt.h"

#include <cmath>

namespace ringwarden {
namespace {

SprtOutcome Classify(double llr, SprtBounds bounds) {
  if (llr >= bounds.upper) {
    return SprtOutcome::kRejectH0;
  }
  if (llr <= bounds.lower) {
    return SprtOutcome::kAcceptH0;
  }
  return SprtOutcome::kContinue;
}

}  // namespace

absl::string_view SprtOutcomeName(SprtOutcome outcome) {
  switch (outcome) {
    case SprtOutcome::kContinue:
      return "continue";
    case SprtOutcome::kAcceptH0:
      return "accept_h0";
    case SprtOutcome::kRejectH0:
      return "reject_h0";
  }
  return "unknown";
}

SprtBounds WaldBounds(double alpha, double beta) {
  SprtBounds bounds;
  bounds.lower = std::log(beta / (1.0 - alpha));
  bounds.upper = std::log((1.0 - beta) / alpha);
  return bounds;
}

double BernoulliLlr(BernoulliCounts counts, double p0, double p1) {
  const double failures = static_cast<double>(counts.failures);
  const double successes = static_cast<double>(counts.trials - counts.failures);
  // log1p keeps the success term exact for the small rates that matter here.
  return failures * std::log(p1 / p0) + successes * (std::log1p(-p1) - std::log1p(-p0));
}

SprtResult BernoulliSprt(BernoulliCounts counts, double p0, double p1, double alpha, double beta) {
  SprtResult result;
  result.h0 = p0;
  result.h1 = p1;
  result.bounds = WaldBounds(alpha, beta);
  result.llr = BernoulliLlr(counts, p0, p1);
  result.outcome = Classify(result.llr, result.bounds);
  return result;
}

SprtResult ConditionalPoissonSprt(PoissonCounts treated, PoissonCounts control, double rate_ratio,
                                  double alpha, double beta) {
  SprtResult result;
  const double et = treated.exposure;
  const double ec = control.exposure;
  result.h0 = et / (et + ec);
  result.h1 = rate_ratio * et / (rate_ratio * et + ec);
  result.bounds = WaldBounds(alpha, beta);
  result.llr = BernoulliLlr(BernoulliCounts{treated.events + control.events, treated.events},
                            result.h0, result.h1);
  result.outcome = Classify(result.llr, result.bounds);
  return result;
}

}  // namespace ringwarden
