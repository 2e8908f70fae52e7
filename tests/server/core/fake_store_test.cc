// The in-memory store's semantics that the core suites rely on, pinned down
// against what PgStore does (server/postgres/pg_store.cc).
#include "tests/support/fake_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/audit_chain.h"
#include "common/clock.h"
#include "server/storage/audit_chain_entry.h"

namespace ringwarden {
namespace {

using ::ringwarden::testing::FakeStore;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);
constexpr char kChannel[] = "rules";

ContentRecord Content(int64_t version) {
  ContentRecord c;
  c.channel = kChannel;
  c.version = version;
  c.sha256 = std::string(64, 'a');
  c.size = 7;
  c.payload = "payload";
  c.uploaded_by = "alice";
  return c;
}

AuditRecord Audit(const std::string& action, const std::string& rollout_id = "") {
  AuditRecord a;
  a.actor = "alice";
  a.action = action;
  a.rollout_id = rollout_id;
  return a;
}

NewRollout Rollout(const std::string& id, int64_t version) {
  NewRollout create;
  create.rollout.id = id;
  create.rollout.channel = kChannel;
  create.rollout.version = version;
  create.rollout.position = RolloutPosition{RolloutState::kCanary, std::nullopt};
  create.audit.push_back(Audit("rollout.start", id));
  return create;
}

RolloutChange Change(const std::string& id, int64_t expected_revision, RolloutState to) {
  RolloutChange change;
  change.rollout_id = id;
  change.expected_revision = expected_revision;
  change.plan.to = RolloutPosition{to, std::nullopt};
  change.audit = Audit("rollout.test", id);
  return change;
}

class FakeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.InsertContent(Content(1), Audit("content.upload")).ok());
    ASSERT_TRUE(store_.InsertContent(Content(2), Audit("content.upload")).ok());
  }

  FakeClock clock_{kT0};
  FakeStore store_{clock_};
};

TEST_F(FakeStoreTest, ContentVersionsOnlyGrow) {
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.InsertContent(Content(2), Audit("x"))));
  absl::StatusOr<std::vector<ContentRecord>> listed = store_.ListContent(kChannel);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].version, 2);  // newest first
  EXPECT_TRUE((*listed)[0].payload.empty());
  absl::StatusOr<ContentRecord> got = store_.GetContent(kChannel, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->payload, "payload");
  EXPECT_EQ(got->uploaded_at, kT0);
  EXPECT_TRUE(absl::IsNotFound(store_.GetContent(kChannel, 3).status()));
}

