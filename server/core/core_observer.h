// core_observer.h: how the core reports what it does, without knowing metrics.
//
// The controller tells a ControllerObserver about leadership, each decision
// and each automatic stop; the transport's Metrics implements it with
// Prometheus series, tests with a recorder. Same pattern as StoreObserver.
// Thread-safety: implementations must accept calls from the controller thread
// while other threads read them.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "server/domain/decision.h"
#include "server/domain/exposure.h"
#include "server/domain/ring.h"
#include "server/storage/records.h"

namespace ringwarden {

// TrackerReport is what the leader's health tracker (health_tracker.h) has done so
// far, reported after each period's read of the change feed.
struct TrackerReport {
  int64_t full_loads = 0;          // rollouts read whole from the store
  int64_t agents_reread = 0;       // agent rows re-read because the feed named them
  int64_t heartbeats_applied = 0;  // heartbeats applied from the feed's values
  int64_t tracked_rollouts = 0;    // rollouts whose evidence is held in memory now
  absl::Duration sync_time;        // this period's feed read and update
  absl::Duration held_back;        // HealthTracker::held_back() after this period's read
};

class ControllerObserver {
 public:
  virtual ~ControllerObserver() = default;
  // OnLeadership reports, every period, whether this replica may act.
  virtual void OnLeadership(bool leader) = 0;
  // OnJudgedRollouts names the rollouts the leader judges now; series of others go away.
  virtual void OnJudgedRollouts(const std::set<std::string>& rollout_ids) = 0;
  // OnDecision reports one evaluation of `ring`; `targeted` counts its unpinned agents.
  virtual void OnDecision(const RolloutRecord& rollout, Ring ring, int64_t targeted,
                          const Decision& decision, absl::Duration stage_age,
                          absl::Duration min_bake) = 0;
  // OnAutoStop reports an automatic halt or rollback that committed, with the
  // time since the version was first applied when known.
  virtual void OnAutoStop(Decision::Kind kind, std::optional<absl::Duration> since_first_apply) = 0;
  // OnHealthTracker reports the tracker after each period's feed read (leader only).
  virtual void OnHealthTracker(const TrackerReport& report) { (void)report; }
  // OnExposure reports the exposure budget of the rollout's stage ring after one evaluation.
  virtual void OnExposure(const RolloutRecord& rollout, Ring ring, const ExposurePlan& plan) {
    (void)rollout;
    (void)ring;
    (void)plan;
  }
};

}  // namespace ringwarden
