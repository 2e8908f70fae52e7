// metrics.h: the server's Prometheus metric families, built once.
//
// main() owns the prometheus::Registry; Metrics registers every family in its
// constructor and hands out pre-labelled series so hot paths only increment.
// No label carries an agent id; per-rollout series exist only while the
// rollout is active and are removed when it finishes.
// Thread-safety: prometheus-cpp metrics are thread-safe; the label caches are
// guarded by mu_.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/core_observer.h"
#include "server/domain/decision.h"
#include "server/storage/store.h"

namespace ringwarden {

// RefusalReason is why a call was refused before any work: the label of
// ringwarden_requests_refused_total.
enum class RefusalReason {
  kRateLimit,       // the agent's token bucket was empty
  kTelemetryShare,  // the agent held its share of the telemetry queue
  kTelemetryQueue,  // the telemetry queue was full
  kOversized,       // the request exceeded its method's size limit
  kQueueWait,       // the call waited too long for a database worker
  kNotAssigned,     // a download of a version the agent's assignment does not name now
};
inline constexpr int kRefusalReasons = 6;

// SnapshotRefreshCause is why the assignment snapshot was rebuilt: the label of
// ringwarden_snapshot_refreshes_total.
enum class SnapshotRefreshCause {
  kNotified,  // a catalog change was notified (LISTEN/NOTIFY), or the listener reconnected
  kTimer,     // --refresh-interval passed without one: the safety net
  kRetry,     // the refresh before failed
};
inline constexpr int kSnapshotRefreshCauses = 3;

// AssignmentAnswer is how a poll's assignment was answered: the label of
// ringwarden_assignment_answers_total.
enum class AssignmentAnswer {
  kSigned,       // a statement signed for this poll
  kHeldCurrent,  // the statement the agent holds is current; nothing signed
};
inline constexpr int kAssignmentAnswers = 2;

// kStatusCodes: the status codes 0 (OK) to 16 (UNAUTHENTICATED).
inline constexpr size_t kStatusCodes = 17;

class Metrics final : public StoreObserver, public ControllerObserver {
 public:
  explicit Metrics(prometheus::Registry& registry);

  // ObserveRpc counts one finished call of `method` with its status code. It is on every
  // call's path: once a method's series exist it takes a shared lock and allocates nothing.
  void ObserveRpc(absl::string_view method, absl::StatusCode code, double seconds);
  // OnOperation records database latency and errors (StoreObserver).
  void OnOperation(const char* operation, absl::Duration latency, absl::StatusCode code) override;
  // UpdateFleetStats sets the rollout and agent count gauges.
  void UpdateFleetStats(const FleetStats& stats);
  // UpdateRolloutRing publishes the latest evaluation of one rollout and ring.
  // `targeted` is the number of (unpinned) agents in the ring.
  void UpdateRolloutRing(const RolloutRecord& rollout, Ring ring, int64_t targeted,
                         const Decision& decision, absl::Duration stage_age,
                         absl::Duration min_bake);
  // RetainRollouts drops the per-rollout series of rollouts not in `active`.
  void RetainRollouts(const std::set<std::string>& active);

  // ControllerObserver: leadership, decisions and automatic stops.
  void OnLeadership(bool leader) override {
    leader_->Set(leader ? 1 : 0);
    if (!leader) {
      tracker_rollouts_->Set(0);  // a follower holds no evidence
      tracker_held_back_->Set(0);
    }
  }
  void OnJudgedRollouts(const std::set<std::string>& rollout_ids) override {
    RetainRollouts(rollout_ids);
  }
  void OnDecision(const RolloutRecord& rollout, Ring ring, int64_t targeted,
                  const Decision& decision, absl::Duration stage_age,
                  absl::Duration min_bake) override;
  void OnAutoStop(Decision::Kind kind, std::optional<absl::Duration> since_first_apply) override;
  void OnExposure(const RolloutRecord& rollout, Ring ring, const ExposurePlan& plan) override;
  void OnHealthTracker(const TrackerReport& report) override;
  // AddTelemetryRowsWritten advances the rows-written counter to `total`.
  void SetTelemetryRowsWritten(int64_t total);

