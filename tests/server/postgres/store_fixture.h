// store_fixture.h: a migrated scratch database and a PgStore on it.
//
// StoreFixture gives each test a fresh database (tests/support/test_db.h) at
// the newest schema, a PgStore of four connections, builders for the records
// most tests need, and a runner of concurrent calls. One fixture per test; not shared across
// threads.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "server/postgres/migrations.h"
#include "server/postgres/pg_store.h"
#include "tests/support/test_db.h"

namespace ringwarden {

class StoreFixture : public ::testing::Test {
 protected:
  static constexpr char kChannel[] = "rules.behavioral";

  void SetUp() override { ASSERT_TRUE(ApplyMigrations(db_.conninfo(), EmbeddedMigrations()).ok()); }

  ContentRecord Content(int64_t version, std::string channel = kChannel) {
    ContentRecord c;
    c.channel = std::move(channel);
    c.version = version;
    c.sha256 = std::string(64, 'a');
    c.size = 3;
    c.envelope_json = "{}";
    c.payload = std::string("\0\1\2", 3);
    c.key_ids = {"k1", "k2"};
    c.uploaded_by = "alice";
    return c;
  }

  AuditRecord Audit(std::string action) {
    AuditRecord a;
    a.actor = "alice";
    a.action = std::move(action);
    return a;
  }

  // StartRollout uploads `version` of `channel` and creates rollout `id` at `position`.
  void StartRollout(const std::string& id, RolloutPosition position, int64_t version = 1,
                    std::string channel = kChannel) {
    ASSERT_TRUE(store_.InsertContent(Content(version, channel), Audit("content.upload")).ok());
    NewRollout create;
    create.rollout.id = id;
    create.rollout.channel = std::move(channel);
    create.rollout.version = version;
    create.rollout.position = position;
    create.rollout.created_by = "alice";
    const absl::Status created = store_.CreateRollout(create);
    ASSERT_TRUE(created.ok()) << created;
  }

  // Outcomes counts the calls of RunConcurrently that succeeded and those refused.
  struct Outcomes {
    int ok = 0;
    int refused = 0;
  };
  // RunConcurrently makes `threads` calls of `call` at once; every refusal
  // must be FAILED_PRECONDITION.
  static Outcomes RunConcurrently(int threads, const std::function<absl::Status()>& call) {
    std::vector<std::thread> running;
    std::atomic<int> ok{0}, refused{0};
    for (int i = 0; i < threads; ++i) {
      running.emplace_back([&] {
        const absl::Status s = call();
        (s.ok() ? ok : refused)++;
        if (!s.ok()) {
          EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
        }
      });
    }
    for (auto& t : running) {
      t.join();
    }
    return Outcomes{ok.load(), refused.load()};
  }

  testing::ScratchDatabase db_;
  PgStore store_{db_.conninfo(), 4};
};

}  // namespace ringwarden
