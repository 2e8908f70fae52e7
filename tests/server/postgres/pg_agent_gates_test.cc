// The agent gates a snapshot reads as changes (migration 0017), against a real PostgreSQL:
// every change to labels, revocation or reset is read after the cursor it followed and nothing
// else is, a cleared gate comes back empty, a transaction still open during a read is read once
// it commits, and a cursor the database has not reached reads every gate.
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

class PgAgentGatesTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    TelemetryRows rows;
    for (const char* id : {"a-1", "a-2", "a-3", "a-4", "a-5", "a-6"}) {
      rows.agents.push_back(AgentUpsert{id, Ring::kBroad, {}, "host", kT0});
    }
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  }

  // CursorAfterEverything returns the cursor of a full read that every change so far
  // precedes. The cluster is shared with tests running at the same time, whose open
  // transactions hold the cursor back for a moment: it reads until none does.
  AgentGateCursor CursorAfterEverything() {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      absl::StatusOr<CatalogData> whole = store_.LoadCatalog(std::nullopt);
      EXPECT_TRUE(whole.ok()) << whole.status();
      if (!whole.ok()) {
        return {};
      }
      EXPECT_TRUE(whole->agent_gates_complete);
      const std::string pending =
          db_.Query(absl::StrCat("SELECT count(*) FROM agents WHERE gate_xid >= '",
                                 whole->agent_gates_cursor.position, "'::xid8"));
      if (pending == "0" || absl::Now() > deadline) {
        EXPECT_EQ(pending, "0");
        return whole->agent_gates_cursor;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  CatalogData Changes(const AgentGateCursor& since) {
    absl::StatusOr<CatalogData> changes = store_.LoadCatalog(since);
    EXPECT_TRUE(changes.ok()) << changes.status();
    EXPECT_FALSE(changes.ok() && changes->agent_gates_complete);
    EXPECT_EQ(changes.ok() ? changes->agent_gates_cursor.server : "", since.server);
    EXPECT_GE(changes.ok() ? changes->agent_gates_cursor.position : 0, since.position);
    return changes.ok() ? *std::move(changes) : CatalogData{};
  }
};

TEST_F(PgAgentGatesTest, EveryGateChangedAfterTheCursorIsReadAndNothingElse) {
  ASSERT_TRUE(store_.LabelAgent("a-5", {{"site", "eu"}}, Ring::kBroad, Audit("label")).ok());
  ASSERT_TRUE(store_.LabelAgent("a-6", {{"site", "us"}}, Ring::kBroad, Audit("label")).ok());
  const AgentGateCursor cursor = CursorAfterEverything();

  ASSERT_TRUE(store_.LabelAgent("a-1", {{"group", "dogfood"}}, Ring::kCanary, Audit("label")).ok());
  ASSERT_TRUE(store_.RevokeAgent("a-2", Audit("revoke")).ok());
  ASSERT_TRUE(store_.ResetAgent("a-3", Audit("reset")).ok());
  ASSERT_TRUE(store_.LabelAgent("a-5", {}, Ring::kBroad, Audit("label")).ok());  // cleared
  // The same labels again, and heartbeats: no change to a gate.
  ASSERT_TRUE(store_.LabelAgent("a-6", {{"site", "us"}}, Ring::kBroad, Audit("label")).ok());
  TelemetryRows beats;
  beats.heartbeats = {{"a-4", {{kChannel, 1}}, "boot", kT0 + absl::Seconds(1)},
                      {"a-6", {{kChannel, 1}}, "boot", kT0 + absl::Seconds(1)}};
  ASSERT_TRUE(store_.WriteTelemetry(beats).ok());

  const CatalogData changes = Changes(cursor);
  ASSERT_EQ(changes.agent_gates.size(), 4u);
  EXPECT_EQ(changes.agent_gates.at("a-1").labels.at("group"), "dogfood");
  EXPECT_TRUE(changes.agent_gates.at("a-2").revoked_at.has_value());
  EXPECT_TRUE(changes.agent_gates.at("a-3").credentials_valid_after.has_value());
  EXPECT_TRUE(changes.agent_gates.at("a-5").empty());
  EXPECT_EQ(changes.agent_gates.count("a-4"), 0u);
  EXPECT_EQ(changes.agent_gates.count("a-6"), 0u);

  // The full read holds gates only, the cleared one not among them.
  absl::StatusOr<CatalogData> whole = store_.LoadCatalog(std::nullopt);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->agent_gates.size(), 4u);  // a-1, a-2, a-3, a-6
  EXPECT_EQ(whole->agent_gates.count("a-5"), 0u);
  EXPECT_EQ(whole->agent_gates.at("a-6").labels.at("site"), "us");
}

