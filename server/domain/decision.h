// decision.h: the decision engine. From one ring's health (health_ledger.h) and its gate
// (decision_policy.h) it decides promote, wait, halt or roll back, and says why with numbers.
//
//   RingHealth h = ledger.Summarize(Ring::kCanary, clock.Now(), gate.silence_timeout, started);
//   Decision d = Evaluate(gate, h, started, clock.Now());
//   audit.Append(Explain(d, Ring::kCanary, 42));  // "canary: 12 of 100 agents failed ... halt"
//
// Pure functions: no clock, no I/O; thread-safe. Evaluate may be called as often as the
// controller likes: the sequential test keeps its error rates under continuous monitoring.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/decision_policy.h"
#include "server/domain/health_ledger.h"
#include "server/domain/ring.h"
#include "server/domain/sequential_test.h"

namespace ringwarden {

// NullRate is the failure probability the sequential test calls normal (H0) and the one it calls
// a regression (H1), with where H0 came from.
struct NullRate {
  double p0 = 0;  // max(baseline floor, control_bound)
  double p1 = 0;  // min(regression_ratio * p0, 0.99)
  // Whether the control group had data to say anything; if not, p0 is the policy's floor.
  bool from_control = false;
  // Upper confidence bound on the control group's failure probability over the time the treated
  // agents have been watched; 0 when !from_control.
  double control_bound = 0;
};

// EstimateNullRate derives H0 and H1 for `health` under `policy`. See decision.cc for why the
// control group enters as an upper confidence bound on its failure rate per agent-hour.
NullRate EstimateNullRate(const RingGatePolicy& policy, const RingHealth& health);

// Evidence is everything a decision rests on, for the audit log and `ringctl rollout watch`.
struct Evidence {
  RingHealth health;
  // Agents whose outcome is known (attempted minus pending): the sequential test's trials.
  int64_t trials = 0;
  double treated_failure_rate = 0;  // health.failed / trials; 0 without trials
  bool has_control = false;
  double control_failure_rate = 0;  // control_failed / control_agents; 0 without control

  // Catastrophic check: fires when failed >= min_failed AND failed / attempted >= rate.
  bool catastrophic = false;
  int64_t catastrophic_min_failed = 0;
  double catastrophic_failure_rate = 0;

  // Sequential test on the treated failure proportion.
  std::string test;  // "wald_sprt_bernoulli"
  NullRate null_rate;
  double alpha = 0;
  double beta = 0;
  double llr = 0;          // log-likelihood ratio of H1 over H0
  double halt_bound = 0;   // ln((1 - beta) / alpha): at or above, the update is unhealthy
  double accept_bound = 0; // ln(beta / (1 - alpha)): at or below, the update is healthy
  SprtOutcome sprt_outcome = SprtOutcome::kContinue;

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
//   1. catastrophic bounds crossed            -> policy.auto_action at once;
//   2. sequential test rejects H0             -> policy.auto_action;
//   3. bake elapsed, >= min_healthy healthy agents, and the test accepts H0 (or, with too few
//      agents for it to decide, the data favour H0: LLR <= 0) -> promote, or wait with
//      gate_passed under manual promotion;
//   4. otherwise wait, listing what is missing. No agents, or too little data, is always a wait.
// `policy` must be valid (RingGatePolicy::Validate).
Decision Evaluate(const RingGatePolicy& policy, const RingHealth& health, absl::Time stage_started,
                  absl::Time now);

// Explain renders `decision` as one sentence for a release engineer, e.g. "canary: 12 of 100
// agents failed after applying v42 (9 crashed, 3 silent) vs 0.4% in control (4 of 1000);
// sequential test crossed the halt bound (LLR 5.31 >= 2.89; H0 1.2% vs H1 3.6%); halt".
std::string Explain(const Decision& decision, Ring ring, int64_t version);

}  // namespace ringwarden