  prometheus::Gauge& telemetry_queue_rows() { return *telemetry_queue_rows_; }
  prometheus::Gauge& admin_queue_depth() { return *admin_queue_depth_; }
  prometheus::Gauge& emergency_stop_active() { return *emergency_stop_active_; }
  prometheus::Counter& snapshot_refresh_errors() { return *snapshot_refresh_errors_; }
  prometheus::Counter& snapshot_refreshes(SnapshotRefreshCause cause) {
    return *snapshot_refreshes_[static_cast<int>(cause)];
  }
  prometheus::Counter& telemetry_upkeep_errors() { return *telemetry_upkeep_errors_; }
  prometheus::Gauge& snapshot_age_seconds() { return *snapshot_age_seconds_; }
  prometheus::Counter& telemetry_dropped() { return *telemetry_dropped_; }
  prometheus::Counter& telemetry_poison_rows() { return *telemetry_poison_rows_; }
  // requests_refused counts calls refused for `reason`.
  prometheus::Counter& requests_refused(RefusalReason reason) {
    return *requests_refused_[static_cast<int>(reason)];
  }
  // assignments counts answered polls by how their assignment was answered.
  prometheus::Counter& assignments(AssignmentAnswer answer) {
    return *assignments_[static_cast<int>(answer)];
  }
  prometheus::Gauge& leader() { return *leader_; }
  prometheus::Gauge& server_key_trusted() { return *server_key_trusted_; }
  // decisions counts controller decisions by kind.
  prometheus::Counter& decisions(Decision::Kind kind) {
    return *decisions_[static_cast<int>(kind)];
  }
  // auto_stops counts automatic halts (kHalt) and rollbacks (kRollback).
  prometheus::Counter& auto_stops(Decision::Kind kind) {
    return kind == Decision::Kind::kRollback ? *auto_rollbacks_ : *auto_halts_;
  }
  // time_to_auto_stop observes seconds from the first apply to an automatic halt or rollback.
  prometheus::Histogram& time_to_auto_stop() { return *time_to_auto_stop_; }

 private:
  using Labels = std::map<std::string, std::string>;
  // SetGauge sets (creating if needed) one series of `family`, remembering it under `owner`.
  void SetGauge(prometheus::Family<prometheus::Gauge>& family, const Labels& labels, double value,
                const std::string& owner) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Family<prometheus::Histogram>& db_duration_;
  prometheus::Family<prometheus::Counter>& db_errors_;
  prometheus::Family<prometheus::Gauge>& rollouts_;
  prometheus::Family<prometheus::Gauge>& agents_;
  prometheus::Family<prometheus::Gauge>& agents_by_version_;
  prometheus::Family<prometheus::Gauge>& ring_agents_;
  prometheus::Family<prometheus::Gauge>& ring_failure_rate_;
  prometheus::Family<prometheus::Gauge>& ring_control_failure_rate_;
  prometheus::Family<prometheus::Gauge>& ring_decision_;
  prometheus::Family<prometheus::Gauge>& stage_age_;
  prometheus::Family<prometheus::Gauge>& min_bake_;
  prometheus::Family<prometheus::Gauge>& exposure_hosts_;

  absl::Mutex mu_;
  // Per method: its latency histogram and a counter per status code, each made on first use.
  struct RpcSeries {
    prometheus::Histogram* duration = nullptr;
    std::array<prometheus::Counter*, kStatusCodes> by_code{};
  };
  absl::Mutex rpc_mu_;
  absl::flat_hash_map<std::string, RpcSeries> rpc_series_ ABSL_GUARDED_BY(rpc_mu_);
  std::map<std::string, prometheus::Histogram*> db_histograms_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Counter*> db_error_counters_ ABSL_GUARDED_BY(mu_);
  // Series by owner ("fleet" for fleet stats, else a rollout id), so stale ones can be removed.
  struct Series {
    prometheus::Family<prometheus::Gauge>* family;
    prometheus::Gauge* gauge;
  };
  std::map<std::string, std::map<Labels, Series>> owned_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::set<Labels>> touched_ ABSL_GUARDED_BY(mu_);
  int64_t telemetry_rows_written_ ABSL_GUARDED_BY(mu_) = 0;

  prometheus::Gauge* agents_seen_;
  prometheus::Gauge* telemetry_queue_rows_;
  prometheus::Counter* telemetry_rows_written_total_;
  prometheus::Gauge* admin_queue_depth_;
  prometheus::Gauge* emergency_stop_active_;
  prometheus::Counter* snapshot_refresh_errors_;
  prometheus::Counter* snapshot_refreshes_[kSnapshotRefreshCauses];
  prometheus::Counter* telemetry_upkeep_errors_;
  prometheus::Counter* telemetry_dropped_;
  prometheus::Counter* telemetry_poison_rows_;
  prometheus::Counter* requests_refused_[kRefusalReasons];
  prometheus::Counter* assignments_[kAssignmentAnswers];
  prometheus::Gauge* leader_;
  // The leader's health tracker: counters advanced by the growth of its cumulative counts.
  prometheus::Counter* tracker_full_loads_;
  prometheus::Counter* tracker_agents_reread_;
  prometheus::Counter* tracker_heartbeats_applied_;
  prometheus::Gauge* tracker_rollouts_;
  prometheus::Gauge* tracker_sync_seconds_;
  prometheus::Gauge* tracker_held_back_;
  TrackerReport last_tracker_ ABSL_GUARDED_BY(mu_);
  prometheus::Counter* decisions_[4];
  prometheus::Counter* auto_halts_;
  prometheus::Counter* auto_rollbacks_;
  prometheus::Histogram* time_to_auto_stop_;
  prometheus::Gauge* snapshot_age_seconds_;
  prometheus::Gauge* server_key_trusted_;
};

}  // namespace ringwarden
