// Benchmarks of the hot paths: answering a poll (ring + assignment) and judging
// a ring (ledger build + summarize + decision). BM_Sha256Baseline is the yardstick
// bench/run.sh divides by, so results compare across machines and noisy runs.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "server/agent_credentials.h"
#include "server/core/health_feed.h"
#include "server/domain/assignment.h"
#include "server/domain/decision.h"
#include "server/domain/rate_limit.h"
#include "server/domain/ring.h"
#include "tests/support/maced_token.h"

namespace ringwarden {
namespace {

std::vector<std::string> Ids(int n) {
  std::vector<std::string> ids;
  ids.reserve(n);
  for (int i = 0; i < n; ++i) {
    ids.push_back(absl::StrCat("agent-", i, "-7f3c9a2e"));
  }
  return ids;
}

// One SHA-256 of an agent id: the baseline every ratio is against.
void BM_Sha256Baseline(benchmark::State& state) {
  const auto ids = Ids(1024);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(Sha256(ids[i++ & 1023]));
  }
}
BENCHMARK(BM_Sha256Baseline);

// The --insecure agent credential every poll of the B1 benchmark verifies: an rwa3 token
// (Arg 3) or one in the JSON format issued before it (Arg 2), of 1024 agents in turn.
void BM_VerifyAgentToken(benchmark::State& state) {
  const std::string secret = "fleet-secret-0123456789abcdef0123456789abcdef";
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  std::vector<std::string> tokens;
  for (const std::string& id : Ids(1024)) {
    tokens.push_back(
        state.range(0) == 3
            ? IssueAgentToken(id, now, now + absl::Hours(168), secret)
            : testing::MacedJsonToken(absl::StrCat(R"({"id":")", id, R"(","iat":1800000000,"exp":)",
                                                   1'800'000'000 + 168 * 3600, "}"),
                                      secret));
  }
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<PresentedCredential> presented =
        VerifyAgentToken(tokens[i++ & 1023], secret, now);
    if (!presented.ok()) {
      state.SkipWithError("a token did not verify");
      break;
    }
    benchmark::DoNotOptimize(presented);
  }
}
BENCHMARK(BM_VerifyAgentToken)->Arg(3)->Arg(2);

// The per-agent rate limit every agent call passes, over Arg distinct agents calling in turn,
// all of them remembered (the limit is four times the fleet), so that each call finds its own
// bucket where a call long before left it, as in a fleet at rest. The label gives the heap
// the limiter holds per remembered agent (glibc's arena and its directly mapped blocks).
// A label, not a counter: bench/run.sh reads this binary's CSV, whose columns are fixed by
// the first benchmark.
void BM_RateLimiterAdmit(benchmark::State& state) {
  const auto ids = Ids(static_cast<int>(state.range(0)));
  RealClock clock;
  const auto heap = [] {
    const struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
  };
  const size_t before = heap();
  auto limiter = std::make_unique<AgentRateLimiter>(
      RateLimitOptions{/*rate_per_second=*/1e6, /*burst=*/1e6, /*max_agents=*/4 * ids.size()},
      clock);
  for (const std::string& id : ids) {
    limiter->Admit(id);
  }
  const size_t held = heap() - before;
  const size_t remembered = limiter->TrackedAgents();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter->Admit(ids[i]));
    i = i + 1 == ids.size() ? 0 : i + 1;
  }
  if (remembered != ids.size()) {
    state.SkipWithError("the limiter forgot agents of the fleet");
  }
  state.SetLabel(absl::StrCat("bytes_per_agent=",
                              static_cast<int64_t>(static_cast<double>(held) / remembered)));
}
BENCHMARK(BM_RateLimiterAdmit)->Arg(100'000)->Arg(1'000'000);

void BM_AssignRing(benchmark::State& state) {
  const auto ids = Ids(1024);
  const RingPolicy policy;
  const std::map<std::string, std::string> labels = {{"group", "payments"}};
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(AssignRing(policy, ids[i++ & 1023], labels));
  }
}
BENCHMARK(BM_AssignRing);

// The in-memory part of answering GetAssignment for one channel.
void BM_PollResolve(benchmark::State& state) {
  const auto ids = Ids(1024);
  const RingPolicy policy;
  ChannelCatalog catalog;
  catalog.channel = "rules.behavioral";
  catalog.completed = {1, 2, 3, 4, 5};
  catalog.revoked = {6};
  catalog.rollout = ActiveRollout{"ro-1", 7, {RolloutState::kBroad, std::nullopt}, 0.5};
  size_t i = 0;
  for (auto _ : state) {
    const std::string& id = ids[i++ & 1023];
    AgentChannelView view;
    view.ring = AssignRing(policy, id, {});
    view.current_version = 5;
    view.wave_position = WavePosition(policy.seed, id);
    benchmark::DoNotOptimize(ResolveAssignment(catalog, view, false));
  }
}
BENCHMARK(BM_PollResolve);

// Judging one ring of `range(0)` agents from stored rows, as the controller does each period.
void BM_JudgeRing(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  RolloutRecord rollout;
  rollout.version = 2;
  rollout.previous_version = 1;
  RolloutHealthRows rows;
  const auto ids = Ids(n);
  for (int i = 0; i < n; ++i) {
    const bool treated = i % 10 == 0;
    const Ring ring = treated ? Ring::kCanary : Ring::kBroad;
    rows.agents.push_back({ids[i], ring, treated ? 2 : 1, t0 + absl::Seconds(treated ? 5 : 0),
                           t0 + absl::Seconds(100), std::nullopt});
    if (treated) {
      rows.applies.push_back(
          {ids[i], "rules.behavioral", 2, ApplyOutcome::kApplied, "", t0 + absl::Seconds(4)});
    }
  }
  const RingGatePolicy gate;
  for (auto _ : state) {
    HealthLedger ledger = BuildLedger(rows, rollout, t0, HealthEventPolicy{});
    RingHealth health = ledger.Summarize(Ring::kCanary, t0 + absl::Seconds(120), absl::Minutes(5),
                                         t0, {Ring::kCanary, Ring::kEarly, Ring::kBroad});
    benchmark::DoNotOptimize(Evaluate(gate, health, t0, t0 + absl::Seconds(120)));
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_JudgeRing)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ringwarden

BENCHMARK_MAIN();