TEST_F(FakeStoreTest, StaleRevisionIsAbortedAndChangesNothing) {
  ASSERT_TRUE(store_.CreateRollout(Rollout("ro-1", 2)).ok());
  ASSERT_TRUE(store_.ApplyRolloutChange(Change("ro-1", 1, RolloutState::kEarly)).ok());
  const size_t audit_entries = store_.Audit().size();

  EXPECT_TRUE(absl::IsAborted(store_.ApplyRolloutChange(Change("ro-1", 1, RolloutState::kBroad))));
  EXPECT_TRUE(absl::IsNotFound(store_.ApplyRolloutChange(Change("ro-9", 1, RolloutState::kBroad))));

  absl::StatusOr<RolloutRecord> r = store_.GetRollout("ro-1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(r->position.state, RolloutState::kEarly);
  EXPECT_EQ(store_.Audit().size(), audit_entries);
}

TEST_F(FakeStoreTest, PlanSideEffectsAreApplied) {
  NewRollout create = Rollout("ro-1", 2);
  create.rollout.broad_wave = 1;
  create.rollout.broad_fraction = 0.25;
  ASSERT_TRUE(store_.CreateRollout(create).ok());

  clock_.Advance(absl::Hours(1));
  RolloutChange wave = Change("ro-1", 1, RolloutState::kBroad);
  wave.plan.stage_changed = true;
  wave.plan.broad_wave = 2;
  wave.plan.broad_fraction = 0.5;
  ASSERT_TRUE(store_.ApplyRolloutChange(wave).ok());
  absl::StatusOr<RolloutRecord> r = store_.GetRollout("ro-1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(r->updated_at, kT0 + absl::Hours(1));
  EXPECT_EQ(r->stage_started_at, kT0 + absl::Hours(1));
  EXPECT_EQ(r->broad_wave, 2);
  EXPECT_EQ(r->broad_fraction, 0.5);

  clock_.Advance(absl::Hours(1));
  RolloutChange complete = Change("ro-1", 2, RolloutState::kCompleted);
  complete.plan.mark_completed = true;  // stage_changed false, waves kKeepWave
  ASSERT_TRUE(store_.ApplyRolloutChange(complete).ok());
  r = store_.GetRollout("ro-1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->updated_at, kT0 + absl::Hours(2));
  EXPECT_EQ(r->stage_started_at, kT0 + absl::Hours(1));
  EXPECT_EQ(r->broad_wave, 2);
  EXPECT_EQ(r->broad_fraction, 0.5);
  EXPECT_TRUE(store_.GetContent(kChannel, 2)->completed);
  absl::StatusOr<CatalogData> catalog = store_.LoadCatalog(std::nullopt);
  ASSERT_TRUE(catalog.ok());
  EXPECT_TRUE(catalog->unfinished_rollouts.empty());
  // A completed version is not started again.
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.CreateRollout(Rollout("ro-2", 2))));
  EXPECT_EQ(store_.Audit().back().action, "rollout.test");
  EXPECT_EQ(store_.Audit().back().at, kT0 + absl::Hours(2));
}

TEST_F(FakeStoreTest, RevokedVersionNeverStartsAgain) {
  ASSERT_TRUE(store_.CreateRollout(Rollout("ro-1", 2)).ok());
  RolloutChange rollback = Change("ro-1", 1, RolloutState::kRolledBack);
  rollback.plan.revoke_version = true;
  ASSERT_TRUE(store_.ApplyRolloutChange(rollback).ok());
  EXPECT_TRUE(store_.GetContent(kChannel, 2)->revoked);
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.CreateRollout(Rollout("ro-2", 2))));
}

TEST_F(FakeStoreTest, SecondUnfinishedRolloutNeedsSupersede) {
  ASSERT_TRUE(store_.CreateRollout(Rollout("ro-1", 1)).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.CreateRollout(Rollout("ro-2", 2))));

  NewRollout stale = Rollout("ro-2", 2);
  stale.supersede = Change("ro-1", 7, RolloutState::kCancelled);
  EXPECT_TRUE(absl::IsAborted(store_.CreateRollout(stale)));
  EXPECT_TRUE(absl::IsNotFound(store_.GetRollout("ro-2").status()));

  NewRollout supersede = Rollout("ro-2", 2);
  supersede.supersede = Change("ro-1", 1, RolloutState::kCancelled);
  ASSERT_TRUE(store_.CreateRollout(supersede).ok());
  EXPECT_EQ(store_.GetRollout("ro-1")->position.state, RolloutState::kCancelled);
  absl::StatusOr<RolloutRecord> created = store_.GetRollout("ro-2");
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->revision, 1);
  EXPECT_EQ(created->created_at, kT0);
  absl::StatusOr<std::optional<RolloutRecord>> unfinished = store_.GetUnfinishedRollout(kChannel);
  ASSERT_TRUE(unfinished.ok() && unfinished->has_value());
  EXPECT_EQ((*unfinished)->id, "ro-2");
  absl::StatusOr<std::vector<RolloutRecord>> all = store_.ListRollouts(kChannel, false, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "ro-2");  // newest first, even at the same clock time
}

