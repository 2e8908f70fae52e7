// ringwarden-agent: the endpoint daemon. Parses flags, wires the Agent to a disk
// store, the pinned root of trust and the server, then loops RunOnce + wait until
// SIGTERM/SIGINT, when it shuts down cleanly (clearing the unclean-shutdown flag).
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent-client/agent.h"
#include "agent-client/agent_client.h"
#include "agent-client/atomic_file.h"
#include "agent-client/backoff.h"
#include "agent-client/content_store.h"
#include "agent-client/load_check.h"
#include "agent-client/signals.h"
#include "common/clock.h"
#include "common/dsse.h"
#include "common/files.h"
#include "common/names.h"
#include "common/trust/trust.h"

namespace ringwarden::agent {
namespace {

void Log(const std::string& message) {
  std::cerr << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone())
            << " ringwarden-agent: " << message << std::endl;
}

std::string FormatVersions(const std::vector<ChannelVersion>& versions) {
  if (versions.empty()) {
    return "(no content)";
  }
  return absl::StrJoin(versions, ", ", [](std::string* out, const ChannelVersion& cv) {
    absl::StrAppend(out, cv.channel, " v", cv.version);
  });
}

bool IsValidAgentId(const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return false;
  }
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == ':' || c == '-')) {
      return false;
    }
  }
  return true;
}

// MakeBootId combines the kernel's boot id with a per-process random part, so it
// changes on every host boot and every agent restart.
std::string MakeBootId(RandomSource& random) {
  std::string kernel;
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::getline(in, kernel);
  std::string process = absl::StrCat(absl::Hex(random.Next64() >> 32, absl::kZeroPad8));
  return kernel.empty() ? process : absl::StrCat(absl::StripAsciiWhitespace(kernel), "/", process);
}

