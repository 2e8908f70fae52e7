#include "server/domain/exposure.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ringwarden {
namespace {

// Above this many expected failures the binomial tail is taken from the normal approximation;
// below it the exact sum is cheap and the approximation is poor.
constexpr double kExactTailMean = 30;
// The standard normal quantile of 1 - kFreezeTail.
constexpr double kFreezeTailZ = 3.0902;

bool Proven(const ExposureHost& h, absl::Duration probation) {
  return h.loaded && !h.failed && h.alive_since.has_value() && h.last_seen.has_value() &&
         *h.last_seen - *h.alive_since >= probation;
}

std::string When(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

}  // namespace

int64_t AllowedFailures(int64_t hosts, double baseline_failure_rate) {
  if (hosts <= 0 || !(baseline_failure_rate > 0)) {
    return 0;
  }
  const double p = std::min(baseline_failure_rate, 0.999);
  const double n = static_cast<double>(hosts);
  const double mean = n * p;
  if (mean > kExactTailMean) {
    const double k = std::floor(mean + kFreezeTailZ * std::sqrt(mean * (1 - p)));
    return std::min(hosts, static_cast<int64_t>(k));
  }
  // P(X = 0) = (1 - p)^n, then P(X = k + 1) = P(X = k) (n - k) / (k + 1) p / (1 - p).
  double pmf = std::exp(n * std::log1p(-p));
  double cdf = pmf;
  int64_t k = 0;
  while (1 - cdf > kFreezeTail && k < hosts) {
    pmf *= (n - static_cast<double>(k)) / static_cast<double>(k + 1) * p / (1 - p);
    ++k;
    cdf += pmf;
  }
  return k;
}

int64_t GrowthTarget(const SlowStartPolicy& policy, int64_t cap, int64_t admitted, int64_t proven) {
  const double grown = std::ceil(static_cast<double>(proven) * policy.growth_factor);
  int64_t target = grown >= static_cast<double>(cap) ? cap : static_cast<int64_t>(grown);
  target = std::max(target, policy.initial_exposure);
  target = std::min(target, proven + policy.max_unproven);
  target = std::min(target, cap);
  return std::max(target, admitted);
}

namespace {

// SortedHosts is a list of hosts sorted by position.
class SortedHosts : public WaveOrder {
 public:
  SortedHosts(std::vector<ExposureHost> hosts, absl::Duration probation)
      : hosts_(std::move(hosts)), probation_(probation) {
    std::sort(hosts_.begin(), hosts_.end(),
              [](const ExposureHost& a, const ExposureHost& b) { return a.position < b.position; });
  }
  int64_t size() const override { return static_cast<int64_t>(hosts_.size()); }
  int64_t CountBelow(double bound) const override {
    return static_cast<int64_t>(
        std::lower_bound(hosts_.begin(), hosts_.end(), bound,
                         [](const ExposureHost& h, double b) { return h.position < b; }) -
        hosts_.begin());
  }
  double PositionAt(int64_t index) const override { return hosts_[index].position; }
  Tally TallyBelow(double bound) const override {
    Tally t;
    for (int64_t i = 0, n = CountBelow(bound); i < n; ++i) {
      const ExposureHost& h = hosts_[i];
      const bool proven = Proven(h, probation_);
      t.loaded += h.loaded ? 1 : 0;
      t.failed += h.loaded && h.failed ? 1 : 0;
      t.proven += proven ? 1 : 0;
      if (h.loaded && !h.failed && h.alive_since.has_value() && !proven) {
        const absl::Time at = *h.alive_since + probation_;
        if (!t.next_proof.has_value() || at < *t.next_proof) {
          t.next_proof = at;
        }
      }
    }
    return t;
  }

