#include "server/postgres/pg_leader_lock.h"

#include <pqxx/pqxx>
#include <utility>

#include "server/postgres/pg_errors.h"
#include "server/postgres/sql.h"

namespace ringwarden {

struct PgLeaderLock::Session {
  explicit Session(const std::string& conninfo) : connection(conninfo) {}
  pqxx::connection connection;
};

PgLeaderLock::PgLeaderLock(std::string conninfo, int64_t key)
    : conninfo_(std::move(conninfo)), key_(key) {}

PgLeaderLock::~PgLeaderLock() { Release(); }

absl::StatusOr<bool> PgLeaderLock::Check() {
  try {
    if (session_ == nullptr || !session_->connection.is_open()) {
      held_ = false;
      session_ = std::make_unique<Session>(conninfo_);
    }
    pqxx::nontransaction tx(session_->connection);
    if (held_) {
      // Still connected means still holding: the lock lives with the session.
      tx.exec1(sql::kPing.text);
      return true;
    }
    held_ = tx.exec_params1(sql::kTryAdvisoryLock.text, key_)[0].as<bool>();
    return held_;
  } catch (const std::exception& e) {
    session_.reset();
    held_ = false;
    return PgErrorToStatus(e, "checking controller leadership");
  }
}

void PgLeaderLock::Release() {
  if (session_ != nullptr && held_) {
    try {
      pqxx::nontransaction tx(session_->connection);
      tx.exec_params(sql::kAdvisoryUnlock.text, key_);
    } catch (const std::exception&) {
      // Closing the session below releases it anyway.
    }
  }
  held_ = false;
  session_.reset();
}

}  // namespace ringwarden
