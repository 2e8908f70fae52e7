// health_ledger.h: what agents reported after one rollout's version reached them, condensed per
// ring into the counts the decision engine (decision.h) judges.
//
// One HealthLedger per rollout, owned by the controller and fed from telemetry. Not thread-safe:
// the caller serializes every call, Summarize included (it advances the silence index). Memory is
// a ~120-byte record per agent plus its id, and once summarized about 16 bytes per agent and
// ring summarized in its silence index: 10^5 agents with UUID ids take about 20 MB.
//
// Summarize costs what changed since the last call, not the ledger: each record mutation moves
// its own contribution in per-ring tallies, and a time-ordered silence index per summarized ring
// moves the agents whose silence timeout ran out since. The first call (or one with another
// window or timeout) walks every record once.
//
//   HealthLedger ledger;
//   ledger.RecordApply("host-1", Ring::kCanary, ApplyOutcome::kApplied, t0);
//   ledger.RecordHeartbeat("host-1", Ring::kCanary, /*has_new_version=*/true, t1);
//   RingHealth h = ledger.Summarize(Ring::kCanary, now, absl::Minutes(15), stage_started);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/outcomes.h"
#include "server/domain/ring.h"

namespace ringwarden {

// RingHealth is one ring's health at one instant. Every agent is counted once: apply_failed,
// crashed, reverted, unhealthy, silent, healthy and pending partition `attempted` (an agent lands
// in the first of them that fits, in that order).
struct RingHealth {
  // Treated group: agents of the ring that tried the new version.
  int64_t attempted = 0;        // distinct agents that tried to apply (succeeded or not)
  int64_t applied = 0;          // of those, applied successfully
  int64_t healthy = 0;          // applied, heartbeat on the new version within the silence timeout
  int64_t pending = 0;          // applied, no heartbeat since, silence timeout not yet over
  int64_t crashed = 0;          // crash reported on the new version: the two kinds below
  int64_t process_crashed = 0;  // of those, first report a process crash
  int64_t unclean_shutdowns = 0;  // of those, first report an unclean shutdown found at boot
  int64_t reverted = 0;           // applied, then found back on the previous version
  int64_t unhealthy = 0;     // health events on the new version weigh at least the policy threshold
  int64_t silent = 0;        // applied, then nothing heard for longer than the silence timeout
  int64_t apply_failed = 0;  // apply or load check failed
  int64_t failed = 0;        // crashed + reverted + unhealthy + silent + apply_failed
  int64_t rejected = 0;      // refused the signature; not part of `attempted`
  int64_t crash_reports = 0;  // crash reports on the new version, repeats included
  int64_t health_events = 0;  // health events on the new version, repeats and weight 0 included
  // Agent-time on the new version, from apply until failure (or now).
  absl::Duration exposure = absl::ZeroDuration();

  // Control group: agents of the control rings on the previous version during the window.
  int64_t control_agents = 0;
  int64_t control_failed = 0;  // crashed, unhealthy or silent on the previous version
  // Agent-time on the previous version inside the window, until failure (or apply, or now).
  absl::Duration control_exposure = absl::ZeroDuration();
};

// HealthLedger keeps one compact record per agent and summarizes them on demand.
//
// Timestamps come from the caller (the controller's injected clock or the report's time); events
// may arrive out of order. Summarize() assumes `now` is not earlier than the recorded events.
class HealthLedger {
 public:
  // A host whose health events on a version weigh `soft_failure_threshold` or more failed on it
  // (HealthEventPolicy).
  explicit HealthLedger(double soft_failure_threshold = 1.0)
      : soft_failure_threshold_(soft_failure_threshold) {}
  HealthLedger(const HealthLedger&) = delete;
  HealthLedger& operator=(const HealthLedger&) = delete;
  // A moved-from ledger may only be assigned to or destroyed.
  HealthLedger(HealthLedger&&) = default;
  HealthLedger& operator=(HealthLedger&&) = default;

  // RecordApply notes an apply result. Idempotent: repeating a report changes nothing, and the
  // first attempt's time is kept. An apply failure sticks even if a retry succeeds later, because
  // the version did fail on that machine once.
  void RecordApply(absl::string_view agent_id, Ring ring, ApplyOutcome outcome, absl::Time at);

  // RecordHeartbeat notes that the agent was alive at `at`. With `has_new_version` it proves the
  // version applied (an apply report lost in transit is inferred). Without it, the agent is on the
  // previous version: control if it has not applied yet, reverted if a heartbeat on the new
  // version came before `at`.
  void RecordHeartbeat(absl::string_view agent_id, Ring ring, bool has_new_version, absl::Time at);

