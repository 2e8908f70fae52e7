// ringwarden-server: the rollout control plane. See `ringwarden-server --help`.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "common/admin_token.h"
#include "server/bootstrap_admin.h"
#include "server/postgres/migrations.h"
#include "server/server.h"

int main(int argc, char** argv) {
  // Debian's Abseil is built with lock-order (deadlock) detection on, which records every
  // mutex acquisition in one process-wide graph under a global lock: a point every thread of
  // the poll path contends on. The unit tests, which link the same code without this line,
  // keep the detection.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ringwarden::ServerConfig config;
  CLI::App app{"ringwarden-server: promotes signed content through canary, early and broad rings"};
  app.set_version_flag("--version", "ringwarden-server 0.1.0");
  app.require_subcommand(0, 1);

  auto add_database = [&](CLI::App* cmd) {
    cmd->add_option("--database", config.database,
                    "libpq connection string, e.g. \"host=/run/postgresql dbname=ringwarden\"")
        ->envname("RINGWARDEN_DATABASE")
        ->required();
  };
  CLI::App* migrate = app.add_subcommand("migrate", "apply database migrations and exit");
  add_database(migrate);
  CLI::App* bootstrap = app.add_subcommand(
      "bootstrap-admin",
      "migrate, then write the first admin token to the database and print it (stdout); "
      "refused while an unexpired admin token exists");
  add_database(bootstrap);
  std::string bootstrap_name;
  std::string bootstrap_ttl = "24h";
  bootstrap->add_option("--name", bootstrap_name, "who holds the token, e.g. alice")->required();
  bootstrap->add_option("--ttl", bootstrap_ttl, "lifetime: 1h to 365d, e.g. 90m, 24h, 30d")
      ->capture_default_str();
  CLI::App* serve = app.add_subcommand("serve", "run the server (the default)");
  // add_seconds adds an option given in (fractional) seconds that sets `duration`.
  auto add_seconds = [](CLI::App* cmd, const std::string& name, absl::Duration& duration,
                        const std::string& help) {
    return cmd->add_option_function<double>(
        name,
        [&duration](double s) { duration = absl::Milliseconds(static_cast<int64_t>(s * 1000)); },
        help);
  };
  for (CLI::App* cmd : {&app, serve}) {
    cmd->add_option("--listen", config.listen, "gRPC address host:port (port 0 picks one)")
        ->capture_default_str();
    cmd->add_option("--metrics-listen", config.metrics_listen,
                    "Prometheus /metrics address host:port; empty disables")
        ->capture_default_str();
    cmd->add_option("--database", config.database, "libpq connection string")
        ->envname("RINGWARDEN_DATABASE");
    cmd->add_option("--root", config.root_file,
                    "pinned root of trust (DSSE envelope JSON); content and floors must carry "
                    "the release role's signatures of the newest stored root chaining from it");
    cmd->add_option("--server-key", config.server_key_file,
                    "Ed25519 private key PEM that signs assignments (openssl genpkey -algorithm "
                    "ed25519); the current root's server role must name it");
    add_seconds(cmd, "--assignment-ttl", config.assignment_ttl,
                "seconds a signed assignment stays valid; default 43200 (12 h), 300 to 604800")
        ->check(CLI::Range(300.0, 604800.0));
    cmd->add_option("--tls-cert", config.tls_cert_file,
                    "PEM certificate chain the server presents (reloaded when it changes)");
    cmd->add_option("--tls-key", config.tls_key_file, "PEM private key of --tls-cert");
    cmd->add_option("--client-ca", config.client_ca_file,
                    "PEM CA bundle that verifies agents' client certificates");
    cmd->add_option("--agent-ca-cert", config.agent_ca_cert_file,
                    "PEM certificate of the CA that issues agent certificates (default: "
                    "--client-ca)");
    cmd->add_option("--agent-ca-key", config.agent_ca_key_file,
                    "PEM private key of the agent CA; required with TLS");
    add_seconds(cmd, "--agent-credential-ttl", config.agent_credential_ttl,
                "seconds an agent credential stays valid; default 604800 (7 days), 600 to "
                "7776000; agents renew after two thirds")
        ->check(CLI::Range(600.0, 7776000.0));
    add_seconds(cmd, "--tls-reload-interval", config.tls_reload_interval,
                "seconds between checks of the TLS files for changes; default 10")
        ->check(CLI::Range(1.0, 3600.0));
    cmd->add_flag("--insecure", config.insecure,
                  "serve plaintext without agent certificates; only on a loopback address");
    cmd->add_flag("!--no-migrate", config.migrate, "do not apply migrations at start");
    add_seconds(cmd, "--poll-interval", config.poll_interval,
                "seconds between agent polls (before jitter); default 30");
    add_seconds(cmd, "--heartbeat-interval", config.heartbeat_interval,
                "seconds between the agents' heartbeats (their --heartbeat-interval); policies "
                "whose silence timeout or probation is shorter than the poll interval with "
                "jitter plus this are refused; default 60")
        ->check(CLI::Range(0.1, 86400.0));
    cmd->add_option("--poll-jitter", config.poll_jitter, "poll jitter fraction")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 0.9));
    cmd->add_option("--db-workers", config.db_workers, "database worker threads")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
    cmd->add_option("--port-file", config.port_file, "write the bound gRPC port here");
    cmd->add_flag("!--no-controller", config.controller,
                  "do not run the automatic decision loop on this replica");
    add_seconds(cmd, "--controller-interval", config.controller_interval,
                "seconds between evaluations of active rollouts; default 5")
        ->check(CLI::Range(0.05, 3600.0));
    add_seconds(cmd, "--refresh-interval", config.refresh_interval,
                "seconds between snapshot refreshes when no change is notified: the safety "
                "net behind the database's change notifications; default 30 (keep it under 60: the "
                "snapshot-age alert fires past a minute)")
        ->check(CLI::Range(0.1, 3600.0));
    add_seconds(cmd, "--fleet-stats-interval", config.fleet_stats_interval,
                "seconds between counts of agents by ring and version for the metrics (a scan "
                "of the agents table); default 30")
        ->check(CLI::Range(0.1, 86400.0));
    cmd->add_option_function<int>(
           "--telemetry-retention-days",
           [&config](int days) { config.telemetry_retention = absl::Hours(24) * days; },
           "days crash reports and health events are kept; default 90")
        ->check(CLI::Range(1, 3650));
    // Overload protection: docs/operations.md, "Overload and hostile agents".
    cmd->add_option("--agent-rate", config.agent_rate,
                    "calls per second each agent may make (token bucket); default: 10 per poll "
                    "interval, at least 1; 0 turns the limit off")
        ->check(CLI::Range(0.0, 1e6));
    cmd->add_option("--agent-burst", config.agent_burst, "calls an idle agent may make at once")
        ->capture_default_str()
        ->check(CLI::Range(1.0, 1e6));
    cmd->add_option("--max-tracked-agents", config.max_tracked_agents,
                    "agents whose rate bucket and telemetry batch number are remembered")
        ->capture_default_str()
        ->check(CLI::Range(1, 100'000'000));
    add_seconds(cmd, "--telemetry-flush-interval", config.telemetry_flush_interval,
                "seconds between telemetry writes; default 0.5")
        ->check(CLI::Range(0.01, 3600.0));
    cmd->add_option("--telemetry-writers", config.telemetry_writers,
                    "telemetry queues written in parallel, each on its own database connection")
        ->capture_default_str()
        ->check(CLI::Range(1, 16));
    cmd->add_option("--telemetry-max-rows", config.telemetry_max_rows,
                    "telemetry rows queued at most, all agents together")
        ->capture_default_str()
        ->check(CLI::Range(1, 100'000'000));
    cmd->add_option("--telemetry-agent-rows", config.telemetry_agent_rows,
                    "telemetry rows one agent may have queued (its share)")
        ->capture_default_str()
        ->check(CLI::Range(1, 100'000'000));
    cmd->add_option("--max-concurrent-streams", config.max_concurrent_streams,
                    "HTTP/2 streams per client connection")
        ->capture_default_str()
        ->check(CLI::Range(1, 100'000));
    cmd->add_option("--grpc-memory-bytes", config.grpc_memory_bytes,
                    "memory gRPC may use for all connections and calls (resource quota)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{16} << 20, int64_t{1} << 40));
    add_seconds(cmd, "--min-client-ping-interval", config.min_client_ping_interval,
                "seconds a client must leave between pings without data; default 10")
        ->check(CLI::Range(1.0, 3600.0));
    add_seconds(cmd, "--max-connection-idle", config.max_connection_idle,
                "seconds after which an idle connection is closed; default 600")
        ->check(CLI::Range(1.0, 86400.0));
    add_seconds(cmd, "--max-connection-age", config.max_connection_age,
                "seconds after which any connection is closed (clients reconnect); default 1800")
        ->check(CLI::Range(1.0, 86400.0));
    add_seconds(cmd, "--max-connection-age-grace", config.max_connection_age_grace,
                "seconds calls may still finish on a connection past its age; default 300")
        ->check(CLI::Range(1.0, 86400.0));
    add_seconds(cmd, "--queue-max-wait", config.queue_max_wait,
                "seconds queued database work may wait before it is answered UNAVAILABLE; "
                "default 10")
        ->check(CLI::Range(0.01, 3600.0));
  }
  CLI11_PARSE(app, argc, argv);

  if (migrate->parsed()) {
    auto report = ringwarden::ApplyMigrations(config.database, ringwarden::EmbeddedMigrations());
    if (!report.ok()) {
      std::cerr << "migrate failed: " << report.status() << std::endl;
      return 1;
    }
    std::cout << "schema version " << report->schema_version_before << " -> "
              << report->schema_version_after;
    for (const std::string& name : report->applied) {
      std::cout << "\n  applied " << name;
    }
    std::cout << std::endl;
    return 0;
  }

  if (bootstrap->parsed()) {
    absl::StatusOr<absl::Duration> ttl = ringwarden::ParseAdminTokenTtl(bootstrap_ttl);
    absl::StatusOr<ringwarden::IssuedAdminToken> issued =
        ttl.ok() ? ringwarden::BootstrapAdmin(config.database, bootstrap_name, *ttl)
                 : absl::StatusOr<ringwarden::IssuedAdminToken>(ttl.status());
    if (!issued.ok()) {
      std::cerr << "bootstrap-admin failed: " << issued.status() << std::endl;
      return 1;
    }
    std::cerr << "admin token " << issued->record.id << " for " << issued->record.name
              << " expires " << ringwarden::AdminTokenTime(issued->record.expires_at)
              << "; it is shown once, keep it in a secret store" << std::endl;
    std::cout << issued->token << std::endl;
    return 0;
  }

  // Block the stop signals before any thread starts so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ringwarden::Server server(config);
  absl::Status status = server.Start();
  if (!status.ok()) {
    std::cerr << "ringwarden-server: " << status << std::endl;
    return 1;
  }
  int signal = 0;
  sigwait(&signals, &signal);
  std::cerr << "ringwarden-server: shutting down" << std::endl;
  server.Shutdown();
  return 0;
}
