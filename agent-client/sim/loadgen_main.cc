// ringwarden-loadgen: polls and heartbeats from many distinct agents against a
// server (loadgen.h), or --echo: the echo AgentService the server is measured
// against (echo_service.h).
//
//   ringwarden-loadgen --server 127.0.0.1:7443 --agents 100000 --token rwe_...
//       --mode closed --concurrency 256 --duration 20
//   ringwarden-loadgen --server 127.0.0.1:7443 --agents 100000 --token rwe_...
//       --mode open --rate 3333 --duration 60
//   ringwarden-loadgen --echo 127.0.0.1:0 --port-file /tmp/port --reply-bytes 900
// Over TLS (a server with --tls-cert): --ca names the server's CA, and each agent enrolls with
// its own key and calls over its own connection with its certificate; the echo then serves
// TLS the way the server does (--echo-cert, --echo-key, and --echo-client-ca to verify the
// client certificates it asks for).
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent-client/sim/echo_service.h"
#include "agent-client/sim/loadgen.h"
#include "common/files.h"

namespace {

// ReadPem returns the PEM file at `path`, or nullopt saying why on stderr.
std::optional<std::string> ReadPem(const std::string& path) {
  absl::StatusOr<std::string> pem = ringwarden::ReadPemFile(path);
  if (!pem.ok()) {
    std::cerr << "loadgen: " << pem.status().message() << std::endl;
    return std::nullopt;
  }
  return *std::move(pem);
}

// EchoFiles: the echo's TLS files; all empty: plaintext.
struct EchoFiles {
  std::string cert, key, client_ca;
};

std::shared_ptr<grpc::ServerCredentials> EchoCredentials(const EchoFiles& files) {
  if (files.cert.empty() && files.key.empty() && files.client_ca.empty()) {
    return grpc::InsecureServerCredentials();
  }
  // A flag not given reads as empty, which EchoServerCredentials refuses, naming all three.
  auto read = [](const std::string& path) {
    return path.empty() ? std::optional<std::string>("") : ReadPem(path);
  };
  std::optional<std::string> cert = read(files.cert), key = read(files.key),
                             ca = read(files.client_ca);
  if (!cert || !key || !ca) {
    return nullptr;
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ringwarden::agent::EchoServerCredentials({*cert, *key, *ca});
  if (!credentials.ok()) {
    std::cerr << "loadgen: " << credentials.status() << std::endl;
    return nullptr;
  }
  return *credentials;
}

int ServeEcho(const std::string& listen, const std::string& port_file,
              ringwarden::agent::EchoOptions options, const EchoFiles& tls) {
  std::shared_ptr<grpc::ServerCredentials> credentials = EchoCredentials(tls);
  if (credentials == nullptr) {
    return 2;
  }
  ringwarden::agent::EchoAgentService service(options);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, credentials, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "loadgen: cannot listen on " << listen << std::endl;
    return 1;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file) << port << "\n";
  }
  std::cerr << "echo AgentService on port " << port << std::endl;
  server->Wait();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil records every mutex acquisition in one process-wide lock-order graph under
  // a global lock (ringwarden-server turns it off the same way). Both the load generator and
  // the echo it serves are measuring instruments: neither may carry that cost.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"Drive a ringwarden server's agent path from many distinct agents"};
  ringwarden::agent::LoadOptions options;
  std::string mode = "closed", echo, port_file, save_credentials, credentials;
  int concurrency = 256, reply_bytes = 0;
  double rate = 1000, duration_s = 10, late_after_ms = 1000;
  bool no_enroll = false, no_heartbeats = false, json = false;
  app.add_option("--server", options.server, "host:port of the server");
  std::string ca_file;
  app.add_option("--ca", ca_file,
                 "TLS: the CA of the server's certificate; each agent enrolls with its own key "
                 "and calls over its own connection with its certificate");
  app.add_option("--server-name", options.tls_server_name,
                 "TLS: the name to check in the server's certificate (default: the host)");
  EchoFiles echo_tls;
  app.add_option("--echo-cert", echo_tls.cert, "with --echo: serve TLS with this certificate");
  app.add_option("--echo-key", echo_tls.key, "with --echo: the certificate's key");
  app.add_option("--echo-client-ca", echo_tls.client_ca,
                 "with --echo: verify client certificates with this CA (asked for, as the "
                 "server does)");
  app.add_option("--agents", options.agents, "distinct agents")->check(CLI::Range(1, 10000000));
  app.add_option("--token", options.enrollment_token, "enrollment token (rwe_...)");
  app.add_option("--id-prefix", options.id_prefix, "agent i is <prefix><i>");
  app.add_option("--connections", options.connections, "gRPC connections")
      ->check(CLI::Range(1, 256));
  app.add_option("--enroll-concurrency", options.enroll_concurrency, "enrollments in flight")
      ->check(CLI::Range(1, 10000));
  app.add_flag("--no-enroll", no_enroll, "send no credential (an echo server)");
  app.add_option("--save-credentials", save_credentials,
                 "after enrolling, write the credentials here (mode 0600) and exit");
  app.add_option("--credentials", credentials,
                 "use the credentials --save-credentials wrote instead of enrolling");
  app.add_flag("--no-heartbeats", no_heartbeats, "polls only");
  bool no_hold = false;
  bool warm_up = false;
  app.add_flag("--no-hold", no_hold,
               "name no held statement in polls: every answer is signed, as for agents that have "
               "just started");
  app.add_flag("--warm-up", warm_up,
               "before the run, every agent polls once (closed loop, --concurrency at a time), so "
               "that each holds a signed statement as a fleet in its steady state does");
  app.add_option("--mode", mode, "closed (peak) or open (fixed rate)")
      ->check(CLI::IsMember({"closed", "open"}));
  app.add_option("--concurrency", concurrency, "closed loop: calls in flight")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--rate", rate, "open loop: calls per second")->check(CLI::Range(0.001, 1e7));
  app.add_option("--duration", duration_s, "seconds")->check(CLI::Range(0.1, 86400.0));
  app.add_option("--late-after-ms", late_after_ms, "open loop: later than this is missed")
      ->check(CLI::Range(1.0, 600000.0));
  app.add_option("--max-in-flight", options.max_in_flight, "open loop: calls outstanding at most")
      ->check(CLI::Range(1, 1000000));
  double timeline_ms = 0;
  app.add_option("--timeline-ms", timeline_ms,
                 "with --json: latency per slice of this many ms, by due time")
      ->check(CLI::Range(1.0, 60000.0));
  double alternate_ms = 1000;
  app.add_option("--compare-with", options.anchor,
                 "open loop: host:port of a second server (plaintext), the anchor; the run's "
                 "turns go to --server and to it in turn, and two results are printed, the "
                 "server's then the anchor's");
  app.add_option("--alternate-ms", alternate_ms, "with --compare-with: each side's turn, ms")
      ->check(CLI::Range(1.0, 3600000.0));
  app.add_flag("--anchor-first", options.anchor_first,
               "with --compare-with: turns go anchor, server, server, anchor (default: server, "
               "anchor, anchor, server)");
  app.add_flag("--json", json, "print the result as JSON");
  app.add_option("--echo", echo, "serve the echo AgentService on host:port instead");
  app.add_option("--port-file", port_file, "with --echo: write the port here");
  double busy_us = 0;
  app.add_option("--busy-us", busy_us, "with --echo: CPU work per call, microseconds")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--reply-bytes", reply_bytes, "with --echo: poll reply payload bytes")
      ->check(CLI::Range(0, 4 << 20));
  CLI11_PARSE(app, argc, argv);

