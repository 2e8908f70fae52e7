// ledger_bench: B4, the leader's work per rollout and period, on a real
// PostgreSQL that bench/footprint.sh filled with agents.
//
// Anchor (same run): the full read of a rollout's evidence and the ledger built
// from it, which is what every period cost before the health tracker, and what
// a new leader still pays once. Measured: a period of the tracker, after
// --changed agents sent a heartbeat through PgStore::WriteTelemetry (the
// telemetry writer's path, change feed triggers included): the feed read, the
// re-read of those agents, their recomputation, and judging every ring.
//
//   ringwarden_ledger_bench --db "host=... dbname=..." --changed 16667 --periods 5
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "server/core/health_tracker.h"
#include "server/postgres/pg_store.h"

namespace ringwarden {
namespace {

constexpr char kChannel[] = "rules.behavioral";

double MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

long RssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return 0;
}

// Md5Hex is PostgreSQL's md5(text): footprint.sh names agent g "agent-" || md5(g::text).
std::string Md5Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_md5(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    absl::StrAppend(&hex, absl::Hex(digest[i], absl::kZeroPad2));
  }
  return hex;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Judge summarizes every ring as the controller does each period.
int64_t Judge(HealthLedger& ledger, absl::Time now, absl::Time window) {
  int64_t seen = 0;
  for (Ring ring : kAllRings) {
    seen += ledger.Summarize(ring, now, absl::Minutes(15), window, kAllRings).attempted;
  }
  return seen;
}

int Run(const std::string& db, int changed, int periods, int agents) {
  PgStore store(db, 4);
  RealClock clock;
  const absl::Time now = clock.Now();
  RolloutRecord rollout;
  rollout.id = "bench-rollout";
  rollout.channel = kChannel;
  rollout.version = 8;  // footprint.sh leaves every agent on 7: all control
  rollout.previous_version = 7;
  rollout.created_at = now - absl::Hours(1);
  rollout.stage_started_at = rollout.created_at;
  rollout.position.state = RolloutState::kBroad;  // every ring judged, the broad one planned
  const HealthEventPolicy policy;
  const RolloutPolicy rollout_policy;

  // The anchor: a full read and a ledger built from it, three times.
  std::vector<double> full;
  size_t rows = 0;
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<RolloutHealthRows> read =
        store.LoadRolloutHealth(HealthQueryFor(rollout, rollout.created_at, {}));
    if (!read.ok()) {
      std::fprintf(stderr, "ledger_bench: %s\n", read.status().ToString().c_str());
      return 1;
    }
    rows = read->agents.size();
    HealthLedger ledger = BuildLedger(*read, rollout, rollout.stage_started_at, policy);
    Judge(ledger, clock.Now(), rollout.stage_started_at);
    full.push_back(MillisSince(start));
  }

  const long rss_before = RssKib();
  HealthTracker tracker(store, clock);
  absl::Status synced = tracker.Sync();
  absl::StatusOr<TrackedHealth*> tracked =
      synced.ok() ? tracker.Track(rollout, {}, policy) : absl::StatusOr<TrackedHealth*>(synced);
  if (!tracked.ok()) {
    std::fprintf(stderr, "ledger_bench: %s\n", tracked.status().ToString().c_str());
    return 1;
  }
  const long rss_tracked = RssKib();

