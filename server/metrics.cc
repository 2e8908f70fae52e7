#include "server/metrics.h"

#include "absl/strings/str_cat.h"
#include "server/domain/rollout.h"

namespace ringwarden {
namespace {

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

constexpr const char* kRolloutStates[] = {"PENDING",   "CANARY", "EARLY",       "BROAD",
                                          "COMPLETED", "HALTED", "ROLLED_BACK", "CANCELLED"};

template <typename T>
prometheus::Family<T>& Build(prometheus::Registry& registry, const char* name, const char* help);

template <>
prometheus::Family<prometheus::Gauge>& Build(prometheus::Registry& registry, const char* name,
                                             const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}
template <>
prometheus::Family<prometheus::Counter>& Build(prometheus::Registry& registry, const char* name,
                                               const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}
template <>
prometheus::Family<prometheus::Histogram>& Build(prometheus::Registry& registry, const char* name,
                                                 const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
}

// AddSeriesByLabel adds one series of `family` per value of an enum, with `label` set to the name
// paired with it, and keeps each in `out` at the value's index. One name per slot of `out`.
template <typename Enum, size_t N>
void AddSeriesByLabel(prometheus::Family<prometheus::Counter>& family, const char* label,
                      const std::pair<Enum, const char*> (&names)[N],
                      prometheus::Counter* (&out)[N]) {
  for (const auto& [value, name] : names) {
    out[static_cast<int>(value)] = &family.Add({{label, name}});
  }
}

}  // namespace

Metrics::Metrics(prometheus::Registry& registry)
    : rpc_requests_(Build<prometheus::Counter>(registry, "ringwarden_rpc_requests_total",
                                               "gRPC calls handled, by method and status code.")),
      rpc_duration_(Build<prometheus::Histogram>(registry, "ringwarden_rpc_duration_seconds",
                                                 "gRPC call latency by method.")),
      db_duration_(Build<prometheus::Histogram>(registry,
                                                "ringwarden_db_operation_duration_seconds",
                                                "Database operation latency, retries included.")),
      db_errors_(Build<prometheus::Counter>(registry, "ringwarden_db_errors_total",
                                            "Failed database operations by status code.")),
      rollouts_(Build<prometheus::Gauge>(registry, "ringwarden_rollouts",
                                         "Rollouts by channel and state.")),
      agents_(Build<prometheus::Gauge>(registry, "ringwarden_agents", "Enrolled agents by ring.")),
      agents_by_version_(Build<prometheus::Gauge>(
          registry, "ringwarden_agents_by_version",
          "Agents by the content version they last reported in effect, per channel.")),
      ring_agents_(Build<prometheus::Gauge>(
          registry, "ringwarden_rollout_ring_agents",
          "Agents of an active rollout's evaluated ring by status (targeted, applied, healthy, "
          "crashed, process_crashed, unclean_shutdowns, unhealthy, silent, failed).")),
      ring_failure_rate_(Build<prometheus::Gauge>(
          registry, "ringwarden_rollout_ring_failure_rate",
          "Share of the agents that tried the version and failed (crash, revert, health events "
          "over the policy threshold, silence, apply failure).")),
      ring_control_failure_rate_(Build<prometheus::Gauge>(
          registry, "ringwarden_rollout_ring_control_failure_rate",
          "Failure share of the control group (agents on the previous version, same window).")),
      ring_decision_(Build<prometheus::Gauge>(
          registry, "ringwarden_rollout_ring_decision",
          "1 for the latest decision (kind and reason) of an active rollout's ring.")),
      stage_age_(Build<prometheus::Gauge>(registry, "ringwarden_rollout_stage_age_seconds",
                                          "Seconds an active rollout has been in its stage.")),
      min_bake_(Build<prometheus::Gauge>(registry, "ringwarden_rollout_min_bake_seconds",
                                         "Minimum bake time of an active rollout's stage.")),
      exposure_hosts_(Build<prometheus::Gauge>(
          registry, "ringwarden_rollout_exposure_hosts",
          "Exposure budget of an active rollout's stage ring, in hosts: admitted, proven, "
          "unproven (in flight), failed, and share (hosts the stage may reach).")) {
  // Database failure codes exist from the start at zero, so rate() sees the first error
  // and dashboards have a series to show.
  for (absl::StatusCode code : {absl::StatusCode::kUnavailable, absl::StatusCode::kAborted,
                                absl::StatusCode::kInternal, absl::StatusCode::kUnknown,
                                absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kDataLoss}) {
    const std::string name = absl::StatusCodeToString(code);
    db_error_counters_[name] = &db_errors_.Add({{"code", name}});
  }
  Build<prometheus::Gauge>(registry, "ringwarden_build_info",
                           "Build of the running server; value is always 1.")
      .Add({{"version", "0.1.0"}})
      .Set(1);
  agents_seen_ = &Build<prometheus::Gauge>(registry, "ringwarden_agents_seen",
                                           "Agents heard from within the window.")
                      .Add({{"window", "5m"}});
  telemetry_queue_rows_ =
      &Build<prometheus::Gauge>(registry, "ringwarden_telemetry_queue_rows",
                                "Telemetry rows waiting to be written to the database.")
           .Add({});
  telemetry_rows_written_total_ =
      &Build<prometheus::Counter>(registry, "ringwarden_telemetry_rows_written_total",
                                  "Telemetry rows written to the database.")
           .Add({});
  admin_queue_depth_ = &Build<prometheus::Gauge>(registry, "ringwarden_admin_queue_depth",
                                                 "Admin calls waiting for a database worker.")
                            .Add({});
  emergency_stop_active_ =
      &Build<prometheus::Gauge>(registry, "ringwarden_emergency_stop_active",
                                "1 while an emergency stop freezes every rollout.")
           .Add({});
  snapshot_refresh_errors_ =
      &Build<prometheus::Counter>(
           registry, "ringwarden_snapshot_refresh_errors_total",
           "Failed rebuilds of the assignment snapshot (database unreachable).")
           .Add({});
  telemetry_upkeep_errors_ =
      &Build<prometheus::Counter>(
           registry, "ringwarden_telemetry_upkeep_errors_total",
           "Failed passes of telemetry retention (day partitions not created or not dropped).")
           .Add({});
  telemetry_dropped_ =
      &Build<prometheus::Counter>(
           registry, "ringwarden_telemetry_dropped_rows_total",
           "Telemetry rows lost: refused by the database for good, or dropped from a full buffer.")
           .Add({});
  telemetry_poison_rows_ =
      &Build<prometheus::Counter>(
           registry, "ringwarden_telemetry_poison_rows_total",
           "Telemetry rows the database refused for good, dropped one by one (also counted in "
           "ringwarden_telemetry_dropped_rows_total).")
           .Add({});
  const std::pair<SnapshotRefreshCause, const char*> causes[] = {
      {SnapshotRefreshCause::kNotified, "notified"},
      {SnapshotRefreshCause::kTimer, "timer"},
      {SnapshotRefreshCause::kRetry, "retry"}};
  AddSeriesByLabel(
      Build<prometheus::Counter>(
          registry, "ringwarden_snapshot_refreshes_total",
          "Assignment snapshot rebuilds, by cause (notified: a committed catalog change; timer: "
          "the --refresh-interval safety net; retry: after a failed refresh)."),
      "cause", causes, snapshot_refreshes_);
  const std::pair<RefusalReason, const char*> reasons[] = {
      {RefusalReason::kRateLimit, "rate_limit"},
      {RefusalReason::kTelemetryShare, "telemetry_share"},
      {RefusalReason::kTelemetryQueue, "telemetry_queue"},
      {RefusalReason::kOversized, "oversized"},
      {RefusalReason::kQueueWait, "queue_wait"},
      {RefusalReason::kNotAssigned, "not_assigned"}};
  AddSeriesByLabel(Build<prometheus::Counter>(
                       registry, "ringwarden_requests_refused_total",
                       "Calls refused before any work, by reason (rate_limit, telemetry_share, "
                       "telemetry_queue, oversized, queue_wait, not_assigned)."),
                   "reason", reasons, requests_refused_);
  tracker_full_loads_ =
      &Build<prometheus::Counter>(
           registry, "ringwarden_health_tracker_full_loads_total",
           "Rollouts whose evidence the leader read whole from the database: on taking the lead, "
           "when pins change, after the change feed went unread, and every 10 minutes.")
           .Add({});
  tracker_agents_reread_ =
      &Build<prometheus::Counter>(
           registry, "ringwarden_health_tracker_agents_reread_total",
           "Agent rows the leader re-read because the change feed named them (a new version, an "
           "apply, a crash report, a relabelling), per kind of row.")
           .Add({});
  tracker_heartbeats_applied_ =
      &Build<prometheus::Counter>(
           registry, "ringwarden_health_tracker_heartbeats_applied_total",
           "Heartbeats the leader applied from the values the change feed carries, with no "
           "re-read.")
           .Add({});
  tracker_rollouts_ = &Build<prometheus::Gauge>(
                           registry, "ringwarden_health_tracker_rollouts",
                           "Rollouts whose evidence the leader holds in memory (0 on followers).")
                           .Add({});
  tracker_sync_seconds_ =
      &Build<prometheus::Gauge>(registry, "ringwarden_health_tracker_sync_seconds",
                                "Seconds the leader's last read of the change feed took, with "
                                "the re-reads and updates it caused.")
           .Add({});
  tracker_held_back_ =
      &Build<prometheus::Gauge>(
           registry, "ringwarden_health_feed_held_back_seconds",
           "Seconds the change feed has been held at one database transaction still running (0 "
           "while it moves, and on followers): the leader judges without the writes that ended "
           "since that transaction began, or since the last 10-minute reload if that is later.")
           .Add({});
  const std::pair<AssignmentAnswer, const char*> answers[] = {
      {AssignmentAnswer::kSigned, "signed"}, {AssignmentAnswer::kHeldCurrent, "held_current"}};
  AddSeriesByLabel(
      Build<prometheus::Counter>(
          registry, "ringwarden_assignment_answers_total",
          "Answered polls by how the assignment was answered: signed (a statement signed for the "
          "poll) or held_current (the agent's statement is current; nothing signed)."),
      "answer", answers, assignments_);
  leader_ = &Build<prometheus::Gauge>(registry, "ringwarden_controller_leader",
                                      "1 while this replica holds the controller leadership.")
                 .Add({});
  auto& decisions =
      Build<prometheus::Counter>(registry, "ringwarden_decisions_total",
                                 "Controller decisions by kind (promote, wait, halt, rollback).");
  for (Decision::Kind kind : {Decision::Kind::kPromote, Decision::Kind::kWait,
                              Decision::Kind::kHalt, Decision::Kind::kRollback}) {
    decisions_[static_cast<int>(kind)] =
        &decisions.Add({{"kind", std::string(DecisionKindName(kind))}});
  }
  auto& auto_stops = Build<prometheus::Counter>(
      registry, "ringwarden_auto_stops_total",
      "Rollouts the controller stopped on its own, by action (halt, rollback).");
  auto_halts_ = &auto_stops.Add({{"action", "halt"}});
  auto_rollbacks_ = &auto_stops.Add({{"action", "rollback"}});
  time_to_auto_stop_ =
      &Build<prometheus::Histogram>(
           registry, "ringwarden_auto_stop_seconds",
           "Seconds from the first apply of a version to its automatic halt or rollback.")
           .Add({}, prometheus::Histogram::BucketBoundaries{5, 15, 30, 60, 120, 300, 600, 1200,
                                                            1800, 3600, 7200});
  snapshot_age_seconds_ =
      &Build<prometheus::Gauge>(registry, "ringwarden_snapshot_age_seconds",
                                "Seconds since the assignment snapshot was last rebuilt.")
           .Add({});
  server_key_trusted_ =
      &Build<prometheus::Gauge>(
           registry, "ringwarden_server_key_trusted",
           "1 while the current root's server role names this replica's --server-key; 0 means "
           "agents refuse its answers until a root rotation names the key.")
           .Add({});
}

void Metrics::ObserveRpc(absl::string_view method, absl::StatusCode code, double seconds) {
  const size_t c = static_cast<size_t>(code) < kStatusCodes
                       ? static_cast<size_t>(code)
                       : static_cast<size_t>(absl::StatusCode::kUnknown);
  prometheus::Counter* counter = nullptr;
  prometheus::Histogram* histogram = nullptr;
  {
    absl::ReaderMutexLock lock(&rpc_mu_);
    if (auto it = rpc_series_.find(method); it != rpc_series_.end()) {
      counter = it->second.by_code[c];
      histogram = it->second.duration;
    }
  }
  if (counter == nullptr) {
    absl::MutexLock lock(&rpc_mu_);
    RpcSeries& series = rpc_series_[method];
    const std::string name(method);
    if (series.duration == nullptr) {
      series.duration = &rpc_duration_.Add({{"method", name}}, LatencyBuckets());
    }
    if (series.by_code[c] == nullptr) {
      series.by_code[c] = &rpc_requests_.Add(
          {{"method", name}, {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(c))}});
    }
    counter = series.by_code[c];
    histogram = series.duration;
  }
  counter->Increment();
  histogram->Observe(seconds);
}

