#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "server/postgres/pg_pool_internal.h"

namespace ringwarden {

void PgTx::Prepare(const sql::Statement& statement) {
  if (!session_.prepared.contains(statement.name)) {
    session_.connection->prepare(statement.name, statement.text);
    session_.prepared.insert(statement.name);
  }
}

PgPool::PgPool(std::string conninfo, int size, RetryPolicy retry)
    : conninfo_(std::move(conninfo)), size_(std::max(1, size)), retry_(retry) {}

PgPool::~PgPool() = default;

absl::Status PgPool::Run(const char* operation, const char* what, const Body& body) {
  const absl::Time start = absl::Now();
  const absl::Status status = RunWithRetries(what, body);
  if (StoreObserver* observer = observer_.load(); observer != nullptr) {
    observer->OnOperation(operation, absl::Now() - start, status.code());
  }
  return status;
}

absl::Status PgPool::RunWithRetries(const char* what, const Body& body) {
  for (int attempt = 1;; ++attempt) {
    PgError result = Attempt(what, body);
    if (!result.transient || attempt >= retry_.max_attempts) {
      return std::move(result.status);
    }
    absl::SleepFor(Backoff(attempt));
  }
}

PgError PgPool::Attempt(const char* what, const Body& body) {
  std::unique_ptr<PgSession> session = Borrow();
  PgError result;
  try {
    if (session->connection == nullptr) {
      session->connection = std::make_unique<pqxx::connection>(conninfo_);
    }
    pqxx::work work(*session->connection);
    PgTx tx(work, *session);
    result.status = body(tx);
    if (result.status.ok()) {
      work.commit();
    }
    // Otherwise `work` rolls back as it goes out of scope.
  } catch (const std::exception& e) {
    result = ClassifyPgError(e, what);
  }
  const bool lost =
      result.connection_lost || session->connection == nullptr || !session->connection->is_open();
  GiveBack(std::move(session), lost);
  return result;
}

std::unique_ptr<PgSession> PgPool::Borrow() {
  absl::MutexLock lock(&mu_);
  auto idle_or_free_slot = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || lent_or_idle_ < size_;
  };
  mu_.Await(absl::Condition(&idle_or_free_slot));
  if (!idle_.empty()) {
    std::unique_ptr<PgSession> session = std::move(idle_.back());
    idle_.pop_back();
    return session;
  }
  ++lent_or_idle_;
  return std::make_unique<PgSession>();
}

void PgPool::GiveBack(std::unique_ptr<PgSession> session, bool connection_lost) {
  if (connection_lost) {
    session.reset();  // closes the connection outside the lock
    absl::MutexLock lock(&mu_);
    --lent_or_idle_;
    return;
  }
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(session));
}

absl::Duration PgPool::Backoff(int failed_attempts) {
  // Jitter keeps two transactions that deadlocked from colliding again in step.
  thread_local absl::BitGen bitgen;
  const absl::Duration base = retry_.first_backoff * (1 << std::min(failed_attempts - 1, 10));
  return base * absl::Uniform(bitgen, 0.5, 1.5);
}

}  // namespace ringwarden
