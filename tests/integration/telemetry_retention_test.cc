// The server runs telemetry retention by itself (migration 0013, --telemetry-retention-days):
// on start it makes the day partitions around today and drops the days past the retention,
// rows held in them included.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/postgres/migrations.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::ServerProcess;

// DayName is the suffix of the day partition holding `at`.
std::string DayName(absl::Time at) { return absl::FormatTime("%Y%m%d", at, absl::UTCTimeZone()); }

TEST(TelemetryRetentionTest, AServerMakesTodaysPartitionsAndDropsDaysPastTheRetention) {
  testing::TestDatabase db;
  testing::TestKeys keys;
  ASSERT_TRUE(ApplyMigrations(db.conninfo(), EmbeddedMigrations()).ok());
  // A database left alone for a while: no partition for today, and one from 40 days ago that
  // holds a crash report.
  const std::string today = DayName(absl::Now());
  const absl::Time old_day = absl::Now() - absl::Hours(24 * 40);
  db.Exec(R"sql(DO $$ DECLARE p text; BEGIN
      FOR p IN SELECT relname FROM pg_class WHERE relname ~ '^(crash_reports|health_events)_p[0-9]{8}$'
      LOOP EXECUTE format('DROP TABLE %I', p); END LOOP; END $$)sql");
  db.Exec(absl::StrCat(
      "CREATE TABLE crash_reports_p", DayName(old_day),
      " PARTITION OF crash_reports FOR VALUES FROM ('",
      absl::FormatTime("%Y-%m-%d", old_day, absl::UTCTimeZone()), " 00:00+00') TO ('",
      absl::FormatTime("%Y-%m-%d", old_day + absl::Hours(24), absl::UTCTimeZone()), " 00:00+00')"));
  db.Exec("INSERT INTO agents (agent_id, ring) VALUES ('old-host', 'broad')");
  db.Exec(absl::StrCat(
      "INSERT INTO crash_reports (agent_id, kind, channel, version, at) VALUES ('old-host', "
      "'process_crash', 'rules.behavioral', 1, timestamptz 'epoch' + ",
      absl::ToUnixSeconds(old_day), " * interval '1 second')"));
  ASSERT_EQ(db.Query("SELECT count(*) FROM crash_reports"), "1");

  testing::BootstrapTestTokens(db.conninfo(), keys);
  ServerProcess server(
      db.conninfo(), keys, 0,
      std::vector<std::string>{"--telemetry-retention-days", "30", "--refresh-interval", "0.2"});
  const std::string todays = absl::StrCat("crash_reports_p", today);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline &&
         db.Query(absl::StrCat("SELECT to_regclass('", todays, "') IS NOT NULL")) != "t") {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(db.Query(absl::StrCat("SELECT to_regclass('", todays, "') IS NOT NULL")), "t")
      << server.Log();
  EXPECT_EQ(db.Query(absl::StrCat("SELECT to_regclass('health_events_p", today, "') IS NOT NULL")),
            "t");
  EXPECT_EQ(
      db.Query(absl::StrCat("SELECT to_regclass('crash_reports_p", DayName(old_day), "') IS NULL")),
      "t");
  EXPECT_EQ(db.Query("SELECT count(*) FROM crash_reports"), "0");
}

TEST(TelemetryRetentionTest, ARetentionOutsideOneDayToTenYearsIsRefusedAtStart) {
  for (const char* days : {"0", "-3", "3651", "ninety"}) {
    const testing::CliResult result =
        testing::RunShell(absl::StrCat(testing::ServerBinary(),
                                       " --database 'host=127.0.0.1 port=1 dbname=none'"
                                       " --telemetry-retention-days ",
                                       days, " 2>&1"));
    EXPECT_NE(result.code, 0) << days;
    EXPECT_NE(result.out.find("--telemetry-retention-days"), std::string::npos)
        << days << ": " << result.out;
  }
}

TEST(TelemetryRetentionTest, TelemetryWritersOutsideOneToSixteenAreRefusedAtStart) {
  for (const char* writers : {"0", "-1", "17", "two"}) {
    const testing::CliResult result = testing::RunShell(absl::StrCat(
        testing::ServerBinary(),
        " --database 'host=127.0.0.1 port=1 dbname=none' --telemetry-writers ", writers, " 2>&1"));
    EXPECT_NE(result.code, 0) << writers;
    EXPECT_NE(result.out.find("--telemetry-writers"), std::string::npos)
        << writers << ": " << result.out;
  }
}

}  // namespace
}  // namespace ringwarden
