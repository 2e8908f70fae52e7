// ringwarden_flood_bench: does one flooding agent slow down a well-behaved fleet?
//
// Against a running server (bench/flood.sh starts one on a throwaway PostgreSQL),
// N well-behaved agents each poll and report one heartbeat every --interval, over
// a few shared connections, for --seconds without any flood (the baseline), then
// for --seconds while one more agent sends as fast as it can (several calls in
// flight, 60 KiB crash batches and polls, ignoring every refusal). It prints the
// well-behaved agents' p50/p99 latency of both calls in each phase, the ratio of
// the p99s (target <= --max-ratio) and how many RESOURCE_EXHAUSTED they received
// (target 0); the exit code is non-zero when a target is missed.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent-client/agent_client.h"

namespace ringwarden::agent {
namespace {

struct Options {
  std::string server;
  std::string token;
  int agents = 1000;
  int connections = 8;
  int threads = 16;
  int flood_threads = 4;
  absl::Duration interval = absl::Seconds(5);
  absl::Duration phase = absl::Seconds(20);
  double max_ratio = 2.0;
};

struct Sample {
  std::vector<double> poll_ms;
  std::vector<double> telemetry_ms;
  int64_t exhausted = 0;
  int64_t other_errors = 0;
  std::string first_error;
};

struct WellBehaved {
  std::string id;
  std::unique_ptr<AgentClient> client;
  int64_t seq = 1;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

void Note(Sample& s, const absl::Status& status) {
  if (status.ok()) {
    return;
  }
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    ++s.exhausted;
  } else {
    ++s.other_errors;
  }
  if (s.first_error.empty()) {
    s.first_error = status.ToString();
  }
}

// RunWellBehaved runs agents [t::threads] for `phase`, each once per interval.
Sample RunWellBehaved(std::vector<WellBehaved>& agents, const Options& o, int t, absl::Time begin) {
  Sample s;
  std::vector<size_t> mine;
  for (size_t i = t; i < agents.size(); i += o.threads) {
    mine.push_back(i);
  }
  const absl::Time end = begin + o.phase;
  const std::vector<ChannelVersion> current = {{"rules.behavioral", 1}};
  for (int64_t round = 0;; ++round) {
    for (size_t k = 0; k < mine.size(); ++k) {
      // Agents are spread evenly over the interval.
      const absl::Time due =
          begin + o.interval * round +
          o.interval * (static_cast<double>(k) / static_cast<double>(mine.size()));
      if (due >= end) {
        return s;
      }
      const absl::Time now = absl::Now();
      if (due > now) {
        absl::SleepFor(due - now);
      }
      WellBehaved& a = agents[mine[k]];
      absl::Time t0 = absl::Now();
      absl::StatusOr<PollAnswer> answer = a.client->GetAssignment(current, {});
      s.poll_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      Note(s, answer.status());
      TelemetryEvent heartbeat{absl::Now(), Heartbeat{current, round, "boot-1"}};
      t0 = absl::Now();
      absl::StatusOr<TelemetryAck> ack = a.client->ReportTelemetry(a.seq++, {heartbeat});
      s.telemetry_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      Note(s, ack.status());
    }
  }
}

struct FloodCounts {
  std::atomic<int64_t> calls{0};
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> exhausted{0};
  std::atomic<int64_t> rows_accepted{0};
};

// Flood sends as fast as one connection answers until `stop`: big crash
// batches and polls, never waiting on a refusal.
void Flood(AgentClient& client, std::atomic<int64_t>& seq, std::atomic<bool>& stop,
           FloodCounts& counts) {
  CrashReport crash;
  crash.kind = CrashKind::kProcessCrash;
  crash.detail = std::string(200, 'x');
  for (int i = 0; i < 64; ++i) {
    crash.versions.push_back({absl::StrCat("rules.c", i), 7});
  }
  // About 60 KiB: just under ReportTelemetry's 64 KiB.
  std::vector<TelemetryEvent> batch(40, TelemetryEvent{absl::Now(), crash});
  while (!stop.load()) {
    absl::Status status = client.ReportTelemetry(seq.fetch_add(1), batch).status();
    counts.calls++;
    if (status.ok()) {
      counts.ok++;
      counts.rows_accepted += 40 * 64;
    } else if (status.code() == absl::StatusCode::kResourceExhausted) {
      counts.exhausted++;
    }
    status = client.GetAssignment({}, {}).status();
    counts.calls++;
    if (status.ok()) {
      counts.ok++;
    } else if (status.code() == absl::StatusCode::kResourceExhausted) {
      counts.exhausted++;
    }
  }
}

Sample RunPhase(std::vector<WellBehaved>& agents, const Options& o, AgentClient* flooder,
                FloodCounts* counts) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> seq{absl::ToUnixMicros(absl::Now())};
  std::vector<std::thread> flood;
  if (flooder != nullptr) {
    for (int i = 0; i < o.flood_threads; ++i) {
      flood.emplace_back([&] { Flood(*flooder, seq, stop, *counts); });
    }
  }
  std::vector<Sample> samples(o.threads);
  std::vector<std::thread> workers;
  const absl::Time begin = absl::Now() + absl::Milliseconds(200);
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] { samples[t] = RunWellBehaved(agents, o, t, begin); });
  }
  for (std::thread& w : workers) {
    w.join();
  }
  stop = true;
  for (std::thread& f : flood) {
    f.join();
  }
  Sample all;
  for (Sample& s : samples) {
    all.poll_ms.insert(all.poll_ms.end(), s.poll_ms.begin(), s.poll_ms.end());
    all.telemetry_ms.insert(all.telemetry_ms.end(), s.telemetry_ms.begin(), s.telemetry_ms.end());
    all.exhausted += s.exhausted;
    all.other_errors += s.other_errors;
    if (all.first_error.empty()) {
      all.first_error = s.first_error;
    }
  }
  return all;
}