  std::vector<double> period_ms, judge_ms, look_ms, scan_ms;
  for (int p = 0; p < periods; ++p) {
    // One period's heartbeats from distinct agents, half of them now on the new version.
    TelemetryRows beats;
    for (int i = 0; i < changed; ++i) {
      const int g = 1 + (p * changed + i) % agents;
      beats.heartbeats.push_back({absl::StrCat("agent-", Md5Hex(std::to_string(g))),
                                  {{kChannel, i % 2 == 0 ? 8 : 7}},
                                  "boot",
                                  clock.Now()});
    }
    if (absl::Status written = store.WriteTelemetry(beats); !written.ok()) {
      std::fprintf(stderr, "ledger_bench: %s\n", written.ToString().c_str());
      return 1;
    }
    const auto start = std::chrono::steady_clock::now();
    if (absl::Status s = tracker.Sync(); !s.ok()) {
      std::fprintf(stderr, "ledger_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    tracked = tracker.Track(rollout, {}, policy);
    const auto judged = std::chrono::steady_clock::now();
    Judge((*tracked)->stage, clock.Now(), rollout.stage_started_at);
    judge_ms.push_back(MillisSince(judged));
    // The rest of the controller's look at the stage: the exposure plan and the evidence's
    // first apply and ring size.
    const auto looked = std::chrono::steady_clock::now();
    const absl::Time at = clock.Now();
    const ExposurePlan plan = tracker.Exposure(**tracked, rollout, rollout_policy, "seed", at);
    const auto first = tracker.FirstApply(**tracked, rollout.stage_started_at);
    const int64_t targeted = (*tracked)->targeted[static_cast<int>(Ring::kBroad)];
    look_ms.push_back(MillisSince(looked));
    period_ms.push_back(MillisSince(start));
    // The same look by walking the evidence, as every period did before (not part of the period).
    const auto scanned = std::chrono::steady_clock::now();
    const ExposurePlan walked =
        ExposureFor((*tracked)->evidence, (*tracked)->stage, rollout, rollout_policy, "seed", at);
    const auto walked_first = FirstApply((*tracked)->evidence, rollout.stage_started_at);
    const int64_t walked_targeted = TargetedIn((*tracked)->evidence, Ring::kBroad);
    scan_ms.push_back(MillisSince(scanned));
    if (plan.admitted != walked.admitted || plan.loaded != walked.loaded ||
        plan.proven != walked.proven || plan.failed != walked.failed || first != walked_first ||
        targeted != walked_targeted) {
      std::fprintf(stderr, "ledger_bench: the kept look differs from the walk\n");
      return 1;
    }
  }
  const long rss_after = RssKib();  // the exposure view and the silence indexes included
  const double f = Median(full), p = Median(period_ms), j = Median(judge_ms), l = Median(look_ms),
               w = Median(scan_ms);
  std::printf("%-48s %12s %10s  %s\n", "B4 leader work per rollout and period", "value",
              "per agent", "vs anchor");
  std::printf("%-48s %9.0f ms %7.2f us  %s\n",
              absl::StrCat("full read + ledger, ", rows, " agents (anchor)").c_str(), f,
              1000 * f / static_cast<double>(rows), "anchor");
  std::printf("%-48s %9.0f ms %7.2f us  %.3fx\n",
              absl::StrCat("tracker period, ", changed, " agents changed").c_str(), p,
              1000 * p / static_cast<double>(rows), p / f);
  std::printf("%-48s %9.3f ms %7.4f us  %.6fx\n", "  of which judging every ring (in memory)", j,
              1000 * j / static_cast<double>(rows), j / f);
  std::printf("%-48s %9.1f ms %7.3f us  %.4fx\n", "    first judging (walks every record once)",
              judge_ms.front(), 1000 * judge_ms.front() / static_cast<double>(rows),
              judge_ms.front() / f);
  std::printf("%-48s %9.3f ms %7.4f us  %.6fx\n",
              "  of which exposure plan, first apply, ring size", l,
              1000 * l / static_cast<double>(rows), l / f);
  std::printf("%-48s %9.1f ms %7.3f us  %.4fx\n", "    first look (files every host once)",
              look_ms.front(), 1000 * look_ms.front() / static_cast<double>(rows),
              look_ms.front() / f);
  std::printf("%-48s %9.1f ms %7.3f us  %.4fx\n", "  the same look by walking the evidence", w,
              1000 * w / static_cast<double>(rows), w / f);
  std::printf("%-48s %9.0f MB %7.0f B   %s\n", "tracker memory (evidence + stage ledger)",
              (rss_tracked - rss_before) / 1024.0,
              (rss_tracked - rss_before) * 1024.0 / static_cast<double>(rows), "measured");
  std::printf("%-48s %9.0f MB %7.0f B   %s\n", "  after the periods (exposure view, indexes)",
              (rss_after - rss_before) / 1024.0,
              (rss_after - rss_before) * 1024.0 / static_cast<double>(rows), "measured");
  std::printf("agents re-read: %lld over %d periods; full loads: %lld\n",
              static_cast<long long>(tracker.stats().agents_reread), periods,
              static_cast<long long>(tracker.stats().full_loads));
  return p < f ? 0 : 1;
}

}  // namespace
}  // namespace ringwarden

int main(int argc, char** argv) {
  CLI::App app{"B4: the leader's health work per rollout and period"};
  std::string db;
  int changed = 16667, periods = 5, agents = 1000000;
  app.add_option("--db", db, "libpq conninfo of the database footprint.sh filled")->required();
  app.add_option("--changed", changed, "agents heard from per period")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--periods", periods, "periods measured")->check(CLI::Range(1, 100));
  app.add_option("--agents", agents, "agents on record (footprint.sh --agents)")
      ->check(CLI::Range(1, 100000000));
  CLI11_PARSE(app, argc, argv);
  return ringwarden::Run(db, changed, periods, agents);
}
