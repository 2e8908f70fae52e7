// metrics.h: the server's Prometheus metric families, built once.
//
// main() owns the prometheus::Registry; Metrics registers every family in its
// constructor and hands out pre-labelled series so hot paths only increment.
// No label carries an agent id. Thread-safety: prometheus-cpp metrics are
// thread-safe; the per-method map is fixed after construction.
#pragma once

#include <map>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/strings/string_view.h"
#include "server/domain/decision.h"
#include "absl/synchronization/mutex.h"

namespace ringwarden {

class Metrics {
 public:
  explicit Metrics(prometheus::Registry& registry);

  // ObserveRpc counts one finished call of `method` with its gRPC code name.
  void ObserveRpc(absl::string_view method, absl::string_view code, double seconds);

  prometheus::Gauge& telemetry_queue_rows() { return *telemetry_queue_rows_; }
  prometheus::Gauge& telemetry_rows_written() { return *telemetry_rows_written_; }
  prometheus::Gauge& admin_queue_depth() { return *admin_queue_depth_; }
  prometheus::Gauge& emergency_stop_active() { return *emergency_stop_active_; }
  prometheus::Counter& snapshot_refresh_errors() { return *snapshot_refresh_errors_; }
  prometheus::Counter& telemetry_dropped() { return *telemetry_dropped_; }
  prometheus::Gauge& leader() { return *leader_; }
  // decisions counts controller decisions by kind.
  prometheus::Counter& decisions(Decision::Kind kind) { return *decisions_[static_cast<int>(kind)]; }
  // time_to_auto_stop observes seconds from the first apply to an automatic halt or rollback.
  prometheus::Histogram& time_to_auto_stop() { return *time_to_auto_stop_; }
  prometheus::Gauge& snapshot_age_seconds() { return *snapshot_age_seconds_; }

 private:
  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, prometheus::Counter*> rpc_counters_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Histogram*> rpc_histograms_ ABSL_GUARDED_BY(mu_);
  prometheus::Gauge* telemetry_queue_rows_;
  prometheus::Gauge* telemetry_rows_written_;
  prometheus::Gauge* admin_queue_depth_;
  prometheus::Gauge* emergency_stop_active_;
  prometheus::Counter* snapshot_refresh_errors_;
  prometheus::Counter* telemetry_dropped_;
  prometheus::Gauge* leader_;
  prometheus::Counter* decisions_[4];
  prometheus::Histogram* time_to_auto_stop_;
  prometheus::Gauge* snapshot_age_seconds_;
};

}  // namespace ringwarden
