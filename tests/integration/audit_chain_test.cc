// The tamper-evident audit log end to end: the real server appends through
// the database's chaining trigger, a superuser tampers with the table behind
// its back, and `ringctl audit verify` (viewer role) names the entry.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cli/admin_client.h"
#include "cli/ringctl.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::CliResult;
using ::testing::HasSubstr;
using testing::Ringctl;
using testing::ServerProcess;
using testing::TestDatabase;
using testing::TestKeys;

constexpr char kChannel[] = "rules.behavioral";

class AuditChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_);
    for (int64_t version : {1, 2, 3}) {
      CliResult r = testing::PublishContent(server_->address(), keys_, kChannel, version,
                                            absl::StrCat("rules ", version));
      ASSERT_EQ(r.code, kExitOk) << r.err;
    }
    ASSERT_EQ(Ctl({"pin", "set", "--label", "group=payments", "--channel", kChannel, "n-1",
                   "--reason", "change freeze"},
                  keys_.releaser_token)
                  .code,
              kExitOk);
    entries_ = std::stoll(db_.Query("SELECT count(*) FROM audit_log"));
    ASSERT_GE(entries_, 5);
  }

  CliResult Ctl(std::vector<std::string> args, const std::string& token) {
    return Ringctl(server_->address(), token, std::move(args));
  }
  // Ctl without a token runs as the viewer.
  CliResult Ctl(std::vector<std::string> args) { return Ctl(std::move(args), keys_.viewer_token); }

  // Head returns the head `ringctl audit verify -o json` reports.
  std::string Head() {
    CliResult r = Ctl({"audit", "verify", "-o", "json"});
    EXPECT_EQ(r.code, kExitOk) << r.err;
    const nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_TRUE(doc.is_object()) << r.out;
    return doc.is_object() ? doc.value("head", "") : "";
  }

  // AsSuperuser runs `sql` with the table's triggers off, as a database
  // superuser (or the table owner) could.
  void AsSuperuser(const std::string& sql) {
    db_.Exec(absl::StrCat("ALTER TABLE audit_log DISABLE TRIGGER USER; ", sql,
                          "; ALTER TABLE audit_log ENABLE TRIGGER USER"));
  }

  TestDatabase db_;
  TestKeys keys_;
  std::unique_ptr<ServerProcess> server_;
  int64_t entries_ = 0;
};

TEST_F(AuditChainTest, UntamperedLogVerifiesForAViewer) {
  CliResult r = Ctl({"audit", "verify"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string head = absl::StrCat(entries_, ":",
                                        db_.Query("SELECT entry_hash FROM audit_log "
                                                  "ORDER BY seq DESC LIMIT 1"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("audit log intact: ", entries_, " entries")));
  EXPECT_THAT(r.out, HasSubstr("head " + head));
  EXPECT_EQ(Head(), head);
  // The recorded head stays provable as the log grows.
  ASSERT_EQ(Ctl({"emergency-stop", "--reason", "drill"}, keys_.admin_token).code, kExitOk);
  r = Ctl({"audit", "verify", "--expect", head});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(entries_ + 1, " entries")));
}

TEST_F(AuditChainTest, EditedReasonIsNamed) {
  AsSuperuser("UPDATE audit_log SET reason = 'routine' WHERE seq = 2");
  CliResult r = Ctl({"audit", "verify"});
  EXPECT_EQ(r.code, kExitRefused);
  EXPECT_THAT(r.err, HasSubstr("audit chain broken at seq 2: edited entry"));
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(AuditChainTest, DeletedEntryIsNamed) {
  AsSuperuser("DELETE FROM audit_log WHERE seq = 3");
  CliResult r = Ctl({"audit", "verify"});
  EXPECT_EQ(r.code, kExitRefused);
  EXPECT_THAT(r.err, HasSubstr("audit chain broken at seq 3: missing entry"));
}

TEST_F(AuditChainTest, TruncatedTailIsCaughtByTheRecordedHead) {
  const std::string head = Head();
  AsSuperuser(absl::StrCat("DELETE FROM audit_log WHERE seq >= ", entries_ - 1));
  // Without an anchor a shorter chain is still a chain...
  EXPECT_EQ(Ctl({"audit", "verify"}).code, kExitOk);
  // ...the recorded head is what proves the tail is gone.
  CliResult r = Ctl({"audit", "verify", "--expect", head});
  EXPECT_EQ(r.code, kExitRefused);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("audit chain broken at seq ", entries_,
                                            ": expected head absent")));
}

TEST_F(AuditChainTest, ChainRewrittenBySuperuserIsCaughtByTheRecordedHead) {
  const std::string head = Head();
  // A superuser who edits an entry and recomputes every hash after it.
  AsSuperuser(
      "UPDATE audit_log SET reason = 'routine' WHERE seq = 2; "
      "DO $$ DECLARE e record; h text := repeat('0', 64); BEGIN "
      "FOR e IN SELECT * FROM audit_log ORDER BY seq LOOP "
      "UPDATE audit_log SET prev_hash = h, entry_hash = audit_entry_hash(e.seq, h, e.at, e.actor, "
      "e.action, e.rollout_id, e.from_state, e.to_state, e.reason, e.evidence) WHERE id = e.id "
      "RETURNING entry_hash INTO h; END LOOP; END $$");
  EXPECT_EQ(Ctl({"audit", "verify"}).code, kExitOk);  // what the chain alone cannot prove
  CliResult r = Ctl({"audit", "verify", "--expect", head});
  EXPECT_EQ(r.code, kExitRefused);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("audit chain broken at seq ", entries_, ": fork")));
}

TEST_F(AuditChainTest, MalformedExpectedHeadIsAUsageError) {
  CliResult r = Ctl({"audit", "verify", "--expect", "12:not-a-hash"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--expect: audit head \"12:not-a-hash\": HASH must be 64"));
}

TEST_F(AuditChainTest, ListAuditLogRefusesBadPaging) {
  AdminClient viewer(server_->address(), keys_.viewer_token, absl::Seconds(30),
                     testing::Pki().ServerCaPem());
  v1::ListAuditLogRequest req;
  req.set_oldest_first(true);
  req.set_after_seq(-1);
  auto negative = viewer.Call(&v1::AdminService::Stub::ListAuditLog, req);
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(negative.status().message()),
              HasSubstr("after_seq -1 must not be negative"));
  req.set_oldest_first(false);
  req.set_after_seq(2);
  auto newest_first = viewer.Call(&v1::AdminService::Stub::ListAuditLog, req);
  EXPECT_EQ(newest_first.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(newest_first.status().message()),
              HasSubstr("after_seq pages oldest first; set oldest_first to use it"));
  // Paging oldest first answers in seq order from after_seq, exactly as hashed.
  req.set_oldest_first(true);
  req.set_after_seq(1);
  req.set_limit(2);
  auto page = viewer.Call(&v1::AdminService::Stub::ListAuditLog, req);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->entries_size(), 2);
  EXPECT_EQ(page->entries(0).seq(), 2);
  EXPECT_EQ(page->entries(1).seq(), 3);
  EXPECT_EQ(page->entries(1).prev_hash(), page->entries(0).entry_hash());
  EXPECT_EQ(page->entries(0).at_unix_micros() / 1000, page->entries(0).at_unix_ms());
}

}  // namespace
}  // namespace ringwarden
