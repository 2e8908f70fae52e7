#include "server/storage/pg_leader_lock.h"

#include "server/storage/pg_errors.h"

namespace ringwarden {

PgLeaderLock::PgLeaderLock(std::string conninfo, int64_t key)
    : conninfo_(std::move(conninfo)), key_(key) {}

PgLeaderLock::~PgLeaderLock() { Release(); }

absl::StatusOr<bool> PgLeaderLock::Check() {
  try {
    if (conn_ == nullptr || !conn_->is_open()) {
      held_ = false;
      conn_ = std::make_unique<pqxx::connection>(conninfo_);
    }
    pqxx::nontransaction tx(*conn_);
    if (held_) {
      // Still connected means still holding: the lock lives with the session.
      tx.exec1("SELECT 1");
      return true;
    }
    held_ = tx.exec_params1("SELECT pg_try_advisory_lock($1)", key_)[0].as<bool>();
    return held_;
  } catch (const std::exception& e) {
    conn_.reset();
    held_ = false;
    return PgErrorToStatus(e, "checking controller leadership");
  }
}

void PgLeaderLock::Release() {
  if (conn_ != nullptr && held_) {
    try {
      pqxx::nontransaction tx(*conn_);
      tx.exec_params("SELECT pg_advisory_unlock($1)", key_);
    } catch (const std::exception&) {
      // The session ending releases it anyway.
    }
  }
  held_ = false;
  conn_.reset();
}

}  // namespace ringwarden
