#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/server_builder.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "common/dsse.h"
#include "common/files.h"
#include "common/pki.h"
#include "common/status_macros.h"
#include "server/admin_service.h"
#include "server/agent_credentials.h"
#include "server/agent_service.h"
#include "server/core/admin_tokens.h"
#include "server/core/agent_registry.h"
#include "server/core/controller.h"
#include "server/core/health_tracker.h"
#include "server/core/policy_cache.h"
#include "server/core/rollout_manager.h"
#include "server/core/snapshot.h"
#include "server/core/telemetry_writer.h"
#include "server/core/work_queue.h"
#include "server/manifest_codec.h"
#include "server/metrics.h"
#include "server/postgres/migrations.h"
#include "server/postgres/pg_change_listener.h"
#include "server/postgres/pg_leader_lock.h"
#include "server/postgres/pg_store.h"
#include "server/request_limits.h"
#include "server/tls.h"
#include "server/trust_keeper.h"

namespace ringwarden {
namespace {

// ReadConfigFile reads a small configuration file named by `flag`.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path, absl::string_view flag) {
  constexpr size_t kMaxConfigFileBytes = 1024 * 1024;
  absl::StatusOr<std::string> data = ReadFileAtMost(path, kMaxConfigFileBytes);
  if (!data.ok()) {
    return absl::Status(data.status().code(), absl::StrCat(flag, ": ", data.status().message()));
  }
  return data;
}

int Millis(absl::Duration d) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d), INT32_MAX));
}

}  // namespace

double EffectiveAgentRate(const ServerConfig& config) {
  if (config.agent_rate >= 0) {
    return config.agent_rate;
  }
  const double poll_s = std::max(0.001, absl::ToDoubleSeconds(config.poll_interval));
  return std::max(1.0, 10.0 / poll_s);
}

// Parts holds the components in construction order; members are destroyed in
// reverse, so the gRPC server stops before what its handlers use.
struct Server::Parts {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<Ed25519PrivateKey> server_key;
  std::unique_ptr<PgStore> store;
  std::unique_ptr<AdminTokens> admin_tokens;
  std::unique_ptr<AdminAuthenticator> admin_auth;
  std::unique_ptr<SnapshotHolder> snapshots;
  std::unique_ptr<TrustKeeper> trust;
  std::unique_ptr<TelemetryWriter> telemetry;
  std::unique_ptr<WorkQueue> admin_queue;
  std::unique_ptr<PolicyCache> policies;
  std::unique_ptr<RolloutManager> manager;
  std::unique_ptr<PgLeaderLock> leader_lock;
  std::unique_ptr<PgChangeListener> change_listener;
  std::unique_ptr<Controller> controller;
  std::unique_ptr<AgentRegistry> agent_registry;
  std::unique_ptr<AgentCredentials> agent_credentials;
  std::unique_ptr<WorkQueue> enroll_queue;
  std::unique_ptr<AgentServiceImpl> agent_service;
  std::unique_ptr<AdminServiceImpl> admin_service;
  std::unique_ptr<grpc::Server> grpc_server;
};

Server::Server(ServerConfig config) : config_(std::move(config)) {}

Server::~Server() { Shutdown(); }

