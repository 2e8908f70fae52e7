// server.h: wires storage, snapshot, services and metrics into a running server.
//
// Server owns every component; Start() migrates (unless told not to), opens
// the root of trust (--root, --server-key), loads the first snapshot, binds gRPC and the metrics
// endpoint and starts the background refresher; Shutdown() stops them in reverse order.
// Thread-safety: Start/Shutdown from one thread; the rest runs on its own threads.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/assignment_statement.h"

namespace ringwarden {

// kRefreshTick: the refresh loop's cadence for the queue metrics and for retrying a failed
// refresh.
inline constexpr absl::Duration kRefreshTick = absl::Seconds(2);
// kMinNotifiedRefreshGap: notified refreshes start at least this far apart, so that a burst of
// commits (a wave of labelled enrollments) costs a replica a few rebuilds a second.
inline constexpr absl::Duration kMinNotifiedRefreshGap = absl::Milliseconds(50);

struct ServerConfig {
  std::string listen = "127.0.0.1:7600";
  std::string metrics_listen = "127.0.0.1:7601";  // empty disables /metrics
  std::string database;                           // libpq conninfo
  // The pinned root of trust (DSSE envelope JSON). Content and floors are
  // verified against the release role of the newest stored root chaining from it.
  std::string root_file;
  // Ed25519 private key PEM that signs assignments; the current root's server
  // role should name it, else agents refuse the answers.
  std::string server_key_file;
  // How long a signed assignment stays valid: kMinAssignmentTtl..kMaxAssignmentTtl.
  absl::Duration assignment_ttl = kDefaultAssignmentTtl;
  // TLS (the default): the server's certificate chain and key, and the CA
  // bundle that verifies agents' client certificates. Reloaded on change.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string client_ca_file;
  absl::Duration tls_reload_interval = absl::Seconds(10);
  // The CA that issues agent certificates (its certificate defaults to
  // --client-ca, which must then hold just that CA).
  std::string agent_ca_cert_file;
  std::string agent_ca_key_file;
  absl::Duration agent_credential_ttl = absl::Hours(24 * 7);
  // Plaintext on loopback only, without agent certificates.
  bool insecure = false;
  bool migrate = true;
  absl::Duration poll_interval = absl::Seconds(30);
  // The agents' heartbeat interval, for refusing policies that cannot tell silence from a normal
  // gap between reports (CheckPolicyTimings).
  absl::Duration heartbeat_interval = absl::Seconds(60);
  double poll_jitter = 0.2;
  // The safety net behind LISTEN/NOTIFY: the snapshot is rebuilt when a catalog change is
  // notified, and at least this often. Below kRefreshTick it also sets the metrics' cadence.
  absl::Duration refresh_interval = absl::Seconds(30);
  // Fleet statistics (agents by ring and version) scan the agents table: not on every refresh.
  absl::Duration fleet_stats_interval = absl::Seconds(30);
  // Crash reports and health events are kept this long (whole UTC days), checked hourly.
  absl::Duration telemetry_retention = absl::Hours(24 * 90);
  absl::Duration telemetry_upkeep_interval = absl::Hours(1);
  absl::Duration telemetry_flush_interval = absl::Milliseconds(500);
  // Telemetry queues written in parallel, each on its own database connection.
  int telemetry_writers = 2;
  int db_workers = 4;
  bool controller = true;
  absl::Duration controller_interval = absl::Seconds(5);
  std::string port_file;  // written with the bound gRPC port once serving

  // Overload protection (docs/operations.md, "Overload and hostile agents").
  // Calls per second per agent; negative: derived from the poll interval
  // (10 calls per interval, at least 1/s); 0: no limit.
  double agent_rate = -1;
  double agent_burst = 40;
  // Agents whose rate buckets and telemetry batch numbers are remembered.
  size_t max_tracked_agents = 200'000;
  size_t telemetry_max_rows = 500'000;
  size_t telemetry_agent_rows = 20'000;
  // HTTP/2 streams per connection, and the memory gRPC may use for all calls.
  int max_concurrent_streams = 64;
  int64_t grpc_memory_bytes = int64_t{1} << 30;
  // Clients may ping at most this often without data (faster: GOAWAY).
  absl::Duration min_client_ping_interval = absl::Seconds(10);
  // Idle connections are closed; every connection is closed after its age
  // (plus a grace for calls in flight), which also bounds any one stream.
  absl::Duration max_connection_idle = absl::Minutes(10);
  absl::Duration max_connection_age = absl::Minutes(30);
  absl::Duration max_connection_age_grace = absl::Minutes(5);
  // Queued database work (admin calls, enrollment) that waited longer is
  // answered UNAVAILABLE instead of being run late.
  absl::Duration queue_max_wait = absl::Seconds(10);
};

// EffectiveAgentRate resolves ServerConfig::agent_rate (negative: derived
// from the poll interval).
double EffectiveAgentRate(const ServerConfig& config);

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();

  absl::Status Start();
  // BoundPort returns the gRPC port (useful with port 0).
  int BoundPort() const { return bound_port_; }
  void Shutdown();

 private:
  struct Parts;
  // RefreshLoop rebuilds the snapshot when a change is notified (at most once per
  // kMinNotifiedRefreshGap), every --refresh-interval, and every tick after a failure; and
  // updates the queue, fleet and retention work every tick.
  void RefreshLoop();
  // OnRefreshed follows a refresh: metrics and roots from the new snapshot, or the failure.
  void OnRefreshed(const absl::Status& status, bool& logged, bool& trust_sync_logged);
  // MaintainTelemetry runs one retention pass (day partitions) and logs what it dropped.
  void MaintainTelemetry();
  // WakeRefresher asks the refresh loop for a snapshot refresh now (a catalog change was
  // committed); wakes that arrive during a refresh are folded into one more.
  void WakeRefresher();

  ServerConfig config_;
  std::unique_ptr<Parts> parts_;
  int bound_port_ = 0;
  absl::Notification stop_;
  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
  std::thread refresher_;
};

}  // namespace ringwarden
