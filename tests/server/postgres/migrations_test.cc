#include "server/postgres/migrations.h"

#include <gtest/gtest.h>

#include "tests/support/test_db.h"

namespace ringwarden {
namespace {

TEST(MigrationOrderTest, ParsesNumbers) {
  EXPECT_EQ(*ParseMigrationNumber("0001_initial.sql"), 1);
  EXPECT_EQ(*ParseMigrationNumber("0042_add_policies.sql"), 42);
  for (const char* bad : {"1_initial.sql", "0001initial.sql", "0001_initial.txt", "abcd_x.sql",
                          "0000_zero.sql", "0001_.sql", "", "00001_x.sql"}) {
    EXPECT_EQ(ParseMigrationNumber(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(MigrationOrderTest, SortsAndRefusesGapsAndDuplicates) {
  auto ordered =
      OrderMigrations({{3, "0003_c.sql", ""}, {1, "0001_a.sql", ""}, {2, "0002_b.sql", ""}});
  ASSERT_TRUE(ordered.ok());
  EXPECT_EQ((*ordered)[0].name, "0001_a.sql");
  EXPECT_EQ((*ordered)[2].name, "0003_c.sql");
  EXPECT_FALSE(OrderMigrations({{1, "0001_a.sql", ""}, {3, "0003_c.sql", ""}}).ok());
  EXPECT_FALSE(OrderMigrations({{1, "0001_a.sql", ""}, {1, "0001_b.sql", ""}}).ok());
  EXPECT_FALSE(OrderMigrations({{2, "0002_b.sql", ""}}).ok());
}

TEST(MigrationOrderTest, EmbeddedMigrationsAreOrdered) {
  const auto& embedded = EmbeddedMigrations();
  ASSERT_FALSE(embedded.empty());
  for (size_t i = 0; i < embedded.size(); ++i) {
    EXPECT_EQ(embedded[i].number, static_cast<int>(i) + 1);
    EXPECT_EQ(*ParseMigrationNumber(embedded[i].name), embedded[i].number);
    EXPECT_FALSE(embedded[i].sql.empty());
  }
}

TEST(MigrationApplyTest, AppliesInOrderOnceAndIsIdempotent) {
  testing::ScratchDatabase db;
  auto first = ApplyMigrations(db.conninfo(), EmbeddedMigrations());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->schema_version_before, 0);
  EXPECT_EQ(first->schema_version_after, static_cast<int>(EmbeddedMigrations().size()));
  EXPECT_EQ(first->applied.size(), EmbeddedMigrations().size());
  auto again = ApplyMigrations(db.conninfo(), EmbeddedMigrations());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(db.Query("SELECT count(*) FROM schema_migrations"),
            std::to_string(EmbeddedMigrations().size()));
}

TEST(MigrationApplyTest, FailingMigrationLeavesNoTrace) {
  testing::ScratchDatabase db;
  std::vector<Migration> migrations = {
      {1, "0001_ok.sql", "CREATE TABLE a (x int)"},
      {2, "0002_broken.sql", "CREATE TABLE b (x int); SELECT no_such_function()"}};
  auto result = ApplyMigrations(db.conninfo(), migrations);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(db.Query("SELECT max(version) FROM schema_migrations"), "1");
  EXPECT_EQ(db.Query("SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), "0");
}

TEST(MigrationApplyTest, RefusesASchemaNewerThanThisBuild) {
  testing::ScratchDatabase db;
  ASSERT_TRUE(ApplyMigrations(db.conninfo(), EmbeddedMigrations()).ok());
  db.Exec("INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')");
  auto result = ApplyMigrations(db.conninfo(), EmbeddedMigrations());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("999"), absl::string_view::npos);
}

TEST(MigrationApplyTest, UnreachableDatabaseIsUnavailable) {
  auto result =
      ApplyMigrations("host=127.0.0.1 port=1 dbname=x connect_timeout=2", EmbeddedMigrations());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
}

}  // namespace
}  // namespace ringwarden
