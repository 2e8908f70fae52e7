#include "server/metrics.h"

namespace ringwarden {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

}  // namespace

Metrics::Metrics(prometheus::Registry& registry)
    : rpc_requests_(prometheus::BuildCounter()
                        .Name("ringwarden_rpc_requests_total")
                        .Help("gRPC calls handled, by method and status code.")
                        .Register(registry)),
      rpc_duration_(prometheus::BuildHistogram()
                        .Name("ringwarden_rpc_duration_seconds")
                        .Help("gRPC call latency by method.")
                        .Register(registry)) {
  prometheus::BuildGauge()
      .Name("ringwarden_build_info")
      .Help("Build of the running server; value is always 1.")
      .Register(registry)
      .Add({{"version", "0.1.0"}})
      .Set(1);
  telemetry_queue_rows_ = &prometheus::BuildGauge()
                               .Name("ringwarden_telemetry_queue_rows")
                               .Help("Telemetry rows waiting to be written to the database.")
                               .Register(registry)
                               .Add({});
  telemetry_rows_written_ = &prometheus::BuildGauge()
                                 .Name("ringwarden_telemetry_rows_written")
                                 .Help("Telemetry rows written to the database since start.")
                                 .Register(registry)
                                 .Add({});
  admin_queue_depth_ = &prometheus::BuildGauge()
                            .Name("ringwarden_admin_queue_depth")
                            .Help("Admin calls waiting for a database worker.")
                            .Register(registry)
                            .Add({});
  emergency_stop_active_ = &prometheus::BuildGauge()
                                .Name("ringwarden_emergency_stop_active")
                                .Help("1 while an emergency stop freezes every rollout.")
                                .Register(registry)
                                .Add({});
  snapshot_refresh_errors_ =
      &prometheus::BuildCounter()
           .Name("ringwarden_snapshot_refresh_errors_total")
           .Help("Failed rebuilds of the assignment snapshot (database unreachable).")
           .Register(registry)
           .Add({});
  telemetry_dropped_ = &prometheus::BuildCounter()
                           .Name("ringwarden_telemetry_dropped_rows_total")
                           .Help("Telemetry rows refused because the write buffer was full.")
                           .Register(registry)
                           .Add({});
  leader_ = &prometheus::BuildGauge()
                 .Name("ringwarden_controller_leader")
                 .Help("1 while this replica holds the controller leadership.")
                 .Register(registry)
                 .Add({});
  auto& decisions = prometheus::BuildCounter()
                        .Name("ringwarden_decisions_total")
                        .Help("Controller decisions by kind (promote, wait, halt, rollback).")
                        .Register(registry);
  for (Decision::Kind kind : {Decision::Kind::kPromote, Decision::Kind::kWait,
                              Decision::Kind::kHalt, Decision::Kind::kRollback}) {
    decisions_[static_cast<int>(kind)] =
        &decisions.Add({{"kind", std::string(DecisionKindName(kind))}});
  }
  time_to_auto_stop_ =
      &prometheus::BuildHistogram()
           .Name("ringwarden_auto_stop_seconds")
           .Help("Seconds from the first apply of a version to its automatic halt or rollback.")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{5, 15, 30, 60, 120, 300, 600, 1200,
                                                            1800, 3600, 7200});
  snapshot_age_seconds_ = &prometheus::BuildGauge()
                               .Name("ringwarden_snapshot_age_seconds")
                               .Help("Seconds since the assignment snapshot was last rebuilt.")
                               .Register(registry)
                               .Add({});
}

void Metrics::ObserveRpc(absl::string_view method, absl::string_view code, double seconds) {
  prometheus::Counter* counter;
  prometheus::Histogram* histogram;
  {
    absl::MutexLock lock(&mu_);
    auto key = std::make_pair(std::string(method), std::string(code));
    auto it = rpc_counters_.find(key);
    if (it == rpc_counters_.end()) {
      it = rpc_counters_
               .emplace(key, &rpc_requests_.Add({{"method", key.first}, {"code", key.second}}))
               .first;
    }
    counter = it->second;
    auto h = rpc_histograms_.find(key.first);
    if (h == rpc_histograms_.end()) {
      h = rpc_histograms_
              .emplace(key.first, &rpc_duration_.Add({{"method", key.first}}, LatencyBuckets()))
              .first;
    }
    histogram = h->second;
  }
  counter->Increment();
  histogram->Observe(seconds);
}

}  // namespace ringwarden
