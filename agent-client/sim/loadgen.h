// loadgen.h: drives a server's agent path (polls and heartbeats) from many
// distinct agents with gRPC's callback API: one process, no thread per agent.
//
//   LoadGenerator gen(options);
//   RETURN_IF_ERROR(gen.Enroll());                       // or UseUnenrolledIds() for an echo
//   server ASSIGN_OR_RETURN(LoadResult peak, gen.ClosedLoop(256, absl::Seconds(20)));
//   ASSIGN_OR_RETURN(LoadResult fleet, gen.OpenLoop(3333.0, absl::Seconds(60)));
//
// Closed loop keeps `concurrency` calls in flight, each completion starting the
// next: the peak the server sustains. Open loop starts calls on a fixed
// schedule whatever the answers do, and measures each call's latency from when
// it was due, not from when it was sent, so a stalled server shows as latency
// (no coordinated omission). A call answered more than `late_after` after it was
// due, refused, or never sent because `max_in_flight` calls were outstanding
// counts as missed. Agents take turns in order, so N agents are all distinct
// before any repeats. Not thread-safe: one run at a time from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace grpc {
class Channel;
}

namespace ringwarden::agent {

// kMaxTlsAgents: over TLS each agent holds its own connection (its certificate names it), and
// a gRPC connection costs the generator tens of kilobytes.
inline constexpr int kMaxTlsAgents = 20'000;

struct LoadOptions {
  std::string server;   // host:port
  int connections = 4;  // gRPC connections the calls are spread over (over TLS: enrollment's)
  // Over TLS (a server started with --tls-cert): the PEM of the CA that signed the server's
  // certificate. Each agent then enrolls with its own P-256 key and CSR and calls over its
  // own connection, presenting the certificate it was issued, as a real agent does: the
  // server names the caller by it. Empty: plaintext, with bearer tokens.
  std::string tls_ca_pem;
  std::string tls_server_name;  // the name checked in the server's certificate; empty: the host
  int agents = 1000;
  std::string id_prefix = "load-";  // agent i is <id_prefix><i>
  std::string enrollment_token;     // for Enroll
  std::vector<std::string> channels = {"rules.behavioral"};
  // Each agent's turn is a poll, then (with heartbeats) a heartbeat batch: a fleet
  // polling and heartbeating at the same interval.
  bool heartbeats = true;
  // Each agent names the statement it holds (its last signed answer) in its polls, as a real
  // agent does, so the server signs only when an agent's answer changes. Off: every poll is
  // signed, as for an agent that has just started.
  bool hold_statements = true;
  int enroll_concurrency = 64;
  absl::Duration call_timeout = absl::Seconds(10);
  absl::Duration late_after = absl::Seconds(1);
  int max_in_flight = 20000;
  // Positive: the result also reports latency per slice of this length, by when calls were
  // due (where a tail comes from: a stall, or a steady queue).
  absl::Duration timeline_slice = absl::ZeroDuration();
  // For OpenLoopCompared: host:port of a second server, the anchor (plaintext), and how long
  // each side's turn lasts. Runs one after the other see different stalls of a shared machine;
  // turns of a second within one run see the same ones.
  std::string anchor;
  absl::Duration alternate_every = absl::Seconds(1);
  bool anchor_first = false;  // turns start with the anchor's
};

// ValidateLoadOptions: INVALID_ARGUMENT naming the first option out of range.
absl::Status ValidateLoadOptions(const LoadOptions& options);

// LoadResult is one run's outcome.
struct LoadResult {
  int64_t calls = 0;   // calls started (polls and heartbeats)
  int64_t ok = 0;      // answered OK
  int64_t failed = 0;  // answered with an error
  int64_t missed = 0;  // open loop: failed, late, or not sent (too many in flight)
  int64_t not_sent = 0;
  int64_t polls = 0;
  int64_t held_current = 0;  // polls answered that the held statement is current
  double seconds = 0;        // from the first start to the last answer
  double calls_per_second = 0;
  // Latency of answered calls, microseconds (open loop: from when the call was due).
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  double mean_poll_reply_bytes = 0;
  std::map<std::string, int64_t> errors;  // by gRPC status code name
  // With LoadOptions::timeline_slice: the calls answered of each slice, in order of due time.
  struct Slice {
    int64_t calls = 0;
    double p50_us = 0, max_us = 0;
  };
  std::vector<Slice> timeline;
  std::string ToLine() const;
  std::string ToJson() const;
};

// ComparedResult is an OpenLoopCompared run's outcome: the server's calls and the anchor's.
struct ComparedResult {
  LoadResult server, anchor;
};

class LoadGenerator {
 public:
  // Connects lazily to options.server. A closed or open run before Enroll or UseUnenrolledIds is
  // FAILED_PRECONDITION.
  explicit LoadGenerator(LoadOptions options);
  // For tests: the calls go over `channels` instead (and the anchor's over `anchor_channels`).
  LoadGenerator(LoadOptions options, std::vector<std::shared_ptr<grpc::Channel>> channels,
                std::vector<std::shared_ptr<grpc::Channel>> anchor_channels = {});
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Enroll enrolls every agent (enroll_concurrency at a time) and keeps its credential: a
  // bearer token, or over TLS its key and certificate. An agent that fails is retried once;
  // any agent still not enrolled fails the call, naming it.
  absl::Status Enroll();
  // UseUnenrolledIds skips enrollment: calls carry no credential (an echo server's anchor).
  void UseUnenrolledIds();
  // SaveCredentials writes every agent's credential to `path` (mode 0600, one "id token" line
  // each; over TLS "id key cert", both PEMs in base64), so later runs of other processes reuse
  // the enrollment; LoadCredentials reads them back. INVALID_ARGUMENT for a file that does not
  // hold exactly these agents' credentials, of the kind the options ask for (over TLS, each
  // certificate must name its agent). The keys stay in memory for the generator's life: it is
  // a benchmark tool, and its agents are throwaway.
  absl::Status SaveCredentials(const std::string& path) const;
  absl::Status LoadCredentials(const std::string& path);

  absl::StatusOr<LoadResult> ClosedLoop(int concurrency, absl::Duration duration);
  // WarmUp has every agent poll once, `concurrency` at a time, so that each holds a signed
  // statement: a fleet in its steady state rather than one that has just started.
  absl::StatusOr<LoadResult> WarmUp(int concurrency);
  absl::StatusOr<LoadResult> OpenLoop(double calls_per_second, absl::Duration duration);
  // OpenLoopCompared is OpenLoop at `calls_per_second` whose turns (alternate_every each) go to
  // the server, the anchor, the anchor, the server, and again (with anchor_first, the other
  // way round): each side gets half the calls, each at the full rate while its turn lasts. The same
  // agents send both the same requests (their credentials and held statements); only the server's
  // answers are held. UNAVAILABLE when either side cannot be reached before the run;
  // INVALID_ARGUMENT without an anchor. ClosedLoop and OpenLoop refuse options that name an anchor;
  // WarmUp polls the server.
  absl::StatusOr<ComparedResult> OpenLoopCompared(double calls_per_second, absl::Duration duration);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringwarden::agent