  // RecordCrash notes a crash (or an unclean shutdown found at next boot) at `at`. On the new
  // version it is a treated failure; on the previous version it counts for the control group.
  // `kind` keeps process crashes and unclean shutdowns apart in the evidence.
  void RecordCrash(absl::string_view agent_id, Ring ring, absl::Time at, bool on_new_version,
                   CrashKind kind = CrashKind::kProcessCrash);

  // RecordHealthEvent notes a health event of `weight` (HealthEventPolicy::WeightOf) at `at`, on
  // the new version or the previous one; on the new version it is also a sign of life. Once a
  // host's events on one version weigh the threshold, it is unhealthy there from the event that
  // crossed it: feed events in time order (BuildLedger does) for that instant to be exact.
  void RecordHealthEvent(absl::string_view agent_id, Ring ring, double weight, absl::Time at,
                         bool on_new_version);

  // RecordControlHeartbeat and RecordControlCrash are RecordHeartbeat and RecordCrash for an agent
  // known to run the previous version.
  void RecordControlHeartbeat(absl::string_view agent_id, Ring ring, absl::Time at) {
    RecordHeartbeat(agent_id, ring, /*has_new_version=*/false, at);
  }
  void RecordControlCrash(absl::string_view agent_id, Ring ring, absl::Time at) {
    RecordCrash(agent_id, ring, at, /*on_new_version=*/false);
  }

  // Summarize returns `ring`'s health at `now`. An applied agent is silent when nothing came from
  // it on the new version for longer than `silence_timeout`. The control group is the agents of
  // `control_rings` (default: `ring` itself) seen on the previous version at or after
  // `window_start`; later rings, which have not been offered the version yet, make a larger and
  // cleaner control for the canary. Costs the changes since the last call of the same window and
  // timeout; falls back to SummarizeByScan when an event is later than `now` or `now` is not
  // after `window_start`.
  RingHealth Summarize(Ring ring, absl::Time now, absl::Duration silence_timeout,
                       absl::Time window_start, absl::Span<const Ring> control_rings = {});

  // SummarizeByScan is Summarize by one walk over every record: the definition Summarize keeps
  // incrementally, and the reference its tests compare against. O(agents in the ledger).
  RingHealth SummarizeByScan(Ring ring, absl::Time now, absl::Duration silence_timeout,
                             absl::Time window_start,
                             absl::Span<const Ring> control_rings = {}) const;

  // Standing is what one agent's record says apart from the clock: whether it tried the version,
  // whether it failed on it whatever the clock says, and its last sign of life on it (in
  // microseconds since the epoch). Verdict adds the clock.
  struct Standing {
    bool attempted = false;
    bool failed = false;
    int64_t last_sign_us = 0;
    bool healthy = false;  // not failed, and a heartbeat on the version since it applied
  };
  Standing StandingOf(absl::string_view agent_id) const;

  // AgentVerdict is one agent's standing by the rules of Summarize.
  enum class AgentVerdict { kUntried, kPending, kHealthy, kFailed };
  // Verdict classifies one agent at `now` exactly as Summarize counts it (untried: no attempt on
  // record, or only a refused signature).
  AgentVerdict Verdict(absl::string_view agent_id, absl::Time now,
                       absl::Duration silence_timeout) const;

  // Forget drops the agent's record, so its evidence can be fed again from scratch (the leader
  // recomputes an agent whose rows changed; health_tracker.h).
  void Forget(absl::string_view agent_id);

  // Work counts what Summarize did, for tests and benchmarks: walks of every record to rebuild
  // the tallies or a silence index, and whole summaries by scan.
  struct Work {
    uint64_t tally_rebuilds = 0;
    uint64_t index_rebuilds = 0;
    uint64_t scans = 0;
  };
  const Work& work() const { return work_; }

  // agent_count returns how many agents have a record.
  size_t agent_count() const { return slots_.size(); }

 private:
  // Times are microseconds since the Unix epoch so a record stays small; kNever marks "no event".
  static constexpr int64_t kNever = INT64_MIN;

  struct AgentRecord {
    int64_t applied_at = kNever;         // first apply attempt (or first sign of the version)
    int64_t last_heartbeat_at = kNever;  // latest heartbeat on the new version
    int64_t crashed_at = kNever;         // first crash on the new version
    int64_t reverted_at = kNever;        // first sign of being back on the previous version
    int64_t control_first_seen_at = kNever;
    int64_t control_last_seen_at = kNever;
    int64_t control_first_crash_at = kNever;
    int64_t control_last_crash_at = kNever;
    int64_t unhealthy_at = kNever;  // health events on the new version crossed the threshold
    int64_t control_unhealthy_at = kNever;
    double soft_score = 0;  // weight of health events on the new version
    double control_soft_score = 0;
    int32_t crash_count = 0;  // crashes on the new version, duplicates included
    int32_t health_event_count = 0;
    Ring ring = Ring::kCanary;
    CrashKind crash_kind = CrashKind::kUnspecified;  // of the first crash on the new version
    bool attempted = false;
    bool apply_failed = false;  // apply or load check failed
    bool rejected = false;
    bool in_use = false;       // the slot holds an agent
    uint8_t silent_under = 0;  // bit r: counted silent by the silence index of ring r
    uint32_t stamp = 0;        // moves on every change, so stale index entries are skipped
  };

