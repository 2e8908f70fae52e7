// The change feed of the health rows (migration 0015) and the reads of only
// the agents it names, against a real PostgreSQL: every kind of write names its
// agents and no others, a transaction still open is not read early nor lost,
// and a read of some agents returns exactly their rows of the full read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);
absl::Time At(int seconds) { return kT0 + absl::Seconds(seconds); }

absl::Time TimeOf(const AgentHealthRow& row) { return row.last_seen.value_or(absl::UnixEpoch()); }
template <typename Row>
absl::Time TimeOf(const Row& row) {
  return row.at;
}

// Of lists "agent@unix seconds" of the rows of `ids`, sorted.
template <typename Row>
std::vector<std::string> Of(const std::vector<Row>& rows, const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  for (const Row& row : rows) {
    if (std::find(ids.begin(), ids.end(), row.agent_id) != ids.end()) {
      out.push_back(absl::StrCat(row.agent_id, "@", absl::ToUnixSeconds(TimeOf(row))));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

class PgHealthChangesTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    TelemetryRows rows;
    for (const char* id : {"a-1", "a-2", "a-3", "odd,\"id{}"}) {
      rows.agents.push_back(AgentUpsert{id, Ring::kCanary, {}, "host", kT0});
    }
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
    horizon_ = Horizon();
    Changed();  // the set-up's own writes, if another test's transaction held the horizon
  }

  uint64_t Horizon() {
    absl::StatusOr<HealthChanges> start = store_.ReadHealthChanges(std::nullopt);
    EXPECT_TRUE(start.ok()) << start.status();
    EXPECT_TRUE(start->changed.empty());
    return start.ok() ? start->horizon : 0;
  }

  // Changed returns "kind:agent" for every agent named since the last call, sorted. The
  // cluster is shared with other tests running at the same time, whose transactions hold the
  // horizon for a moment: it reads until every transaction that began before the call has
  // ended, or (with `wait` false, while this test holds one open) once.
  std::vector<std::string> Changed(bool wait = true) {
    uint64_t until = 0;
    if (wait) {
      EXPECT_TRUE(absl::SimpleAtoi(
          db_.Query("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"), &until));
    }
    std::set<std::string> out;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      absl::StatusOr<HealthChanges> changes = store_.ReadHealthChanges(horizon_);
      EXPECT_TRUE(changes.ok()) << changes.status();
      if (!changes.ok()) {
        break;
      }
      EXPECT_GE(changes->horizon, horizon_);
      horizon_ = changes->horizon;
      held_open_ = changes->held_open;
      for (const auto& [name, ids] : {std::pair{"agents", &changes->changed.agents},
                                      {"applies", &changes->changed.applies},
                                      {"fetches", &changes->changed.fetches},
                                      {"crashes", &changes->changed.crashes},
                                      {"health_events", &changes->changed.health_events}}) {
        for (const std::string& id : *ids) {
          out.insert(absl::StrCat(name, ":", id));
        }
      }
      for (const SeenChange& seen : changes->seen) {
        out.insert(absl::StrCat("seen:", seen.agent_id, "@", absl::ToUnixSeconds(seen.last_seen)));
      }
      if (horizon_ >= until) {
        break;
      }
      if (absl::Now() > deadline) {
        ADD_FAILURE() << "the horizon stayed below " << until << " for 30 s";
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return std::vector<std::string>(out.begin(), out.end());
  }

  HealthQuery Query() {
    HealthQuery query;
    query.channel = kChannel;
    query.version = 2;
    query.previous_version = 1;
    query.since = kT0;
    return query;
  }

  uint64_t horizon_ = 0;
  bool held_open_ = false;  // of the last Changed()
};

TEST_F(PgHealthChangesTest, EveryKindOfWriteNamesItsAgentsAndNoOthers) {
  EXPECT_THAT(Changed(), IsEmpty());

  TelemetryRows heartbeat;
  heartbeat.heartbeats = {{"a-1", {{kChannel, 1}}, "boot", At(1)}};
  ASSERT_TRUE(store_.WriteTelemetry(heartbeat).ok());
  // The first heartbeat adds a version row (named, re-read) and moves the agent row (its values
  // carried); the next one only moves the agent row.
  EXPECT_THAT(Changed(), ElementsAre("agents:a-1", "seen:a-1@1800000001"));
  heartbeat.heartbeats = {{"a-1", {{kChannel, 1}}, "boot", At(2)}};
  ASSERT_TRUE(store_.WriteTelemetry(heartbeat).ok());
  EXPECT_THAT(Changed(), ElementsAre("seen:a-1@1800000002"));

  TelemetryRows apply;
  apply.applies = {{"a-2", kChannel, 2, ApplyOutcome::kApplied, "", At(2)}};
  ASSERT_TRUE(store_.WriteTelemetry(apply).ok());
  EXPECT_THAT(Changed(), ElementsAre("applies:a-2"));

  TelemetryRows fetch;
  fetch.fetches = {{"a-3", kChannel, 2, At(3)}};
  ASSERT_TRUE(store_.WriteTelemetry(fetch).ok());
  EXPECT_THAT(Changed(), ElementsAre("fetches:a-3"));

  TelemetryRows crash;
  crash.crashes = {{"a-1", CrashKind::kProcessCrash, kChannel, 2, "", At(4)}};
  crash.health_events = {{"odd,\"id{}", "cpu_high", kChannel, 2, "", At(4)}};
  ASSERT_TRUE(store_.WriteTelemetry(crash).ok());
  EXPECT_THAT(Changed(), ElementsAre("crashes:a-1", "health_events:odd,\"id{}"));

  // An operator's relabelling (a pin may now hold the agent back) and a revocation.
  ASSERT_TRUE(store_.LabelAgent("a-2", {{"group", "frozen"}}, Ring::kBroad, Audit("label")).ok());
  EXPECT_THAT(Changed(), ElementsAre("agents:a-2"));
  ASSERT_TRUE(store_.RevokeAgent("a-3", Audit("revoke")).ok());
  EXPECT_THAT(Changed(), ElementsAre("agents:a-3"));

  // Telemetry of an agent never enrolled is dropped and names nobody.
  TelemetryRows stranger;
  stranger.heartbeats = {{"nobody", {{kChannel, 2}}, "boot", At(5)}};
  stranger.applies = {{"nobody", kChannel, 2, ApplyOutcome::kApplied, "", At(5)}};
  ASSERT_TRUE(store_.WriteTelemetry(stranger).ok());
  EXPECT_THAT(Changed(), IsEmpty());
}

TEST_F(PgHealthChangesTest, AVersionRowNamesItsAgentOnlyWhenTheVersionInEffectMoves) {
  TelemetryRows heartbeat;
  heartbeat.heartbeats = {{"a-1", {{kChannel, 1}}, "boot", At(1)}};
  ASSERT_TRUE(store_.WriteTelemetry(heartbeat).ok());
  Changed();
  pqxx::connection c(db_.conninfo());
  // Every heartbeat rewrites reported_at; that alone changes nothing the leader judges.
  pqxx::nontransaction(c).exec(
      "UPDATE agent_versions SET reported_at = reported_at + "
      "interval '1 second' WHERE agent_id = 'a-1'");
  EXPECT_THAT(Changed(), IsEmpty());
  pqxx::nontransaction(c).exec(
      "UPDATE agent_versions SET version = 2, since = now() "
      "WHERE agent_id = 'a-1'");
  EXPECT_THAT(Changed(), ElementsAre("agents:a-1"));
  pqxx::nontransaction(c).exec("DELETE FROM agent_versions WHERE agent_id = 'a-1'");
  EXPECT_THAT(Changed(), ElementsAre("agents:a-1"));
}

TEST_F(PgHealthChangesTest, AnOpenTransactionIsReadOnlyOnceItHasEnded) {
  pqxx::connection other(db_.conninfo());
  pqxx::work open(other);
  open.exec(
      "UPDATE agents SET last_seen_at = timestamptz 'epoch' + 1800000099 * "
      "interval '1 second' WHERE agent_id = 'a-1'");

  // Committed after the open one began: still not readable past the open one's horizon.
  TelemetryRows later;
  later.heartbeats = {{"a-2", {{kChannel, 1}}, "boot", At(1)}};
  ASSERT_TRUE(store_.WriteTelemetry(later).ok());
  // Held at (or, while an older transaction of another test runs, below) the open one's.
  uint64_t open_xid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(open.exec1("SELECT pg_current_xact_id()::text")[0].as<std::string>(),
                               &open_xid));
  EXPECT_THAT(Changed(/*wait=*/false), IsEmpty());
  EXPECT_TRUE(held_open_);
  EXPECT_LE(horizon_, open_xid);
  EXPECT_THAT(Changed(/*wait=*/false), IsEmpty());
  EXPECT_TRUE(held_open_);
  EXPECT_LE(horizon_, open_xid);

  open.commit();
  // (Whether the feed is held after this depends on the other tests sharing the cluster.)
  EXPECT_THAT(Changed(), ElementsAre("agents:a-2", "seen:a-1@1800000099", "seen:a-2@1800000001"));
  EXPECT_GT(horizon_, open_xid);
  EXPECT_THAT(Changed(), IsEmpty());
}

TEST_F(PgHealthChangesTest, ARolledBackTransactionNamesNobody) {
  {
    pqxx::connection other(db_.conninfo());
    pqxx::work open(other);
    open.exec("UPDATE agents SET last_seen_at = now() WHERE agent_id = 'a-1'");
    open.abort();
  }
  EXPECT_THAT(Changed(), IsEmpty());
}

TEST_F(PgHealthChangesTest, TrimmedChangesAreGoneAndLaterOnesStay) {
  TelemetryRows heartbeat;
  heartbeat.heartbeats = {{"a-1", {{kChannel, 1}}, "boot", At(1)}};
  ASSERT_TRUE(store_.WriteTelemetry(heartbeat).ok());
  ASSERT_TRUE(store_.TrimHealthChanges(absl::Minutes(10)).ok());
  EXPECT_THAT(Changed(), ElementsAre("agents:a-1", "seen:a-1@1800000001"));  // recent: kept

  heartbeat.heartbeats = {{"a-2", {{kChannel, 1}}, "boot", At(2)}};
  ASSERT_TRUE(store_.WriteTelemetry(heartbeat).ok());
  ASSERT_TRUE(store_.TrimHealthChanges(absl::ZeroDuration()).ok());
  EXPECT_THAT(Changed(), IsEmpty());
}

TEST_F(PgHealthChangesTest, AReadOfSomeAgentsReturnsExactlyTheirRowsOfTheFullRead) {
  TelemetryRows rows;
  rows.heartbeats = {{"a-1", {{kChannel, 2}}, "boot", At(10)},
                     {"a-2", {{kChannel, 1}}, "boot", At(11)},
                     {"a-3", {{kChannel, 2}}, "boot", At(12)},
                     {"odd,\"id{}", {{kChannel, 2}}, "boot", At(13)}};
  rows.applies = {{"a-1", kChannel, 2, ApplyOutcome::kApplied, "", At(9)},
                  {"a-1", kChannel, 2, ApplyOutcome::kReverted, "", At(20)},
                  {"a-2", kChannel, 2, ApplyOutcome::kApplied, "", At(9)},
                  {"odd,\"id{}", kChannel, 2, ApplyOutcome::kApplied, "", At(9)}};
  rows.fetches = {{"a-1", kChannel, 2, At(8)}, {"a-3", kChannel, 2, At(8)}};
  rows.crashes = {{"a-1", CrashKind::kProcessCrash, kChannel, 2, "", At(30)},
                  {"a-2", CrashKind::kProcessCrash, kChannel, 1, "", At(31)},
                  {"odd,\"id{}", CrashKind::kUncleanShutdown, kChannel, 2, "", At(32)}};
  rows.health_events = {{"a-1", "cpu_high", kChannel, 2, "", At(33)},
                        {"a-3", "cpu_high", kChannel, 2, "", At(34)},
                        {"odd,\"id{}", "cpu_high", kChannel, 2, "", At(35)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  ASSERT_TRUE(store_.LabelAgent("a-3", {{"group", "frozen"}}, Ring::kEarly, Audit("label")).ok());
  HealthQuery all = Query();
  all.holding_pins = {{"group", "frozen", kChannel, {PinPolicy::Kind::kPreviousCompleted, 0}}};
  absl::StatusOr<RolloutHealthRows> full = store_.LoadRolloutHealth(all);
  ASSERT_TRUE(full.ok()) << full.status();
  ASSERT_EQ(full->agents.size(), 3u);  // a-3 held back

  // The agents a feed might name: a held-back one, an unknown one, and one with
  // the characters of an array literal in its id.
  HealthQuery some = all;
  const std::vector<std::string> named = {"a-1", "a-3", "odd,\"id{}", "gone"};
  some.only = HealthAgents{named, named, named, named, named};
  absl::StatusOr<RolloutHealthRows> part = store_.LoadRolloutHealth(some);
  ASSERT_TRUE(part.ok()) << part.status();

  EXPECT_EQ(Of(part->agents, named), Of(full->agents, named));
  EXPECT_THAT(Of(part->agents, named), ElementsAre("a-1@1800000010", "odd,\"id{}@1800000013"));
  EXPECT_EQ(Of(part->applies, named), Of(full->applies, named));
  EXPECT_EQ(part->applies.size(), 3u);
  EXPECT_EQ(Of(part->fetches, named), Of(full->fetches, named));
  EXPECT_THAT(Of(part->fetches, named), ElementsAre("a-1@1800000008", "a-3@1800000008"));
  EXPECT_EQ(Of(part->crashes, named), Of(full->crashes, named));
  EXPECT_EQ(part->crashes.size(), 2u);
  EXPECT_EQ(Of(part->health_events, named), Of(full->health_events, named));
  // A held-back agent's other rows come back as in the full read; the ledger drops them.
  EXPECT_EQ(part->health_events.size(), 3u);
}

TEST_F(PgHealthChangesTest, EachKindIsReadForItsOwnAgentsOnly) {
  TelemetryRows rows;
  rows.heartbeats = {{"a-1", {{kChannel, 2}}, "boot", At(10)},
                     {"a-2", {{kChannel, 2}}, "boot", At(10)}};
  rows.applies = {{"a-1", kChannel, 2, ApplyOutcome::kApplied, "", At(9)},
                  {"a-2", kChannel, 2, ApplyOutcome::kApplied, "", At(9)}};
  rows.crashes = {{"a-1", CrashKind::kProcessCrash, kChannel, 2, "", At(30)},
                  {"a-2", CrashKind::kProcessCrash, kChannel, 2, "", At(30)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  HealthQuery query = Query();
  query.only = HealthAgents{};
  query.only->agents = {"a-1"};
  query.only->crashes = {"a-2"};
  absl::StatusOr<RolloutHealthRows> part = store_.LoadRolloutHealth(query);
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_THAT(Of(part->agents, {"a-1", "a-2"}), ElementsAre("a-1@1800000010"));
  EXPECT_THAT(Of(part->crashes, {"a-1", "a-2"}), ElementsAre("a-2@1800000030"));
  EXPECT_THAT(part->applies, IsEmpty());
  EXPECT_THAT(part->fetches, IsEmpty());
  EXPECT_THAT(part->health_events, IsEmpty());
}

TEST_F(PgHealthChangesTest, AnEmptyListOfAgentsReadsNothing) {
  TelemetryRows rows;
  rows.heartbeats = {{"a-1", {{kChannel, 2}}, "boot", At(10)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  HealthQuery none = Query();
  none.only = HealthAgents{};
  absl::StatusOr<RolloutHealthRows> part = store_.LoadRolloutHealth(none);
  ASSERT_TRUE(part.ok()) << part.status();
  EXPECT_THAT(part->agents, IsEmpty());
}

TEST_F(PgHealthChangesTest, AHeartbeatFlushOfManyAgentsAddsOneFeedRowCarryingItsValues) {
  TelemetryRows rows;
  for (int i = 0; i < 500; ++i) {
    rows.agents.push_back(AgentUpsert{"bulk-" + std::to_string(i), Ring::kBroad, {}, "h", kT0});
  }
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  auto beats = [](int at) {
    TelemetryRows out;
    for (int i = 0; i < 500; ++i) {
      out.heartbeats.push_back({"bulk-" + std::to_string(i), {{kChannel, 1}}, "boot", At(at)});
    }
    return out;
  };
  ASSERT_TRUE(store_.WriteTelemetry(beats(1)).ok());
  EXPECT_EQ(Changed().size(), 1000u);  // 500 new version rows, 500 agent rows moved
  pqxx::connection c(db_.conninfo());
  auto feed_rows = [&c] {
    return pqxx::nontransaction(c).exec1("SELECT count(*) FROM health_changes")[0].as<int64_t>();
  };
  const int64_t before = feed_rows();
  ASSERT_TRUE(store_.WriteTelemetry(beats(7)).ok());
  // One row for the agents update; the versions did not move, so they name nobody.
  EXPECT_EQ(feed_rows() - before, 1);
  const std::vector<std::string> changed = Changed();
  ASSERT_EQ(changed.size(), 500u);
  for (const std::string& change : changed) {
    EXPECT_EQ(change.substr(0, 10), "seen:bulk-") << change;
    EXPECT_EQ(change.substr(change.size() - 11), "@1800000007") << change;
  }
}

}  // namespace
}  // namespace ringwarden
