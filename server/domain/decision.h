// decision.h: the decision engine. From one ring's health (health_ledger.h) and its gate
// (decision_policy.h) it decides promote, wait, halt or roll back, and says why with numbers.
//
//   RingHealth h = ledger.Summarize(Ring::kCanary, clock.Now(), gate.silence_timeout, started);
//   Decision d = Evaluate(gate, h, started, clock.Now());
//   audit.Append(Explain(d, Ring::kCanary, 42));  // "canary: 12 of 100 agents failed ... halt"
//
// Pure functions: no clock, no I/O; thread-safe. Evaluate may be called as often as the
// controller likes: sequential tests keep their error rates under continuous monitoring.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/decision_policy.h"
#include "server/domain/health_ledger.h"
#include "server/domain/ring.h"
#include "server/domain/sprt.h"

namespace ringwarden {

// SequentialTestEvidence is one sequential test's state at this look.
struct SequentialTestEvidence {
  bool applies = false;   // whether the test took part in this decision
  double h0 = 0;          // parameter under H0 (see Evidence)
  double h1 = 0;          // parameter under H1
  double llr = 0;         // ln(L(H1) / L(H0)), compared with the halt bound
  double accept_llr = 0;  // the same on the data allowed to show health; >= llr
  SprtOutcome outcome = SprtOutcome::kContinue;
};

// Evidence is everything a decision rests on, for the audit log and `ringctl rollout watch`.
struct Evidence {
  RingHealth health;
  double treated_failure_rate = 0;  // failed / attempted; 0 without agents
  bool has_control = false;
  double control_failure_rate = 0;  // control_failed / control_agents; 0 without control
  // Failures per agent-hour of exposure (apply failures count, with no exposure).
  double treated_failures_per_agent_hour = 0;
  double control_failures_per_agent_hour = 0;
  // The control saw at least a quarter of the treated agent-time, enough for the test against it
  // to tell a regression from background noise; otherwise only the baseline test applies.
  bool control_informative = false;

  // Catastrophic check: failed >= min_failed AND treated_failure_rate - control_failure_rate
  // (the excess over what the control shows) >= catastrophic_failure_rate.
  bool catastrophic = false;
  int64_t catastrophic_min_failed = 0;
  double catastrophic_failure_rate = 0;
  double excess_failure_rate = 0;

  // Sequential tests (Wald SPRT), sharing the error rates and hence the boundaries.
  std::string test;  // "wald_sprt"
  double alpha = 0;
  double beta = 0;
  double regression_ratio = 0;
  double halt_bound = 0;    // ln((1 - beta) / alpha): at or above, a test says "regression"
  double accept_bound = 0;  // ln(beta / (1 - alpha)): at or below, a test says "healthy"
  // Each agent that tried the version is a Bernoulli trial, failed or not: H0 p =
  // baseline_failure_rate, H1 p = regression_ratio * baseline. Pending agents (no heartbeat yet)
  // count as not failed towards a halt, and not at all towards acceptance (accept_llr): unseen
  // failures may delay either verdict but never cause one.
  SequentialTestEvidence vs_baseline;
  // Treated against control failures per agent-hour, conditional on the total number of
  // failures: h0 and h1 are the share of failures expected among treated agents if the treated
  // rate is 1x (H0) or regression_ratio x (H1) the control rate.
  SequentialTestEvidence vs_control;

  // Stage gate.
  absl::Duration bake_elapsed = absl::ZeroDuration();
  absl::Duration min_bake = absl::ZeroDuration();
  absl::Duration bake_remaining = absl::ZeroDuration();
  int64_t min_healthy = 0;
  // What still stands between the ring and promotion, in words, e.g. "bake time: 4m12s left",
  // "healthy agents: 3 of 20", "manual promotion (ringctl rollout promote)".
  std::vector<std::string> waiting_for;
};

// Decision is the engine's verdict for one ring at one instant.
struct Decision {
  enum class Kind { kPromote, kWait, kHalt, kRollback };
  enum class Reason {
    kCatastrophic,  // halt or rollback: the catastrophic bounds were crossed
    kRegression,    // halt or rollback: the sequential test rejected "no regression"
    kGatePassed,    // promote, or wait for a manual promotion
    kGatePending,   // wait: evidence.waiting_for says for what
  };
  Kind kind = Kind::kWait;
  Reason reason = Reason::kGatePending;
  // The stage gate is satisfied. True for kPromote, and for kWait under manual promotion.
  bool gate_passed = false;
  // One line without ring or version, e.g. "halt: sequential test crossed the halt bound".
  std::string summary;
  Evidence evidence;
};

// DecisionKindName returns "promote", "wait", "halt" or "rollback".
absl::string_view DecisionKindName(Decision::Kind kind);
// DecisionReasonName returns "catastrophic", "regression", "gate_passed" or "gate_pending".
absl::string_view DecisionReasonName(Decision::Reason reason);

// Evaluate decides for a ring whose stage started at `stage_started`, in this order:
//   1. catastrophic check fires                                   -> policy.auto_action at once;
//   2. the baseline test says "regression", and so does the control test if the control is
//      informative (a regression must beat both the floor and the control) -> auto_action;
//   3. bake elapsed, >= min_healthy healthy agents, and a test says "healthy" (the baseline test,
//      or the control test if the control is informative) -> promote, or wait with gate_passed
//      under manual promotion;
//   4. otherwise wait, listing what is missing. No agents, or too little data, is always a wait.
// `policy` must be valid (RingGatePolicy::Validate).
Decision Evaluate(const RingGatePolicy& policy, const RingHealth& health, absl::Time stage_started,
                  absl::Time now);

// Explain renders `decision` as one sentence for a release engineer, e.g. "canary: 15 of 200
// agents failed after applying v42 (11 crashed, 4 silent) vs 2.0% in control (20 of 1000);
// failures per agent-hour 3.9x control's; sequential test crossed the halt bound vs control
// (LLR 6.78 >= 2.89) and vs the 1.0% baseline (LLR 12.70 >= 2.89); halt".
std::string Explain(const Decision& decision, Ring ring, int64_t version);

}  // namespace ringwarden
