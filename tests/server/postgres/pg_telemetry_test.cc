// Telemetry ingest (COPY into staging tables, then one statement per kind) and
// the day partitions of crash reports and health events with their retention
// (migration 0013), against a real PostgreSQL.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

using ::testing::HasSubstr;

// 2027-01-15 08:00 UTC: mid-morning, so a whole day lies on either side.
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);
constexpr absl::Duration kDay = absl::Hours(24);
constexpr absl::Duration kRetention = absl::Hours(24 * 90);

class PgTelemetryTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    // The migration made partitions around today's date; the tests run on their own calendar.
    db_.Exec(R"sql(
      DO $$ DECLARE p text; BEGIN
        FOR p IN SELECT relname FROM pg_class WHERE relname ~ '^(crash_reports|health_events)_p[0-9]{8}$'
        LOOP EXECUTE format('DROP TABLE %I', p); END LOOP;
      END $$)sql");
    TelemetryRows rows;
    rows.agents = {AgentUpsert{"a-1", Ring::kCanary, {}, "host", kT0},
                   AgentUpsert{"a-2", Ring::kBroad, {}, "host", kT0}};
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  }

  static CrashRow Crash(std::string agent, absl::Time at, std::string detail = "") {
    return CrashRow{std::move(agent), CrashKind::kProcessCrash, kChannel, 2, std::move(detail), at};
  }

  void WriteCrashes(std::vector<CrashRow> crashes) {
    TelemetryRows rows;
    rows.crashes = std::move(crashes);
    const absl::Status written = store_.WriteTelemetry(rows);
    ASSERT_TRUE(written.ok()) << written;
  }

  // PartitionOf names the table holding the crash report at `at` (micros exact).
  std::string PartitionOf(absl::Time at) {
    return db_.Query(
        "SELECT string_agg(tableoid::regclass::text, ',') FROM crash_reports WHERE at = "
        "timestamptz 'epoch' + " +
        std::to_string(absl::ToUnixMicros(at)) + " * interval '1 microsecond'");
  }

  int DayPartitions(const std::string& parent) {
    return std::stoi(
        db_.Query("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                  "WHERE i.inhparent = '" +
                  parent + "'::regclass AND c.relname ~ '_p[0-9]{8}$'"));
  }

  TelemetryUpkeep Maintain(absl::Time now) {
    absl::StatusOr<TelemetryUpkeep> upkeep = store_.MaintainTelemetry(kRetention, now);
    EXPECT_TRUE(upkeep.ok()) << upkeep.status();
    return upkeep.value_or(TelemetryUpkeep{});
  }
};

TEST_F(PgTelemetryTest, RepeatedAppliesAndDownloadsInOneBatchAreOneRowEachWithACount) {
  TelemetryRows rows;
  rows.applies = {{"a-1", kChannel, 2, ApplyOutcome::kApplied, "first", kT0},
                  {"a-1", kChannel, 2, ApplyOutcome::kApplied, "second", kT0 + absl::Seconds(9)},
                  {"a-1", kChannel, 2, ApplyOutcome::kApplied, "third", kT0 + absl::Seconds(3)},
                  {"never-enrolled", kChannel, 2, ApplyOutcome::kApplied, "", kT0}};
  rows.fetches = {{"a-1", kChannel, 2, kT0 + absl::Seconds(5)},
                  {"a-1", kChannel, 2, kT0 + absl::Seconds(1)},
                  {"never-enrolled", kChannel, 2, kT0}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());

  // The last row of the batch sets the detail; the times span every repeat.
  EXPECT_EQ(db_.Query("SELECT format('%s %s %s %s', count, detail, "
                      "extract(epoch from first_at)::bigint, extract(epoch from last_at)::bigint) "
                      "FROM apply_results"),
            "6 third 1800000000 1800000009");
  EXPECT_EQ(db_.Query("SELECT format('%s %s %s', count, extract(epoch from first_at)::bigint, "
                      "extract(epoch from last_at)::bigint) FROM content_fetches"),
            "4 1800000001 1800000005");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM apply_results WHERE agent_id = 'never-enrolled'"), "0");
}

TEST_F(PgTelemetryTest, HealthEventsAreStoredOnceAcrossAndWithinBatches) {
  TelemetryRows rows;
  const HealthEventRow event{"a-1", "cpu_high", kChannel, 2, "92%", kT0};
  rows.health_events = {event, event, {"never-enrolled", "cpu_high", kChannel, 2, "", kT0}};
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  EXPECT_EQ(db_.Query("SELECT count(*) FROM health_events"), "1");
}

TEST_F(PgTelemetryTest, HeartbeatsUpdateTheirRowsInPlaceWithoutNewIndexEntries) {
  // Migration 0014 leaves room in each page, so a heartbeat's update of agents and
  // agent_versions is a HOT update: no index touched.
  for (int i = 1; i <= 6; ++i) {
    TelemetryRows rows;
    rows.heartbeats = {{"a-1", {{kChannel, 2}}, "boot", kT0 + absl::Seconds(i)},
                       {"a-2", {{kChannel, 2}}, "boot", kT0 + absl::Seconds(i)}};
    ASSERT_TRUE(store_.WriteTelemetry(rows).ok());
  }
  auto hot_updates = [&](const std::string& table) {
    return std::stoi(
        db_.Query("SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = '" + table + "'"));
  };
  // The store's sessions report their statistics when idle, within about a second.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((hot_updates("agents") < 10 || hot_updates("agent_versions") < 10) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GE(hot_updates("agents"), 10);
  EXPECT_GE(hot_updates("agent_versions"), 10);
  EXPECT_EQ(db_.Query("SELECT string_agg(relname || ':' || array_to_string(reloptions, ','), ' ' "
                      "ORDER BY relname) FROM pg_class WHERE relname IN ('agents', "
                      "'agent_versions')"),
            "agent_versions:fillfactor=70 agents:fillfactor=70");
}

