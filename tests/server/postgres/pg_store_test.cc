#include "server/postgres/pg_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

class PgStoreTest : public StoreFixture {};

TEST_F(PgStoreTest, ContentRoundTripsBinaryPayloads) {
  ASSERT_TRUE(store_.InsertContent(Content(1), Audit("content.upload")).ok());
  auto got = store_.GetContent("rules.behavioral", 1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->payload, std::string("\0\1\2", 3));
  EXPECT_EQ(got->key_ids, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(store_.GetContent("rules.behavioral", 2).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PgStoreTest, ConcurrentUploadsOfOneVersionStoreItOnce) {
  const auto [ok, refused] =
      RunConcurrently(8, [&] { return store_.InsertContent(Content(7), Audit("content.upload")); });
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(refused, 7);
  EXPECT_EQ(db_.Query("SELECT count(*) FROM audit_log"), "1");
}

TEST_F(PgStoreTest, StaleRevisionIsAbortedAndChangesNothing) {
  ASSERT_TRUE(store_.InsertContent(Content(1), Audit("content.upload")).ok());
  NewRollout create;
  create.rollout.id = "ro-1";
  create.rollout.channel = "rules.behavioral";
  create.rollout.version = 1;
  create.rollout.position.state = RolloutState::kCanary;
  create.rollout.created_by = "alice";
  ASSERT_TRUE(store_.CreateRollout(create).ok());
  // The same rollout row twice: refused by the one-unfinished-per-channel rule.
  create.rollout.id = "ro-2";
  EXPECT_EQ(store_.CreateRollout(create).code(), absl::StatusCode::kFailedPrecondition);

  RolloutChange promote;
  promote.rollout_id = "ro-1";
  promote.expected_revision = 1;
  promote.plan.to.state = RolloutState::kEarly;
  promote.audit = Audit("rollout.promote");
  ASSERT_TRUE(store_.ApplyRolloutChange(promote).ok());
  // Replaying the same change (same evidence, old revision) never promotes twice.
  promote.plan.to.state = RolloutState::kBroad;
  EXPECT_EQ(store_.ApplyRolloutChange(promote).code(), absl::StatusCode::kAborted);
  auto r = store_.GetRollout("ro-1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->position.state, RolloutState::kEarly);
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(db_.Query("SELECT count(*) FROM audit_log WHERE action = 'rollout.promote'"), "1");
}

TEST_F(PgStoreTest, AuditLogIsAppendOnly) {
  ASSERT_TRUE(store_.InsertContent(Content(1), Audit("content.upload")).ok());
  EXPECT_ANY_THROW(db_.Exec("UPDATE audit_log SET actor = 'mallory'"));
  EXPECT_ANY_THROW(db_.Exec("DELETE FROM audit_log"));
  EXPECT_EQ(db_.Query("SELECT actor FROM audit_log"), "alice");
}

TEST_F(PgStoreTest, UnreachableDatabaseIsUnavailable) {
  PgStore down("host=127.0.0.1 port=1 dbname=x connect_timeout=2", 1);
  EXPECT_EQ(down.ListContent("").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(PgStoreTest, TelemetryBatchesUpsertAgentsAndVersions) {
  TelemetryRows rows;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  rows.agents.push_back({"host-1", Ring::kCanary, {{"group", "dogfood"}}, "h1", t0});
  rows.heartbeats.push_back({"host-1", {{"rules.behavioral", 3}}, "boot-a", t0});
  rows.heartbeats.push_back({"host-1", {{"rules.behavioral", 4}}, "boot-a", t0 + absl::Seconds(5)});
  // Rows of agents that never enrolled are ignored, not fatal to the batch.
  rows.heartbeats.push_back({"ghost", {{"rules.behavioral", 9}}, "boot-x", t0});
  rows.applies.push_back({"ghost", "rules.behavioral", 9, ApplyOutcome::kApplied, "", t0});
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  EXPECT_EQ(db_.Query("SELECT version FROM agent_versions WHERE agent_id = 'host-1'"), "4");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agent_versions"), "1");
  // An older heartbeat arriving late does not move the version back.
  TelemetryRows late;
  late.heartbeats.push_back({"host-1", {{"rules.behavioral", 3}}, "boot-a", t0 + absl::Seconds(1)});
  ASSERT_TRUE(store_.WriteTelemetry(late).ok());
  EXPECT_EQ(db_.Query("SELECT version FROM agent_versions WHERE agent_id = 'host-1'"), "4");
  auto agents = store_.ListAgents(std::nullopt, 10);
  ASSERT_TRUE(agents.ok());
  ASSERT_EQ(agents->first.size(), 1u);
  EXPECT_EQ(agents->first[0].labels.at("group"), "dogfood");
  EXPECT_EQ(agents->first[0].versions.at("rules.behavioral"), 4);
}

}  // namespace
}  // namespace ringwarden

namespace ringwarden {
namespace {

TEST_F(PgStoreTest, BroadWaveChangesKeepOrSetTheWave) {
  ASSERT_TRUE(store_.InsertContent(Content(1), Audit("content.upload")).ok());
  NewRollout create;
  create.rollout.id = "ro-w";
  create.rollout.channel = "rules.behavioral";
  create.rollout.version = 1;
  create.rollout.position.state = RolloutState::kEarly;
  create.rollout.created_by = "alice";
  ASSERT_TRUE(store_.CreateRollout(create).ok());
  RolloutChange to_broad;
  to_broad.rollout_id = "ro-w";
  to_broad.expected_revision = 1;
  to_broad.plan.to.state = RolloutState::kBroad;
  to_broad.plan.broad_wave = 0;
  to_broad.plan.broad_fraction = 0.25;
  to_broad.audit = Audit("rollout.promote");
  ASSERT_TRUE(store_.ApplyRolloutChange(to_broad).ok());
  RolloutChange halt;
  halt.rollout_id = "ro-w";
  halt.expected_revision = 2;
  halt.plan.to = RolloutPosition{RolloutState::kHalted, RolloutState::kBroad};
  halt.audit = Audit("rollout.halt");
  ASSERT_TRUE(store_.ApplyRolloutChange(halt).ok());
  auto r = store_.GetRollout("ro-w");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->broad_wave, 0);
  EXPECT_DOUBLE_EQ(r->broad_fraction, 0.25);  // a halt keeps the wave
}

}  // namespace
}  // namespace ringwarden
