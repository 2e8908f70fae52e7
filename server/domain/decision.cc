#include "server/domain/decision.h"

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ringwarden {
namespace {

// How far above the control group's observed failure rate H0 is placed, in standard errors of
// its Poisson count (z = 1: about an 84% one-sided upper bound).
//
// Why an upper bound at all: the SPRT's false-halt guarantee holds for the true background rate.
// Its log-likelihood ratio falls as p0 rises (with p1 = ratio * p0), so any p0 at or above the
// truth keeps the guarantee, while a p0 below it lets background noise look like a regression;
// a plug-in estimate is below the truth half the time. Why not a wider bound: every step up
// weakens the test against real regressions (a 95% bound cost about 20 points of power against
// a 3x regression in the simulations of decision_test.cc), and the finite canary already keeps
// the measured false-halt rate well under alpha at z = 1 (see FalseHaltRateUnderManyLooks).
constexpr double kControlBoundZ = 1.0;

// H0 is capped so that H1 (capped at 0.99) stays above it and the logs stay finite.
constexpr double kMaxNullRate = 0.9;
constexpr double kMaxAlternativeRate = 0.99;

// With fewer agents than the SPRT needs to decide, the operator's gate (bake time, healthy
// agents) is where the test is truncated; it then accepts H0 only if the data favour it.
constexpr double kTruncatedAcceptLlr = -1e9;

std::string Percent(double rate) { return absl::StrFormat("%.1f%%", 100.0 * rate); }

std::string RoundedDuration(absl::Duration d) {
  // Rounded up so that "0s left" never appears while time is left.
  return absl::FormatDuration(absl::Ceil(d, absl::Seconds(1)));
}

Decision::Kind ActionKind(AutoAction action) {
  return action == AutoAction::kRollback ? Decision::Kind::kRollback : Decision::Kind::kHalt;
}

// FailureBreakdown lists the non-zero failure categories, e.g. "9 crashed, 3 silent".
std::string FailureBreakdown(const RingHealth& h) {
  std::vector<std::string> parts;
  if (h.crashed > 0) {
    parts.push_back(absl::StrCat(h.crashed, " crashed"));
  }
  if (h.silent > 0) {
    parts.push_back(absl::StrCat(h.silent, " silent"));
  }
  if (h.reverted > 0) {
    parts.push_back(absl::StrCat(h.reverted, " reverted"));
  }
  if (h.apply_failed > 0) {
    parts.push_back(absl::StrCat(h.apply_failed, " failed to apply"));
  }
  return absl::StrJoin(parts, ", ");
}

std::string SprtClause(const Evidence& e) {
  const std::string hypotheses =
      absl::StrCat("H0 ", Percent(e.null_rate.p0), " vs H1 ", Percent(e.null_rate.p1));
  switch (e.sprt_outcome) {
    case SprtOutcome::kRejectH0:
      return absl::StrFormat("sequential test crossed the halt bound (LLR %.2f >= %.2f; %s)", e.llr,
                             e.halt_bound, hypotheses);
    case SprtOutcome::kAcceptH0:
      return absl::StrFormat("sequential test accepted the update (LLR %.2f <= %.2f; %s)", e.llr,
                             e.accept_bound, hypotheses);
    case SprtOutcome::kContinue:
      break;
  }
  return absl::StrFormat("sequential test undecided (LLR %.2f between %.2f and %.2f; %s)", e.llr,
                         e.accept_bound, e.halt_bound, hypotheses);
}

std::string ShortSummary(const Decision& d) {
  const Evidence& e = d.evidence;
  const std::string kind(DecisionKindName(d.kind));
  switch (d.reason) {
    case Decision::Reason::kCatastrophic:
      return absl::StrCat(kind, ": catastrophic failure (", e.health.failed, " of ",
                          e.health.attempted, " agents failed)");
    case Decision::Reason::kRegression:
      return absl::StrCat(kind, ": sequential test crossed the halt bound");
    case Decision::Reason::kGatePassed:
      return d.kind == Decision::Kind::kPromote
                 ? absl::StrCat(kind, ": gate passed")
                 : absl::StrCat(kind, ": gate passed, waiting for manual promotion");
    case Decision::Reason::kGatePending:
      break;
  }
  return absl::StrCat(kind, ": waiting for ", absl::StrJoin(e.waiting_for, "; "));
}

}  // namespace

NullRate EstimateNullRate(const RingGatePolicy& policy, const RingHealth& health) {
  NullRate rate;
  // The control group is compared per agent-hour, not per agent: its agents are watched over the
  // whole window while treated agents joined as they applied, and the control may shrink as its
  // agents apply. Its failure rate per hour of exposure, times the mean time a treated agent with
  // a known outcome has been watched, is the share of treated agents expected to have failed by
  // now had the version changed nothing (constant hazard; using the mean time overestimates it
  // slightly, by Jensen's inequality, which errs toward not halting).
  const int64_t known_applied = health.applied - health.pending;
  const double control_hours = absl::ToDoubleHours(health.control_exposure);
  const double observed_hours = absl::ToDoubleHours(health.observed);
  if (health.control_agents > 0 && control_hours > 0 && known_applied > 0 && observed_hours > 0) {
    const double hazard_bound =
        PoissonUpperBound(health.control_failed, kControlBoundZ) / control_hours;
    const double mean_watch_hours = observed_hours / static_cast<double>(known_applied);
    rate.from_control = true;
    rate.control_bound = -std::expm1(-hazard_bound * mean_watch_hours);
  }
  rate.p0 = std::min(std::max(policy.baseline_failure_rate, rate.control_bound), kMaxNullRate);
  rate.p1 = std::min(policy.regression_ratio * rate.p0, kMaxAlternativeRate);
  return rate;
}

absl::string_view DecisionKindName(Decision::Kind kind) {
  switch (kind) {
    case Decision::Kind::kPromote:
      return "promote";
    case Decision::Kind::kWait:
      return "wait";
    case Decision::Kind::kHalt:
      return "halt";
    case Decision::Kind::kRollback:
      return "rollback";
  }
  return "unknown";
}

absl::string_view DecisionReasonName(Decision::Reason reason) {
  switch (reason) {
    case Decision::Reason::kCatastrophic:
      return "catastrophic";
    case Decision::Reason::kRegression:
      return "regression";
    case Decision::Reason::kGatePassed:
      return "gate_passed";
    case Decision::Reason::kGatePending:
      return "gate_pending";
  }
  return "unknown";
}

Decision Evaluate(const RingGatePolicy& policy, const RingHealth& health, absl::Time stage_started,
                  absl::Time now) {
  Decision d;
  Evidence& e = d.evidence;
  e.health = health;
  e.trials = std::max<int64_t>(0, health.attempted - health.pending);
  e.treated_failure_rate =
      e.trials > 0 ? static_cast<double>(health.failed) / static_cast<double>(e.trials) : 0.0;
  e.has_control = health.control_agents > 0;
  e.control_failure_rate = e.has_control ? static_cast<double>(health.control_failed) /
                                               static_cast<double>(health.control_agents)
                                         : 0.0;
  e.catastrophic_min_failed = policy.catastrophic_min_failed;
  e.catastrophic_failure_rate = policy.catastrophic_failure_rate;
  e.alpha = policy.alpha;
  e.beta = policy.beta;
  e.min_bake = policy.min_bake;
  e.min_healthy = policy.min_healthy;
  e.bake_elapsed = std::max(absl::ZeroDuration(), now - stage_started);
  e.bake_remaining = std::max(absl::ZeroDuration(), policy.min_bake - e.bake_elapsed);

  // 1. Catastrophe needs no statistics: five of the first twenty machines gone is enough.
  e.catastrophic = health.attempted > 0 && health.failed >= policy.catastrophic_min_failed &&
                   static_cast<double>(health.failed) >=
                       policy.catastrophic_failure_rate * static_cast<double>(health.attempted);

  // 2. Sequential test. Each agent with a known outcome is one Bernoulli trial; pending agents
  // (applied, silence timeout not over, no heartbeat yet) wait until they can be told apart.
  e.test = "wald_sprt_bernoulli";
  e.null_rate = EstimateNullRate(policy, health);
  const SprtResult sprt = BernoulliSprt(BernoulliCounts{e.trials, health.failed}, e.null_rate.p0,
                                        e.null_rate.p1, policy.alpha, policy.beta);
  e.llr = sprt.llr;
  if (getenv("RW_COND")) {  // EXPERIMENT
    double et = absl::ToDoubleHours(health.exposure), ec = absl::ToDoubleHours(health.control_exposure);
    double llr = 0;
    if (et > 0 && ec > 0) {
      double r = policy.regression_ratio;
      double pi0 = et / (et + ec), pi1 = r * et / (r * et + ec);
      llr = health.failed * std::log(pi1 / pi0) + health.control_failed * std::log((1 - pi1) / (1 - pi0));
    }
    double floor_llr = sprt.llr;
    if (getenv("RW_FLOOR")) {
      SprtResult fl = BernoulliSprt(BernoulliCounts{e.trials, health.failed}, policy.baseline_failure_rate,
                                    policy.baseline_failure_rate * policy.regression_ratio, policy.alpha, policy.beta);
      floor_llr = fl.llr;
    }
    e.llr = std::min(llr, floor_llr);
    const_cast<SprtResult&>(sprt).outcome = e.llr >= sprt.bounds.upper ? SprtOutcome::kRejectH0 : (llr <= sprt.bounds.lower ? SprtOutcome::kAcceptH0 : SprtOutcome::kContinue);
  }
  e.halt_bound = sprt.bounds.upper;
  e.accept_bound = sprt.bounds.lower;
  e.sprt_outcome = sprt.outcome;

  if (e.catastrophic || e.sprt_outcome == SprtOutcome::kRejectH0) {
    d.kind = ActionKind(policy.auto_action);
    d.reason = e.catastrophic ? Decision::Reason::kCatastrophic : Decision::Reason::kRegression;
    d.summary = ShortSummary(d);
    return d;
  }

  // 3. and 4. The gate, collecting everything that is missing rather than the first thing.
  if (health.attempted == 0) {
    e.waiting_for.push_back("first agents to apply the version");
  }
  if (e.bake_remaining > absl::ZeroDuration()) {
    e.waiting_for.push_back(absl::StrCat("bake time: ", RoundedDuration(e.bake_remaining), " left"));
  }
  const int64_t healthy_needed = std::max<int64_t>(policy.min_healthy, 1);
  if (health.healthy < healthy_needed) {
    e.waiting_for.push_back(
        absl::StrCat("healthy agents: ", health.healthy, " of ", healthy_needed));
  }
  const bool health_shown =
      e.sprt_outcome == SprtOutcome::kAcceptH0 || (e.trials > 0 && e.llr <= kTruncatedAcceptLlr);
  if (!health_shown && e.trials > 0) {
    e.waiting_for.push_back(absl::StrFormat(
        "evidence of health: %s failed (%d of %d) against %s expected (LLR %.2f, needs <= %.2f)",
        Percent(e.treated_failure_rate), health.failed, e.trials, Percent(e.null_rate.p0), e.llr,
        kTruncatedAcceptLlr));
  }

  if (!e.waiting_for.empty()) {
    d.kind = Decision::Kind::kWait;
    d.reason = Decision::Reason::kGatePending;
  } else {
    d.gate_passed = true;
    d.reason = Decision::Reason::kGatePassed;
    if (policy.manual_promotion) {
      d.kind = Decision::Kind::kWait;
      e.waiting_for.push_back("manual promotion (ringctl rollout promote)");
    } else {
      d.kind = Decision::Kind::kPromote;
    }
  }
  d.summary = ShortSummary(d);
  return d;
}

std::string Explain(const Decision& decision, Ring ring, int64_t version) {
  const Evidence& e = decision.evidence;
  const RingHealth& h = e.health;
  std::string out = absl::StrCat(RingName(ring), ": ");
  if (h.attempted == 0) {
    absl::StrAppend(&out, "no agent has applied v", version, " yet");
  } else {
    absl::StrAppend(&out, h.failed, " of ", h.attempted, " agents failed after applying v",
                    version);
    const std::string breakdown = FailureBreakdown(h);
    if (!breakdown.empty()) {
      absl::StrAppend(&out, " (", breakdown, ")");
    }
  }
  if (e.has_control) {
    absl::StrAppend(&out, " vs ", Percent(e.control_failure_rate), " in control (",
                    h.control_failed, " of ", h.control_agents, ")");
  } else {
    absl::StrAppend(&out, ", no control group (baseline ", Percent(e.null_rate.p0), ")");
  }
  absl::StrAppend(&out, "; ");

  switch (decision.reason) {
    case Decision::Reason::kCatastrophic:
      absl::StrAppendFormat(&out, "catastrophic: %d failed >= %d and %s >= %s", h.failed,
                            e.catastrophic_min_failed,
                            Percent(static_cast<double>(h.failed) / static_cast<double>(h.attempted)),
                            Percent(e.catastrophic_failure_rate));
      break;
    case Decision::Reason::kRegression:
      absl::StrAppend(&out, SprtClause(e));
      break;
    case Decision::Reason::kGatePassed:
      absl::StrAppend(&out, SprtClause(e), "; bake ", RoundedDuration(e.bake_elapsed), " >= ",
                      RoundedDuration(e.min_bake), ", ", h.healthy, " healthy >= ", e.min_healthy);
      break;
    case Decision::Reason::kGatePending:
      if (h.attempted > 0) {
        absl::StrAppend(&out, SprtClause(e), "; ");
      }
      break;
  }
  if (decision.kind == Decision::Kind::kWait) {
    if (decision.reason == Decision::Reason::kGatePassed) {
      absl::StrAppend(&out, "; gate passed; ");
    }
    absl::StrAppend(&out, "wait for ", absl::StrJoin(e.waiting_for, ", "));
  } else {
    absl::StrAppend(&out, "; ", DecisionKindName(decision.kind));
  }
  return out;
}

}  // namespace ringwarden