int Run(int argc, char** argv) {
  CLI::App app{
      "ringwarden-agent: polls the ringwarden server for content assignments, verifies signed\n"
      "content, applies it atomically with a last-known-good copy and reports health."};
  app.option_defaults()->always_capture_default();
  std::string server;
  std::string state_dir;
  std::string id;
  std::vector<std::string> label_args;
  std::string root_file;
  std::string enrollment_token;
  std::string ca_file;
  bool insecure = false;
  std::vector<std::string> channels;
  std::string load_check;
  double load_check_timeout_s = 60;
  int boot_loop_threshold = 3;
  double healthy_interval_s = 300;
  double heartbeat_interval_s = 60;
  double download_deadline_s = 120;
  double min_download_rate_kib = 1;
  double download_rate_window_s = 30;
  double download_grace_s = 10;
  bool once = false;

  app.add_option("--server", server, "Server address host:port")->required();
  app.add_option("--state-dir", state_dir,
                 "Directory for content (<dir>/<channel>/current, previous) and state")
      ->required();
  app.add_option("--id", id, "Stable agent id: 1-128 of [A-Za-z0-9._:-]")->required();
  app.add_option("--label", label_args, "Label key=value (repeatable), e.g. group=dogfood");
  app.add_option("--root", root_file,
                 "Pinned root of trust: the root metadata envelope (JSON) naming the release and "
                 "server keys. Newer roots the server sends are kept in --state-dir")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--enrollment-token", enrollment_token,
                 "Enrollment token (ringctl enroll-token create) for the first start; afterwards "
                 "the agent is known by the credential kept in --state-dir (prefer the "
                 "environment variable: flags show in ps)")
      ->envname("RINGWARDEN_ENROLLMENT_TOKEN");
  app.add_option("--ca", ca_file, "CA bundle (PEM) that verifies the server's TLS certificate")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", insecure,
               "Plaintext, for a server started with --insecure on this host");
  app.add_option("--channel", channels,
                 "Channel to subscribe to (repeatable; default: every channel)");
  app.add_option("--load-check", load_check,
                 "Command run on newly applied content; {path}, {channel}, {version} are "
                 "replaced by shell-quoted values (path appended when absent); non-zero exit "
                 "reverts to last-known-good");
  app.add_option("--load-check-timeout", load_check_timeout_s,
                 "Seconds before the load check "
                 "is killed and counted as failed")
      ->check(CLI::PositiveNumber);
  app.add_option("--boot-loop-threshold", boot_loop_threshold,
                 "Starts finding the boot marker before reverting to last-known-good")
      ->check(CLI::Range(1, 100));
  app.add_option("--healthy-interval", healthy_interval_s,
                 "Seconds of running after loading content that clear the boot marker")
      ->check(CLI::PositiveNumber);
  app.add_option("--heartbeat-interval", heartbeat_interval_s, "Seconds between heartbeats")
      ->check(CLI::PositiveNumber);
  app.add_option("--download-deadline", download_deadline_s,
                 "Seconds a whole content download may take before it is refused")
      ->check(CLI::PositiveNumber);
  app.add_option("--min-download-rate", min_download_rate_kib,
                 "KiB/s below which a download is refused as stalled (over "
                 "--download-rate-window, after --download-grace)")
      ->check(CLI::PositiveNumber);
  app.add_option("--download-rate-window", download_rate_window_s,
                 "Seconds over which the download rate is measured")
      ->check(CLI::PositiveNumber);
  app.add_option("--download-grace", download_grace_s,
                 "Seconds from the start of a download before the rate is checked")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--once", once,
               "Poll once, apply, report and exit (exit 1 if the poll failed or its answer was "
               "refused)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; every flag error is a usage error (2), whatever CLI11's own code.
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto usage_error = [&](const std::string& message) {
    std::cerr << "ringwarden-agent: " << message << "\nRun with --help for more information."
              << std::endl;
    return 2;
  };
  if (ca_file.empty() == !insecure) {
    return usage_error("pass --ca FILE (TLS, the default) or --insecure (plaintext), not both");
  }
  if (!IsValidAgentId(id)) {
    return usage_error(absl::StrCat("--id \"", id, "\": want 1-128 of [A-Za-z0-9._:-]"));
  }
  std::map<std::string, std::string> labels;
  for (const std::string& arg : label_args) {
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return usage_error(absl::StrCat("--label \"", arg, "\": want key=value"));
    }
    labels[arg.substr(0, eq)] = arg.substr(eq + 1);
  }
  for (const std::string& channel : channels) {
    if (absl::Status valid = ValidateChannelName(channel); !valid.ok()) {
      return usage_error(absl::StrCat("--channel: ", valid.message()));
    }
  }
  AgentClientOptions client_options;
  client_options.fetch_timeout = absl::Seconds(download_deadline_s);
  client_options.min_fetch_bytes_per_second =
      static_cast<int64_t>(std::llround(min_download_rate_kib * 1024));
  client_options.fetch_rate_window = absl::Seconds(download_rate_window_s);
  client_options.fetch_grace = absl::Seconds(download_grace_s);
  if (absl::Status valid = ValidateAgentClientOptions(client_options); !valid.ok()) {
    return usage_error(std::string(valid.message()));
  }

  absl::StatusOr<std::string> root_json = ReadFileAtMost(root_file, kMaxEnvelopeJsonBytes);
  absl::StatusOr<Root> pinned =
      root_json.ok() ? TrustConfiguredRoot(*root_json) : absl::StatusOr<Root>(root_json.status());
  if (!pinned.ok()) {
    Log(absl::StrCat("cannot trust --root ", root_file, ": ", pinned.status().ToString()));
    return 1;
  }
  if (pinned->expires <= absl::Now()) {
    Log(absl::StrCat("warning: the pinned root v", pinned->version, " in ", root_file,
                     " has expired; nothing is accepted until the server sends a newer root"));
  }
  absl::StatusOr<std::unique_ptr<DiskContentStore>> store = DiskContentStore::Open(state_dir);
  if (!store.ok()) {
    Log(absl::StrCat("cannot open state directory: ", store.status().ToString()));
    return 1;
  }

  std::random_device device;
  SeededRandom random((static_cast<uint64_t>(device()) << 32) ^ device());
  ExponentialBackoff backoff({}, random);
  ConnectionOptions connection_options;
  if (!insecure) {
    absl::StatusOr<std::string> pem = ReadPemFile(ca_file);
    if (!pem.ok()) {
      return usage_error(absl::StrCat("--ca: ", pem.status().message()));
    }
    connection_options.server_ca_pem = *std::move(pem);
  }
  AgentClient client(server, connection_options, client_options);
  std::unique_ptr<CommandLoadChecker> checker;
  if (!load_check.empty()) {
    checker = std::make_unique<CommandLoadChecker>(load_check, absl::Seconds(load_check_timeout_s));
  }
  char hostname[256] = {};
  ::gethostname(hostname, sizeof(hostname) - 1);

  AgentConfig config;
  config.agent_id = id;
  config.labels = labels;
  config.channels = channels;
  config.enrollment_token = enrollment_token;
  config.hostname = hostname;
  config.boot_id = MakeBootId(random);
  config.boot_loop_threshold = boot_loop_threshold;
  config.healthy_interval = absl::Seconds(healthy_interval_s);
  config.heartbeat_interval = absl::Seconds(heartbeat_interval_s);
  Agent agent(config, client, **store, *pinned, RealClock::Instance(), backoff, checker.get());

  absl::Status started = agent.Start();
  if (!started.ok()) {
    Log(absl::StrCat("cannot start: ", started.ToString()));
    return 1;
  }
  Log(absl::StrCat("started as ", id, " against ", server, "; state in ", state_dir,
                   "; trusting root v", agent.root().version, "; running ",
                   FormatVersions(agent.VersionsInEffect())));

  std::vector<ChannelVersion> last_versions = agent.VersionsInEffect();
  std::string last_ring;
  bool last_stop = false;
  int64_t last_root = agent.root().version;
  int64_t last_refusals = 0;
  bool refused = false;
  bool last_poll_ok = false;
  while (true) {
    absl::StatusOr<absl::Duration> delay = agent.RunOnce();
    absl::Duration wait;
    if (!delay.ok()) {
      wait = agent.ErrorDelay();
      last_poll_ok = false;
      Log(absl::StrCat("poll failed: ", delay.status().ToString(), "; retrying in ",
                       absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(100)))));
    } else {
      wait = *delay;
      last_poll_ok = agent.last_error().ok();
      if (!last_poll_ok) {
        Log(absl::StrCat("poll failed: ", agent.last_error().ToString(), "; retrying in ",
                         absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(100)))));
      }
    }
    if (agent.ring() != last_ring) {
      last_ring = agent.ring();
      Log(absl::StrCat("enrolled in ring ", last_ring));
    }
    if (agent.root().version != last_root) {
      last_root = agent.root().version;
      Log(absl::StrCat("root of trust updated: now trusting root v", last_root));
    }
    if (agent.assignment_refusals() != last_refusals) {
      last_refusals = agent.assignment_refusals();
      Log(absl::StrCat("assignment refused, keeping ", FormatVersions(agent.VersionsInEffect()),
                       " and applying nothing new: ", agent.assignment_refusal()));
    }
    if (refused && agent.assignment_refusal().empty() && agent.last_error().ok()) {
      Log("assignment trusted again");
    }
    refused = !agent.assignment_refusal().empty();
    if (agent.emergency_stop() != last_stop) {
      last_stop = agent.emergency_stop();
      Log(last_stop ? "emergency stop in effect: applying nothing new" : "emergency stop lifted");
    }
    std::vector<ChannelVersion> versions = agent.VersionsInEffect();
    if (versions != last_versions) {
      Log(absl::StrCat("now running ", FormatVersions(versions)));
      last_versions = std::move(versions);
    }
    if (once || WaitForStopSignal(wait)) {
      break;
    }
  }
  absl::Status stopped = agent.Shutdown();
  if (!stopped.ok()) {
    Log(absl::StrCat("unclean shutdown: ", stopped.ToString()));
    return 1;
  }
  Log("stopped cleanly");
  // --once fails when the poll failed or its answer could not be trusted.
  return once && (!last_poll_ok || refused) ? 1 : 0;
}

}  // namespace
}  // namespace ringwarden::agent

int main(int argc, char** argv) {
  ringwarden::agent::BlockStopSignals();
  return ringwarden::agent::Run(argc, argv);
}
