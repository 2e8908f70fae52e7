// decision_policy.h: the rollout policy a release engineer writes: per-ring stage gates (bake
// time, healthy agents, silence timeout, catastrophic bounds, sequential-test error rates) and the
// waves of the broad ring. Plain values; the transport layer serializes them.
//
//   RolloutPolicy policy = DefaultRolloutPolicy();
//   policy.canary.auto_action = AutoAction::kRollback;
//   RETURN_IF_ERROR(policy.Validate());
//
// Value types; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/approval.h"
#include "server/domain/ring.h"

namespace ringwarden {

// AutoAction is what the engine does on its own when a ring is unhealthy.
enum class AutoAction {
  kHalt,      // freeze: nobody new gets the version, who has it keeps it
  kRollback,  // every agent returns to last-known-good and the version is revoked
};

// AutoActionName returns "halt" or "rollback".
absl::string_view AutoActionName(AutoAction action);
// ParseAutoAction is the inverse of AutoActionName; INVALID_ARGUMENT otherwise.
absl::StatusOr<AutoAction> ParseAutoAction(absl::string_view name);

// RingGatePolicy is one ring's stage gate and health checks.
struct RingGatePolicy {
  // Time the version must spend in the ring before promotion.
  absl::Duration min_bake = absl::Hours(1);
  // Agents that must have applied the version and reported healthy since; at least 1.
  int64_t min_healthy = 20;
  // An applied agent heard from for no longer than this counts as a suspected crash.
  absl::Duration silence_timeout = absl::Minutes(15);
  // Catastrophe: at least this many failed agents AND at least this share of those that tried.
  int64_t catastrophic_min_failed = 5;
  double catastrophic_failure_rate = 0.20;
  // Sequential test: chance of halting a healthy update (alpha) and of passing a regression of
  // `regression_ratio` times the control failure rate (beta).
  double alpha = 0.05;
  double beta = 0.10;
  double regression_ratio = 3.0;
  // The failure probability assumed normal when the control group cannot say more: the floor of
  // the null hypothesis. Set it to the fleet's known background (crashes plus machines switched
  // off) when no control group is fed.
  double baseline_failure_rate = 0.01;
  AutoAction auto_action = AutoAction::kHalt;
  // When set, a passed gate waits for `ringctl rollout promote` instead of promoting.
  bool manual_promotion = false;

  // Validate returns INVALID_ARGUMENT naming the first field out of range.
  absl::Status Validate() const;
};

// SlowStartPolicy bounds how many hosts of a stage ring may run the new version before any of
// them has proven it survives (exposure.h). Inside every stage the leader admits the first
// `initial_exposure` hosts in a fixed hash order; the admitted set grows to `growth_factor`
// times the hosts that proved survival (heartbeats on the version from one boot id spanning
// `probation`), never to more than `max_unproven` hosts beyond the proven ones.
struct SlowStartPolicy {
  bool enabled = true;
  int64_t initial_exposure = 10;
  double growth_factor = 2.0;
  // At least every ring's silence timeout: a host that dies on load is silent by then.
  absl::Duration probation = absl::Minutes(15);
  int64_t max_unproven = 100'000;
};

// HealthEventPolicy turns the health events agents report ("cpu_high", "load_check_slow") into
// soft failures: each event on a version adds its kind's weight to the reporting host's score
// for that version, and a host whose score reaches `failure_threshold` counts as failed
// ("unhealthy") exactly like a crash, in the treated and the control group alike. Kinds
// without a weight are stored and shown but weigh nothing.
struct HealthEventPolicy {
  std::map<std::string, double> weights = {
      {"cpu_high", 0.25},          {"memory_high", 0.25},  {"load_check_slow", 0.25},
      {"state_write_failed", 0.5}, {"revert_failed", 1.0}, {"boot_loop", 1.0},
  };
  double failure_threshold = 1.0;

  // WeightOf returns the weight of `kind`, 0 for a kind the policy does not name.
  double WeightOf(absl::string_view kind) const;
};

inline constexpr size_t kMaxHealthEventWeights = 64;
inline constexpr double kMaxHealthEventWeight = 1000;

// RolloutPolicy is a named, versioned set of ring gates.
inline constexpr absl::Duration kMaxCompletionWatch = absl::Hours(24 * 7);

struct RolloutPolicy {
  std::string name = "default";
  int64_t version = 1;
  RingGatePolicy canary;
  RingGatePolicy early;
  RingGatePolicy broad;
  // Cumulative shares of the broad ring offered the version, strictly increasing, ending at 1.0.
  std::vector<double> broad_waves = {0.10, 0.25, 0.50, 1.00};
  // Whether dangerous steps need a second person's approval (approval.h).
  TwoPersonRule two_person;
  // The exposure budget inside every stage.
  SlowStartPolicy slow_start;
  // How agents' health events weigh as soft failures.
  HealthEventPolicy health_events;
  // How long every ring stays judged once the last stage's gate has passed, measured from the
  // last host that took the version: a failure that shows late (a weekly scan, a patch
  // Tuesday reboot) still halts or rolls back. The rollout completes after it. 0 completes at
  // once.
  absl::Duration watch_after_completion = absl::Hours(1);

  // ForRing returns the gate of `ring`.
  const RingGatePolicy& ForRing(Ring ring) const;
  RingGatePolicy& ForRing(Ring ring);

  // Validate returns INVALID_ARGUMENT naming the first field out of range, e.g.
  // "early.alpha must be in (0, 0.5), got 0.7".
  absl::Status Validate() const;
};

// CheckPolicyTimings refuses (INVALID_ARGUMENT) a policy whose silence timeout or probation is
// shorter than `min_gap`: the longest a healthy agent may go unheard, i.e. the server's poll
// interval plus its jitter plus the agents' heartbeat interval. Below that a normal gap between
// two reports looks like a crash. `gap_text` spells the sum for the message, e.g.
// "poll interval 30s + 20% jitter + heartbeat interval 1m".
absl::Status CheckPolicyTimings(const RolloutPolicy& policy, absl::Duration min_gap,
                                absl::string_view gap_text);

// DefaultRolloutPolicy returns gates that grow with the ring: canary bakes 1 h with 20 healthy
// agents, early 2 h with 100, broad 4 h with 500.
RolloutPolicy DefaultRolloutPolicy();

}  // namespace ringwarden