  if (!echo.empty()) {
    ringwarden::agent::EchoOptions echo_options;
    echo_options.reply_bytes = reply_bytes;
    echo_options.busy = absl::Microseconds(busy_us);
    return ServeEcho(echo, port_file, echo_options, echo_tls);
  }
  if (options.server.empty()) {
    std::cerr << "loadgen: --server is required (or --echo)" << std::endl;
    return 2;
  }
  if (!ca_file.empty()) {
    std::optional<std::string> ca = ReadPem(ca_file);
    if (!ca) {
      return 2;
    }
    options.tls_ca_pem = *ca;
  }
  options.heartbeats = !no_heartbeats;
  options.hold_statements = !no_hold;
  options.late_after = absl::Milliseconds(late_after_ms);
  options.timeline_slice = absl::Milliseconds(timeline_ms);
  options.alternate_every = absl::Milliseconds(alternate_ms);
  if (!options.anchor.empty() && mode != "open") {
    std::cerr << "loadgen: --compare-with needs --mode open" << std::endl;
    return 2;
  }
  if (options.anchor.empty() && (app.count("--alternate-ms") > 0 || options.anchor_first)) {
    std::cerr << "loadgen: --alternate-ms and --anchor-first need --compare-with" << std::endl;
    return 2;
  }
  ringwarden::agent::LoadGenerator generator(options);
  if (no_enroll) {
    generator.UseUnenrolledIds();
  } else if (!credentials.empty()) {
    if (absl::Status loaded = generator.LoadCredentials(credentials); !loaded.ok()) {
      std::cerr << "loadgen: " << loaded << std::endl;
      return 1;
    }
  } else {
    const absl::Time start = absl::Now();
    if (absl::Status enrolled = generator.Enroll(); !enrolled.ok()) {
      std::cerr << "loadgen: " << enrolled << std::endl;
      return 1;
    }
    std::cerr << "enrolled " << options.agents << " agents in "
              << absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1)))
              << std::endl;
    if (!save_credentials.empty()) {
      absl::Status saved = generator.SaveCredentials(save_credentials);
      if (!saved.ok()) {
        std::cerr << "loadgen: " << saved << std::endl;
        return 1;
      }
      return 0;
    }
  }
  if (warm_up) {
    absl::StatusOr<ringwarden::agent::LoadResult> warmed = generator.WarmUp(concurrency);
    if (!warmed.ok()) {
      std::cerr << "loadgen: warm-up: " << warmed.status() << std::endl;
      return 1;
    }
    std::cerr << "warm-up: " << warmed->ToLine() << std::endl;
  }
  const absl::Duration duration = absl::Seconds(duration_s);
  auto print = [json](const ringwarden::agent::LoadResult& r) {
    std::cout << (json ? r.ToJson() : r.ToLine()) << std::endl;
  };
  if (!options.anchor.empty()) {
    absl::StatusOr<ringwarden::agent::ComparedResult> compared =
        generator.OpenLoopCompared(rate, duration);
    if (!compared.ok()) {
      std::cerr << "loadgen: " << compared.status() << std::endl;
      return 1;
    }
    print(compared->server);
    print(compared->anchor);
    return 0;
  }
  absl::StatusOr<ringwarden::agent::LoadResult> result =
      mode == "closed" ? generator.ClosedLoop(concurrency, duration)
                       : generator.OpenLoop(rate, duration);
  if (!result.ok()) {
    std::cerr << "loadgen: " << result.status() << std::endl;
    return 1;
  }
  print(*result);
  return 0;
}