absl::Status Server::Start() {
  if (config_.database.empty()) {
    return absl::InvalidArgumentError("--database is required (a libpq connection string)");
  }
  if (config_.root_file.empty()) {
    return absl::InvalidArgumentError(
        "--root is required: the pinned root of trust (DSSE envelope JSON, ringctl keys)");
  }
  if (config_.server_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--server-key is required: the Ed25519 private key PEM that signs assignments "
        "(openssl genpkey -algorithm ed25519)");
  }
  if (config_.assignment_ttl < kMinAssignmentTtl || config_.assignment_ttl > kMaxAssignmentTtl) {
    return absl::InvalidArgumentError(absl::StrCat("--assignment-ttl must be between ",
                                                   absl::FormatDuration(kMinAssignmentTtl), " and ",
                                                   absl::FormatDuration(kMaxAssignmentTtl)));
  }
  ASSIGN_OR_RETURN(
      std::shared_ptr<grpc::ServerCredentials> listen_credentials,
      ListenCredentials(
          TlsFiles{config_.tls_cert_file, config_.tls_key_file, config_.client_ca_file},
          config_.insecure, config_.listen, config_.tls_reload_interval));
  if (config_.agent_credential_ttl < kMinAgentCredentialTtl ||
      config_.agent_credential_ttl > kMaxAgentCredentialTtl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--agent-credential-ttl must be between ", absl::FormatDuration(kMinAgentCredentialTtl),
        " and ", absl::FormatDuration(kMaxAgentCredentialTtl)));
  }
  std::optional<CertificateAuthority> agent_ca;
  if (!config_.insecure) {
    if (config_.agent_ca_key_file.empty()) {
      return absl::InvalidArgumentError(
          "--agent-ca-key is required with TLS: the CA key that issues agent certificates");
    }
    const std::string& ca_cert_file =
        config_.agent_ca_cert_file.empty() ? config_.client_ca_file : config_.agent_ca_cert_file;
    ASSIGN_OR_RETURN(const std::string ca_cert, ReadConfigFile(ca_cert_file, "--agent-ca-cert"));
    ASSIGN_OR_RETURN(const std::string ca_key,
                     ReadConfigFile(config_.agent_ca_key_file, "--agent-ca-key"));
    absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::FromPem(ca_cert, ca_key);
    if (!ca.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--agent-ca-key: ", ca.status().message()));
    }
    agent_ca = *std::move(ca);
  }
  RateLimitOptions rate_limit{EffectiveAgentRate(config_), config_.agent_burst,
                              config_.max_tracked_agents};
  RETURN_IF_ERROR(ValidateRateLimitOptions(rate_limit));
  if (config_.telemetry_agent_rows < 1 ||
      config_.telemetry_agent_rows > config_.telemetry_max_rows) {
    return absl::InvalidArgumentError(
        "--telemetry-agent-rows must be between 1 and --telemetry-max-rows");
  }
  if (config_.telemetry_writers < 1 || config_.telemetry_writers > 16) {
    return absl::InvalidArgumentError("--telemetry-writers must be between 1 and 16");
  }
  auto parts = std::make_unique<Parts>();
  ASSIGN_OR_RETURN(const std::string pinned_root, ReadConfigFile(config_.root_file, "--root"));
  ASSIGN_OR_RETURN(const std::string server_key_pem,
                   ReadConfigFile(config_.server_key_file, "--server-key"));
  absl::StatusOr<Ed25519PrivateKey> server_key = Ed25519PrivateKey::FromPem(server_key_pem);
  if (!server_key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--server-key ", config_.server_key_file, ": ",
                                                   server_key.status().message()));
  }
  parts->server_key = std::make_unique<Ed25519PrivateKey>(*std::move(server_key));

  if (config_.migrate) {
    ASSIGN_OR_RETURN(MigrationReport report,
                     ApplyMigrations(config_.database, EmbeddedMigrations()));
    std::cerr << "schema at version " << report.schema_version_after << " ("
              << report.applied.size() << " migrations applied)" << std::endl;
  }
  parts->metrics = std::make_unique<Metrics>(*parts->registry);
  // Admin workers, the telemetry writers, and one each for the controller and the refresher.
  parts->store = std::make_unique<PgStore>(config_.database,
                                           config_.db_workers + config_.telemetry_writers + 2);
  parts->store->SetObserver(parts->metrics.get());
  Clock& clock = RealClock::Instance();
  parts->admin_tokens = std::make_unique<AdminTokens>(*parts->store, clock, SecureRandomBytes);
  parts->admin_auth = std::make_unique<AdminAuthenticator>(*parts->admin_tokens);
  parts->snapshots = std::make_unique<SnapshotHolder>(*parts->store, clock);
  parts->trust = std::make_unique<TrustKeeper>(*parts->store, *parts->snapshots,
                                               parts->server_key->PublicKey(), clock);
  RETURN_IF_ERROR(parts->trust->Open(pinned_root));
  parts->metrics->server_key_trusted().Set(parts->trust->ServerKeyTrusted() ? 1 : 0);
  RETURN_IF_ERROR(parts->snapshots->Refresh());
  parts->metrics->emergency_stop_active().Set(parts->snapshots->Current()->emergency_stop() ? 1
                                                                                            : 0);
  TelemetryLimits telemetry_limits;
  telemetry_limits.max_rows = config_.telemetry_max_rows;
  telemetry_limits.max_rows_per_agent = config_.telemetry_agent_rows;
  telemetry_limits.lanes = config_.telemetry_writers;
  parts->telemetry = std::make_unique<TelemetryWriter>(
      *parts->store, config_.telemetry_flush_interval, telemetry_limits);
  parts->admin_queue = std::make_unique<WorkQueue>(config_.db_workers, /*capacity=*/256,
                                                   config_.queue_max_wait, clock);
  parts->policies = std::make_unique<PolicyCache>(*parts->store);
  TrustKeeper* trust = parts->trust.get();
  parts->manager = std::make_unique<RolloutManager>(
      *parts->store, *parts->snapshots, *parts->policies, [trust] { return trust->ReleaseKeys(); },
      DecodeContentManifest, clock);
  // A healthy agent may go unheard for a jittered poll interval plus a heartbeat interval.
  parts->manager->SetReportGap(
      config_.poll_interval * (1 + config_.poll_jitter) + config_.heartbeat_interval,
      absl::StrCat("poll interval ", absl::FormatDuration(config_.poll_interval), " + ",
                   absl::StrFormat("%g", 100 * config_.poll_jitter),
                   "% jitter + heartbeat interval ",
                   absl::FormatDuration(config_.heartbeat_interval)));
  RETURN_IF_ERROR(parts->manager->EnsureDefaultPolicy());
  parts->agent_registry = std::make_unique<AgentRegistry>(*parts->store, *parts->snapshots, clock);
  parts->agent_credentials = std::make_unique<AgentCredentials>(
      agent_ca.has_value()
          ? AgentCredentials::Tls(*std::move(agent_ca), config_.agent_credential_ttl, clock)
          : AgentCredentials::Insecure(config_.agent_credential_ttl, clock));
  parts->enroll_queue = std::make_unique<WorkQueue>(config_.db_workers, /*capacity=*/1024,
                                                    config_.queue_max_wait, clock);
  AgentServiceOptions agent_options;
  agent_options.poll_interval = config_.poll_interval;
  agent_options.poll_jitter = config_.poll_jitter;
  agent_options.assignment_ttl = config_.assignment_ttl;
  agent_options.rate_limit = rate_limit;
  agent_options.max_tracked_agents = config_.max_tracked_agents;
  agent_options.telemetry_retry_after =
      std::max(absl::Seconds(1), 2 * config_.telemetry_flush_interval);
  parts->agent_service = std::make_unique<AgentServiceImpl>(
      agent_options, *parts->snapshots, *parts->telemetry, *parts->metrics, *parts->trust,
      *parts->server_key, clock, *parts->agent_registry, *parts->agent_credentials,
      *parts->enroll_queue);
  parts->admin_service = std::make_unique<AdminServiceImpl>(
      *parts->manager, *parts->trust, *parts->store, *parts->admin_auth, *parts->admin_tokens,
      *parts->admin_queue, *parts->metrics, clock, *parts->agent_registry);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, listen_credentials, &bound_port_);
  // The largest method limit; each handler checks its own (request_limits.h).
  builder.SetMaxReceiveMessageSize(static_cast<int>(MaxServerReceiveBytes()));
  grpc::ResourceQuota quota("ringwarden-server");
  quota.Resize(static_cast<size_t>(config_.grpc_memory_bytes));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config_.max_concurrent_streams);
  // Keepalive enforcement: a client pinging more often than this without
  // data is told GOAWAY after two strikes. Agents ping every 30 s, and only
  // while a call is in flight.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             Millis(config_.min_client_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // The server's own pings find dead peers that hold streams open.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(absl::Minutes(2)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(absl::Seconds(20)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, Millis(config_.max_connection_idle));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Millis(config_.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             Millis(config_.max_connection_age_grace));
  builder.RegisterService(parts->agent_service.get());
  builder.RegisterService(parts->admin_service.get());
  parts->grpc_server = builder.BuildAndStart();
  if (parts->grpc_server == nullptr || bound_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config_.listen));
  }
  if (!config_.metrics_listen.empty()) {
    try {
      parts->exposer = std::make_unique<prometheus::Exposer>(config_.metrics_listen);
      parts->exposer->RegisterCollectable(parts->registry);
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", config_.metrics_listen, ": ", e.what()));
    }
  }
  if (config_.controller) {
    parts->leader_lock = std::make_unique<PgLeaderLock>(config_.database, kControllerLockKey);
    PgLeaderLock* lock = parts->leader_lock.get();
    parts->controller = std::make_unique<Controller>(
        *parts->store, *parts->store, *parts->snapshots, *parts->policies, *parts->metrics, clock,
        [lock] { return lock->Check(); }, ControllerOptions{config_.controller_interval},
        &parts->manager->approvals());
    parts->controller->Start();
  }
  parts_ = std::move(parts);
  refresher_ = std::thread([this] { RefreshLoop(); });
  // A decision committed by the leader (a halt, a growth step) reaches this replica's snapshot
  // at commit, not on the next timer.
  parts_->change_listener =
      std::make_unique<PgChangeListener>(config_.database, [this] { WakeRefresher(); });
  parts_->change_listener->Start();
  if (!config_.port_file.empty()) {
    std::ofstream(config_.port_file) << bound_port_ << "\n";
  }
  std::cerr << "ringwarden-server serving gRPC on port " << bound_port_ << std::endl;
  return absl::OkStatus();
}

