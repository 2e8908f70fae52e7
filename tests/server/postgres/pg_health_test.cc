// The health query decisions rest on (LoadRolloutHealth), against a real
// PostgreSQL: exactly which agents, applies, fetches and crashes come back,
// which agents a holding pin leaves out, and label text treated as data.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "server/domain/assignment.h"
#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

using ::testing::ElementsAre;

constexpr char kOtherChannel[] = "rules.network";
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

absl::Time At(int seconds) { return kT0 + absl::Seconds(seconds); }

using AgentTuple =
    std::tuple<std::string, Ring, int64_t, std::optional<absl::Time>, std::optional<absl::Time>>;

std::vector<AgentTuple> Agents(const RolloutHealthRows& rows) {
  std::vector<AgentTuple> out;
  for (const AgentHealthRow& a : rows.agents) {
    out.emplace_back(a.agent_id, a.ring, a.version, a.since, a.last_seen);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> AgentIds(const RolloutHealthRows& rows) {
  std::vector<std::string> out;
  for (const AgentHealthRow& a : rows.agents) {
    out.push_back(a.agent_id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class PgHealthTest : public StoreFixture {
 protected:
  static AgentUpsert Agent(std::string id, Ring ring, std::map<std::string, std::string> labels) {
    return AgentUpsert{std::move(id), ring, std::move(labels), "host", kT0};
  }

  HealthQuery Query(std::vector<LabelPin> holding_pins) {
    HealthQuery query;
    query.channel = kChannel;
    query.version = 2;
    query.previous_version = 1;
    query.since = At(100);
    query.holding_pins = std::move(holding_pins);
    return query;
  }
};

TEST_F(PgHealthTest, ReturnsExactlyTheRowsARolloutIsJudgedOn) {
  TelemetryRows rows;
  rows.agents = {Agent("canary-1", Ring::kCanary, {}),
                 Agent("early-1", Ring::kEarly, {{"group", "fast"}}),     // "latest" pin
                 Agent("broad-1", Ring::kBroad, {{"group", "frozen"}}),   // "n-1" pin: held
                 Agent("broad-2", Ring::kBroad, {{"group", "frozen2"}}),  // never heard from
                 Agent("broad-3", Ring::kBroad, {})};                     // other channel only
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  // Heartbeats in the order and batches they arrive (every few seconds).
  for (const HeartbeatRow& heartbeat :
       std::vector<HeartbeatRow>{{"canary-1", {{kChannel, 1}}, "boot", At(0)},
                                 {"early-1", {{kChannel, 1}}, "boot", At(5)},
                                 {"broad-1", {{kChannel, 1}}, "boot", At(6)},
                                 {"broad-3", {{kOtherChannel, 7}}, "boot", At(7)},
                                 {"canary-1", {{kChannel, 2}}, "boot", At(10)},
                                 {"canary-1", {{kChannel, 2}}, "boot", At(20)}}) {
    TelemetryRows batch;
    batch.heartbeats = {heartbeat};
    ASSERT_TRUE(store_.WriteTelemetry(batch).ok());
  }
  rows = TelemetryRows{};
  rows.applies = {
      {"canary-1", kChannel, 2, ApplyOutcome::kApplied, "", At(9)},
      {"canary-1", kChannel, 2, ApplyOutcome::kApplied, "again", At(30)},
      {"early-1", kChannel, 2, ApplyOutcome::kLoadCheckFailed, "", At(4)},
      {"broad-2", kChannel, 2, ApplyOutcome::kSignatureRejected, "", At(3)},
      {"broad-1", kChannel, 2, ApplyOutcome::kReverted, "", At(2)},
      {"canary-1", kChannel, 1, ApplyOutcome::kApplied, "", At(1)},        // other version
      {"canary-1", kOtherChannel, 2, ApplyOutcome::kApplied, "", At(1)}};  // other channel
  rows.fetches = {{"canary-1", kChannel, 2, At(8)},
                  {"broad-2", kChannel, 2, At(2)},
                  {"early-1", kChannel, 1, At(1)},        // other version
                  {"broad-3", kOtherChannel, 2, At(1)}};  // other channel
  rows.crashes = {
      {"canary-1", CrashKind::kProcessCrash, kChannel, 2, "", At(101)},
      {"canary-1", CrashKind::kProcessCrash, kChannel, 2, "", At(99)},        // before `since`
      {"early-1", CrashKind::kUncleanShutdown, kChannel, 1, "", At(100)},     // previous version
      {"broad-2", CrashKind::kProcessCrash, kChannel, 3, "", At(103)},        // other version
      {"broad-3", CrashKind::kProcessCrash, kOtherChannel, 2, "", At(104)}};  // other channel
  rows.health_events = {
      {"canary-1", "cpu_high", kChannel, 2, "load 9.5", At(102)},
      {"canary-1", "cpu_high", kChannel, 2, "", At(98)},         // before `since`
      {"early-1", "load_check_slow", kChannel, 1, "", At(100)},  // previous version
      {"broad-2", "cpu_high", kChannel, 3, "", At(103)},         // other version
      {"broad-3", "cpu_high", kOtherChannel, 2, "", At(104)},    // other channel
      {"nobody", "cpu_high", kChannel, 2, "", At(105)}};         // unknown agent: dropped
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  const std::vector<LabelPin> pins = {
      {"group", "frozen", kChannel, {PinPolicy::Kind::kPreviousCompleted, 0}},
      {"group", "fast", kChannel, {PinPolicy::Kind::kLatest, 0}},
      {"group", "frozen2", kOtherChannel, {PinPolicy::Kind::kPreviousCompleted, 0}}};
  const std::vector<LabelPin> holding = HoldingPins(pins, kChannel);
  ASSERT_EQ(holding.size(), 1u);  // the domain chose: only group=frozen holds on this channel

  auto health = store_.LoadRolloutHealth(Query(holding));

  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_THAT(Agents(*health),
              ElementsAre(AgentTuple{"broad-2", Ring::kBroad, 0, std::nullopt, std::nullopt},
                          AgentTuple{"broad-3", Ring::kBroad, 0, std::nullopt, At(7)},
                          AgentTuple{"canary-1", Ring::kCanary, 2, At(10), At(20)},
                          AgentTuple{"early-1", Ring::kEarly, 1, At(5), At(5)}));
  std::vector<std::tuple<std::string, ApplyOutcome, absl::Time>> applies;
  for (const ApplyRow& a : health->applies) {
    EXPECT_EQ(a.channel, kChannel);
    EXPECT_EQ(a.version, 2);
    applies.emplace_back(a.agent_id, a.outcome, a.at);
  }
  std::sort(applies.begin(), applies.end());
  EXPECT_THAT(applies,
              ElementsAre(std::make_tuple("broad-1", ApplyOutcome::kReverted, At(2)),
                          std::make_tuple("broad-2", ApplyOutcome::kSignatureRejected, At(3)),
                          std::make_tuple("canary-1", ApplyOutcome::kApplied, At(9)),
                          std::make_tuple("early-1", ApplyOutcome::kLoadCheckFailed, At(4))));
  std::vector<std::tuple<std::string, absl::Time>> fetches;
  for (const FetchRow& f : health->fetches) {
    EXPECT_EQ(f.channel, kChannel);
    EXPECT_EQ(f.version, 2);
    fetches.emplace_back(f.agent_id, f.at);
  }
  std::sort(fetches.begin(), fetches.end());
  EXPECT_THAT(fetches,
              ElementsAre(std::make_tuple("broad-2", At(2)), std::make_tuple("canary-1", At(8))));
  std::vector<std::tuple<std::string, CrashKind, int64_t, absl::Time>> crashes;
  for (const CrashRow& c : health->crashes) {
    EXPECT_EQ(c.channel, kChannel);
    crashes.emplace_back(c.agent_id, c.kind, c.version, c.at);
  }
  std::sort(crashes.begin(), crashes.end());
  EXPECT_THAT(crashes,
              ElementsAre(std::make_tuple("canary-1", CrashKind::kProcessCrash, 2, At(101)),
                          std::make_tuple("early-1", CrashKind::kUncleanShutdown, 1, At(100))));
  std::vector<std::tuple<std::string, std::string, int64_t, absl::Time>> events;
  for (const HealthEventRow& h : health->health_events) {
    EXPECT_EQ(h.channel, kChannel);
    EXPECT_EQ(h.detail, "");  // the judge needs no free text
    events.emplace_back(h.agent_id, h.kind, h.version, h.at);
  }
  std::sort(events.begin(), events.end());
  EXPECT_THAT(events, ElementsAre(std::make_tuple("canary-1", "cpu_high", 2, At(102)),
                                  std::make_tuple("early-1", "load_check_slow", 1, At(100))));
  EXPECT_EQ(db_.Query("SELECT count(*) FROM health_events"), "5");
  // A replayed batch (through another replica) stores nothing twice.
  TelemetryRows replay;
  replay.health_events = rows.health_events;
  ASSERT_TRUE(store_.WriteTelemetry(replay).ok());
  EXPECT_EQ(db_.Query("SELECT count(*) FROM health_events"), "5");
  EXPECT_EQ(db_.Query("SELECT detail FROM health_events WHERE at = to_timestamp(" +
                      std::to_string(absl::ToUnixSeconds(At(102))) + ")"),
            "load 9.5");

  // Without the holding pin, the pinned agent is judged too.
  auto unpinned = store_.LoadRolloutHealth(Query({}));
  ASSERT_TRUE(unpinned.ok()) << unpinned.status();
  EXPECT_THAT(AgentIds(*unpinned),
              ElementsAre("broad-1", "broad-2", "broad-3", "canary-1", "early-1"));
}

TEST_F(PgHealthTest, LabelTextInHoldingPinsIsData) {
  const std::string quoted_key = "a\"b\\c'd";
  const std::string injection = "'); DROP TABLE agents; --";
  TelemetryRows rows;
  rows.agents = {Agent("held-quoted", Ring::kCanary, {{quoted_key, "x,y}"}}),
                 Agent("held-injection", Ring::kCanary, {{injection, "NULL"}}),
                 Agent("held-empty", Ring::kCanary, {{"{", ""}}),
                 Agent("kept-same-key", Ring::kCanary, {{quoted_key, "x"}}),
                 Agent("kept-null-word", Ring::kCanary, {{"group", "NULL"}}),
                 Agent("kept-plain", Ring::kEarly, {})};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  const PinPolicy hold{PinPolicy::Kind::kPreviousCompleted, 0};

  auto health = store_.LoadRolloutHealth(Query({{quoted_key, "x,y}", kChannel, hold},
                                                {injection, "NULL", kChannel, hold},
                                                {"{", "", kChannel, hold}}));

  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_THAT(AgentIds(*health), ElementsAre("kept-null-word", "kept-plain", "kept-same-key"));
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agents"), "6");
}

TEST_F(PgHealthTest, UnspecifiedOutcomesAreRefusedAndWriteNothing) {
  TelemetryRows rows;
  rows.agents = {Agent("canary-1", Ring::kCanary, {})};
  rows.applies = {{"canary-1", kChannel, 2, ApplyOutcome::kUnspecified, "", At(1)}};
  EXPECT_EQ(store_.WriteTelemetry(rows).code(), absl::StatusCode::kInvalidArgument);
  rows.applies.clear();
  rows.crashes = {{"canary-1", CrashKind::kUnspecified, kChannel, 2, "", At(1)}};
  EXPECT_EQ(store_.WriteTelemetry(rows).code(), absl::StatusCode::kInvalidArgument);
  rows.crashes.clear();
  for (const char* kind : {"", "Bad Kind", "x'); DROP TABLE agents; --"}) {
    rows.health_events = {{"canary-1", kind, kChannel, 2, "", At(1)}};
    const absl::Status refused = store_.WriteTelemetry(rows);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << kind;
    EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("health event kind"));
  }
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agents"), "0");
}

TEST_F(PgHealthTest, FleetStatsCountAgentsAndRollouts) {
  StartRollout("ro-1", {RolloutState::kCanary, std::nullopt});
  TelemetryRows rows;
  rows.agents = {Agent("canary-1", Ring::kCanary, {}), Agent("broad-1", Ring::kBroad, {}),
                 Agent("broad-2", Ring::kBroad, {})};
  rows.heartbeats = {{"canary-1", {{kChannel, 1}}, "boot", absl::Now()},
                     {"broad-1", {{kChannel, 1}}, "boot", absl::Now() - absl::Hours(1)}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());

  auto stats = store_.LoadFleetStats();

  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->rollouts.at({kChannel, "CANARY"}), 1);
  EXPECT_EQ(stats->agents_by_ring.at("broad"), 2);
  EXPECT_EQ(stats->agents_by_ring.at("canary"), 1);
  EXPECT_EQ(stats->agents_by_version.at({kChannel, 1}), 2);
  EXPECT_EQ(stats->agents_seen_5m, 1);
  auto listed = store_.ListAgents(Ring::kBroad, 1);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->second, 2);
  ASSERT_EQ(listed->first.size(), 1u);
  EXPECT_EQ(listed->first[0].agent_id, "broad-1");
  EXPECT_EQ(listed->first[0].last_seen_at,
            absl::FromUnixMicros(absl::ToUnixMicros(rows.heartbeats[1].at)));
}

}  // namespace
}  // namespace ringwarden
