#include "server/domain/decision_policy.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/names.h"

namespace ringwarden {
namespace {

constexpr size_t kMaxNameLength = 128;
constexpr size_t kMaxWaves = 20;
constexpr int64_t kMaxExposureHosts = 10'000'000;

absl::Status Invalid(absl::string_view prefix, absl::string_view field, absl::string_view rule,
                     absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, field, " must be ", rule, ", got ", got));
}

std::string Num(double v) { return absl::StrFormat("%g", v); }

// Callers reject !InOpen(...) rather than test for "outside", so that NaN, which fails every
// comparison, is rejected too.
bool InOpen(double v, double lo, double hi) { return v > lo && v < hi; }

absl::Status ValidateGate(const RingGatePolicy& p, absl::string_view prefix) {
  if (p.min_bake < absl::ZeroDuration() || p.min_bake == absl::InfiniteDuration()) {
    return Invalid(prefix, "min_bake", "finite and >= 0", absl::FormatDuration(p.min_bake));
  }
  if (p.min_healthy < 1) {
    return Invalid(prefix, "min_healthy", ">= 1", absl::StrCat(p.min_healthy));
  }
  if (p.silence_timeout <= absl::ZeroDuration() || p.silence_timeout == absl::InfiniteDuration()) {
    return Invalid(prefix, "silence_timeout", "finite and > 0",
                   absl::FormatDuration(p.silence_timeout));
  }
  if (p.catastrophic_min_failed < 1) {
    return Invalid(prefix, "catastrophic_min_failed", ">= 1",
                   absl::StrCat(p.catastrophic_min_failed));
  }
  if (!(p.catastrophic_failure_rate > 0 && p.catastrophic_failure_rate <= 1)) {
    return Invalid(prefix, "catastrophic_failure_rate", "in (0, 1]",
                   Num(p.catastrophic_failure_rate));
  }
  if (!InOpen(p.alpha, 0, 0.5)) {
    return Invalid(prefix, "alpha", "in (0, 0.5)", Num(p.alpha));
  }
  if (!InOpen(p.beta, 0, 0.5)) {
    return Invalid(prefix, "beta", "in (0, 0.5)", Num(p.beta));
  }
  // Beyond 100x the test would be looking for failure rates no background allows.
  if (!(p.regression_ratio > 1 && p.regression_ratio <= 100)) {
    return Invalid(prefix, "regression_ratio", "in (1, 100]", Num(p.regression_ratio));
  }
  // The alternative must stay a probability: p1 = ratio * p0 < 1 at the floor itself.
  if (!InOpen(p.baseline_failure_rate, 0, 1.0 / p.regression_ratio)) {
    return Invalid(prefix, "baseline_failure_rate",
                   absl::StrCat("in (0, 1/regression_ratio = ", Num(1.0 / p.regression_ratio), ")"),
                   Num(p.baseline_failure_rate));
  }
  if (p.auto_action != AutoAction::kHalt && p.auto_action != AutoAction::kRollback) {
    return Invalid(prefix, "auto_action", "halt or rollback",
                   absl::StrCat(static_cast<int>(p.auto_action)));
  }
  return absl::OkStatus();
}

