// core_fixture.h: a server core on the in-memory fake store, for unit tests.
//
// Builds what the controller and the release operations stand on (fake store,
// FakeClock, snapshot, policy cache) and offers short helpers to put content,
// rollouts and agent telemetry into the fake. Not thread-safe; one per test.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "server/core/core_observer.h"
#include "server/core/manifest.h"
#include "server/core/policy_cache.h"
#include "server/core/policy_json.h"
#include "server/core/snapshot.h"
#include "server/domain/transition.h"
#include "tests/support/fake_store.h"

namespace ringwarden::testing {

inline constexpr char kChannel[] = "rules.test";

// TestPolicy judges small rings quickly: a 10-minute bake, 5 healthy agents,
// a baseline failure rate high enough that 20 clean agents prove health. Slow
// start is off: tests of the budget turn it on (SlowStartPolicy()).
inline RolloutPolicy TestPolicy() {
  RolloutPolicy policy = DefaultRolloutPolicy();
  for (Ring ring : kAllRings) {
    RingGatePolicy& gate = policy.ForRing(ring);
    gate.min_bake = absl::Minutes(10);
    gate.min_healthy = 5;
    gate.silence_timeout = absl::Minutes(15);
    gate.baseline_failure_rate = 0.1;
    gate.regression_ratio = 3;
    gate.catastrophic_min_failed = 3;
    gate.catastrophic_failure_rate = 0.2;
  }
  policy.broad_waves = {0.5, 1.0};
  policy.slow_start.enabled = false;
  return policy;
}

// SlowStartTestPolicy is TestPolicy with an exposure budget of 5 hosts, doubling after 15
// minutes of proven survival.
inline RolloutPolicy SlowStartTestPolicy() {
  RolloutPolicy policy = TestPolicy();
  policy.slow_start.enabled = true;
  policy.slow_start.initial_exposure = 5;
  policy.slow_start.growth_factor = 2;
  policy.slow_start.probation = absl::Minutes(15);
  policy.slow_start.max_unproven = 100;
  return policy;
}

// NullObserver hears nothing: for tests that do not look at metrics.
class NullObserver final : public ControllerObserver {
 public:
  void OnLeadership(bool) override {}
  void OnJudgedRollouts(const std::set<std::string>&) override {}
  void OnDecision(const RolloutRecord&, Ring, int64_t, const Decision&, absl::Duration,
                  absl::Duration) override {}
  void OnAutoStop(Decision::Kind, std::optional<absl::Duration>) override {}
};

// NoManifests is a ManifestDecoder for tests that upload no content through the manager.
inline absl::StatusOr<ContentManifest> NoManifests(absl::string_view) {
  return absl::InvalidArgumentError("not used");
}

class CoreFixture : public ::testing::Test {
 protected:
  CoreFixture() : store_(clock_), snapshots_(store_), policies_(store_) {}

  void SetUp() override { PutPolicy(TestPolicy()); }

  void PutPolicy(const RolloutPolicy& policy) {
    nlohmann::json body = PolicyToJson(policy);
    body.erase("name");
    body.erase("version");
    ASSERT_TRUE(store_.PutPolicy("default", body.dump(), AuditAs("policy.set")).ok());
  }

  static AuditRecord AuditAs(std::string action, std::string rollout_id = "") {
    AuditRecord a;
    a.actor = "test";
    a.action = std::move(action);
    a.rollout_id = std::move(rollout_id);
    return a;
  }

  void Upload(int64_t version) {
    ContentRecord c;
    c.channel = kChannel;
    c.version = version;
    c.payload = absl::StrCat("payload v", version);
    c.sha256 = absl::StrCat("sha-", version);
    c.size = static_cast<int64_t>(c.payload.size());
    c.envelope_json = "{}";
    ASSERT_TRUE(store_.InsertContent(c, AuditAs("content.upload")).ok());
  }

