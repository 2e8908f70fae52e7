// pg_pool_internal.h: PgStore's connection pool and transaction runner.
// Private to ringwarden_postgres (it includes pqxx); no public header includes it.
//
// PgPool lends at most `size` connections, opened lazily; Run executes one
// transaction body, retries it only when the failure is transient (see
// ClassifyPgError) with a short jittered backoff, and reports each call once to
// the StoreObserver. A status the body returns is final: it is never retried.
// Thread-safety: PgPool is safe to call from many threads; a PgTx belongs to
// the one call running it.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/postgres/pg_errors.h"
#include "server/postgres/sql.h"
#include "server/storage/store.h"

namespace ringwarden {

// PgSession is one pooled connection and the statements prepared on it.
struct PgSession {
  std::unique_ptr<pqxx::connection> connection;  // null until first used
  absl::flat_hash_set<std::string> prepared;
};

// PgTx is one transaction on a pooled connection. Exec prepares a statement
// on the connection the first time it runs there.
class PgTx {
 public:
  PgTx(pqxx::work& work, PgSession& session) : work_(work), session_(session) {}

  template <typename... Args>
  pqxx::result Exec(const sql::Statement& statement, const Args&... args) {
    Prepare(statement);
    return work_.exec_prepared(statement.name, args...);
  }
  // Exec1 is Exec for a statement that returns exactly one row.
  template <typename... Args>
  pqxx::row Exec1(const sql::Statement& statement, const Args&... args) {
    Prepare(statement);
    return work_.exec_prepared1(statement.name, args...);
  }
  // ExecUnprepared runs a statement that cannot be prepared (DDL) as it is.
  void ExecUnprepared(const sql::Statement& statement) { work_.exec0(statement.text); }

  // work is the underlying transaction, for COPY streams.
  pqxx::work& work() { return work_; }

 private:
  void Prepare(const sql::Statement& statement);

  pqxx::work& work_;
  PgSession& session_;
};

// RetryPolicy bounds the attempts at a transaction that failed transiently.
struct RetryPolicy {
  int max_attempts = 3;
  // Before the second attempt; doubles after each one, with +-50% jitter.
  absl::Duration first_backoff = absl::Milliseconds(20);
};

class PgPool {
 public:
  using Body = std::function<absl::Status(PgTx&)>;

  PgPool(std::string conninfo, int size, RetryPolicy retry = RetryPolicy());
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // SetObserver reports every Run to `observer` (which must outlive the pool); null stops it.
  void SetObserver(StoreObserver* observer) { observer_.store(observer); }

  // Run executes `body` in one transaction and commits it when the body returns
  // OK. `operation` names the call for the observer, `what` in error messages.
  absl::Status Run(const char* operation, const char* what, const Body& body);

 private:
  absl::Status RunWithRetries(const char* what, const Body& body);
  // Attempt runs `body` once on a borrowed connection.
  PgError Attempt(const char* what, const Body& body);
  // Borrow waits for an idle session or a free slot (an unconnected session).
  std::unique_ptr<PgSession> Borrow();
  // GiveBack returns a session to the pool, or frees its slot when it is lost.
  void GiveBack(std::unique_ptr<PgSession> session, bool connection_lost);
  absl::Duration Backoff(int failed_attempts);

  const std::string conninfo_;
  const int size_;
  const RetryPolicy retry_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<PgSession>> idle_ ABSL_GUARDED_BY(mu_);
  int lent_or_idle_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<StoreObserver*> observer_{nullptr};
};

}  // namespace ringwarden
