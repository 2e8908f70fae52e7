#include "tests/support/test_db.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <pqxx/pqxx>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ringwarden::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "test database: " << what << std::endl;
  std::abort();
}

std::string AdminConninfo() {
  const char* env = std::getenv("RINGWARDEN_TEST_PG");
  if (env == nullptr || *env == '\0') {
    Die("RINGWARDEN_TEST_PG is not set; run the tests through ./tests/run.sh, which starts a "
        "throwaway PostgreSQL");
  }
  return env;
}

// WithDatabase replaces (or adds) dbname=... in a key=value conninfo.
std::string WithDatabase(const std::string& conninfo, const std::string& name) {
  std::string out;
  for (absl::string_view part : absl::StrSplit(conninfo, ' ', absl::SkipEmpty())) {
    if (!absl::StartsWith(part, "dbname=")) {
      absl::StrAppend(&out, part, " ");
    }
  }
  absl::StrAppend(&out, "dbname=", name);
  return out;
}

}  // namespace

ScratchDatabase::ScratchDatabase() : admin_conninfo_(AdminConninfo()) {
  static std::atomic<int> counter{0};
  name_ = absl::StrCat("rwtest_", getpid(), "_", counter++, "_",
                       absl::ToUnixMicros(absl::Now()) % 1000000);
  try {
    pqxx::connection conn(admin_conninfo_);
    pqxx::nontransaction tx(conn);
    tx.exec0("CREATE DATABASE " + tx.quote_name(name_));
  } catch (const std::exception& e) {
    Die(absl::StrCat("cannot create test database: ", e.what()));
  }
  conninfo_ = WithDatabase(admin_conninfo_, name_);
}

ScratchDatabase::~ScratchDatabase() {
  try {
    pqxx::connection conn(admin_conninfo_);
    pqxx::nontransaction tx(conn);
    tx.exec0("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::cerr << "cannot drop test database " << name_ << ": " << e.what() << std::endl;
  }
}

std::string ScratchDatabase::Query(const std::string& sql) const {
  pqxx::connection conn(conninfo_);
  pqxx::nontransaction tx(conn);
  pqxx::result r = tx.exec(sql);
  if (r.empty() || r[0][0].is_null()) {
    return "";
  }
  return r[0][0].as<std::string>();
}

void ScratchDatabase::Exec(const std::string& sql) const {
  pqxx::connection conn(conninfo_);
  pqxx::nontransaction tx(conn);
  tx.exec0(sql);
}

}  // namespace ringwarden::testing