void Metrics::OnOperation(const char* operation, absl::Duration latency, absl::StatusCode code) {
  prometheus::Histogram* histogram;
  prometheus::Counter* errors = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto h = db_histograms_.find(operation);
    if (h == db_histograms_.end()) {
      h = db_histograms_
              .emplace(operation, &db_duration_.Add({{"operation", operation}}, LatencyBuckets()))
              .first;
    }
    histogram = h->second;
    // Refusals (not found, precondition, ...) are answers, not database failures.
    const bool failure = code != absl::StatusCode::kOk && code != absl::StatusCode::kNotFound &&
                         code != absl::StatusCode::kAlreadyExists &&
                         code != absl::StatusCode::kFailedPrecondition &&
                         code != absl::StatusCode::kInvalidArgument;
    if (failure) {
      const std::string name = absl::StatusCodeToString(code);
      auto e = db_error_counters_.find(name);
      if (e == db_error_counters_.end()) {
        e = db_error_counters_.emplace(name, &db_errors_.Add({{"code", name}})).first;
      }
      errors = e->second;
    }
  }
  histogram->Observe(absl::ToDoubleSeconds(latency));
  if (errors != nullptr) {
    errors->Increment();
  }
}

void Metrics::SetGauge(prometheus::Family<prometheus::Gauge>& family, const Labels& labels,
                       double value, const std::string& owner) {
  // Families share label sets, so the key includes the family's address.
  Labels key = labels;
  key["__family"] = absl::StrCat(reinterpret_cast<uintptr_t>(&family));
  auto& series = owned_[owner];
  auto it = series.find(key);
  if (it == series.end()) {
    it = series.emplace(key, Series{&family, &family.Add(labels)}).first;
  }
  it->second.gauge->Set(value);
  touched_[owner].insert(key);
}