TEST_F(FakeStoreTest, HoldingPinsLeaveAgentsOutOfRolloutHealth) {
  TelemetryRows rows;
  rows.agents.push_back(AgentUpsert{"a-1", Ring::kCanary, {{"group", "frozen"}}, "h1", kT0});
  rows.agents.push_back(AgentUpsert{"a-2", Ring::kCanary, {{"group", "dogfood"}}, "h2", kT0});
  rows.heartbeats.push_back(HeartbeatRow{"a-1", {{kChannel, 1}}, "b", kT0});
  rows.heartbeats.push_back(HeartbeatRow{"a-2", {{kChannel, 1}}, "b", kT0});
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  LabelPin frozen{"group", "frozen", kChannel, PinPolicy{PinPolicy::Kind::kVersion, 1}};

  HealthQuery query{kChannel, 2, 1, kT0, {frozen}, std::nullopt};
  absl::StatusOr<RolloutHealthRows> health = store_.LoadRolloutHealth(query);
  ASSERT_TRUE(health.ok());
  ASSERT_EQ(health->agents.size(), 1u);
  EXPECT_EQ(health->agents[0].agent_id, "a-2");

  query.holding_pins.clear();
  health = store_.LoadRolloutHealth(query);
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->agents.size(), 2u);
}

TEST_F(FakeStoreTest, VersionInEffectKeepsItsSinceUntilItChanges) {
  auto heartbeat = [&](int64_t version, absl::Duration after) {
    TelemetryRows rows;
    rows.heartbeats.push_back(HeartbeatRow{"a-1", {{kChannel, version}}, "b", kT0 + after});
    return store_.WriteTelemetry(rows);
  };
  TelemetryRows enrol;
  enrol.agents.push_back(AgentUpsert{"a-1", Ring::kEarly, {}, "h1", kT0});
  ASSERT_TRUE(store_.WriteTelemetry(enrol).ok());
  ASSERT_TRUE(heartbeat(1, absl::Seconds(0)).ok());
  ASSERT_TRUE(heartbeat(1, absl::Seconds(10)).ok());
  HealthQuery query{kChannel, 2, 1, kT0, {}, std::nullopt};
  absl::StatusOr<RolloutHealthRows> health = store_.LoadRolloutHealth(query);
  ASSERT_TRUE(health.ok());
  ASSERT_EQ(health->agents.size(), 1u);
  EXPECT_EQ(health->agents[0].version, 1);
  EXPECT_EQ(health->agents[0].since, kT0);
  EXPECT_EQ(health->agents[0].last_seen, kT0 + absl::Seconds(10));

  ASSERT_TRUE(heartbeat(2, absl::Seconds(20)).ok());
  ASSERT_TRUE(heartbeat(1, absl::Seconds(15)).ok());  // late and older: ignored
  health = store_.LoadRolloutHealth(query);
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->agents[0].version, 2);
  EXPECT_EQ(health->agents[0].since, kT0 + absl::Seconds(20));
  EXPECT_EQ(health->agents[0].last_seen, kT0 + absl::Seconds(20));
}

TEST_F(FakeStoreTest, TelemetryKeepsFirstTimesAndSelectsTheWindow) {
  TelemetryRows rows;
  rows.agents.push_back(AgentUpsert{"a-1", Ring::kCanary, {}, "h1", kT0});
  rows.applies.push_back(ApplyRow{"a-1", kChannel, 2, ApplyOutcome::kApplied, "", kT0});
  rows.applies.push_back(
      ApplyRow{"a-1", kChannel, 2, ApplyOutcome::kApplied, "", kT0 + absl::Seconds(5)});
  rows.fetches.push_back(FetchRow{"a-1", kChannel, 2, kT0});
  rows.fetches.push_back(FetchRow{"a-1", kChannel, 2, kT0 + absl::Seconds(5)});
  rows.crashes.push_back(
      CrashRow{"a-1", CrashKind::kProcessCrash, kChannel, 1, "", kT0 - absl::Seconds(1)});
  rows.crashes.push_back(CrashRow{"a-1", CrashKind::kProcessCrash, kChannel, 1, "", kT0});
  rows.crashes.push_back(CrashRow{"a-1", CrashKind::kProcessCrash, kChannel, 3, "", kT0});
  // Rows of an agent that was never upserted are ignored.
  rows.applies.push_back(ApplyRow{"ghost", kChannel, 2, ApplyOutcome::kApplied, "", kT0});
  rows.crashes.push_back(CrashRow{"ghost", CrashKind::kProcessCrash, kChannel, 2, "", kT0});
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());

  absl::StatusOr<RolloutHealthRows> health =
      store_.LoadRolloutHealth(HealthQuery{kChannel, 2, 1, kT0, {}, std::nullopt});
  ASSERT_TRUE(health.ok());
  ASSERT_EQ(health->applies.size(), 1u);
  EXPECT_EQ(health->applies[0].at, kT0);
  ASSERT_EQ(health->fetches.size(), 1u);
  EXPECT_EQ(health->fetches[0].at, kT0);
  ASSERT_EQ(health->crashes.size(), 1u);  // previous version, inside the window
  EXPECT_EQ(health->crashes[0].version, 1);
  EXPECT_EQ(store_.Written().applies.size(), 3u);  // as given, ghost included
}