  // StartRollout creates rollout `id` of `version`, entering CANARY, and
  // refreshes the snapshot unless told not to.
  RolloutRecord StartRollout(const std::string& id, int64_t version, int64_t previous = 0,
                             bool refresh = true, const RolloutPolicy& policy = TestPolicy()) {
    NewRollout create;
    create.rollout.id = id;
    create.rollout.channel = kChannel;
    create.rollout.version = version;
    create.rollout.previous_version = previous;
    create.rollout.policy_name = "default";
    create.rollout.policy_version = policy_version_;
    absl::StatusOr<TransitionPlan> start =
        PlanTransition(InitialPosition(), 0, RolloutAction::kPromote, policy, Initiator::kOperator);
    EXPECT_TRUE(start.ok()) << start.status();
    create.rollout.position = start->to;
    create.rollout.admitted_fraction = start->admitted_fraction;
    EXPECT_TRUE(store_.CreateRollout(create).ok());
    if (refresh) {
      EXPECT_TRUE(snapshots_.Refresh().ok());
    }
    return Rollout(id);
  }

  RolloutRecord Rollout(const std::string& id) {
    absl::StatusOr<RolloutRecord> r = store_.GetRollout(id);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RolloutRecord{};
  }

  // Step applies an operator action to rollout `id` through the planner.
  absl::Status Step(const std::string& id, RolloutAction action) {
    const RolloutRecord r = Rollout(id);
    absl::StatusOr<TransitionPlan> plan =
        PlanTransition(r.position, r.broad_wave, action, TestPolicy(), Initiator::kOperator);
    if (!plan.ok()) {
      return plan.status();
    }
    RolloutChange change;
    change.rollout_id = id;
    change.expected_revision = r.revision;
    change.plan = *plan;
    change.audit = AuditAs(plan->audit_action, id);
    absl::Status status = store_.ApplyRolloutChange(change);
    if (status.ok()) {
      status = snapshots_.Refresh();
    }
    return status;
  }

  // Enroll writes agents `<prefix>-0..n-1` of `ring`.
  std::vector<std::string> Enroll(const std::string& prefix, Ring ring, int n,
                                  std::map<std::string, std::string> labels = {}) {
    TelemetryRows rows;
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(absl::StrCat(prefix, "-", i));
      rows.agents.push_back(AgentUpsert{ids.back(), ring, labels, "host", clock_.Now()});
    }
    EXPECT_TRUE(store_.WriteTelemetry(rows).ok());
    return ids;
  }

  // Heartbeat reports `version` in effect (0: none) for every agent in `ids`, now.
  void Heartbeat(const std::vector<std::string>& ids, int64_t version,
                 const std::string& boot = "boot-1") {
    TelemetryRows rows;
    for (const std::string& id : ids) {
      HeartbeatRow h{id, {}, boot, clock_.Now()};
      if (version != 0) {
        h.versions[kChannel] = version;
      }
      rows.heartbeats.push_back(std::move(h));
    }
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  }

  // BakeHealthy: `treated` apply `version` and report healthy on it now and
  // again after a 10-minute bake, while `control` stays on no version.
  void BakeHealthy(const std::vector<std::string>& treated, const std::vector<std::string>& control,
                   int64_t version) {
    clock_.Advance(absl::Minutes(1));
    Applied(treated, version);
    Heartbeat(treated, version);
    Heartbeat(control, 0);
    clock_.Advance(absl::Minutes(10));
    Heartbeat(treated, version);
    Heartbeat(control, 0);
  }

  void Applied(const std::vector<std::string>& ids, int64_t version,
               ApplyOutcome outcome = ApplyOutcome::kApplied) {
    TelemetryRows rows;
    for (const std::string& id : ids) {
      rows.applies.push_back(ApplyRow{id, kChannel, version, outcome, "", clock_.Now()});
    }
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  }

  void Fetched(const std::vector<std::string>& ids, int64_t version) {
    TelemetryRows rows;
    for (const std::string& id : ids) {
      rows.fetches.push_back(FetchRow{id, kChannel, version, clock_.Now()});
    }
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  }

  void Crashed(const std::vector<std::string>& ids, int64_t version) {
    TelemetryRows rows;
    for (const std::string& id : ids) {
      rows.crashes.push_back(
          CrashRow{id, CrashKind::kProcessCrash, kChannel, version, "segfault", clock_.Now()});
    }
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  }

  // The version of policy "default" that StartRollout records.
  int64_t policy_version_ = 1;
  FakeClock clock_;
  FakeStore store_;
  SnapshotHolder snapshots_;
  PolicyCache policies_;
};

}  // namespace ringwarden::testing