TEST_F(PgAgentGatesTest, EveryInsertAndAnUpsertChangingLabelsIsAChange) {
  const AgentGateCursor cursor = CursorAfterEverything();
  TelemetryRows rows;
  rows.agents = {AgentUpsert{"new-1", Ring::kCanary, {{"group", "dogfood"}}, "host", kT0},
                 AgentUpsert{"new-2", Ring::kBroad, {}, "host", kT0},
                 AgentUpsert{"a-1", Ring::kCanary, {{"group", "dogfood"}}, "host", kT0},
                 AgentUpsert{"a-2", Ring::kBroad, {}, "host", kT0}};  // as it was
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  const CatalogData changes = Changes(cursor);
  // An id inserted without labels comes back with an empty gate: its row may have replaced
  // one deleted by hand, whose gate a replica still holds.
  ASSERT_EQ(changes.agent_gates.size(), 3u);
  EXPECT_EQ(changes.agent_gates.at("new-1").labels.at("group"), "dogfood");
  EXPECT_TRUE(changes.agent_gates.at("new-2").empty());
  EXPECT_EQ(changes.agent_gates.at("a-1").labels.at("group"), "dogfood");  // ON CONFLICT UPDATE
  EXPECT_EQ(changes.agent_gates.count("a-2"), 0u);
}

TEST_F(PgAgentGatesTest, AnIdEnrolledAgainAfterItsRowWasDeletedLosesTheOldGate) {
  ASSERT_TRUE(store_.LabelAgent("a-1", {{"group", "dogfood"}}, Ring::kCanary, Audit("label")).ok());
  const AgentGateCursor cursor = CursorAfterEverything();
  db_.Exec("DELETE FROM agents WHERE agent_id = 'a-1'");
  TelemetryRows rows;
  rows.agents = {AgentUpsert{"a-1", Ring::kBroad, {}, "host", kT0}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  const CatalogData changes = Changes(cursor);
  ASSERT_EQ(changes.agent_gates.count("a-1"), 1u);
  EXPECT_TRUE(changes.agent_gates.at("a-1").empty());
}

TEST_F(PgAgentGatesTest, AChangeOpenDuringAReadIsReadAfterItCommits) {
  const AgentGateCursor first = CursorAfterEverything();
  pqxx::connection other(db_.conninfo());
  pqxx::work open(other);
  open.exec("UPDATE agents SET labels = '{\"group\": \"late\"}' WHERE agent_id = 'a-1'");
  open.exec("UPDATE agents SET revoked_at = now() WHERE agent_id = 'a-2'");
  // Committed after the open one began: the newest transaction id moves past the open one's.
  ASSERT_TRUE(store_.LabelAgent("a-3", {{"group", "early"}}, Ring::kBroad, Audit("label")).ok());

  const CatalogData during = Changes(first);
  EXPECT_EQ(during.agent_gates.count("a-1"), 0u);  // not committed yet
  EXPECT_EQ(during.agent_gates.count("a-2"), 0u);
  EXPECT_EQ(during.agent_gates.count("a-3"), 1u);
  open.commit();

  const CatalogData after = Changes(during.agent_gates_cursor);
  ASSERT_EQ(after.agent_gates.count("a-1"), 1u);
  EXPECT_EQ(after.agent_gates.at("a-1").labels.at("group"), "late");
  ASSERT_EQ(after.agent_gates.count("a-2"), 1u);
  EXPECT_TRUE(after.agent_gates.at("a-2").revoked_at.has_value());
}

TEST_F(PgAgentGatesTest, ACursorTheDatabaseHasNotReachedReadsEveryGate) {
  ASSERT_TRUE(store_.LabelAgent("a-1", {{"group", "dogfood"}}, Ring::kCanary, Audit("label")).ok());
  const AgentGateCursor cursor = CursorAfterEverything();
  // As after a restore from a backup taken before the cursor was read.
  absl::StatusOr<CatalogData> read =
      store_.LoadCatalog(AgentGateCursor{cursor.server, cursor.position + 1'000'000'000});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->agent_gates_complete);
  EXPECT_EQ(read->agent_gates.size(), 1u);
  EXPECT_EQ(read->agent_gates.count("a-1"), 1u);
}

TEST_F(PgAgentGatesTest, ACursorOfAnotherDatabaseServerReadsEveryGate) {
  ASSERT_TRUE(store_.LabelAgent("a-1", {{"group", "dogfood"}}, Ring::kCanary, Audit("label")).ok());
  const AgentGateCursor cursor = CursorAfterEverything();
  EXPECT_FALSE(cursor.server.empty());
  // As after a failover: the standby promoted is another server, whose transaction ids may
  // repeat ones the old primary gave changes this replica never read.
  absl::StatusOr<CatalogData> read =
      store_.LoadCatalog(AgentGateCursor{"another server", cursor.position});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->agent_gates_complete);
  EXPECT_EQ(read->agent_gates.size(), 1u);
  EXPECT_EQ(read->agent_gates.at("a-1").labels.at("group"), "dogfood");
  EXPECT_EQ(read->agent_gates_cursor.server, cursor.server);
}

}  // namespace
}  // namespace ringwarden
