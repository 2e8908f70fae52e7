// migrations.h: numbered, forward-only schema migrations.
//
// Files in migrations/ are named NNNN_description.sql and compiled into the
// binary. ApplyMigrations runs the missing ones in order, each in its own
// transaction under an advisory lock, records them in schema_migrations, and
// refuses a database whose schema is newer than this build knows.
// Thread-safety: free functions; the database lock serializes concurrent runs.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

struct Migration {
  int number = 0;
  std::string name;  // file name, e.g. "0001_initial.sql"
  std::string sql;
};

// ParseMigrationNumber returns NNNN from "NNNN_description.sql"; INVALID_ARGUMENT otherwise.
absl::StatusOr<int> ParseMigrationNumber(absl::string_view file_name);

// OrderMigrations sorts by number and refuses duplicates, gaps and a first number other than 1.
absl::StatusOr<std::vector<Migration>> OrderMigrations(std::vector<Migration> migrations);

// EmbeddedMigrations returns the migrations compiled into this binary, ordered.
const std::vector<Migration>& EmbeddedMigrations();

// MigrationReport says what ApplyMigrations did.
struct MigrationReport {
  int schema_version_before = 0;
  int schema_version_after = 0;
  std::vector<std::string> applied;
};

// ApplyMigrations brings the database at `conninfo` up to the newest migration.
// FAILED_PRECONDITION when the database is newer than `migrations`.
absl::StatusOr<MigrationReport> ApplyMigrations(const std::string& conninfo,
                                                const std::vector<Migration>& migrations);

}  // namespace ringwarden
