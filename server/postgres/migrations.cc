#include "server/postgres/migrations.h"

#include <algorithm>
#include <pqxx/pqxx>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/postgres/pg_errors.h"
#include "server/postgres/sql.h"

namespace ringwarden {
namespace {

// Any fixed 64-bit key works; it only has to differ from the leader lock.
constexpr int64_t kMigrationLockKey = 0x72696e676d696772;  // "ringmigr"

}  // namespace

absl::StatusOr<int> ParseMigrationNumber(absl::string_view file_name) {
  const size_t underscore = file_name.find('_');
  if (underscore != 4 || !absl::EndsWith(file_name, ".sql") || file_name.size() <= 9) {
    return absl::InvalidArgumentError(
        absl::StrCat("migration file \"", file_name, "\" must be named NNNN_description.sql"));
  }
  int number = 0;
  absl::string_view digits = file_name.substr(0, 4);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(digits, &number) || number < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("migration file \"", file_name, "\" must start with a number 0001-9999"));
  }
  return number;
}

absl::StatusOr<std::vector<Migration>> OrderMigrations(std::vector<Migration> migrations) {
  std::sort(migrations.begin(), migrations.end(),
            [](const Migration& a, const Migration& b) { return a.number < b.number; });
  for (size_t i = 0; i < migrations.size(); ++i) {
    const int expected = static_cast<int>(i) + 1;
    if (migrations[i].number != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          "migrations must be numbered 1, 2, 3... without gaps or duplicates; expected ", expected,
          " but found ", migrations[i].name));
    }
  }
  return migrations;
}

absl::StatusOr<MigrationReport> ApplyMigrations(const std::string& conninfo,
                                                const std::vector<Migration>& migrations) {
  MigrationReport report;
  const int known = migrations.empty() ? 0 : migrations.back().number;
  try {
    pqxx::connection conn(conninfo);
    {
      pqxx::work tx(conn);
      tx.exec_params(sql::kMigrationLock.text, kMigrationLockKey);
      tx.exec0(sql::kCreateSchemaMigrations.text);
      report.schema_version_before = tx.exec1(sql::kSchemaVersion.text)[0].as<int>();
      tx.commit();
    }
    if (report.schema_version_before > known) {
      return absl::FailedPreconditionError(absl::StrCat(
          "database schema is at version ", report.schema_version_before,
          " but this build only knows up to ", known, "; run a newer ringwarden-server"));
    }
    report.schema_version_after = report.schema_version_before;
    for (const Migration& m : migrations) {
      pqxx::work tx(conn);
      // Re-read under the lock: another replica may have migrated meanwhile.
      tx.exec_params(sql::kMigrationLock.text, kMigrationLockKey);
      const int current = tx.exec1(sql::kSchemaVersion.text)[0].as<int>();
      if (m.number <= current) {
        report.schema_version_after = current;
        continue;
      }
      tx.exec0(m.sql);
      tx.exec_params(sql::kRecordMigration.text, m.number, m.name);
      tx.commit();
      report.applied.push_back(m.name);
      report.schema_version_after = m.number;
    }
  } catch (const std::exception& e) {
    return PgErrorToStatus(e, "migrating the database");
  }
  return report;
}

}  // namespace ringwarden
