// Admin tokens against the real server and database: who gets in, with which
// role, until when; ringctl token create|list|revoke; bootstrap-admin.
#include "common/admin_token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/admin_client.h"
#include "common/clock.h"
#include "server/core/admin_tokens.h"
#include "server/postgres/pg_store.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::CliResult;
using ::testing::HasSubstr;
using testing::ServerProcess;
using testing::TestDatabase;
using testing::TestKeys;

class AdminTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_);
  }

  CliResult Ctl(const std::string& token, std::vector<std::string> args) {
    return testing::Ringctl(server_->address(), token, std::move(args));
  }

  // Call makes a viewer call (ListPins) with `token` and returns its status.
  absl::Status Call(const std::string& token) {
    AdminClient client(server_->address(), token, absl::Seconds(30), testing::Pki().ServerCaPem());
    return client.Call(&v1::AdminService::Stub::ListPins, v1::ListPinsRequest()).status();
  }

  static void ExpectRefused(const absl::Status& s, absl::StatusCode code,
                            const std::string& message) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(message));
  }

  // CreateToken makes a token straight in the database with `clock`'s time.
  std::string CreateToken(const Clock& clock, const std::string& name, Role role,
                          absl::Duration ttl) {
    PgStore store(db_.conninfo(), 1);
    AdminTokens tokens(store, clock, SecureRandomBytes);
    absl::StatusOr<IssuedAdminToken> t =
        tokens.Create(name, role, ttl, "test", Principal{"alice", Role::kAdmin});
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->token : "";
  }

  TestDatabase db_;
  TestKeys keys_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(AdminTokenTest, AnExpiredTokenIsRefusedWithItsExpiry) {
  FakeClock past(absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now() - absl::Hours(3))));
  const std::string expired = CreateToken(past, "erin", Role::kAdmin, absl::Hours(2));
  const std::string when = AdminTokenTime(past.Now() + absl::Hours(2));
  ExpectRefused(Call(expired), absl::StatusCode::kUnauthenticated,
                absl::StrCat("(erin) expired at ", when));
}

TEST_F(AdminTokenTest, ARevokedTokenIsRefusedAtTheNextCall) {
  CliResult created = Ctl(keys_.admin_token, {"token", "create", "--name", "ci-deploy", "--role",
                                              "releaser", "--ttl", "2h", "--reason", "pipeline"});
  ASSERT_EQ(created.code, 0) << created.err;
  const std::string token(absl::StripAsciiWhitespace(created.out));
  ASSERT_TRUE(Call(token).ok());
  const std::string id = ParseAdminToken(token)->id;
  CliResult revoked = Ctl(keys_.admin_token, {"token", "revoke", id, "--reason", "rotated"});
  ASSERT_EQ(revoked.code, 0) << revoked.err;
  EXPECT_THAT(revoked.out, HasSubstr(absl::StrCat("revoked token ", id, " (ci-deploy, releaser)")));
  ExpectRefused(Call(token), absl::StatusCode::kUnauthenticated, "(ci-deploy) was revoked at");
  // Both changes are in the audit log, without the secret.
  CliResult audit = Ctl(keys_.viewer_token, {"audit", "-o", "json"});
  ASSERT_EQ(audit.code, 0) << audit.err;
  EXPECT_THAT(audit.out, HasSubstr("token.create"));
  EXPECT_THAT(audit.out, HasSubstr("token.revoke"));
  EXPECT_EQ(audit.out.find(token.substr(kAdminTokenPrefix.size() + 13)), std::string::npos);
}

TEST_F(AdminTokenTest, RolesAreEnforced) {
  AdminClient viewer(server_->address(), keys_.viewer_token, absl::Seconds(30),
                     testing::Pki().ServerCaPem());
  v1::RolloutActionRequest promote;
  promote.set_id("r-1");
  ExpectRefused(viewer.Call(&v1::AdminService::Stub::PromoteRollout, promote).status(),
                absl::StatusCode::kPermissionDenied, "carol has role viewer; this needs releaser");

  AdminClient releaser(server_->address(), keys_.releaser_token, absl::Seconds(30),
                       testing::Pki().ServerCaPem());
  v1::EmergencyStopRequest lift;
  lift.set_lift(true);
  lift.set_reason("done");
  ExpectRefused(releaser.Call(&v1::AdminService::Stub::EmergencyStop, lift).status(),
                absl::StatusCode::kPermissionDenied, "bob has role releaser; this needs admin");

  v1::CreateAdminTokenRequest create;
  create.set_name("mallory");
  create.set_role("admin");
  create.set_ttl_seconds(7200);
  ExpectRefused(releaser.Call(&v1::AdminService::Stub::CreateAdminToken, create).status(),
                absl::StatusCode::kPermissionDenied, "bob has role releaser; this needs admin");
  ExpectRefused(
      releaser.Call(&v1::AdminService::Stub::ListAdminTokens, v1::ListAdminTokensRequest())
          .status(),
      absl::StatusCode::kPermissionDenied, "this needs admin");

  AdminClient admin(server_->address(), keys_.admin_token, absl::Seconds(30),
                    testing::Pki().ServerCaPem());
  create.set_role("root");
  ExpectRefused(admin.Call(&v1::AdminService::Stub::CreateAdminToken, create).status(),
                absl::StatusCode::kInvalidArgument, "unknown role \"root\"");
  create.set_role("viewer");
  create.set_ttl_seconds(60);
  ExpectRefused(admin.Call(&v1::AdminService::Stub::CreateAdminToken, create).status(),
                absl::StatusCode::kInvalidArgument, "between 1h and 365d");
  create.set_ttl_seconds(-1);
  ExpectRefused(admin.Call(&v1::AdminService::Stub::CreateAdminToken, create).status(),
                absl::StatusCode::kInvalidArgument, "ttl_seconds must be between 3600");
  create.set_ttl_seconds(7200);
  create.set_name(std::string(10000, 'n'));
  ExpectRefused(admin.Call(&v1::AdminService::Stub::CreateAdminToken, create).status(),
                absl::StatusCode::kInvalidArgument, "must be 1-64 characters");
}