TEST_F(PgTelemetryTest, TextWithCopyEscapesComesBackAsItWasSent) {
  const std::string detail = "tab\there\nnew line \\N back\\slash 'quote' \"dq\" \\. end";
  WriteCrashes({Crash("a-1", kT0, detail), Crash("never-enrolled", kT0)});
  EXPECT_EQ(db_.Query("SELECT detail FROM crash_reports"), detail);
  EXPECT_EQ(db_.Query("SELECT count(*) FROM crash_reports"), "1");
}

TEST_F(PgTelemetryTest, RowsLandInTheDayPartitionOfTheirTime) {
  const TelemetryUpkeep first = Maintain(kT0);
  // Yesterday, today and two days ahead, for both tables.
  EXPECT_EQ(first.partitions_created, 8);
  EXPECT_EQ(DayPartitions("crash_reports"), 4);
  EXPECT_EQ(DayPartitions("health_events"), 4);
  EXPECT_EQ(Maintain(kT0).partitions_created, 0) << "a second pass changes nothing";

  const absl::Time far_ahead = kT0 + 10 * kDay;  // an agent clock ten days fast
  WriteCrashes({Crash("a-1", kT0), Crash("a-1", far_ahead)});
  EXPECT_EQ(PartitionOf(kT0), "crash_reports_p20270115");
  EXPECT_EQ(PartitionOf(far_ahead), "crash_reports_default");

  // When that day's partition is made, its row moves out of the default partition.
  Maintain(far_ahead);
  EXPECT_EQ(PartitionOf(far_ahead), "crash_reports_p20270125");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM crash_reports"), "2");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM crash_reports_default"), "0");
}

TEST_F(PgTelemetryTest, RetentionDropsDaysPastItAndWhatTheDefaultPartitionHeldOfThem) {
  Maintain(kT0);
  const absl::Time ancient = kT0 - 400 * kDay;  // an agent clock a year slow
  WriteCrashes({Crash("a-1", kT0), Crash("a-1", ancient)});
  TelemetryRows events;
  events.health_events = {{"a-1", "cpu_high", kChannel, 2, "", kT0}};
  ASSERT_TRUE(store_.WriteTelemetry(events).ok());

  // 89 days later kT0's day is still inside the retention.
  TelemetryUpkeep upkeep = Maintain(kT0 + 89 * kDay);
  EXPECT_EQ(upkeep.partitions_dropped, 0);
  EXPECT_EQ(upkeep.rows_expired, 1) << "the year-old row in the default partition";
  EXPECT_EQ(db_.Query("SELECT count(*) FROM crash_reports"), "1");

  // 92 days later yesterday, kT0's day and the next are past it: dropped whole.
  upkeep = Maintain(kT0 + 92 * kDay);
  EXPECT_EQ(upkeep.partitions_dropped, 6);
  EXPECT_EQ(db_.Query("SELECT count(*) FROM crash_reports"), "0");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM health_events"), "0");
  EXPECT_EQ(db_.Query("SELECT to_regclass('crash_reports_p20270115') IS NULL"), "t");
  // New telemetry is still written after the drop.
  WriteCrashes({Crash("a-2", kT0 + 92 * kDay)});
  EXPECT_EQ(PartitionOf(kT0 + 92 * kDay), "crash_reports_p20270417");
}

TEST_F(PgTelemetryTest, AnAgentsDeletionStillCascadesIntoEveryPartition) {
  Maintain(kT0);
  WriteCrashes({Crash("a-1", kT0), Crash("a-1", kT0 + 30 * kDay), Crash("a-2", kT0)});
  db_.Exec("DELETE FROM agents WHERE agent_id = 'a-1'");
  EXPECT_EQ(db_.Query("SELECT string_agg(agent_id, ',') FROM crash_reports"), "a-2");
}

TEST_F(PgTelemetryTest, ReplicasMaintainingAtOnceCreateEachPartitionOnce) {
  std::vector<std::thread> replicas;
  std::vector<absl::StatusOr<TelemetryUpkeep>> results(4, TelemetryUpkeep{});
  for (int i = 0; i < 4; ++i) {
    replicas.emplace_back([&, i] { results[i] = store_.MaintainTelemetry(kRetention, kT0); });
  }
  for (std::thread& t : replicas) t.join();
  int created = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    created += r->partitions_created;
  }
  EXPECT_EQ(created, 8);
  EXPECT_EQ(DayPartitions("crash_reports"), 4);
}

TEST_F(PgTelemetryTest, ARetentionUnderADayIsRefusedAndChangesNothing) {
  Maintain(kT0);
  WriteCrashes({Crash("a-1", kT0)});
  for (absl::Duration retention : {absl::ZeroDuration(), absl::Hours(23), -kDay}) {
    const absl::StatusOr<TelemetryUpkeep> refused = store_.MaintainTelemetry(retention, kT0);
    ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << retention;
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("at least one day"));
  }
  // The function refuses on its own too, whoever calls it.
  try {
    db_.Exec("SELECT ringwarden_maintain_telemetry(interval '1 hour', 2, now())");
    ADD_FAILURE() << "a one-hour retention was accepted";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("at least one day"));
  }
  try {
    db_.Exec("SELECT ringwarden_maintain_telemetry(interval '90 days', 1000, now())");
    ADD_FAILURE() << "1000 days ahead was accepted";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("days_ahead"));
  }
  EXPECT_EQ(db_.Query("SELECT count(*) FROM crash_reports"), "1");
}

}  // namespace
}  // namespace ringwarden