TEST_F(FakeStoreTest, FailNextFailsWithoutEffectThenRecovers) {
  store_.FailNext("write_telemetry", absl::UnavailableError("down"), 2);
  TelemetryRows rows;
  rows.agents.push_back(AgentUpsert{"a-1", Ring::kCanary, {}, "h1", kT0});
  EXPECT_TRUE(absl::IsUnavailable(store_.WriteTelemetry(rows)));
  EXPECT_TRUE(absl::IsUnavailable(store_.WriteTelemetry(rows)));
  EXPECT_TRUE(store_.ListAgents(std::nullopt, 10)->first.empty());
  EXPECT_TRUE(store_.WriteTelemetry(rows).ok());
  EXPECT_EQ(store_.Calls("write_telemetry"), 3);
  EXPECT_EQ(store_.Written().agents.size(), 1u);
  EXPECT_EQ(store_.ListAgents(std::nullopt, 10)->second, 1);
}

TEST_F(FakeStoreTest, AuditIsNewestFirstPerRollout) {
  ASSERT_TRUE(store_.CreateRollout(Rollout("ro-1", 2)).ok());
  ASSERT_TRUE(store_.ApplyRolloutChange(Change("ro-1", 1, RolloutState::kEarly)).ok());
  absl::StatusOr<std::vector<AuditRecord>> audit = store_.ListAudit("ro-1", 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*audit)[0].action, "rollout.test");
  EXPECT_GT((*audit)[0].id, (*audit)[1].id);
  EXPECT_EQ(store_.ListAudit("", 1)->size(), 1u);
}

TEST_F(FakeStoreTest, AuditIsChainedLikeTheDatabaseAndPagesOldestFirst) {
  ASSERT_TRUE(store_.CreateRollout(Rollout("ro-1", 2)).ok());
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(store_.ApplyRolloutChange(Change("ro-1", 1, RolloutState::kEarly)).ok());
  AuditChainVerifier verifier;
  for (const AuditRecord& a : store_.Audit()) {
    ASSERT_TRUE(verifier.Add(ChainEntryOf(a)).ok()) << a.seq;
  }
  absl::StatusOr<AuditChainHead> head = verifier.Finish();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->seq, 4);
  absl::StatusOr<std::vector<AuditRecord>> page = store_.ListAuditOldestFirst("", 2, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].seq, 3);
  EXPECT_EQ((*page)[0].action, "rollout.start");
}

TEST_F(FakeStoreTest, PoliciesAreDenselyVersionedPerName) {
  ASSERT_TRUE(store_.PutPolicy("default", "{}", Audit("policy.set")).ok());
  absl::StatusOr<PolicyRecord> second =
      store_.PutPolicy("default", R"({"bake": 1})", Audit("policy.set"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->version, 2);
  EXPECT_EQ(store_.GetPolicy("default", 0)->version, 2);
  EXPECT_EQ(store_.GetPolicy("default", 1)->body_json, "{}");
  EXPECT_TRUE(absl::IsNotFound(store_.GetPolicy("default", 3).status()));
  EXPECT_TRUE(absl::IsNotFound(store_.GetPolicy("other", 0).status()));
  ASSERT_EQ(store_.ListPolicies()->size(), 1u);
  EXPECT_EQ(store_.Audit().back().evidence_json, R"({"version":2})");
}

}  // namespace
}  // namespace ringwarden