 private:
  std::vector<ExposureHost> hosts_;
  absl::Duration probation_;
};

}  // namespace

ExposurePlan PlanInWaveOrder(const SlowStartPolicy& policy, double baseline_failure_rate,
                             const WaveOrder& hosts, double admitted_fraction, double cap_fraction,
                             absl::Time now) {
  ExposurePlan plan;
  plan.enabled = policy.enabled;
  plan.ring_hosts = hosts.size();
  plan.cap = hosts.CountBelow(cap_fraction);
  const int64_t before = hosts.CountBelow(admitted_fraction);
  const WaveOrder::Tally admitted = hosts.TallyBelow(admitted_fraction);
  plan.loaded = admitted.loaded;
  plan.failed = admitted.failed;
  plan.proven = admitted.proven;
  plan.unproven = plan.loaded - plan.proven - plan.failed;
  plan.allowed_failures = AllowedFailures(plan.loaded, baseline_failure_rate);
  plan.frozen = policy.enabled && plan.failed > plan.allowed_failures;

  int64_t target = before;
  if (!policy.enabled) {
    target = plan.cap;
  } else if (!plan.frozen) {
    target = GrowthTarget(policy, plan.cap, before, plan.proven);
  }
  double fraction = admitted_fraction;
  if (target >= plan.cap) {
    fraction = std::max(fraction, cap_fraction);
  } else if (target > 0) {
    fraction = std::max(fraction, (hosts.PositionAt(target - 1) + hosts.PositionAt(target)) / 2);
  }
  plan.admitted_fraction = fraction;
  plan.admitted = hosts.CountBelow(fraction);
  // A ring smaller than the first step is admitted whole even while no host counts yet: the
  // bound moves, so it is stored, and hosts that enroll during the stage are let in.
  plan.grew = plan.admitted > before || fraction > admitted_fraction;
  plan.complete = fraction >= cap_fraction;

  if (policy.enabled && !plan.complete && !plan.frozen) {
    plan.next_step = GrowthTarget(policy, plan.cap, plan.admitted, plan.proven + 1);
    if (admitted.next_proof.has_value()) {
      plan.next_step_at = std::max(now, *admitted.next_proof);
    }
  }
  return plan;
}

ExposurePlan PlanExposure(const SlowStartPolicy& policy, double baseline_failure_rate,
                          std::vector<ExposureHost> hosts, double admitted_fraction,
                          double cap_fraction, absl::Time now) {
  return PlanInWaveOrder(policy, baseline_failure_rate,
                         SortedHosts(std::move(hosts), policy.probation), admitted_fraction,
                         cap_fraction, now);
}

void HoldForExposure(const ExposurePlan& plan, Decision& decision) {
  if (!plan.enabled || plan.complete || decision.kind == Decision::Kind::kHalt ||
      decision.kind == Decision::Kind::kRollback) {
    return;
  }
  std::string need =
      absl::StrCat("exposure: ", plan.admitted, " of ", plan.cap, " hosts admitted (slow start)");
  if (plan.frozen) {
    absl::StrAppend(&need, ", growth frozen: ", plan.failed, " failed > ", plan.allowed_failures,
                    " allowed");
  } else if (plan.next_step_at.has_value()) {
    absl::StrAppend(&need, ", next ", plan.next_step, " at ", When(*plan.next_step_at));
  }
  Evidence& e = decision.evidence;
  // A passed gate under manual promotion lists the manual step last; the budget comes first.
  auto manual = std::find_if(e.waiting_for.begin(), e.waiting_for.end(), [](const std::string& w) {
    return absl::StartsWith(w, "manual promotion");
  });
  e.waiting_for.insert(manual, std::move(need));
  if (decision.kind == Decision::Kind::kPromote || decision.gate_passed) {
    decision.kind = Decision::Kind::kWait;
    decision.reason = Decision::Reason::kGatePending;
    decision.gate_passed = false;
  }
  decision.summary = absl::StrCat("wait: waiting for ", absl::StrJoin(e.waiting_for, "; "));
}

std::string ExposureText(const ExposurePlan& plan) {
  if (!plan.enabled) {
    return "slow start off";
  }
  std::string out = absl::StrFormat(
      "%d of %d hosts admitted (%.1f%% of the ring), %d proven, %d unproven in flight, %d failed",
      plan.admitted, plan.cap, plan.ring_hosts > 0 ? 100.0 * plan.admitted / plan.ring_hosts : 0.0,
      plan.proven, plan.unproven, plan.failed);
  if (plan.complete) {
    absl::StrAppend(&out, "; all admitted");
  } else if (plan.frozen) {
    absl::StrAppend(&out, "; growth frozen (", plan.failed, " failed > ", plan.allowed_failures,
                    " allowed)");
  } else if (plan.next_step_at.has_value()) {
    absl::StrAppend(&out, "; next step ", plan.next_step, " hosts at ", When(*plan.next_step_at));
  } else {
    absl::StrAppend(&out, "; next step ", plan.next_step,
                    " hosts once admitted hosts report the version");
  }
  return out;
}

}  // namespace ringwarden