void Metrics::UpdateFleetStats(const FleetStats& stats) {
  absl::MutexLock lock(&mu_);
  const std::string owner = "fleet";
  touched_[owner].clear();
  std::set<std::string> channels;
  for (const auto& [key, n] : stats.rollouts) {
    channels.insert(key.first);
  }
  for (const std::string& channel : channels) {
    for (const char* state : kRolloutStates) {
      auto it = stats.rollouts.find({channel, state});
      SetGauge(rollouts_, {{"channel", channel}, {"state", state}},
               it == stats.rollouts.end() ? 0 : static_cast<double>(it->second), owner);
    }
  }
  for (Ring ring : kAllRings) {
    auto it = stats.agents_by_ring.find(std::string(RingName(ring)));
    SetGauge(agents_, {{"ring", std::string(RingName(ring))}},
             it == stats.agents_by_ring.end() ? 0 : static_cast<double>(it->second), owner);
  }
  for (const auto& [key, n] : stats.agents_by_version) {
    SetGauge(agents_by_version_, {{"channel", key.first}, {"version", absl::StrCat(key.second)}},
             static_cast<double>(n), owner);
  }
  // Versions nobody runs any more disappear.
  auto& series = owned_[owner];
  for (auto it = series.begin(); it != series.end();) {
    if (touched_[owner].count(it->first) == 0) {
      it->second.family->Remove(it->second.gauge);
      it = series.erase(it);
    } else {
      ++it;
    }
  }
  agents_seen_->Set(static_cast<double>(stats.agents_seen_5m));
}

