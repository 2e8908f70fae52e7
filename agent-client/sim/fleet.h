// fleet.h: many simulated hosts, each running the real Agent, in one process.
//
//   Fleet fleet(options, pinned_root);           // one root for every simulated host
//   RETURN_IF_ERROR(fleet.Start());                 // T worker threads
//   fleet.WaitFor([](const FleetSummary& s) { return s.enrolled == s.agents; }, absl::Minutes(1));
//   std::cout << fleet.Summary().ToLine();
//   fleet.Stop();                                   // also done by the destructor
//
// Hosts keep their state in a MemoryContentStore (trust state and any newer root
// they accepted included: per host, in memory) and share a few gRPC connections.
// A min-heap of next-due times feeds the workers; a host is run by one worker at a
// time. Faults are injected per content version (crash, silence, apply failure,
// load-check failure, latency). Thread-safety: Summary and WaitFor from any thread;
// Start and Stop from the owning thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent-client/agent.h"
#include "agent-client/agent_client.h"
#include "agent-client/backoff.h"
#include "common/clock.h"
#include "common/trust/trust.h"

namespace ringwarden::agent {

// FaultSpec injects faults into hosts that load one content version.
struct FaultSpec {
  int64_t version = 0;
  std::string channel;    // empty: any channel
  std::string ring;       // empty: any ring; else only hosts of that ring ("canary")
  double crash = 0;       // P(the host crashes each time it loads the version)
  double silence = 0;     // P(the host goes silent for good after loading it)
  double apply_fail = 0;  // P(an apply attempt fails: APPLY_FAILED, previous version kept)
  double load_fail = 0;   // P(the load check fails: LOAD_CHECK_FAILED, version refused)
  absl::Duration latency = absl::ZeroDuration();  // extra delay before applying
  // P(a host running the version reports a health event of `health_kind` at each poll).
  double health = 0;
  std::string health_kind = "cpu_high";
  // The fault starts this long after the fleet started (a late failure): before it the version
  // is healthy; from then on `crash` also applies once to every host already running it.
  absl::Duration onset = absl::ZeroDuration();

  // Matches reports whether the spec applies to `channel` at `version`.
  bool Matches(absl::string_view channel, int64_t v) const {
    return v == version && (this->channel.empty() || this->channel == channel);
  }
};

// ParseFaultSpec parses "VERSION:key=value,..." with keys crash, silence,
// apply_fail, load_fail, health (probabilities in [0,1]), health_kind, latency_ms
// and onset_ms (>= 0) and channel.
absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view text);

// LabelFraction gives a label to a fraction of the hosts ("group=dogfood:0.005").
struct LabelFraction {
  std::string key;
  std::string value;
  double fraction = 0;
};
absl::StatusOr<LabelFraction> ParseLabelFraction(absl::string_view text);

// TokenFraction enrolls a fraction of the hosts with another enrollment token
// ("rwe_...:0.005"), e.g. one whose labels put them in canary.
struct TokenFraction {
  std::string token;
  double fraction = 0;
};
absl::StatusOr<TokenFraction> ParseTokenFraction(absl::string_view text);

struct FleetOptions {
  int agents = 1000;
  // Server address; used when the Fleet makes its own connections.
  std::string server;
  // gRPC connections the hosts are spread over.
  int connections = 4;
  int threads = 8;
  // Host i gets agent id <id_prefix><i>.
  std::string id_prefix = "fleet-";
  // Labels the hosts report about themselves (display only).
  std::vector<LabelFraction> label_fractions;
  std::vector<TokenFraction> token_fractions;
  // TLS: the CA (PEM) that verifies the server; each host then has its own
  // connection for its own client certificate. Empty: plaintext, and the
  // hosts share `connections` connections.
  std::string server_ca_pem;
  std::vector<FaultSpec> faults;
  // P(a host start finds that the previous run ended uncleanly) at the first start and at
  // background reboots: crash noise unrelated to content, for the control group.
  double unclean_shutdown_on_restart = 0;
  // Mean time between background reboots of a host (exponential); zero: never.
  absl::Duration reboot_every = absl::ZeroDuration();
  // How long a crashed or rebooting host stays silent before it starts again.
  absl::Duration restart_delay = absl::Seconds(30);
  // First starts are spread uniformly over this window.
  absl::Duration start_spread = absl::Seconds(10);
  // A host's turn (a poll, or a restart) that starts more than this after it was due counts
  // as late: the fleet or the server fell behind the schedule.
  absl::Duration late_after = absl::Seconds(1);
  uint64_t seed = 1;
  // Template for every host's Agent; agent_id, labels, hostname and boot_id are
  // filled per host. Set channels and enrollment_token here.
  AgentConfig agent;
  AgentClientOptions client;
  ExponentialBackoffOptions backoff;
};

// VersionCounts: hosts that ever loaded a version, and that hold it now.
struct VersionCounts {
  int64_t ever_applied = 0;
  int64_t in_effect = 0;
};

