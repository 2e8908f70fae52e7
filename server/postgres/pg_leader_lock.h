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
#include <string>

#include "absl/status/statusor.h"

namespace ringwarden {

class PgLeaderLock {
 public:
  PgLeaderLock(std::string conninfo, int64_t key);
  ~PgLeaderLock();
  PgLeaderLock(const PgLeaderLock&) = delete;
  PgLeaderLock& operator=(const PgLeaderLock&) = delete;

  // Check returns whether this process holds the lock now, taking it if free.
  // Errors (database unreachable, connection lost) mean "not leader".
  absl::StatusOr<bool> Check();
  // Release gives the lock up and closes the connection.
  void Release();

 private:
  struct Session;  // the dedicated connection (pimpl: keeps the driver out of this header)

  const std::string conninfo_;
  const int64_t key_;
  std::unique_ptr<Session> session_;  // null while disconnected
  bool held_ = false;
};

// kControllerLockKey identifies the controller's advisory lock.
inline constexpr int64_t kControllerLockKey = 0x72696e676c656164;  // "ringlead"

}  // namespace ringwarden