void Server::RefreshLoop() {
  // Intervals here are measured on the monotonic clock: a wall clock stepped back must neither
  // hold a refresh back nor skip the metrics for the size of the step.
  using SteadyClock = std::chrono::steady_clock;
  const auto since = [](SteadyClock::time_point t) {
    return absl::FromChrono(SteadyClock::now() - t);
  };
  SteadyClock::time_point last_ok = SteadyClock::now();
  int64_t dropped_reported = 0;
  int64_t poison_reported = 0;
  bool logged = false;
  bool trust_sync_logged = false;
  SteadyClock::time_point last_refresh = SteadyClock::now();  // Start built the first snapshot
  const SteadyClock::time_point long_ago = SteadyClock::now() - std::chrono::hours(24 * 365);
  SteadyClock::time_point last_metrics = long_ago;
  SteadyClock::time_point last_fleet_stats = long_ago;
  SteadyClock::time_point last_upkeep = long_ago;
  absl::Status status = absl::OkStatus();
  // The loop ticks for the queue metrics and for retries after a failed refresh; the snapshot
  // is rebuilt when a change is notified, and on the timer only as the safety net.
  const absl::Duration tick = std::min(kRefreshTick, config_.refresh_interval);
  while (true) {
    bool notified = false;
    {
      absl::MutexLock lock(&wake_mu_);
      wake_mu_.AwaitWithTimeout(absl::Condition(&wake_), tick);
      notified = wake_;
      wake_ = false;
    }
    if (stop_.HasBeenNotified()) {
      return;
    }
    const absl::Duration gap = since(last_refresh);
    const bool timer = gap >= config_.refresh_interval;
    if (notified || timer || !status.ok()) {
      // A burst of commits (a wave of labelled enrollments) is read a few times a second, not
      // once per commit: notifications arriving during the wait share the next refresh.
      if (notified && gap < kMinNotifiedRefreshGap &&
          stop_.WaitForNotificationWithTimeout(kMinNotifiedRefreshGap - gap)) {
        return;
      }
      {
        absl::MutexLock lock(&wake_mu_);
        wake_ = false;
      }
      parts_->metrics
          ->snapshot_refreshes(!status.ok() ? SnapshotRefreshCause::kRetry
                               : notified   ? SnapshotRefreshCause::kNotified
                                            : SnapshotRefreshCause::kTimer)
          .Increment();
      last_refresh = SteadyClock::now();
      status = parts_->snapshots->Refresh();
      if (status.ok()) {
        last_ok = SteadyClock::now();
      }
      OnRefreshed(status, logged, trust_sync_logged);
    }
    parts_->metrics->snapshot_age_seconds().Set(absl::ToDoubleSeconds(since(last_ok)));
    // Refreshes woken by catalog changes come in bursts; the metrics below (a fleet scan among
    // them) keep the tick's cadence.
    if (since(last_metrics) < tick) {
      continue;
    }
    last_metrics = SteadyClock::now();
    parts_->metrics->telemetry_queue_rows().Set(static_cast<double>(parts_->telemetry->Pending()));
    parts_->metrics->SetTelemetryRowsWritten(parts_->telemetry->RowsWritten());
    const int64_t poison = parts_->telemetry->PoisonRows();
    if (poison > poison_reported) {
      parts_->metrics->telemetry_poison_rows().Increment(
          static_cast<double>(poison - poison_reported));
      poison_reported = poison;
    }
    const int64_t dropped = parts_->telemetry->DroppedRows();
    if (dropped > dropped_reported) {
      parts_->metrics->telemetry_dropped().Increment(
          static_cast<double>(dropped - dropped_reported));
      dropped_reported = dropped;
    }
    if (status.ok() && since(last_fleet_stats) >= config_.fleet_stats_interval) {
      last_fleet_stats = SteadyClock::now();
      absl::StatusOr<FleetStats> stats = parts_->store->LoadFleetStats();
      if (stats.ok()) {
        parts_->metrics->UpdateFleetStats(*stats);
      }
    }
    if (status.ok() && since(last_upkeep) >= config_.telemetry_upkeep_interval) {
      last_upkeep = SteadyClock::now();
      MaintainTelemetry();
    }
  }
}