// FleetSummary is a consistent snapshot of the fleet's counters.
struct FleetSummary {
  int64_t agents = 0;
  int64_t enrolled = 0;        // hosts that enrolled at least once
  int64_t running = 0;         // hosts up now
  int64_t down = 0;            // crashed or rebooting, waiting to restart
  int64_t silent = 0;          // gone silent for good
  int64_t crashed_agents = 0;  // hosts that crashed at least once
  int64_t crashes = 0;         // simulated crashes, boot loops included
  int64_t restarts = 0;
  // Apply reports queued by the agents, by outcome.
  int64_t applied = 0;
  int64_t reverted = 0;
  int64_t apply_failed = 0;      // APPLY_FAILED and LOAD_CHECK_FAILED
  int64_t rejected = 0;          // SIGNATURE_REJECTED and DIGEST_MISMATCH
  int64_t polls = 0;             // RunOnce polls made, failed ones included
  int64_t rpc_errors = 0;        // RunOnce polls that failed
  int64_t telemetry_errors = 0;  // ReportTelemetry calls that failed (batch kept or dropped)
  int64_t dropped_events = 0;    // telemetry events given up (queue full, batch refused)
  int64_t late_turns = 0;        // turns started more than late_after after they were due
  absl::Duration max_lateness;   // the latest start of any turn
  std::string last_error;
  // hosts per ring (ring from Enroll; "" until known)
  std::map<std::string, int64_t> ring_agents;
  // ring -> channel -> version -> counts
  std::map<std::string, std::map<std::string, std::map<int64_t, VersionCounts>>> rings;

  // ToLine returns a one-line human summary.
  std::string ToLine() const;
  // ToJson returns the summary as JSON (schema in fleet_main.cc --help and the report).
  std::string ToJson() const;
  // EverApplied and InEffect sum counts over rings (ring "" = every ring).
  int64_t EverApplied(absl::string_view ring, absl::string_view channel, int64_t version) const;
  int64_t InEffect(absl::string_view ring, absl::string_view channel, int64_t version) const;
};

// Fleet runs the simulated hosts.
class Fleet {
 public:
  // Fleet makes options.connections connections to options.server. Every host
  // starts from `pinned_root` (it must outlive the Fleet).
  Fleet(FleetOptions options, const Root& pinned_root, Clock& clock = RealClock::Instance());
  // Fleet spreads the hosts over `connections` (tests; at least one).
  Fleet(FleetOptions options, const Root& pinned_root,
        std::vector<std::shared_ptr<AgentConnection>> connections,
        Clock& clock = RealClock::Instance());
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Start validates the options, creates the hosts and starts the workers.
  absl::Status Start();
  // Stop stops and joins the workers; the hosts simply vanish. Idempotent.
  void Stop();

  // AddFault starts a fault now, while the fleet runs: hosts that load the version from now on
  // meet it, and a crash strikes once every host already running it (a late failure).
  // FAILED_PRECONDITION before Start.
  absl::Status AddFault(FaultSpec fault);

  FleetSummary Summary() const;
  // WaitFor waits until `done(Summary())` holds or `timeout` passes; returns whether it
  // held. `done` runs without locks held, on every change and at least every 50 ms.
  bool WaitFor(const std::function<bool(const FleetSummary&)>& done, absl::Duration timeout);

 private:
  class Host;
  friend class Host;
  ConnectionOptions ConnectionOptionsForHost() const;
  enum class HostPhase { kNew, kRunning, kDown, kSilent };
  struct Due {
    absl::Time at;
    int index;
    bool operator>(const Due& other) const { return at > other.at; }
  };

  void WorkerLoop();
  // Step runs one host once and returns when it is due again (InfiniteFuture: never).
  absl::Time Step(Host& host);
  void Schedule(int index, absl::Time at);
  // FindFault returns the fault for `version` on `host` that is active at `now` (past its onset).
  std::shared_ptr<const FaultSpec> FindFault(const Host& host, absl::string_view channel,
                                             int64_t version,
                                             absl::Time now = absl::InfiniteFuture()) const;
  // LateFault runs the faults of versions `host` already runs: health events, and a late-onset
  // crash once the onset has passed (returns true: the caller takes the host down).
  bool LateFault(Host& host, absl::Time now);
  // UpdateCounts moves `host`'s in-effect counts to its current ring and versions.
  void UpdateCounts(Host& host);
  // RecordLoaded counts versions `host` loads for the first time as ever applied.
  void RecordLoaded(Host& host, const std::vector<ChannelVersion>& versions);
  void CountReport(const ApplyReport& report);
  void SetPhase(Host& host, HostPhase phase);
  // HostDown handles a host that a fault took down (`fate`: kCrash or kSilence); returns when it
  // is due again.
  absl::Time HostDown(Host& host, HostFate fate, absl::Time now);
  // Changed wakes WaitFor callers.
  void Changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(stats_mu_);

  FleetOptions options_;
  const Root& pinned_root_;
  Clock& clock_;
  std::vector<std::shared_ptr<AgentConnection>> connections_;
  SeededRandom backoff_random_;
  ExponentialBackoff backoff_;
  std::vector<std::unique_ptr<Host>> hosts_;
  absl::Time started_at_ = absl::InfinitePast();  // written by Start before the workers run
  mutable absl::Mutex faults_mu_;
  std::vector<std::shared_ptr<const FaultSpec>> faults_ ABSL_GUARDED_BY(faults_mu_);

  absl::Mutex mu_;
  absl::CondVar work_cv_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;

  mutable absl::Mutex stats_mu_;
  absl::CondVar stats_cv_;
  FleetSummary stats_ ABSL_GUARDED_BY(stats_mu_);
  int64_t stats_version_ ABSL_GUARDED_BY(stats_mu_) = 0;
};

}  // namespace ringwarden::agent
