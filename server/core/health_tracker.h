// health_tracker.h: the leader's in-memory evidence of every active rollout.
//
// Reading every agent of a channel each period costs seconds at a million
// agents. The tracker instead loads a rollout's evidence from the store once,
// then follows the store's change feed (HealthSource::ReadHealthChanges): each
// period it re-reads only the rows the feed named since the last period (a
// heartbeat needs no re-read: the feed carries its values) and recomputes those
// agents' ledger records from their complete rows, the rest coming from memory
// (FeedAgent), so the ledgers equal what a full read would build. The other replicas' writes reach
// it the same way as its own. A change of pins reloads the rollout; a new stage
// window rebuilds its stage ledger from memory; a feed not read for longer than
// `stale_after` (it may have been trimmed) reloads everything, and so does every
// `reload_every`, the safety net.
//
// Memory: the rows of every agent of a tracked channel and one or two ledger
// records per agent, a few hundred bytes per agent.
// Not thread-safe: the controller's loop owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/core/health_feed.h"
#include "server/domain/decision_policy.h"
#include "server/domain/health_ledger.h"
#include "server/domain/wave_exposure.h"
#include "server/storage/records.h"
#include "server/storage/store.h"

namespace ringwarden {

struct HealthTrackerOptions {
  // A feed not read for this long is not trusted: everything is loaded again.
  absl::Duration stale_after = absl::Minutes(2);
  // Everything is loaded again this often anyway: the feed reads up to the oldest writing
  // transaction still open, so one left open would hold it back; this bounds that.
  absl::Duration reload_every = absl::Minutes(10);
  // Changes older than this are trimmed from the store, once per `trim_every`.
  absl::Duration keep_changes = absl::Minutes(10);
  absl::Duration trim_every = absl::Minutes(1);
  // Agents re-read per query, so one period's statement stays bounded.
  size_t max_agents_per_read = 20000;
};

// WaveKey is what the stage ring's exposure view was filed under.
struct WaveKey {
  Ring ring = Ring::kCanary;
  std::string seed;
  absl::Duration silence_timeout;
  absl::Duration probation;
  friend bool operator==(const WaveKey& a, const WaveKey& b) {
    return a.ring == b.ring && a.seed == b.seed && a.silence_timeout == b.silence_timeout &&
           a.probation == b.probation;
  }
};

// ApplyBound is the earliest download or apply report at or after `window` (FirstApply), or
// with `latest` the latest of all (LastApply), kept as agents change.
struct ApplyBound {
  absl::Time window;
  bool latest = false;
  std::optional<absl::Time> value;
};

// TrackedHealth is one rollout's evidence and what the controller reads of it each period, kept
// as agents change so that a period costs the agents that changed.
struct TrackedHealth {
  EvidenceByAgent evidence;
  absl::Time window_start;            // of `stage`: the stage's start
  HealthLedger stage;                 // from window_start
  std::optional<HealthLedger> whole;  // from the rollout's creation, built when first asked
  std::optional<WaveExposure> wave;   // the stage ring for the exposure budget, built when asked
  WaveKey wave_key;
  int64_t targeted[kRingCount] = {0, 0, 0};  // agents of each ring in `evidence`
  std::vector<ApplyBound> apply_bounds;      // one per window asked
};

// HealthTrackerStats says what the tracker did, for tests and benchmarks.
struct HealthTrackerStats {
  int64_t full_loads = 0;          // rollouts read whole from the store
  int64_t stage_rebuilds = 0;      // stage ledgers rebuilt from memory
  int64_t agents_reread = 0;       // rows of agents re-read because the feed named them, per kind
  int64_t heartbeats_applied = 0;  // heartbeats applied from the feed's values, no re-read
  int64_t syncs = 0;               // feed reads
  int64_t changes_read = 0;        // agents the feed named, per kind, over all reads
  int64_t wave_builds = 0;         // exposure views built from every agent of the stage ring
  int64_t apply_scans = 0;         // first or last apply found by reading every agent's rows
};

class HealthTracker {
 public:
  HealthTracker(HealthSource& source, const Clock& clock, HealthTrackerOptions options = {});
  HealthTracker(const HealthTracker&) = delete;
  HealthTracker& operator=(const HealthTracker&) = delete;

