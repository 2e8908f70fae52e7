// The audit log's hash chain in real PostgreSQL: the trigger chains every
// insert, whoever writes and however many write at once, with the hashes the
// C++ verifier recomputes; UPDATE, DELETE and TRUNCATE are refused; an
// upgrade chains the entries already there.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit_chain.h"
#include "common/status_macros.h"
#include "server/storage/audit_chain_entry.h"
#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

using ::testing::HasSubstr;

// ReadChain pages through the whole log oldest first, `page` entries at a time.
std::vector<AuditRecord> ReadChain(PgStore& store, int page = 3) {
  std::vector<AuditRecord> all;
  int64_t after = 0;
  while (true) {
    auto got = store.ListAuditOldestFirst("", after, page);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok() || got->empty()) {
      return all;
    }
    after = got->back().seq;
    all.insert(all.end(), got->begin(), got->end());
  }
}

// VerifyChain checks `chain` with the C++ verifier, which recomputes every hash.
absl::StatusOr<AuditChainHead> VerifyChain(const std::vector<AuditRecord>& chain) {
  AuditChainVerifier verifier;
  for (const AuditRecord& a : chain) {
    RETURN_IF_ERROR(verifier.Add(ChainEntryOf(a)));
  }
  return verifier.Finish();
}

// ErrorOf runs `sql` and returns the database's error message ("" if it succeeded).
std::string ErrorOf(const testing::ScratchDatabase& db, const std::string& sql) {
  try {
    db.Exec(sql);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

class PgAuditTest : public StoreFixture {
 protected:
  AuditRecord Entry(std::string action, std::string reason = "") {
    AuditRecord a = Audit(std::move(action));
    a.reason = std::move(reason);
    return a;
  }
};

TEST_F(PgAuditTest, TriggerHashesMatchTheCxxRecomputation) {
  ASSERT_TRUE(store_.InsertContent(Content(1), Entry("content.upload", "first")).ok());
  ASSERT_TRUE(store_.SetEmergencyStop(true, Entry("emergency_stop.activate", "incident")).ok());
  // Hostile and awkward values, written by hand as another client would:
  // separators, newlines, non-ASCII, no rollout, nested evidence whose jsonb
  // text differs from what was sent, a large reason.
  db_.Exec(
      "INSERT INTO audit_log (actor, action, rollout_id, from_state, to_state, reason, evidence) "
      "VALUES ('ma:l,lo\nry', 'x.y', NULL, '', '', 'zoë ✓ 3:abc,', "
      "'{\"z\": [1, 2.50, {\"b\": null, \"a\": \"\\u00e9\"}], \"a\": true}')");
  db_.Exec(
      "INSERT INTO audit_log (actor, action, rollout_id, reason) VALUES ('bob', 'rollout.halt', "
      "'ro-1', repeat('r', 200000))");
  StartRollout("ro-2", RolloutPosition{RolloutState::kCanary, std::nullopt}, 2);

  const std::vector<AuditRecord> chain = ReadChain(store_);
  ASSERT_EQ(chain.size(), 5u);
  for (size_t i = 0; i < chain.size(); ++i) {
    EXPECT_EQ(chain[i].seq, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(chain[i].prev_hash,
              i == 0 ? std::string(kAuditGenesisHash) : chain[i - 1].entry_hash);
    EXPECT_EQ(chain[i].entry_hash, AuditChainHash(ChainEntryOf(chain[i])))
        << "seq " << chain[i].seq;
  }
  EXPECT_EQ(chain[2].actor, "ma:l,lo\nry");
  EXPECT_EQ(chain[2].evidence_json,
            R"({"a": true, "z": [1, 2.50, {"a": "é", "b": null}]})");  // jsonb's text
  auto head = VerifyChain(chain);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->seq, 5);
  // Newest first agrees.
  auto newest = store_.ListAudit("", 1);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].seq, 5);
  EXPECT_EQ((*newest)[0].entry_hash, head->hash);
  // The rollout filter pages too.
  auto ro1 = store_.ListAuditOldestFirst("ro-1", 0, 10);
  ASSERT_TRUE(ro1.ok());
  ASSERT_EQ(ro1->size(), 1u);
  EXPECT_EQ((*ro1)[0].seq, 4);
}

TEST_F(PgAuditTest, TheTriggerOverridesWhatAWriterClaims) {
  ASSERT_TRUE(store_.SetEmergencyStop(true, Entry("emergency_stop.activate")).ok());
  db_.Exec(
      absl::StrCat("INSERT INTO audit_log (actor, action, seq, prev_hash, entry_hash) VALUES "
                   "('mallory', 'x', 100, '",
                   std::string(64, 'a'), "', '", std::string(64, 'b'), "')"));
  const std::vector<AuditRecord> chain = ReadChain(store_);
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[1].seq, 2);
  EXPECT_EQ(chain[1].prev_hash, chain[0].entry_hash);
  EXPECT_TRUE(VerifyChain(chain).ok());
}

