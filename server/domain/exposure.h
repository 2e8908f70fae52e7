// exposure.h: the exposure budget (slow start) inside a stage.
//
// A version that kills every host on load cannot report, so no statistic stops it before the
// silence timeout; what bounds the damage is how many hosts were let in before anyone proved
// survival. Inside every stage the leader admits the version to the ring's hosts in a fixed
// hash order (WavePosition, the broad waves' order), starting from an absolute number of hosts,
// and grows the admitted set only by a factor of the hosts that proved survival. A failure
// beyond the background the policy allows freezes growth at once.
//
//   ExposurePlan plan = PlanExposure(policy.slow_start, gate.baseline_failure_rate, hosts,
//                                    rollout.admitted_fraction, wave_cap, now);
//   if (plan.admitted_fraction > rollout.admitted_fraction) store.UpdateExposure(...);
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/domain/decision.h"
#include "server/domain/decision_policy.h"

namespace ringwarden {

// kFreezeTail is the chance that background failures alone freeze growth at a given size of the
// admitted set: growth freezes when it holds more failures than the baseline failure rate
// explains at this tail (a binomial upper quantile). With 10 hosts and a 1% baseline three
// failures freeze, with 10 hosts and a 0.1% baseline two do. A failed host never counts as
// proven, so even an allowed failure slows growth.
inline constexpr double kFreezeTail = 0.001;

// AllowedFailures returns the largest number of failures among `hosts` that the background
// `baseline_failure_rate` explains: the smallest k with P(Binomial(hosts, p) > k) <= kFreezeTail.
int64_t AllowedFailures(int64_t hosts, double baseline_failure_rate);

// GrowthTarget returns how many hosts of the stage may be admitted given `proven` hosts that
// proved survival: max(initial_exposure, ceil(proven * growth_factor)), at most proven +
// max_unproven and at most `cap` (the hosts of the stage's share). Never below `admitted`.
int64_t GrowthTarget(const SlowStartPolicy& policy, int64_t cap, int64_t admitted, int64_t proven);

// ExposureHost is one host of the stage ring as the leader sees it.
struct ExposureHost {
  double position = 0;  // WavePosition(seed, agent id), in [0, 1)
  bool loaded = false;  // fetched, applied or reported the version in this stage
  bool failed = false;  // crashed, reverted, silent or failed to apply (HealthLedger)
  // Since when the host has run the version without restarting: the later of its first report
  // of the version and the start of its current boot; nullopt without such a report.
  std::optional<absl::Time> alive_since;
  std::optional<absl::Time> last_seen;  // latest heartbeat
};

// ExposurePlan is the budget at one look, for storage, snapshot, status and metrics.
struct ExposurePlan {
  bool enabled = false;
  int64_t ring_hosts = 0;  // hosts of the stage ring
  int64_t cap = 0;         // hosts of the share the stage may reach (a broad wave), <= ring_hosts
  int64_t admitted = 0;    // hosts admitted after this look
  double admitted_fraction = 0;  // the position below which hosts are admitted
  int64_t loaded = 0;            // admitted hosts that took the version
  int64_t proven = 0;            // admitted hosts that proved survival
  int64_t failed = 0;            // admitted hosts that failed
  int64_t allowed_failures = 0;  // AllowedFailures(loaded, baseline)
  int64_t unproven = 0;          // admitted hosts in flight: loaded, neither proven nor failed
  bool grew = false;             // the admission bound moved up in this look
  bool frozen = false;           // failures beyond the allowance stop growth
  bool complete = false;         // the whole share is admitted; promotion may follow
  // The admitted count once one more host proves survival, and the earliest time one can.
  int64_t next_step = 0;
  std::optional<absl::Time> next_step_at;
};

// WaveOrder is a stage ring's hosts in wave order as a plan reads them: PlanExposure sorts a list
// of hosts, WaveExposure (wave_exposure.h) keeps them by wave bucket as they change.
class WaveOrder {
 public:
  virtual ~WaveOrder() = default;
  // What the hosts below a position bound add up to at one instant.
  struct Tally {
    int64_t loaded = 0;
    int64_t failed = 0;  // loaded and failed
    int64_t proven = 0;
    // The earliest alive_since + probation of a loaded host neither failed nor proven.
    std::optional<absl::Time> next_proof;
  };
  virtual int64_t size() const = 0;
  // CountBelow returns how many hosts have a position below `bound`.
  virtual int64_t CountBelow(double bound) const = 0;
  // PositionAt returns the position of the host at `index` (0-based) in wave order.
  virtual double PositionAt(int64_t index) const = 0;
  virtual Tally TallyBelow(double bound) const = 0;
};

// PlanInWaveOrder is PlanExposure over hosts already in wave order, as of the instant `hosts`
// describes (`now`).
ExposurePlan PlanInWaveOrder(const SlowStartPolicy& policy, double baseline_failure_rate,
                             const WaveOrder& hosts, double admitted_fraction, double cap_fraction,
                             absl::Time now);

// PlanExposure computes the budget of a stage after one look. `hosts` are the stage ring's hosts
// (any order); `admitted_fraction` the stored position bound (0 at stage start); `cap_fraction`
// the share of the ring the stage may reach (the broad wave; 1 otherwise). Admission never
// shrinks. The new bound sits halfway between the last admitted and the first waiting host, so
// that rounding in storage cannot move a host across it. Disabled slow start admits the share.
ExposurePlan PlanExposure(const SlowStartPolicy& policy, double baseline_failure_rate,
                          std::vector<ExposureHost> hosts, double admitted_fraction,
                          double cap_fraction, absl::Time now);

// HoldForExposure turns a promotion into a wait while the stage's share is not all admitted, and
// lists what the budget waits for in the evidence, e.g. "exposure: 40 of 1,502 hosts admitted,
// next 80 at 12:04:10 (slow start)".
void HoldForExposure(const ExposurePlan& plan, Decision& decision);

// ExposureText renders the plan in one line for status and explain.
std::string ExposureText(const ExposurePlan& plan);

}  // namespace ringwarden