void PrintRow(const char* phase, const Sample& s) {
  std::printf("%-9s %10.2f %10.2f %10.2f %10.2f %8zu %10lld %7lld\n", phase,
              Percentile(s.poll_ms, 0.5), Percentile(s.poll_ms, 0.99),
              Percentile(s.telemetry_ms, 0.5), Percentile(s.telemetry_ms, 0.99),
              s.poll_ms.size() + s.telemetry_ms.size(), static_cast<long long>(s.exhausted),
              static_cast<long long>(s.other_errors));
  if (!s.first_error.empty()) {
    std::printf("          first error: %s\n", s.first_error.c_str());
  }
}

int Run(const Options& o) {
  std::vector<std::shared_ptr<AgentConnection>> connections;
  for (int i = 0; i < o.connections; ++i) {
    ConnectionOptions c;
    c.own_connection = true;
    connections.push_back(AgentConnection::Create(o.server, c));
  }
  // Enroll the fleet and the flooder (bearer tokens: the server runs --insecure).
  std::vector<WellBehaved> agents(o.agents);
  std::atomic<int> failed{0};
  {
    std::vector<std::thread> enrollers;
    for (int t = 0; t < 8; ++t) {
      enrollers.emplace_back([&, t] {
        for (int i = t; i < o.agents; i += 8) {
          agents[i].id = absl::StrFormat("bench-%05d", i);
          agents[i].client = std::make_unique<AgentClient>(connections[i % connections.size()]);
          for (int attempt = 0; attempt < 20; ++attempt) {
            absl::StatusOr<EnrollResult> r =
                agents[i].client->Enroll(agents[i].id, {}, o.token, agents[i].id);
            if (r.ok()) {
              break;
            }
            if (attempt == 19) {
              std::fprintf(stderr, "enroll %s: %s\n", agents[i].id.c_str(),
                           r.status().ToString().c_str());
              ++failed;
            }
            absl::SleepFor(absl::Milliseconds(100));
          }
        }
      });
    }
    for (std::thread& e : enrollers) {
      e.join();
    }
  }
  if (failed > 0) {
    return 2;
  }
  ConnectionOptions own;
  own.own_connection = true;
  AgentClient flooder(AgentConnection::Create(o.server, own));
  absl::StatusOr<EnrollResult> enrolled = flooder.Enroll("bench-flooder", {}, o.token, "flooder");
  if (!enrolled.ok()) {
    std::fprintf(stderr, "enroll flooder: %s\n", enrolled.status().ToString().c_str());
    return 2;
  }

  std::printf(
      "flood benchmark: %d well-behaved agents (a poll and a heartbeat each every %s over "
      "%d connections), one flooder (%d calls in flight), %s per phase\n",
      o.agents, absl::FormatDuration(o.interval).c_str(), o.connections, o.flood_threads,
      absl::FormatDuration(o.phase).c_str());
  // A short warm-up, so both phases start with warm connections and caches.
  Options warm = o;
  warm.phase = std::min(o.interval, absl::Seconds(5));
  RunPhase(agents, warm, nullptr, nullptr);
  const Sample baseline = RunPhase(agents, o, nullptr, nullptr);
  FloodCounts counts;
  const Sample flooded = RunPhase(agents, o, &flooder, &counts);

  std::printf("%-9s %10s %10s %10s %10s %8s %10s %7s\n", "phase", "poll_p50", "poll_p99",
              "tele_p50", "tele_p99", "calls", "exhausted", "errors");
  PrintRow("baseline", baseline);
  PrintRow("flood", flooded);
  std::printf(
      "flooder: %lld calls, %lld answered, %lld RESOURCE_EXHAUSTED, %lld crash rows "
      "accepted\n",
      static_cast<long long>(counts.calls.load()), static_cast<long long>(counts.ok.load()),
      static_cast<long long>(counts.exhausted.load()),
      static_cast<long long>(counts.rows_accepted.load()));
  const double poll_ratio =
      Percentile(flooded.poll_ms, 0.99) / std::max(1e-3, Percentile(baseline.poll_ms, 0.99));
  const double tele_ratio = Percentile(flooded.telemetry_ms, 0.99) /
                            std::max(1e-3, Percentile(baseline.telemetry_ms, 0.99));
  const bool ok = poll_ratio <= o.max_ratio && tele_ratio <= o.max_ratio &&
                  flooded.exhausted == 0 && baseline.exhausted == 0 && flooded.other_errors == 0;
  std::printf(
      "p99 ratio flood/baseline: poll %.2f, telemetry %.2f (target <= %.1f); "
      "well-behaved RESOURCE_EXHAUSTED: %lld (target 0): %s\n",
      poll_ratio, tele_ratio, o.max_ratio,
      static_cast<long long>(flooded.exhausted + baseline.exhausted), ok ? "ok" : "OVER");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ringwarden::agent

int main(int argc, char** argv) {
  ringwarden::agent::Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--server") {
      o.server = value;
    } else if (flag == "--token") {
      o.token = value;
    } else if (flag == "--agents") {
      o.agents = std::stoi(value);
    } else if (flag == "--seconds") {
      o.phase = absl::Seconds(std::stod(value));
    } else if (flag == "--interval") {
      o.interval = absl::Seconds(std::stod(value));
    } else if (flag == "--flood-threads") {
      o.flood_threads = std::stoi(value);
    } else if (flag == "--max-ratio") {
      o.max_ratio = std::stod(value);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (o.server.empty() || o.token.empty() || o.agents < 1) {
    std::fprintf(stderr,
                 "usage: ringwarden_flood_bench --server HOST:PORT --token ENROLLMENT_TOKEN "
                 "[--agents 1000] [--seconds 20] [--interval 5] [--flood-threads 4] "
                 "[--max-ratio 2]\n");
    return 2;
  }
  return ringwarden::agent::Run(o);
}