TEST_F(PgAuditTest, ConcurrentAppendersFormOneChainWithoutGaps) {
  // Writers that contend on nothing but the log: the store setting distinct
  // pins, raw inserts of several rows per statement on their own connections,
  // and a writer whose transaction rolls back after appending (no gap).
  PgStore store(db_.conninfo(), 8);
  constexpr int kRounds = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < kRounds; ++i) {
        PinRecord pin;
        pin.label_key = "group";
        pin.label_value = absl::StrCat("g", t, "-", i);
        pin.channel = kChannel;
        AuditRecord a;
        a.actor = absl::StrCat("writer-", t);
        a.action = "pin.set";
        const absl::Status s = store.UpsertPin(pin, a);
        EXPECT_TRUE(s.ok()) << s;
      }
    });
  }
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kRounds; ++i) {
        EXPECT_EQ(ErrorOf(db_, absl::StrCat("INSERT INTO audit_log (actor, action, reason) VALUES "
                                            "('raw-",
                                            t, "', 'x', 'a'), ('raw-", t, "', 'x', 'b')")),
                  "");
      }
    });
  }
  threads.emplace_back([this] {
    for (int i = 0; i < kRounds; ++i) {
      EXPECT_THAT(ErrorOf(db_,
                          "BEGIN; INSERT INTO audit_log (actor, action) VALUES ('r', 'x'); "
                          "SELECT 1 / (random() * 0)::int; COMMIT"),
                  HasSubstr("division by zero"));
    }
  });
  for (std::thread& t : threads) {
    t.join();
  }
  constexpr int kEntries = 4 * kRounds + 3 * kRounds * 2;
  const std::vector<AuditRecord> chain = ReadChain(store_, 1000);
  ASSERT_EQ(chain.size(), static_cast<size_t>(kEntries));
  auto head = VerifyChain(chain);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->seq, kEntries);
  EXPECT_EQ(db_.Query("SELECT count(DISTINCT prev_hash) FROM audit_log"), std::to_string(kEntries));
}

TEST_F(PgAuditTest, TruncateUpdateAndDeleteAreRefused) {
  ASSERT_TRUE(store_.InsertContent(Content(1), Entry("content.upload")).ok());
  EXPECT_THAT(ErrorOf(db_, "TRUNCATE audit_log"),
              HasSubstr("audit_log is append-only: TRUNCATE is refused"));
  EXPECT_THAT(ErrorOf(db_, "TRUNCATE audit_log, channels CASCADE"),
              HasSubstr("audit_log is append-only: TRUNCATE is refused"));
  EXPECT_THAT(ErrorOf(db_, "UPDATE audit_log SET reason = 'nothing happened'"),
              HasSubstr("audit_log is append-only: UPDATE is refused"));
  EXPECT_THAT(ErrorOf(db_, "DELETE FROM audit_log"),
              HasSubstr("audit_log is append-only: DELETE is refused"));
  EXPECT_EQ(db_.Query("SELECT count(*) FROM audit_log"), "1");
  EXPECT_TRUE(VerifyChain(ReadChain(store_)).ok());
}

TEST_F(PgAuditTest, TamperingBySuperuserIsFoundByTheVerifier) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store_.SetEmergencyStop(true, Entry("emergency_stop.activate")).ok());
  }
  ASSERT_TRUE(VerifyChain(ReadChain(store_)).ok());
  db_.Exec(
      "ALTER TABLE audit_log DISABLE TRIGGER USER; "
      "UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 2; "
      "ALTER TABLE audit_log ENABLE TRIGGER USER");
  auto result = VerifyChain(ReadChain(store_));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("seq 2: edited entry"));
}

TEST_F(PgAuditTest, PagesOldestFirstAfterASeq) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_.SetEmergencyStop(true, Entry("emergency_stop.activate")).ok());
  }
  auto page = store_.ListAuditOldestFirst("", 2, 2);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 3);
  EXPECT_EQ((*page)[1].seq, 4);
  auto end = store_.ListAuditOldestFirst("", 5, 2);
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->empty());
}

TEST(PgAuditUpgradeTest, TheMigrationChainsExistingEntriesInIdOrder) {
  testing::ScratchDatabase db;
  const std::vector<Migration>& all = EmbeddedMigrations();
  std::vector<Migration> before;
  for (const Migration& m : all) {
    if (m.name < "0005") {
      before.push_back(m);
    }
  }
  ASSERT_EQ(before.size(), 4u);
  ASSERT_TRUE(ApplyMigrations(db.conninfo(), before).ok());
  // A live log: ids with gaps, written out of order.
  db.Exec(
      "INSERT INTO audit_log (id, actor, action, rollout_id, reason, evidence) VALUES "
      "(10, 'carol', 'rollout.halt', 'ro-1', 'third', '{\"n\": 3}'), "
      "(3, 'alice', 'content.upload', NULL, 'first', '{}'), "
      "(7, 'bob', 'rollout.start', 'ro-1', 'second', '{\"b\": [1], \"a\": 2}')");
  db.Query("SELECT setval('audit_log_id_seq', 10)");
  auto migrated = ApplyMigrations(db.conninfo(), all);
  ASSERT_TRUE(migrated.ok()) << migrated.status();
  // 0005 first, then every later migration.
  std::vector<std::string> after;
  for (const Migration& m : all) {
    if (m.name >= "0005") {
      after.push_back(m.name);
    }
  }
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.front(), "0005_audit_chain.sql");
  EXPECT_EQ(migrated->applied, after);

  PgStore store(db.conninfo(), 1);
  AuditRecord next;
  next.actor = "dave";
  next.action = "emergency_stop.activate";
  ASSERT_TRUE(store.SetEmergencyStop(true, next).ok());
  const std::vector<AuditRecord> chain = ReadChain(store);
  ASSERT_EQ(chain.size(), 4u);
  EXPECT_EQ(chain[0].id, 3);
  EXPECT_EQ(chain[1].id, 7);
  EXPECT_EQ(chain[2].id, 10);
  EXPECT_EQ(chain[3].actor, "dave");
  EXPECT_EQ(chain[3].seq, 4);
  auto head = VerifyChain(chain);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->seq, 4);
  EXPECT_THAT(ErrorOf(db, "TRUNCATE audit_log"), HasSubstr("TRUNCATE is refused"));
}

}  // namespace
}  // namespace ringwarden