  // Live is how a record moves with the clock alone: applied and not failed (treated), or seen
  // on the previous version and not failed (control). `start` is where its exposure starts,
  // `key` its last sign of life, both in microseconds; `healthy` (treated only) that it sent a
  // heartbeat on the new version since applying.
  enum class LiveKind { kNone, kTreated, kControl };
  struct Live {
    LiveKind kind = LiveKind::kNone;
    int64_t start = 0;
    int64_t key = 0;
    bool healthy = false;
  };

  // LiveSum adds up live agents.
  struct LiveSum {
    int64_t count = 0;
    int64_t healthy = 0;
    __int128 start_sum = 0;
    __int128 key_sum = 0;
    void Add(const Live& live, int sign);
  };

  // Tally is one ring's contribution that does not depend on the clock, for one window.
  struct Tally {
    RingHealth fixed;                // the treated counts that do not move with the clock
    __int128 fixed_exposure_us = 0;  // of the treated that failed
    int64_t control_agents = 0;      // control agents settled: applied later, or failed
    int64_t control_failed = 0;
    __int128 fixed_control_exposure_us = 0;
    LiveSum treated;
    LiveSum control;
  };

  // SilenceIndex judges silence for Summarize(ring) at one timeout: a min-heap of the live agents
  // by last sign of life, popped as the threshold (now - timeout) passes them.
  struct IndexEntry {
    int64_t key;
    uint32_t slot;
    uint32_t stamp;
    bool operator>(const IndexEntry& o) const { return key > o.key; }
  };
  struct SilenceIndex {
    bool valid = false;
    int64_t timeout_us = 0;
    int64_t now_us = 0;
    int64_t threshold_us = 0;  // keys below it are silent
    std::vector<IndexEntry> heap;
    LiveSum treated_silent;              // agents of the index's ring
    LiveSum control_silent[kRingCount];  // per ring of the agent
  };

  Live LiveOf(const AgentRecord& record) const;
  // FailedOnNew reports a failure on the new version that no clock undoes.
  static bool FailedOnNew(const AgentRecord& record);
  // Live sums that `live` (of an agent of ring `ring`) counts in: the ring's tally, or an
  // index's silent ones.
  LiveSum& TallyOf(const Live& live, int ring) {
    return live.kind == LiveKind::kTreated ? tallies_[ring].treated : tallies_[ring].control;
  }
  static LiveSum& SilentOf(SilenceIndex& index, const Live& live, int ring) {
    return live.kind == LiveKind::kTreated ? index.treated_silent : index.control_silent[ring];
  }

  // Touch finds or makes the agent's record and retires its contribution: the caller changes it,
  // then calls Admit.
  AgentRecord& Touch(absl::string_view agent_id, Ring ring, int64_t at);
  // Retire takes `record`'s contribution out of the tallies and indexes; Admit puts it back.
  void Retire(AgentRecord& record);
  void Admit(AgentRecord& record);
  void AddFixed(const AgentRecord& record, int sign);
  void PlaceInIndex(const Live& live, uint32_t slot, int ring_index);
  // Index returns the silence index of `ring` at `now_us`, advanced or rebuilt.
  SilenceIndex& Index(Ring ring, int64_t now_us, int64_t timeout_us);
  void RebuildTallies(int64_t window_us);
  void RebuildIndex(int ring_index, int64_t now_us, int64_t timeout_us);
  static void MarkAttempted(AgentRecord& record, int64_t at);
  static void SeenOnPrevious(AgentRecord& record, int64_t at);
  // AddSoftWeight adds a health event's weight to `score`; `crossed_at` keeps when it first
  // reached the threshold.
  void AddSoftWeight(double weight, int64_t at, double& score, int64_t& crossed_at) const;

  double soft_failure_threshold_;
  absl::flat_hash_map<std::string, uint32_t> slots_;
  std::vector<AgentRecord> records_;
  std::vector<uint32_t> free_slots_;
  int64_t latest_event_us_ = kNever;  // no record holds a later time
  // Kept from the first Summarize on, for the window it was called with.
  bool tallied_ = false;
  int64_t tally_window_us_ = 0;
  Tally tallies_[kRingCount];
  SilenceIndex indexes_[kRingCount];
  Work work_;
};

}  // namespace ringwarden
