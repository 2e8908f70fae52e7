// ringwarden_ingest_bench: how fast does telemetry go from agents' gRPC batches
// into PostgreSQL?
//
// Against a running server (bench/ingest.sh starts one on a throwaway
// PostgreSQL), --agents agents enroll, then send --rows health events in all,
// --batch events per ReportTelemetry call, from --threads threads over
// --connections connections. Each event names one channel version and a time of
// its own (agents report milliseconds), so every event is one stored row. The clock runs from the
// first call until `SELECT count(*) FROM health_events` on --database reaches --rows: end to end,
// the server's buffering and writes included. Prints one line, "rows=N seconds=S rows_per_second=R
// refused=E".
#include <atomic>
#include <cstdio>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent-client/agent_client.h"

namespace ringwarden::agent {
namespace {

struct Options {
  std::string server;
  std::string token;
  std::string database;
  int agents = 200;
  int64_t rows = 500'000;
  int batch = 250;
  int threads = 8;
  int connections = 4;
};

struct Sender {
  std::string id;
  std::unique_ptr<AgentClient> client;
  int64_t seq = 0;  // batches are numbered per agent; one thread owns each agent
};

int Run(const Options& o) {
  std::vector<std::shared_ptr<AgentConnection>> connections;
  for (int i = 0; i < o.connections; ++i) {
    ConnectionOptions c;
    c.own_connection = true;
    connections.push_back(AgentConnection::Create(o.server, c));
  }
  std::vector<Sender> agents(o.agents);
  for (int i = 0; i < o.agents; ++i) {
    agents[i].id = absl::StrFormat("ingest-%05d", i);
    agents[i].client = std::make_unique<AgentClient>(connections[i % connections.size()]);
    absl::StatusOr<EnrollResult> r =
        agents[i].client->Enroll(agents[i].id, {}, o.token, agents[i].id);
    if (!r.ok()) {
      std::fprintf(stderr, "enroll %s: %s\n", agents[i].id.c_str(), r.status().ToString().c_str());
      return 2;
    }
  }

  const int64_t batches = (o.rows + o.batch - 1) / o.batch;
  std::atomic<int64_t> next_batch{0};
  std::atomic<int64_t> refused{0};
  const absl::Time base = absl::Now() - absl::Hours(1);
  const absl::Time start = absl::Now();
  std::vector<std::thread> senders;
  for (int t = 0; t < o.threads; ++t) {
    senders.emplace_back([&, t] {
      std::vector<TelemetryEvent> events;
      int own = t;  // this thread's agents are t, t + threads, ...
      for (int64_t b; (b = next_batch.fetch_add(1)) < batches;) {
        Sender& agent = agents[own];
        own += o.threads;
        if (own >= o.agents) own = t;
        events.clear();
        const int64_t first = b * o.batch;
        for (int64_t r = first; r < std::min<int64_t>(first + o.batch, o.rows); ++r) {
          HealthEvent event{"load_check_slow", "bench", {{"rules.behavioral", 7}}};
          events.push_back({base + absl::Milliseconds(r), std::move(event)});
        }
        const int64_t seq = ++agent.seq;
        while (true) {
          absl::StatusOr<TelemetryAck> ack = agent.client->ReportTelemetry(seq, events);
          if (ack.ok()) break;
          if (refused.fetch_add(1) == 0) {
            std::fprintf(stderr, "first refusal (retried): %s\n", ack.status().ToString().c_str());
          }
          absl::SleepFor(absl::Milliseconds(20));
        }
      }
    });
  }
  for (std::thread& s : senders) s.join();
  const absl::Duration sent = absl::Now() - start;

  pqxx::connection conn(o.database);
  int64_t stored = 0;
  while (true) {
    pqxx::work tx(conn);
    stored = tx.exec1("SELECT count(*) FROM health_events")[0].as<int64_t>();
    tx.commit();
    if (stored >= o.rows || absl::Now() - start > absl::Minutes(10)) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("rows=%lld seconds=%.3f rows_per_second=%.0f refused=%lld sent_seconds=%.3f\n",
              static_cast<long long>(stored), seconds, static_cast<double>(stored) / seconds,
              static_cast<long long>(refused.load()), absl::ToDoubleSeconds(sent));
  return stored >= o.rows ? 0 : 1;
}

}  // namespace
}  // namespace ringwarden::agent

int main(int argc, char** argv) {
  ringwarden::agent::Options o;
  CLI::App app{"ringwarden_ingest_bench: telemetry ingest end to end"};
  app.add_option("--server", o.server)->required();
  app.add_option("--token", o.token, "enrollment token")->required();
  app.add_option("--database", o.database, "libpq conninfo of the server's database")->required();
  app.add_option("--agents", o.agents)->check(CLI::Range(1, 100000));
  app.add_option("--rows", o.rows)->check(CLI::Range(int64_t{1}, int64_t{100'000'000}));
  app.add_option("--batch", o.batch, "events per call (at most 256)")->check(CLI::Range(1, 256));
  app.add_option("--threads", o.threads, "at most --agents")->check(CLI::Range(1, 256));
  app.add_option("--connections", o.connections)->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);
  if (o.threads > o.agents) {
    std::fprintf(stderr, "--threads must not exceed --agents\n");
    return 2;
  }
  return ringwarden::agent::Run(o);
}