  // Sync reads the feed and brings every tracked rollout up to date. Call it
  // once per period before Track. On error nothing is lost: the same changes
  // are read again next time.
  absl::Status Sync();

  // Track returns `rollout`'s evidence and stage ledger as of the last Sync,
  // loading it from the store the first time or when `pins` changed.
  // `health_events` is the rollout's policy's (fixed per rollout).
  absl::StatusOr<TrackedHealth*> Track(const RolloutRecord& rollout,
                                       const std::vector<LabelPin>& pins,
                                       const HealthEventPolicy& health_events);

  // Whole returns `tracked`'s ledger over the whole rollout, building it once.
  HealthLedger& Whole(TrackedHealth& tracked, const RolloutRecord& rollout,
                      const HealthEventPolicy& health_events);

  // Exposure is ExposureFor(tracked.evidence, tracked.stage, ...) from the stage ring's hosts
  // kept by wave bucket: built on the first call, or when the stage, ring, seed, silence timeout
  // or probation changed; then each changed agent is refiled.
  ExposurePlan Exposure(TrackedHealth& tracked, const RolloutRecord& rollout,
                        const RolloutPolicy& policy, absl::string_view seed, absl::Time now);

  // FirstApply and LastApply are health_feed.h's, over `tracked.evidence`, kept as agents change.
  std::optional<absl::Time> FirstApply(TrackedHealth& tracked, absl::Time window_start);
  std::optional<absl::Time> LastApply(TrackedHealth& tracked);

  // Retain forgets every rollout not in `rollout_ids` (finished ones).
  void Retain(const std::set<std::string>& rollout_ids);

  // Clear forgets everything; the next Sync starts over (leadership lost).
  void Clear();

  const HealthTrackerStats& stats() const { return stats_; }
  size_t tracked_rollouts() const { return rollouts_.size(); }

  // held_back is how long the feed's horizon has stood at one transaction still running, from
  // the first read that found it there to the last Sync (zero while the horizon moves). The
  // evidence misses every write that ended since that transaction began, until it ends or
  // `reload_every` reads everything again. Seen at the reads only: up to a period short.
  absl::Duration held_back() const;

 private:
  struct Tracked {
    HealthQuery query;
    RolloutRecord rollout;
    HealthEventPolicy health_events;
    TrackedHealth health;
  };
  // Refresh re-reads the rows `changed` names for `t` and recomputes those agents' records.
  // Recompute feeds `evidence`, the agent's complete rows, into `t`'s ledgers afresh.
  void Recompute(Tracked& t, const std::string& agent_id, const AgentEvidence& evidence);
  // Leave takes an agent's evidence out of the ring counts and the apply bounds before its rows
  // change; Enter puts the new evidence in.
  static void Leave(TrackedHealth& h, const AgentEvidence& before);
  static void Enter(TrackedHealth& h, const AgentEvidence& after);
  // RefileWave refiles one agent in the exposure view after its stage ledger record changed.
  static void RefileWave(TrackedHealth& h, const RolloutRecord& rollout,
                         const std::string& agent_id, const AgentEvidence& evidence);
  std::optional<absl::Time> Bound(TrackedHealth& tracked, absl::Time window, bool latest);
  // Heartbeats in `seen` are applied from their values.
  absl::Status Refresh(Tracked& t, const HealthAgents& changed,
                       const std::vector<SeenChange>& seen);
  // NoteHorizon keeps when the horizon of `changes` was first found held open.
  void NoteHorizon(const HealthChanges& changes, absl::Time now);

  HealthSource& source_;
  const Clock& clock_;
  const HealthTrackerOptions options_;
  std::optional<uint64_t> horizon_;  // unset: the next Sync starts over
  absl::Time last_sync_;
  absl::Time started_at_;  // of the current horizon
  absl::Time last_trim_ = absl::InfinitePast();
  absl::flat_hash_map<std::string, Tracked> rollouts_;
  HealthTrackerStats stats_;
  // The horizon last found held open and the time of the first read that found it so; kept
  // across Clear, since a reload reads at the same horizon.
  std::optional<uint64_t> held_horizon_;
  absl::Time held_since_;
};

}  // namespace ringwarden