void Metrics::UpdateRolloutRing(const RolloutRecord& rollout, Ring ring, int64_t targeted,
                                const Decision& decision, absl::Duration stage_age,
                                absl::Duration min_bake) {
  absl::MutexLock lock(&mu_);
  const std::string& owner = rollout.id;
  const Labels base = {{"rollout", rollout.id},
                       {"channel", rollout.channel},
                       {"version", absl::StrCat(rollout.version)}};
  Labels with_ring = base;
  with_ring["ring"] = std::string(RingName(ring));
  const RingHealth& h = decision.evidence.health;
  const std::pair<const char*, int64_t> statuses[] = {{"targeted", targeted},
                                                      {"applied", h.applied},
                                                      {"healthy", h.healthy},
                                                      {"crashed", h.crashed},
                                                      {"process_crashed", h.process_crashed},
                                                      {"unclean_shutdowns", h.unclean_shutdowns},
                                                      {"unhealthy", h.unhealthy},
                                                      {"silent", h.silent},
                                                      {"failed", h.failed}};
  for (const auto& [status, n] : statuses) {
    Labels l = with_ring;
    l["status"] = status;
    SetGauge(ring_agents_, l, static_cast<double>(n), owner);
  }
  SetGauge(ring_failure_rate_, with_ring, decision.evidence.treated_failure_rate, owner);
  SetGauge(ring_control_failure_rate_, with_ring, decision.evidence.control_failure_rate, owner);
  // Exactly one decision series per ring: drop the previous kind/reason.
  auto& series = owned_[owner];
  for (auto it = series.begin(); it != series.end();) {
    if (it->second.family == &ring_decision_ && it->first.at("ring") == with_ring["ring"]) {
      ring_decision_.Remove(it->second.gauge);
      touched_[owner].erase(it->first);
      it = series.erase(it);
    } else {
      ++it;
    }
  }
  Labels d = with_ring;
  d["kind"] = std::string(DecisionKindName(decision.kind));
  d["reason"] = std::string(DecisionReasonName(decision.reason));
  SetGauge(ring_decision_, d, 1, owner);
  Labels staged = base;
  staged["state"] = std::string(RolloutStateName(rollout.position.state));
  // The stage label changes with the state: keep only the current one.
  for (auto it = series.begin(); it != series.end();) {
    const bool stage_family = it->second.family == &stage_age_ || it->second.family == &min_bake_;
    if (stage_family && it->first.at("state") != staged["state"]) {
      it->second.family->Remove(it->second.gauge);
      touched_[owner].erase(it->first);
      it = series.erase(it);
    } else {
      ++it;
    }
  }
  SetGauge(stage_age_, staged, absl::ToDoubleSeconds(stage_age), owner);
  SetGauge(min_bake_, staged, absl::ToDoubleSeconds(min_bake), owner);
}