TEST_F(AdminTokenTest, MalformedTokensAreRefusedCleanly) {
  const std::string secret = keys_.admin_token.substr(kAdminTokenPrefix.size() + 13);
  ExpectRefused(Call(""), absl::StatusCode::kUnauthenticated, "missing credentials");
  ExpectRefused(Call("admin-token-0123456789abcdef"), absl::StatusCode::kUnauthenticated,
                "does not start with rwt_");
  ExpectRefused(Call("rwt_" + std::string(4000, 'a')), absl::StatusCode::kUnauthenticated,
                "longer than 256 characters");
  ExpectRefused(Call("rwt_0123456789ab_" + std::string(43, '*')),
                absl::StatusCode::kUnauthenticated, "not base64url");
  ExpectRefused(Call("rwt_ZZZZ_" + secret), absl::StatusCode::kUnauthenticated,
                "12 lowercase hex characters");
  // A real secret under another id is an unknown token.
  ExpectRefused(Call("rwt_0123456789ab_" + secret), absl::StatusCode::kUnauthenticated,
                "unknown admin token rwt_0123456789ab_...");
  EXPECT_TRUE(Call(keys_.admin_token).ok());
}

TEST_F(AdminTokenTest, ListShowsTokensButNeverSecrets) {
  CliResult list = Ctl(keys_.admin_token, {"token", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("ID"));
  EXPECT_THAT(list.out, HasSubstr("alice"));
  EXPECT_THAT(list.out, HasSubstr("bootstrap-admin"));
  EXPECT_THAT(list.out, HasSubstr("carol"));
  CliResult json = Ctl(keys_.admin_token, {"token", "list", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  for (const std::string& token : {keys_.admin_token, keys_.releaser_token, keys_.viewer_token}) {
    const std::string secret = token.substr(kAdminTokenPrefix.size() + 13);
    const std::string hash = AdminTokenSecretSha256(ParseAdminToken(token)->secret);
    for (const std::string& out : {list.out, json.out}) {
      EXPECT_EQ(out.find(secret), std::string::npos);
      EXPECT_EQ(out.find(hash), std::string::npos);
    }
    EXPECT_THAT(json.out, HasSubstr(ParseAdminToken(token)->id));
  }
}

TEST_F(AdminTokenTest, TheLastAdminTokenIsRevokedOnlyWithForceThenBootstrapRecovers) {
  const std::string alice_id = ParseAdminToken(keys_.admin_token)->id;
  CliResult refused = Ctl(keys_.admin_token, {"token", "revoke", alice_id});
  EXPECT_EQ(refused.code, 2) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("is the last unexpired admin token"));

  // bootstrap-admin refuses while alice's token is valid.
  CliResult again =
      testing::RunServerCommand({"bootstrap-admin", "--database", db_.conninfo(), "--name", "eve"});
  EXPECT_EQ(again.code, 1);
  EXPECT_THAT(again.err, HasSubstr("unexpired admin token already exists"));
  EXPECT_TRUE(again.out.empty()) << again.out;

  CliResult forced =
      Ctl(keys_.admin_token, {"token", "revoke", alice_id, "--force", "--reason", "drill"});
  ASSERT_EQ(forced.code, 0) << forced.err;
  ExpectRefused(Call(keys_.admin_token), absl::StatusCode::kUnauthenticated, "was revoked at");

  CliResult recovered = testing::RunServerCommand(
      {"bootstrap-admin", "--database", db_.conninfo(), "--name", "alice", "--ttl", "2h"});
  ASSERT_EQ(recovered.code, 0) << recovered.err;
  EXPECT_TRUE(Call(std::string(absl::StripAsciiWhitespace(recovered.out))).ok());

  CliResult bad_ttl = testing::RunServerCommand(
      {"bootstrap-admin", "--database", db_.conninfo(), "--name", "alice", "--ttl", "400d"});
  EXPECT_EQ(bad_ttl.code, 1);
  EXPECT_THAT(bad_ttl.err, HasSubstr("between 1h and 365d"));
}

}  // namespace
}  // namespace ringwarden
