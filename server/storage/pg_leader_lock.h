// pg_leader_lock.h: one controller leader at a time, via a PostgreSQL advisory lock.
//
// The lock is a session-level pg_try_advisory_lock held on a dedicated
// connection: if this process dies or its connection breaks, PostgreSQL
// releases it and another replica can take over. Check() is called before
// every round of decisions so a leader that lost its connection stops acting.
// Thread-safety: not thread-safe; owned by the controller thread.
#pragma once

#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "absl/status/statusor.h"

namespace ringwarden {

class PgLeaderLock {
 public:
  PgLeaderLock(std::string conninfo, int64_t key);
  ~PgLeaderLock();

  // Check returns whether this process holds the lock now, taking it if free.
  // Errors (database unreachable) mean "not leader".
  absl::StatusOr<bool> Check();
  void Release();

 private:
  const std::string conninfo_;
  const int64_t key_;
  std::unique_ptr<pqxx::connection> conn_;
  bool held_ = false;
};

// kControllerLockKey identifies the controller's advisory lock.
inline constexpr int64_t kControllerLockKey = 0x72696e676c656164;  // "ringlead"

}  // namespace ringwarden