absl::Status ValidateHealthEvents(const HealthEventPolicy& h) {
  if (!(h.failure_threshold > 0 && h.failure_threshold <= kMaxHealthEventWeight)) {
    return Invalid("", "health_events.failure_threshold",
                   absl::StrCat("in (0, ", Num(kMaxHealthEventWeight), "]"),
                   Num(h.failure_threshold));
  }
  if (h.weights.size() > kMaxHealthEventWeights) {
    return Invalid("", "health_events.weights",
                   absl::StrCat("at most ", kMaxHealthEventWeights, " kinds"),
                   absl::StrCat(h.weights.size()));
  }
  for (const auto& [kind, weight] : h.weights) {
    if (absl::Status s = ValidateHealthEventKind(kind); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("health_events.weights: ", s.message()));
    }
    if (!(weight >= 0 && weight <= kMaxHealthEventWeight)) {
      return Invalid("", absl::StrCat("health_events.weights.", kind),
                     absl::StrCat("in [0, ", Num(kMaxHealthEventWeight), "]"), Num(weight));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSlowStart(const RolloutPolicy& policy) {
  const SlowStartPolicy& s = policy.slow_start;
  if (!s.enabled) {
    return absl::OkStatus();
  }
  if (s.initial_exposure < 1 || s.initial_exposure > kMaxExposureHosts) {
    return Invalid("", "slow_start.initial_exposure",
                   absl::StrCat("in [1, ", kMaxExposureHosts, "]"),
                   absl::StrCat(s.initial_exposure));
  }
  // Below 1.1 a stage of a million hosts would need over a hundred growth steps; above 16 one
  // step multiplies the exposure beyond what a single probation says anything about.
  if (!(s.growth_factor >= 1.1 && s.growth_factor <= 16)) {
    return Invalid("", "slow_start.growth_factor", "in [1.1, 16]", Num(s.growth_factor));
  }
  if (s.probation <= absl::ZeroDuration() || s.probation > absl::Hours(24 * 7)) {
    return Invalid("", "slow_start.probation", "in (0, 7 days]", absl::FormatDuration(s.probation));
  }
  for (Ring ring : kAllRings) {
    const absl::Duration silence = policy.ForRing(ring).silence_timeout;
    if (s.probation < silence) {
      return Invalid("", "slow_start.probation",
                     absl::StrCat("at least ", RingName(ring), ".silence_timeout (",
                                  absl::FormatDuration(silence),
                                  "), or a host that died on load could count as proven"),
                     absl::FormatDuration(s.probation));
    }
  }
  if (s.max_unproven < s.initial_exposure || s.max_unproven > kMaxExposureHosts) {
    return Invalid(
        "", "slow_start.max_unproven",
        absl::StrCat("in [initial_exposure = ", s.initial_exposure, ", ", kMaxExposureHosts, "]"),
        absl::StrCat(s.max_unproven));
  }
  return absl::OkStatus();
}

}  // namespace

double HealthEventPolicy::WeightOf(absl::string_view kind) const {
  auto it = weights.find(std::string(kind));
  return it == weights.end() ? 0 : it->second;
}

absl::string_view AutoActionName(AutoAction action) {
  switch (action) {
    case AutoAction::kHalt:
      return "halt";
    case AutoAction::kRollback:
      return "rollback";
  }
  return "unknown";
}

absl::StatusOr<AutoAction> ParseAutoAction(absl::string_view name) {
  if (name == "halt") {
    return AutoAction::kHalt;
  }
  if (name == "rollback") {
    return AutoAction::kRollback;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("auto action must be \"halt\" or \"rollback\", got \"", name, "\""));
}

absl::Status RingGatePolicy::Validate() const { return ValidateGate(*this, ""); }

const RingGatePolicy& RolloutPolicy::ForRing(Ring ring) const {
  switch (ring) {
    case Ring::kCanary:
      return canary;
    case Ring::kEarly:
      return early;
    case Ring::kBroad:
      return broad;
  }
  return broad;
}

RingGatePolicy& RolloutPolicy::ForRing(Ring ring) {
  return const_cast<RingGatePolicy&>(static_cast<const RolloutPolicy&>(*this).ForRing(ring));
}

absl::Status RolloutPolicy::Validate() const {
  if (name.empty() || name.size() > kMaxNameLength) {
    return Invalid("", "name", absl::StrCat("1 to ", kMaxNameLength, " characters"),
                   absl::StrCat(name.size(), " characters"));
  }
  if (version < 1) {
    return Invalid("", "version", ">= 1", absl::StrCat(version));
  }
  for (Ring ring : kAllRings) {
    if (absl::Status s = ValidateGate(ForRing(ring), absl::StrCat(RingName(ring), ".")); !s.ok()) {
      return s;
    }
  }
  if (broad_waves.empty() || broad_waves.size() > kMaxWaves) {
    return Invalid("", "broad_waves", absl::StrCat("1 to ", kMaxWaves, " entries"),
                   absl::StrCat(broad_waves.size()));
  }
  double previous = 0;
  for (size_t i = 0; i < broad_waves.size(); ++i) {
    const double w = broad_waves[i];
    if (!(w > previous && w <= 1.0)) {
      return Invalid("", absl::StrCat("broad_waves[", i, "]"),
                     absl::StrCat("in (", Num(previous), ", 1] (strictly increasing)"), Num(w));
    }
    previous = w;
  }
  if (broad_waves.back() != 1.0) {
    return Invalid("", "broad_waves", "ending at 1.0 (the whole ring)", Num(broad_waves.back()));
  }
  if (absl::Status s = ValidateSlowStart(*this); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateHealthEvents(health_events); !s.ok()) {
    return s;
  }
  if (watch_after_completion < absl::ZeroDuration() ||
      watch_after_completion > kMaxCompletionWatch) {
    return Invalid("", "watch_after_completion_seconds", "in [0, 7 days]",
                   absl::FormatDuration(watch_after_completion));
  }
  return two_person.Validate();
}

absl::Status CheckPolicyTimings(const RolloutPolicy& policy, absl::Duration min_gap,
                                absl::string_view gap_text) {
  auto refuse = [&](absl::string_view field, absl::Duration got) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " (", absl::FormatDuration(got),
        ") is shorter than the longest normal gap between two reports of a healthy agent, ",
        absl::FormatDuration(min_gap), " (", gap_text,
        "): healthy agents would look silent; lengthen it or run the server with a shorter "
        "--poll-interval"));
  };
  for (Ring ring : kAllRings) {
    const absl::Duration silence = policy.ForRing(ring).silence_timeout;
    if (silence < min_gap) {
      return refuse(absl::StrCat(RingName(ring), ".silence_timeout_seconds"), silence);
    }
  }
  if (policy.slow_start.enabled && policy.slow_start.probation < min_gap) {
    return refuse("slow_start.probation_seconds", policy.slow_start.probation);
  }
  return absl::OkStatus();
}

RolloutPolicy DefaultRolloutPolicy() {
  RolloutPolicy policy;
  policy.canary.min_bake = absl::Hours(1);
  policy.canary.min_healthy = 20;
  policy.early.min_bake = absl::Hours(2);
  policy.early.min_healthy = 100;
  policy.broad.min_bake = absl::Hours(4);
  policy.broad.min_healthy = 500;
  return policy;
}

}  // namespace ringwarden
