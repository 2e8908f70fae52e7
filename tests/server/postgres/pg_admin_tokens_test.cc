// PgStore's admin token role against a real PostgreSQL, and AdminTokens over it.
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "common/admin_token.h"
#include "common/clock.h"
#include "server/core/admin_tokens.h"
#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

class PgAdminTokensTest : public StoreFixture {
 protected:
  AdminTokenRecord Token(const std::string& id, const std::string& role, absl::Time expires) {
    AdminTokenRecord t;
    t.id = id;
    t.name = "alice";
    t.role = role;
    t.secret_sha256 = std::string(64, 'b');
    t.created_at = now_ - absl::Hours(1);
    t.created_by = "test";
    t.expires_at = expires;
    return t;
  }
  const absl::Time now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
};

TEST_F(PgAdminTokensTest, StoresReadsAndRevokes) {
  const AdminTokenRecord t = Token("0123456789ab", "releaser", now_ + absl::Hours(5));
  ASSERT_TRUE(store_.InsertAdminToken(t, "", Audit("token.create")).ok());
  EXPECT_EQ(store_.InsertAdminToken(t, "", Audit("token.create")).code(),
            absl::StatusCode::kAlreadyExists);
  absl::StatusOr<AdminTokenRecord> got = store_.GetAdminToken(t.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->role, "releaser");
  EXPECT_EQ(got->expires_at, t.expires_at);
  EXPECT_EQ(got->created_at, t.created_at);
  EXPECT_FALSE(got->revoked_at.has_value());
  EXPECT_EQ(store_.GetAdminToken("ffffffffffff").status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(store_.RevokeAdminToken(t.id, now_, "bob", "admin", Audit("token.revoke")).ok());
  got = store_.GetAdminToken(t.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->revoked_at, now_);
  EXPECT_EQ(got->revoked_by, "bob");
  const absl::Status again = store_.RevokeAdminToken(t.id, now_, "bob", "", Audit("token.revoke"));
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("already revoked"), std::string::npos) << again;
  EXPECT_EQ(store_.RevokeAdminToken("ffffffffffff", now_, "bob", "", Audit("x")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(db_.Query("SELECT count(*) FROM audit_log WHERE action LIKE 'token.%'"), "2");
}

TEST_F(PgAdminTokensTest, TheLastLiveAdminTokenIsKept) {
  const AdminTokenRecord expired = Token("00000000000e", "admin", now_ - absl::Minutes(1));
  const AdminTokenRecord live = Token("00000000000a", "admin", now_ + absl::Hours(5));
  ASSERT_TRUE(store_.InsertAdminToken(expired, "", Audit("token.create")).ok());
  ASSERT_TRUE(store_.InsertAdminToken(live, "", Audit("token.create")).ok());
  // An expired admin token does not count as a way back in.
  const absl::Status last = store_.RevokeAdminToken(live.id, now_, "alice", "admin", Audit("x"));
  EXPECT_EQ(last.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(last.message().find("last unexpired admin token"), std::string::npos) << last;
  // Bootstrap is refused while a live admin token exists, allowed for none.
  AdminTokenRecord second = Token("00000000000b", "admin", now_ + absl::Hours(5));
  second.created_at = now_;
  const absl::Status boot = store_.InsertAdminToken(second, "admin", Audit("token.bootstrap"));
  EXPECT_EQ(boot.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(boot.message().find("unexpired admin token already exists"), std::string::npos) << boot;
  ASSERT_TRUE(store_.InsertAdminToken(second, "", Audit("token.create")).ok());
  EXPECT_TRUE(store_.RevokeAdminToken(live.id, now_, "alice", "admin", Audit("x")).ok());
  // Without the guard (--force) the last one goes too.
  EXPECT_TRUE(store_.RevokeAdminToken(second.id, now_, "alice", "", Audit("x")).ok());
}

TEST_F(PgAdminTokensTest, TwoAdminsRevokingTheLastTwoTokensAtOnceKeepOne) {
  ASSERT_TRUE(store_
                  .InsertAdminToken(Token("00000000000a", "admin", now_ + absl::Hours(5)), "",
                                    Audit("token.create"))
                  .ok());
  ASSERT_TRUE(store_
                  .InsertAdminToken(Token("00000000000b", "admin", now_ + absl::Hours(5)), "",
                                    Audit("token.create"))
                  .ok());
  std::atomic<int> next{0};
  const Outcomes outcomes = RunConcurrently(2, [&] {
    const std::string id = next++ == 0 ? "00000000000a" : "00000000000b";
    return store_.RevokeAdminToken(id, now_, "alice", "admin", Audit("token.revoke"));
  });
  EXPECT_EQ(outcomes.ok, 1);
  EXPECT_EQ(outcomes.refused, 1);
}

TEST_F(PgAdminTokensTest, TheSecretIsNeverStoredInPlaintext) {
  AdminTokens tokens(store_, RealClock::Instance(), SecureRandomBytes);
  absl::StatusOr<IssuedAdminToken> issued = tokens.Bootstrap("alice", absl::Hours(24));
  ASSERT_TRUE(issued.ok()) << issued.status();
  absl::StatusOr<AdminTokenParts> parts = ParseAdminToken(issued->token);
  ASSERT_TRUE(parts.ok()) << parts.status();
  const std::string encoded = issued->token.substr(kAdminTokenPrefix.size() + 13);
  const std::string hex = absl::BytesToHexString(parts->secret);

  const std::string row = db_.Query("SELECT t::text FROM admin_tokens t");
  const std::string audit = db_.Query("SELECT string_agg(a::text, ' ') FROM audit_log a");
  ASSERT_FALSE(row.empty());
  for (const std::string& stored : {row, audit}) {
    EXPECT_EQ(stored.find(encoded), std::string::npos) << stored;
    EXPECT_EQ(stored.find(hex), std::string::npos) << stored;
  }
  EXPECT_EQ(db_.Query("SELECT secret_sha256 FROM admin_tokens"),
            AdminTokenSecretSha256(parts->secret));
  EXPECT_EQ(audit.find(AdminTokenSecretSha256(parts->secret)), std::string::npos) << audit;
  // And the stored hash is what lets the token in.
  absl::StatusOr<Principal> p = tokens.Authenticate(issued->token);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "alice");
  EXPECT_EQ(p->role, Role::kAdmin);
}

}  // namespace
}  // namespace ringwarden
