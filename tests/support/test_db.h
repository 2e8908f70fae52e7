// test_db.h: a throwaway PostgreSQL database for storage tests.
//
// ScratchDatabase creates a fresh database in the cluster named by
// RINGWARDEN_TEST_PG (./tests/run.sh starts one) and drops it on destruction.
// A missing cluster fails the test binary; it never skips. Needs only libpqxx,
// not the server. Thread-safety: Query and Exec open their own connection.
#pragma once

#include <string>

namespace ringwarden::testing {

class ScratchDatabase {
 public:
  ScratchDatabase();
  ~ScratchDatabase();
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;

  // conninfo of the fresh database.
  const std::string& conninfo() const { return conninfo_; }
  // name of the fresh database.
  const std::string& name() const { return name_; }
  // Query runs one SQL statement and returns the first column of the first row ("" if none).
  std::string Query(const std::string& sql) const;
  // Exec runs SQL and throws (a pqxx exception) when it fails.
  void Exec(const std::string& sql) const;

 private:
  std::string admin_conninfo_;
  std::string name_;
  std::string conninfo_;
};

}  // namespace ringwarden::testing
