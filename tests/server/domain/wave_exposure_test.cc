// WaveExposure against PlanExposure, its definition: random hosts that join, change and leave, a
// clock that fails them as their silence runs out (and now and then steps back), and every kind
// of budget policy. Each plan must equal PlanExposure over the same hosts at the same instant.
#include "server/domain/wave_exposure.h"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/domain/ring.h"
#include "tests/support/summary_fields.h"

namespace ringwarden {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(WaveExposureTest, EveryPlanEqualsPlanExposureOverTheSameHosts) {
  int64_t plans = 0, grew = 0, frozen = 0, with_next_step = 0;
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
    const absl::Duration probation = absl::Seconds(30 + pick(120));
    WaveExposure wave(probation);
    absl::flat_hash_map<std::string, WaveFacts> hosts;  // the reference's copy
    absl::Time now = kT0;
    // Few buckets in some runs, so that many hosts share a position; all of them in others.
    const int buckets = pick(2) == 0 ? 8 : kBucketCount;
    for (int step = 0; step < 800; ++step) {
      now += absl::Seconds(pick(4));
      const std::string id = absl::StrCat("host-", pick(200));
      switch (pick(4)) {
        case 0:
        case 1: {
          WaveFacts f;
          auto known = hosts.find(id);
          // A host keeps its bucket, as its id keeps its hash.
          f.bucket = known != hosts.end() ? known->second.bucket : pick(buckets);
          f.loaded = pick(4) != 0;
          f.failed = f.loaded && pick(30) == 0;
          if (f.loaded && !f.failed && pick(5) != 0) {
            f.silent_after_us = absl::ToUnixMicros(now + absl::Seconds(pick(900) - 60));
          }
          if (pick(4) != 0) {
            f.alive_since = now - absl::Seconds(pick(150));
          }
          if (pick(5) != 0) {
            f.last_seen = now - absl::Seconds(pick(30));
          }
          wave.Upsert(id, f);
          hosts[id] = f;
          break;
        }
        case 2:
          if (pick(3) == 0) {
            wave.Erase(id);
            hosts.erase(id);
          }
          break;
        default: {
          SlowStartPolicy policy;
          policy.enabled = pick(8) != 0;
          policy.initial_exposure = 1 + pick(20);
          policy.growth_factor = 1.0 + pick(30) / 10.0;
          policy.probation = probation;
          policy.max_unproven = 1 + pick(100);
          const double baseline = pick(3) == 0 ? 0.0 : 0.001 * (1 + pick(50));
          const double admitted = pick(4) == 0 ? 0.0 : pick(1001) / 1000.0;
          const double cap = pick(2) == 0 ? 1.0 : pick(1001) / 1000.0;
          const absl::Time when = pick(25) == 0 ? now - absl::Seconds(pick(300)) : now;
          std::vector<ExposureHost> list;
          for (const auto& [host, f] : hosts) {
            list.push_back(ExposureHostAt(f, when));
          }
          const ExposurePlan want = PlanExposure(policy, baseline, list, admitted, cap, when);
          const ExposurePlan got = wave.Plan(policy, baseline, admitted, cap, when);
          ASSERT_EQ(Fields(got), Fields(want)) << "seed " << seed << " step " << step;
          ++plans;
          grew += want.grew ? 1 : 0;
          frozen += want.frozen ? 1 : 0;
          with_next_step += want.next_step_at.has_value() ? 1 : 0;
        }
      }
    }
  }
  // The histories reach every branch of the plan, or the comparison proves little.
  std::printf("plans %lld, grew %lld, frozen %lld, with a next step %lld\n",
              static_cast<long long>(plans), static_cast<long long>(grew),
              static_cast<long long>(frozen), static_cast<long long>(with_next_step));
  EXPECT_GT(plans, 4000);
  EXPECT_GT(grew, plans / 20);
  EXPECT_GT(frozen, plans / 50);
  EXPECT_GT(with_next_step, plans / 40);
}

// The clock fails a host once its silence timeout has passed, strictly after, as
// HealthLedger::Verdict does, and a host that reports again is alive again.
TEST(WaveExposureTest, TheClockFailsASilentHostAndAReportRevivesIt) {
  WaveExposure wave(absl::Seconds(60));
  WaveFacts f;
  f.bucket = 17;
  f.loaded = true;
  f.silent_after_us = absl::ToUnixMicros(kT0 + absl::Minutes(5));
  f.alive_since = kT0;
  f.last_seen = kT0 + absl::Minutes(2);
  wave.Upsert("a", f);
  SlowStartPolicy policy;
  policy.probation = absl::Seconds(60);
  EXPECT_EQ(wave.Plan(policy, 0.01, 1.0, 1.0, kT0 + absl::Minutes(5)).proven, 1);
  ExposurePlan late =
      wave.Plan(policy, 0.01, 1.0, 1.0, kT0 + absl::Minutes(5) + absl::Microseconds(1));
  EXPECT_EQ(late.proven, 0);
  EXPECT_EQ(late.failed, 1);
  f.silent_after_us = absl::ToUnixMicros(kT0 + absl::Minutes(20));
  f.last_seen = kT0 + absl::Minutes(6);
  wave.Upsert("a", f);
  EXPECT_EQ(wave.Plan(policy, 0.01, 1.0, 1.0, kT0 + absl::Minutes(6)).proven, 1);
  // Back in time: the host's silence is judged again from scratch.
  EXPECT_EQ(wave.Plan(policy, 0.01, 1.0, 1.0, kT0 + absl::Minutes(1)).failed, 0);
  EXPECT_EQ(wave.rebuilds(), 1);
}

// A plan over a large ring reads buckets: hosts that change are refiled one by one, and looks
// between changes walk no host.
TEST(WaveExposureTest, PlansBetweenChangesWalkNoHost) {
  WaveExposure wave(absl::Minutes(15));
  constexpr int kHosts = 50'000;
  for (int i = 0; i < kHosts; ++i) {
    WaveFacts f;
    f.bucket = i % kBucketCount;
    f.loaded = i % 2 == 0;
    f.silent_after_us = absl::ToUnixMicros(kT0 + absl::Minutes(30) + absl::Seconds(i % 600));
    f.alive_since = kT0;
    f.last_seen = kT0 + absl::Minutes(i % 20);
    wave.Upsert(absl::StrCat("host-", i), f);
  }
  SlowStartPolicy policy;
  ExposurePlan plan;
  for (int minute = 0; minute < 60; ++minute) {
    plan = wave.Plan(policy, 0.01, 0.5, 1.0, kT0 + absl::Minutes(minute));
  }
  EXPECT_EQ(wave.rebuilds(), 0);
  EXPECT_EQ(plan.ring_hosts, kHosts);
  // By minute 59 every loaded host's silence ran out (30 to 40 minutes after kT0).
  EXPECT_EQ(plan.failed, plan.loaded);
  EXPECT_EQ(plan.proven, 0);
}

}  // namespace
}  // namespace ringwarden
