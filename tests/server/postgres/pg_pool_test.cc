// PgPool (internal to ringwarden_postgres) against a real PostgreSQL: which
// failures are retried, how often, and what the caller finally sees.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "server/postgres/migrations.h"
#include "server/postgres/pg_pool_internal.h"
#include "server/postgres/pg_store.h"
#include "tests/support/test_db.h"

namespace ringwarden {
namespace {

using ::testing::HasSubstr;

// Raises `sqlstate` from the server, so pqxx classifies a real error response.
std::string RaiseSql(const std::string& sqlstate) {
  return "DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '" + sqlstate + "'; END $$";
}

class PgPoolTest : public ::testing::Test {
 protected:
  static constexpr RetryPolicy kFastRetries{/*max_attempts=*/3, absl::Milliseconds(1)};

  testing::ScratchDatabase db_;
  PgPool pool_{db_.conninfo(), 2, kFastRetries};
};

TEST_F(PgPoolTest, StatusesReturnedByTheBodyAreNeverRetried) {
  for (const absl::Status& refusal :
       {absl::NotFoundError("no such rollout"), absl::FailedPreconditionError("newer exists"),
        absl::AbortedError("stale revision"), absl::UnavailableError("said the body"),
        absl::InvalidArgumentError("bad row")}) {
    int calls = 0;
    const absl::Status status = pool_.Run("op", "testing", [&](PgTx&) {
      ++calls;
      return refusal;
    });
    EXPECT_EQ(status, refusal);
    EXPECT_EQ(calls, 1) << refusal;
  }
}

TEST_F(PgPoolTest, SerializationFailuresAndDeadlocksAreRetriedABoundedNumberOfTimes) {
  for (const char* sqlstate : {"40001", "40P01"}) {
    int calls = 0;
    const absl::Status status = pool_.Run("op", "testing", [&](PgTx& tx) {
      ++calls;
      tx.work().exec(RaiseSql(sqlstate));
      return absl::OkStatus();
    });
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << sqlstate;
    EXPECT_THAT(status.message(), HasSubstr("database kept aborting the transaction; retry later"));
    EXPECT_EQ(calls, kFastRetries.max_attempts) << sqlstate;
  }
}

TEST_F(PgPoolTest, ATransientFailureThatClearsCommitsOnce) {
  db_.Exec("CREATE TABLE t (x int)");
  int calls = 0;
  const absl::Status status = pool_.Run("op", "testing", [&](PgTx& tx) {
    tx.work().exec("INSERT INTO t VALUES (1)");
    if (++calls == 1) {
      tx.work().exec(RaiseSql("40P01"));
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(db_.Query("SELECT count(*) FROM t"), "1");
}

TEST_F(PgPoolTest, ALostConnectionIsReplacedAndRetried) {
  int calls = 0;
  std::string first_backend, last_backend;
  const absl::Status status = pool_.Run("op", "testing", [&](PgTx& tx) {
    last_backend = tx.work().exec("SELECT pg_backend_pid()")[0][0].as<std::string>();
    if (++calls == 1) {
      first_backend = last_backend;
      tx.work().exec("SELECT pg_terminate_backend(pg_backend_pid())");
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(calls, 2);
  EXPECT_NE(first_backend, last_backend);
}

TEST_F(PgPoolTest, AnIdleConnectionKilledByTheServerIsReplaced) {
  PgStore store(db_.conninfo(), 1);
  ASSERT_TRUE(ApplyMigrations(db_.conninfo(), EmbeddedMigrations()).ok());
  ASSERT_TRUE(store.Ping().ok());
  ASSERT_EQ(db_.Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()"),
            "1");
  const auto content = store.ListContent("");
  EXPECT_TRUE(content.ok()) << content.status();
}

TEST_F(PgPoolTest, AnInDoubtCommitIsUnknownAndNeverRetried) {
  int calls = 0;
  const absl::Status status = pool_.Run("op", "testing", [&](PgTx&) -> absl::Status {
    ++calls;
    throw pqxx::in_doubt_error("connection lost during COMMIT");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnknown) << status;
  EXPECT_EQ(calls, 1);
  // The pool stays usable: the connection was dropped, not lent again.
  EXPECT_TRUE(pool_
                  .Run("op", "testing",
                       [](PgTx& tx) {
                         tx.Exec1(sql::kPing);
                         return absl::OkStatus();
                       })
                  .ok());
}

TEST_F(PgPoolTest, OtherErrorsAreNeitherRetriedNorAborted) {
  int calls = 0;
  const absl::Status unique = pool_.Run("op", "testing", [&](PgTx& tx) {
    ++calls;
    tx.work().exec(RaiseSql("23505"));
    return absl::OkStatus();
  });
  EXPECT_EQ(unique.code(), absl::StatusCode::kAlreadyExists) << unique;
  const absl::Status plain = pool_.Run("op", "testing", [&](PgTx&) -> absl::Status {
    ++calls;
    throw std::runtime_error("parse error");
  });
  EXPECT_EQ(plain.code(), absl::StatusCode::kInternal) << plain;
  EXPECT_EQ(calls, 2);
}

TEST(PgPoolUnreachableTest, UnreachableDatabaseIsUnavailableAfterRetries) {
  PgPool pool("host=127.0.0.1 port=1 dbname=x connect_timeout=2", 1,
              RetryPolicy{/*max_attempts=*/2, absl::Milliseconds(1)});
  int calls = 0;
  const absl::Status status = pool.Run("op", "testing", [&](PgTx&) {
    ++calls;
    return absl::OkStatus();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace ringwarden
