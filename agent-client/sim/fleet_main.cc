// ringwarden-fleet: runs many simulated agents (the real Agent over in-memory
// stores) in one process against a real server, with per-version fault
// injection, for demos, load tests and benchmarks. Thin wiring around Fleet.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agent-client/agent.h"
#include "agent-client/atomic_file.h"
#include "agent-client/signals.h"
#include "agent-client/sim/fleet.h"
#include "common/dsse.h"
#include "common/files.h"
#include "common/trust/trust.h"

namespace ringwarden::agent {
namespace {

constexpr char kFooter[] = R"(
Fault injection (--fault, repeatable), per content version:
  --fault VERSION:crash=P,silence=P,apply_fail=P,load_fail=P,health=P,health_kind=K,
                 latency_ms=N,onset_ms=N[,channel=C][,ring=R]
    crash=P       each time a host loads VERSION it crashes with probability P: it goes
                  silent for --restart-delay, restarts, reports an unclean shutdown with
                  VERSION in effect and loads it again (so it may crash again: a boot
                  loop). After --boot-loop-threshold boot markers it reverts to
                  last-known-good on its own and reports APPLY_OUTCOME_REVERTED.
    silence=P     after loading VERSION the host goes silent for good.
    apply_fail=P  an apply attempt fails: APPLY_FAILED, previous version kept (retried
                  with backoff).
    load_fail=P   the load check fails: LOAD_CHECK_FAILED, version refused for good.
    health=P      a host running VERSION reports a health event at each poll with
                  probability P (kind health_kind=K, default cpu_high).
    latency_ms=N  extra delay between verifying and applying VERSION.
    onset_ms=N    the fault starts N ms after the fleet started (a late failure);
                  then crash=P also strikes once every host already running VERSION.
    channel=C     only for channel C (default: any channel).
    ring=R        only for hosts of ring R: canary, early or broad (default: any ring).
  Example: --fault 7:crash=0.3,latency_ms=200 --fault 8:silence=0.05,channel=rules.behavioral

--summary-json PATH writes on exit:
  {"agents": N, "enrolled": N, "running": N, "down": N, "silent": N,
   "crashed_agents": N, "crashes": N, "restarts": N, "applied": N, "reverted": N,
   "apply_failed": N, "rejected": N, "polls": N, "rpc_errors": N, "telemetry_errors": N,
   "dropped_events": N, "last_error": "...",
   "rings": {"<ring>": {"agents": N, "channels": {"<channel>": {"<version>":
       {"ever_applied": N, "in_effect": N}}}}}}
  ever_applied counts hosts that ever loaded the version (per ring, ring from Enroll);
  in_effect counts hosts holding it now (down and silent hosts included).
)";

int Run(int argc, char** argv) {
  CLI::App app{"ringwarden-fleet: simulate many ringwarden agents against a real server."};
  app.footer(kFooter);
  app.option_defaults()->always_capture_default();
  FleetOptions options;
  std::string root_file;
  std::vector<std::string> label_fraction_args;
  std::vector<std::string> fault_args;
  double duration_s = 0;
  double status_every_s = 10;
  double restart_delay_s = 30;
  double reboot_every_s = 0;
  double start_spread_s = 10;
  double late_after_s = 1;
  double healthy_interval_s = 300;
  double heartbeat_interval_s = 60;
  double min_poll_s = 1;
  std::string summary_json;

  app.add_option("--agents", options.agents, "Number of simulated agents")
      ->required()
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--server", options.server, "Server address host:port")->required();
  app.add_option("--root", root_file,
                 "Pinned root of trust (root metadata envelope, JSON) for every simulated agent; "
                 "each keeps newer roots the server sends in memory")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--enrollment-token", options.agent.enrollment_token,
                 "Enrollment token the hosts enroll with (ringctl enroll-token create)")
      ->envname("RINGWARDEN_ENROLLMENT_TOKEN");
  std::vector<std::string> token_fraction_args;
  app.add_option("--token-fraction", token_fraction_args,
                 "TOKEN:FRACTION enrolls that fraction of the hosts with another token "
                 "(repeatable), e.g. a token whose labels put them in canary");
  std::string ca_file;
  bool insecure = false;
  app.add_option("--ca", ca_file,
                 "CA bundle (PEM) that verifies the server's TLS certificate; "
                 "every host then has its own connection and certificate")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", insecure, "Plaintext, for a server started with --insecure");
  app.add_option("--channel", options.agent.channels,
                 "Channel to subscribe to (repeatable; default: every channel)");
  app.add_option("--threads", options.threads, "Worker threads")->check(CLI::Range(1, 1024));
  app.add_option("--connections", options.connections, "gRPC connections shared by the agents")
      ->check(CLI::Range(1, 1024));
  app.add_option("--label-fraction", label_fraction_args,
                 "KEY=VALUE:FRACTION gives a label to that fraction of agents (repeatable), "
                 "e.g. group=dogfood:0.005");
  app.add_option("--id-prefix", options.id_prefix, "Agent ids are <prefix><index>");
  app.add_option("--duration", duration_s, "Seconds to run (default: until SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--status-every", status_every_s, "Seconds between status lines")
      ->check(CLI::PositiveNumber);
  app.add_option("--fault", fault_args, "Fault injection per version (repeatable; see below)");
  app.add_option("--unclean-shutdown-on-restart", options.unclean_shutdown_on_restart,
                 "Probability that a host's first start or background reboot finds an unclean "
                 "shutdown (crash noise unrelated to content)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--reboot-every", reboot_every_s,
                 "Mean seconds between background host reboots (0: never)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--restart-delay", restart_delay_s,
                 "Seconds a crashed or rebooting host stays silent")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--start-spread", start_spread_s, "First starts spread over this many seconds")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--late-after", late_after_s,
                 "Seconds after its due time that make a host's turn (poll, restart) late; the "
                 "status line and summary count late turns")
      ->check(CLI::PositiveNumber);
  app.add_option("--healthy-interval", healthy_interval_s,
                 "Seconds after loading content that clear the boot marker")
      ->check(CLI::PositiveNumber);
  app.add_option("--heartbeat-interval", heartbeat_interval_s, "Seconds between heartbeats")
      ->check(CLI::PositiveNumber);
  app.add_option("--min-poll", min_poll_s, "Lower bound on the server's next-poll delay")
      ->check(CLI::PositiveNumber);
  app.add_option("--boot-loop-threshold", options.agent.boot_loop_threshold,
                 "Boot markers before an agent reverts to last-known-good")
      ->check(CLI::Range(1, 100));
  app.add_option("--seed", options.seed, "Seed for labels, faults and jitter (deterministic)");
  app.add_option("--summary-json", summary_json, "Write the final summary as JSON to PATH");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every flag error is a usage error (2), whatever CLI11's own code.
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto usage_error = [](const std::string& message) {
    std::cerr << "ringwarden-fleet: " << message << "\nRun with --help for more information."
              << std::endl;
    return 2;
  };
  if (options.agent.enrollment_token.empty()) {
    return usage_error("--enrollment-token (or RINGWARDEN_ENROLLMENT_TOKEN) is required");
  }
  if (ca_file.empty() == !insecure) {
    return usage_error("pass --ca FILE (TLS, the default) or --insecure (plaintext), not both");
  }
  if (!insecure) {
    absl::StatusOr<std::string> pem = ReadPemFile(ca_file);
    if (!pem.ok()) {
      return usage_error(absl::StrCat("--ca: ", pem.status().message()));
    }
    options.server_ca_pem = *std::move(pem);
  }
  for (const std::string& arg : token_fraction_args) {
    absl::StatusOr<TokenFraction> tf = ParseTokenFraction(arg);
    if (!tf.ok()) {
      return usage_error(std::string(tf.status().message()));
    }
    options.token_fractions.push_back(*tf);
  }
  for (const std::string& arg : label_fraction_args) {
    absl::StatusOr<LabelFraction> lf = ParseLabelFraction(arg);
    if (!lf.ok()) {
      return usage_error(std::string(lf.status().message()));
    }
    options.label_fractions.push_back(*lf);
  }
  for (const std::string& arg : fault_args) {
    absl::StatusOr<FaultSpec> spec = ParseFaultSpec(arg);
    if (!spec.ok()) {
      return usage_error(std::string(spec.status().message()));
    }
    options.faults.push_back(*spec);
  }
  options.restart_delay = absl::Seconds(restart_delay_s);
  options.reboot_every = absl::Seconds(reboot_every_s);
  options.start_spread = absl::Seconds(start_spread_s);
  options.late_after = absl::Milliseconds(static_cast<int64_t>(late_after_s * 1000));
  options.agent.healthy_interval = absl::Seconds(healthy_interval_s);
  options.agent.heartbeat_interval = absl::Seconds(heartbeat_interval_s);
  options.agent.min_poll_interval = absl::Seconds(min_poll_s);

  absl::StatusOr<std::string> root_json = ReadFileAtMost(root_file, kMaxEnvelopeJsonBytes);
  absl::StatusOr<Root> pinned =
      root_json.ok() ? TrustConfiguredRoot(*root_json) : absl::StatusOr<Root>(root_json.status());
  if (!pinned.ok()) {
    std::cerr << "ringwarden-fleet: cannot trust --root " << root_file << ": " << pinned.status()
              << std::endl;
    return 1;
  }

  Fleet fleet(options, *pinned);
  absl::Status started = fleet.Start();
  if (!started.ok()) {
    std::cerr << "ringwarden-fleet: " << started.message() << std::endl;
    return started.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  const absl::Time begin = absl::Now();
  const absl::Time end =
      duration_s > 0 ? begin + absl::Seconds(duration_s) : absl::InfiniteFuture();
  std::cerr << "ringwarden-fleet: " << options.agents << " agents against " << options.server
            << " on " << options.threads << " threads, " << options.connections << " connections"
            << std::endl;
  while (true) {
    const absl::Duration wait = std::min(absl::Seconds(status_every_s), end - absl::Now());
    if (WaitForStopSignal(wait)) {
      std::cerr << "ringwarden-fleet: stopping" << std::endl;
      break;
    }
    const absl::Time now = absl::Now();
    std::cout << "[" << absl::FormatDuration(absl::Trunc(now - begin, absl::Seconds(1))) << "] "
              << fleet.Summary().ToLine() << std::endl;
    if (now >= end) {
      break;
    }
  }
  fleet.Stop();
  const FleetSummary summary = fleet.Summary();
  std::cout << "final: " << summary.ToLine() << std::endl;
  if (!summary_json.empty()) {
    const std::string tmp = summary_json + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << summary.ToJson() << "\n";
      if (!out.good()) {
        std::cerr << "ringwarden-fleet: cannot write " << tmp << std::endl;
        return 1;
      }
    }
    if (std::rename(tmp.c_str(), summary_json.c_str()) != 0) {
      std::cerr << "ringwarden-fleet: cannot rename " << tmp << " to " << summary_json << std::endl;
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace ringwarden::agent

int main(int argc, char** argv) {
  // Debian's Abseil records every mutex acquisition in one process-wide lock-order graph under
  // a global lock: a simulated fleet of 100k agents would measure that lock, not the server.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ringwarden::agent::BlockStopSignals();
  return ringwarden::agent::Run(argc, argv);
}