void Server::OnRefreshed(const absl::Status& status, bool& logged, bool& trust_sync_logged) {
  if (status.ok()) {
    logged = false;
    std::shared_ptr<const AssignmentSnapshot> snapshot = parts_->snapshots->Current();
    parts_->metrics->emergency_stop_active().Set(snapshot->emergency_stop() ? 1 : 0);
    // Roots another replica accepted: trust them too (each verified again).
    absl::Status synced = parts_->trust->Sync(*snapshot);
    if (!synced.ok() && !trust_sync_logged) {
      std::cerr << "cannot follow the stored roots; keeping root version "
                << parts_->trust->RootVersion() << ": " << synced << std::endl;
    }
    trust_sync_logged = !synced.ok();
    parts_->metrics->server_key_trusted().Set(parts_->trust->ServerKeyTrusted() ? 1 : 0);
  } else {
    parts_->metrics->snapshot_refresh_errors().Increment();
    if (!logged) {
      // Degraded mode: polls keep being answered from the last snapshot.
      std::cerr << "snapshot refresh failed; serving the last one: " << status << std::endl;
      logged = true;
    }
  }
}

void Server::MaintainTelemetry() {
  // The leader trims the health change feed every minute; this keeps it bounded when no
  // replica leads (every one started with --no-controller).
  if (absl::Status trimmed = parts_->store->TrimHealthChanges(HealthTrackerOptions().keep_changes);
      !trimmed.ok()) {
    parts_->metrics->telemetry_upkeep_errors().Increment();
    std::cerr << "trimming the health change feed failed: " << trimmed << std::endl;
  }
  absl::StatusOr<TelemetryUpkeep> upkeep =
      parts_->store->MaintainTelemetry(config_.telemetry_retention, absl::Now());
  if (!upkeep.ok()) {
    parts_->metrics->telemetry_upkeep_errors().Increment();
    std::cerr << "telemetry retention failed; retrying in "
              << absl::FormatDuration(config_.telemetry_upkeep_interval) << ": " << upkeep.status()
              << std::endl;
    return;
  }
  if (upkeep->partitions_dropped > 0 || upkeep->rows_expired > 0) {
    std::cerr << "telemetry retention: dropped " << upkeep->partitions_dropped
              << " day partitions and " << upkeep->rows_expired << " rows older than "
              << absl::FormatDuration(config_.telemetry_retention) << std::endl;
  }
}

void Server::WakeRefresher() {
  absl::MutexLock lock(&wake_mu_);
  wake_ = true;
}

void Server::Shutdown() {
  if (parts_ == nullptr) {
    return;
  }
  if (parts_->change_listener != nullptr) {
    parts_->change_listener->Stop();
  }
  if (!stop_.HasBeenNotified()) {
    stop_.Notify();
  }
  WakeRefresher();
  if (refresher_.joinable()) {
    refresher_.join();
  }
  if (parts_->controller != nullptr) {
    parts_->controller->Stop();
  }
  parts_->grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  parts_->grpc_server->Wait();
  parts_.reset();
}

}  // namespace ringwarden