void Metrics::OnDecision(const RolloutRecord& rollout, Ring ring, int64_t targeted,
                         const Decision& decision, absl::Duration stage_age,
                         absl::Duration min_bake) {
  decisions(decision.kind).Increment();
  UpdateRolloutRing(rollout, ring, targeted, decision, stage_age, min_bake);
}

void Metrics::OnExposure(const RolloutRecord& rollout, Ring ring, const ExposurePlan& plan) {
  absl::MutexLock lock(&mu_);
  const Labels base = {{"rollout", rollout.id},
                       {"channel", rollout.channel},
                       {"version", absl::StrCat(rollout.version)},
                       {"ring", std::string(RingName(ring))}};
  const std::pair<const char*, int64_t> statuses[] = {{"admitted", plan.admitted},
                                                      {"proven", plan.proven},
                                                      {"unproven", plan.unproven},
                                                      {"failed", plan.failed},
                                                      {"share", plan.cap}};
  for (const auto& [status, n] : statuses) {
    Labels l = base;
    l["status"] = status;
    SetGauge(exposure_hosts_, l, static_cast<double>(n), rollout.id);
  }
}

void Metrics::OnHealthTracker(const TrackerReport& report) {
  absl::MutexLock lock(&mu_);
  // The tracker's counts only grow; a smaller one means a new tracker, counted from zero.
  auto advance = [](prometheus::Counter* counter, int64_t now, int64_t before) {
    counter->Increment(static_cast<double>(now >= before ? now - before : now));
  };
  advance(tracker_full_loads_, report.full_loads, last_tracker_.full_loads);
  advance(tracker_agents_reread_, report.agents_reread, last_tracker_.agents_reread);
  advance(tracker_heartbeats_applied_, report.heartbeats_applied, last_tracker_.heartbeats_applied);
  tracker_rollouts_->Set(static_cast<double>(report.tracked_rollouts));
  tracker_sync_seconds_->Set(absl::ToDoubleSeconds(report.sync_time));
  tracker_held_back_->Set(absl::ToDoubleSeconds(report.held_back));
  last_tracker_ = report;
}

void Metrics::OnAutoStop(Decision::Kind kind, std::optional<absl::Duration> since_first_apply) {
  auto_stops(kind).Increment();
  if (since_first_apply.has_value()) {
    time_to_auto_stop().Observe(absl::ToDoubleSeconds(*since_first_apply));
  }
}

void Metrics::RetainRollouts(const std::set<std::string>& active) {
  absl::MutexLock lock(&mu_);
  for (auto it = owned_.begin(); it != owned_.end();) {
    if (it->first != "fleet" && active.count(it->first) == 0) {
      for (auto& [labels, s] : it->second) {
        s.family->Remove(s.gauge);
      }
      touched_.erase(it->first);
      it = owned_.erase(it);
    } else {
      ++it;
    }
  }
}

void Metrics::SetTelemetryRowsWritten(int64_t total) {
  absl::MutexLock lock(&mu_);
  if (total > telemetry_rows_written_) {
    telemetry_rows_written_total_->Increment(static_cast<double>(total - telemetry_rows_written_));
    telemetry_rows_written_ = total;
  }
}

}  // namespace ringwarden
