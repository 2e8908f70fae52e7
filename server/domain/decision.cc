#include "server/domain/decision.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ringwarden {
namespace {

// Why two tests. The control test compares failures per agent-hour between treated and control,
// conditional on how many failures there were in all; the control's unknown background rate
// cancels out of that likelihood, so its false-halt guarantee holds for any background and any
// control size, however often it is evaluated. A plug-in H0 (the control rate, or an upper
// confidence bound on it) does not: in simulation an 84% upper bound still let a 100-agent control
// halt 6.5% of healthy updates at alpha = 5%, and had already cut the power against a 3x
// regression from 90% to 77% with a 1,000-agent control. The baseline test is the policy's
// floor: a regression must also be significantly above regression_ratio x baseline_failure_rate,
// so that a rise from 0.1% to 0.3% does not halt, and it stands alone when the control is too
// small to say anything. A halt always needs the baseline test, so letting the control test in
// or out as exposures change cannot add false halts; what the baseline test alone guarantees
// rests on baseline_failure_rate being at or above the real background.
//
// The control counts as informative once its exposure reaches a quarter of the treated exposure
// (H0 then puts at most 80% of the failures on the treated side). Below that a treated failure
// moves the control test by under 0.15 and it would need dozens of them: the floor decides alone.
constexpr double kInformativeControlExposureRatio = 0.25;

constexpr double kMaxAlternativeRate = 0.99;

std::string Percent(double rate) { return absl::StrFormat("%.1f%%", 100.0 * rate); }

std::string RoundedDuration(absl::Duration d) {
  // Rounded up so that "0s left" never appears while time is left.
  return absl::FormatDuration(absl::Ceil(d, absl::Seconds(1)));
}

Decision::Kind ActionKind(AutoAction action) {
  return action == AutoAction::kRollback ? Decision::Kind::kRollback : Decision::Kind::kHalt;
}

SequentialTestEvidence FromSprt(const SprtResult& r) {
  SequentialTestEvidence t;
  t.applies = true;
  t.h0 = r.h0;
  t.h1 = r.h1;
  t.llr = r.llr;
  t.accept_llr = r.llr;
  t.outcome = r.outcome;
  return t;
}

std::string Counted(int64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// FailureBreakdown lists the non-zero failure categories, e.g. "6 process crashes, 3 unclean
// shutdowns, 3 silent": the kinds of evidence stay apart.
std::string FailureBreakdown(const RingHealth& h) {
  std::vector<std::string> parts;
  if (h.process_crashed > 0) {
    parts.push_back(Counted(h.process_crashed, "process crash", "process crashes"));
  }
  if (h.unclean_shutdowns > 0) {
    parts.push_back(Counted(h.unclean_shutdowns, "unclean shutdown", "unclean shutdowns"));
  }
  // Health from before the kinds were kept apart (decision_test builds such) says "crashed".
  if (h.process_crashed + h.unclean_shutdowns == 0 && h.crashed > 0) {
    parts.push_back(absl::StrCat(h.crashed, " crashed"));
  }
  if (h.unhealthy > 0) {
    parts.push_back(absl::StrCat(h.unhealthy, " unhealthy by health events"));
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

std::string BaselineName(const Evidence& e) {
  return absl::StrCat("the ", Percent(e.vs_baseline.h0), " baseline");
}

bool HealthShown(const Evidence& e) {
  return e.vs_baseline.outcome == SprtOutcome::kAcceptH0 ||
         (e.vs_control.applies && e.vs_control.outcome == SprtOutcome::kAcceptH0);
}

// TestClause says what the sequential tests concluded, naming the ones that decided.
std::string TestClause(const Decision& d) {
  const Evidence& e = d.evidence;
  if (d.reason == Decision::Reason::kRegression) {
    if (e.vs_control.applies) {
      return absl::StrFormat(
          "sequential test crossed the halt bound vs control (LLR %.2f >= %.2f) and vs %s "
          "(LLR %.2f >= %.2f)",
          e.vs_control.llr, e.halt_bound, BaselineName(e), e.vs_baseline.llr, e.halt_bound);
    }
    return absl::StrFormat("sequential test crossed the halt bound vs %s (LLR %.2f >= %.2f)",
                           BaselineName(e), e.vs_baseline.llr, e.halt_bound);
  }
  if (e.vs_baseline.outcome == SprtOutcome::kAcceptH0) {
    return absl::StrFormat("sequential test accepted the update vs %s (LLR %.2f <= %.2f)",
                           BaselineName(e), e.vs_baseline.accept_llr, e.accept_bound);
  }
  if (e.vs_control.applies && e.vs_control.outcome == SprtOutcome::kAcceptH0) {
    return absl::StrFormat("sequential test accepted the update vs control (LLR %.2f <= %.2f)",
                           e.vs_control.accept_llr, e.accept_bound);
  }
  return "sequential test undecided";  // the caller lists the numbers in waiting_for
}

// MoreCleanAgents estimates how many more agents without failure the baseline test needs to
// accept: each one moves its LLR by ln((1 - p1) / (1 - p0)) < 0.
int64_t MoreCleanAgents(const Evidence& e) {
  const double step = std::log1p(-e.vs_baseline.h1) - std::log1p(-e.vs_baseline.h0);
  if (!(step < 0) || e.vs_baseline.accept_llr <= e.accept_bound) {
    return 0;
  }
  return static_cast<int64_t>(std::ceil((e.vs_baseline.accept_llr - e.accept_bound) / -step));
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
  const double treated_hours = absl::ToDoubleHours(health.exposure);
  const double control_hours = absl::ToDoubleHours(health.control_exposure);
  if (health.attempted > 0) {
    e.treated_failure_rate =
        static_cast<double>(health.failed) / static_cast<double>(health.attempted);
  }
  e.has_control = health.control_agents > 0;
  if (e.has_control) {
    e.control_failure_rate =
        static_cast<double>(health.control_failed) / static_cast<double>(health.control_agents);
  }
  if (treated_hours > 0) {
    e.treated_failures_per_agent_hour = static_cast<double>(health.failed) / treated_hours;
  }
  if (control_hours > 0) {
    e.control_failures_per_agent_hour = static_cast<double>(health.control_failed) / control_hours;
  }
  e.control_informative = e.has_control && treated_hours > 0 &&
                          control_hours >= kInformativeControlExposureRatio * treated_hours;
  e.catastrophic_min_failed = policy.catastrophic_min_failed;
  e.catastrophic_failure_rate = policy.catastrophic_failure_rate;
  e.alpha = policy.alpha;
  e.beta = policy.beta;
  e.regression_ratio = policy.regression_ratio;
  e.min_bake = policy.min_bake;
  e.min_healthy = policy.min_healthy;
  e.bake_elapsed = std::max(absl::ZeroDuration(), now - stage_started);
  e.bake_remaining = std::max(absl::ZeroDuration(), policy.min_bake - e.bake_elapsed);

  // 1. Catastrophe needs no statistics: five of the first twenty machines gone is enough. The
  // bound is on the excess over the control so that a fleet where many machines fall silent every
  // evening (laptops closing) does not look catastrophic.
  e.excess_failure_rate = e.treated_failure_rate - e.control_failure_rate;
  e.catastrophic = health.failed >= policy.catastrophic_min_failed &&
                   e.excess_failure_rate >= policy.catastrophic_failure_rate;

  // 2. Sequential tests. A pending agent may yet fail silently: it counts as a success towards a
  // halt (so that failures, which show at once, cannot outrun the successes that show at the next
  // heartbeat) and not at all towards acceptance.
  e.test = "wald_sprt";
  const double p0 = policy.baseline_failure_rate;
  const double p1 = std::min(policy.regression_ratio * p0, kMaxAlternativeRate);
  const SprtResult baseline = BernoulliSprt(BernoulliCounts{health.attempted, health.failed}, p0,
                                            p1, policy.alpha, policy.beta);
  e.vs_baseline = FromSprt(baseline);
  e.vs_baseline.accept_llr =
      BernoulliLlr(BernoulliCounts{health.attempted - health.pending, health.failed}, p0, p1);
  e.halt_bound = baseline.bounds.upper;
  e.accept_bound = baseline.bounds.lower;
  if (e.vs_baseline.outcome == SprtOutcome::kAcceptH0 &&
      e.vs_baseline.accept_llr > e.accept_bound) {
    e.vs_baseline.outcome = SprtOutcome::kContinue;
  }
  if (e.control_informative) {
    e.vs_control =
        FromSprt(ConditionalPoissonSprt(PoissonCounts{health.failed, treated_hours},
                                        PoissonCounts{health.control_failed, control_hours},
                                        policy.regression_ratio, policy.alpha, policy.beta));
  }
  const bool regression = e.vs_baseline.outcome == SprtOutcome::kRejectH0 &&
                          (!e.vs_control.applies || e.vs_control.outcome == SprtOutcome::kRejectH0);

  if (e.catastrophic || regression) {
    d.kind = ActionKind(policy.auto_action);
    d.reason = e.catastrophic ? Decision::Reason::kCatastrophic : Decision::Reason::kRegression;
    d.summary = ShortSummary(d);
    return d;
  }

  // 3. and 4. The gate, listing everything that is missing rather than the first thing.
  if (health.attempted == 0) {
    e.waiting_for.push_back("first agents to apply the version");
  }
  if (e.bake_remaining > absl::ZeroDuration()) {
    e.waiting_for.push_back(
        absl::StrCat("bake time: ", RoundedDuration(e.bake_remaining), " left"));
  }
  const int64_t healthy_needed = std::max<int64_t>(policy.min_healthy, 1);
  if (health.healthy < healthy_needed) {
    e.waiting_for.push_back(
        absl::StrCat("healthy agents: ", health.healthy, " of ", healthy_needed));
  }
  if (!HealthShown(e) && health.attempted > 0) {
    std::string need = absl::StrFormat(
        "evidence of health: %s of agents failed; LLR %.2f vs %s must reach %.2f (about %d more "
        "agents without failure)",
        Percent(e.treated_failure_rate), e.vs_baseline.accept_llr, BaselineName(e), e.accept_bound,
        MoreCleanAgents(e));
    if (e.vs_control.applies) {
      absl::StrAppendFormat(&need, ", or LLR %.2f vs control must reach %.2f",
                            e.vs_control.accept_llr, e.accept_bound);
    }
    e.waiting_for.push_back(std::move(need));
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
    absl::StrAppend(&out, ", no control group");
  }
  if (e.vs_control.applies && e.control_failures_per_agent_hour > 0 && h.failed > 0) {
    absl::StrAppendFormat(&out, "; failures per agent-hour %.1fx control's",
                          e.treated_failures_per_agent_hour / e.control_failures_per_agent_hour);
  }
  absl::StrAppend(&out, "; ");

  switch (decision.reason) {
    case Decision::Reason::kCatastrophic:
      absl::StrAppendFormat(&out, "catastrophic: %d failed (>= %d) and ", h.failed,
                            e.catastrophic_min_failed);
      if (e.has_control) {
        absl::StrAppendFormat(&out, "the failure rate exceeds control's by %.1f points (>= %.1f)",
                              100.0 * e.excess_failure_rate, 100.0 * e.catastrophic_failure_rate);
      } else {
        absl::StrAppendFormat(&out, "the failure rate %s >= %s", Percent(e.treated_failure_rate),
                              Percent(e.catastrophic_failure_rate));
      }
      break;
    case Decision::Reason::kRegression:
      absl::StrAppend(&out, TestClause(decision));
      break;
    case Decision::Reason::kGatePassed:
      absl::StrAppend(&out, TestClause(decision), "; bake ", RoundedDuration(e.bake_elapsed),
                      " >= ", RoundedDuration(e.min_bake), ", ", h.healthy,
                      " healthy >= ", e.min_healthy);
      break;
    case Decision::Reason::kGatePending:
      // Undecided tests are spelled out in waiting_for already.
      if (HealthShown(e)) {
        absl::StrAppend(&out, TestClause(decision), "; ");
      }
      break;
  }
  if (decision.kind == Decision::Kind::kWait) {
    if (decision.reason == Decision::Reason::kGatePassed) {
      absl::StrAppend(&out, "; gate passed; ");
    }
    absl::StrAppend(&out, "wait for ", absl::StrJoin(e.waiting_for, "; "));
  } else {
    absl::StrAppend(&out, "; ", DecisionKindName(decision.kind));
  }
  return out;
}

}  // namespace ringwarden
