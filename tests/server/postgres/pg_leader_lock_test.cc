// PgLeaderLock across two processes: one leads, the other does not, and the
// other takes over when the leader dies, loses its connection or lets go.
#include "server/postgres/pg_leader_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/test_db.h"

namespace ringwarden {
namespace {

// LockHolderProcess runs a PgLeaderLock in a forked child, driven over pipes:
// each command byte is answered with one byte.
class LockHolderProcess {
 public:
  static constexpr char kCheck = 'c';    // answers '1' leader, '0' not leader, 'e' error
  static constexpr char kRelease = 'r';  // answers 'r'

  LockHolderProcess(const std::string& conninfo, int64_t key) {
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
      ADD_FAILURE() << "pipe failed";
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      close(to_child[1]);
      close(from_child[0]);
      ServeCommands(conninfo, key, to_child[0], from_child[1]);
      _exit(0);  // no test-framework teardown in the child
    }
    close(to_child[0]);
    close(from_child[1]);
    to_child_ = to_child[1];
    from_child_ = from_child[0];
  }

  ~LockHolderProcess() {
    Kill();
    close(to_child_);
    close(from_child_);
  }

  // Send sends a command and returns the answer ('x' when the child is gone).
  char Send(char command) {
    char answer = 'x';
    if (write(to_child_, &command, 1) != 1 || read(from_child_, &answer, 1) != 1) {
      return 'x';
    }
    return answer;
  }

  // Kill ends the child the way a crash would (SIGKILL) and reaps it.
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

 private:
  static void ServeCommands(const std::string& conninfo, int64_t key, int in, int out) {
    PgLeaderLock lock(conninfo, key);
    char command = 0;
    while (read(in, &command, 1) == 1) {
      char answer = 'r';
      if (command == kCheck) {
        const absl::StatusOr<bool> leader = lock.Check();
        answer = !leader.ok() ? 'e' : (*leader ? '1' : '0');
      } else if (command == kRelease) {
        lock.Release();
      }
      if (write(out, &answer, 1) != 1) {
        return;
      }
    }
  }

  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

// EventuallyLeads polls `lock` until it leads or 20 s pass: PostgreSQL frees a
// dead session's locks once it notices the session ended.
bool EventuallyLeads(PgLeaderLock& lock) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    const absl::StatusOr<bool> leader = lock.Check();
    if (leader.ok() && *leader) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool IsNotLeader(const absl::StatusOr<bool>& leader) { return leader.ok() && !*leader; }

class PgLeaderLockTest : public ::testing::Test {
 protected:
  testing::ScratchDatabase db_;
};

TEST_F(PgLeaderLockTest, OneProcessLeadsAndAnotherTakesOverWhenItDies) {
  LockHolderProcess holder(db_.conninfo(), kControllerLockKey);
  ASSERT_EQ(holder.Send(LockHolderProcess::kCheck), '1');
  PgLeaderLock lock(db_.conninfo(), kControllerLockKey);
  EXPECT_TRUE(IsNotLeader(lock.Check()));
  EXPECT_EQ(holder.Send(LockHolderProcess::kCheck), '1');  // still the leader
  EXPECT_TRUE(IsNotLeader(lock.Check()));

  holder.Kill();

  EXPECT_TRUE(EventuallyLeads(lock));
}

TEST_F(PgLeaderLockTest, ALeaderWhoseConnectionIsTerminatedStepsDown) {
  LockHolderProcess holder(db_.conninfo(), kControllerLockKey);
  ASSERT_EQ(holder.Send(LockHolderProcess::kCheck), '1');
  PgLeaderLock lock(db_.conninfo(), kControllerLockKey);
  EXPECT_TRUE(IsNotLeader(lock.Check()));

  // End the holder's session from outside, as a failover or a DBA would.
  EXPECT_EQ(db_.Query("SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                      "WHERE locktype = 'advisory' AND granted AND database = "
                      "(SELECT oid FROM pg_database WHERE datname = current_database())"),
            "1");

  EXPECT_TRUE(EventuallyLeads(lock));
  // The old leader notices on its next check and does not lead again.
  EXPECT_NE(holder.Send(LockHolderProcess::kCheck), '1');
  EXPECT_EQ(holder.Send(LockHolderProcess::kCheck), '0');
}

TEST_F(PgLeaderLockTest, ReleaseHandsLeadershipOver) {
  LockHolderProcess holder(db_.conninfo(), kControllerLockKey);
  ASSERT_EQ(holder.Send(LockHolderProcess::kCheck), '1');
  PgLeaderLock lock(db_.conninfo(), kControllerLockKey);
  EXPECT_TRUE(IsNotLeader(lock.Check()));

  ASSERT_EQ(holder.Send(LockHolderProcess::kRelease), 'r');

  EXPECT_EQ(lock.Check().value_or(false), true);
  EXPECT_EQ(holder.Send(LockHolderProcess::kCheck), '0');
}

TEST_F(PgLeaderLockTest, UnreachableDatabaseMeansNotLeader) {
  PgLeaderLock lock("host=127.0.0.1 port=1 dbname=x connect_timeout=2", kControllerLockKey);
  const absl::StatusOr<bool> leader = lock.Check();
  EXPECT_EQ(leader.status().code(), absl::StatusCode::kUnavailable) << leader.status();
}

}  // namespace
}  // namespace ringwarden
