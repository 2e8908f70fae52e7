// AdminTokens on the in-memory store and a FakeClock: who gets in, and the
// rules of creating and revoking tokens.
#include "server/core/admin_tokens.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/support/fake_store.h"

namespace ringwarden {
namespace {

using ::testing::HasSubstr;

// CountingBytes is a deterministic RandomBytesFn: every call continues a counter.
RandomBytesFn CountingBytes() {
  auto counter = std::make_shared<unsigned char>(0);
  return [counter](unsigned char* out, size_t size) {
    for (size_t i = 0; i < size; ++i) {
      out[i] = (*counter)++;
    }
  };
}

class AdminTokensTest : public ::testing::Test {
 protected:
  IssuedAdminToken MustCreate(const std::string& name, Role role,
                              absl::Duration ttl = absl::Hours(24)) {
    absl::StatusOr<IssuedAdminToken> t = tokens_.Create(name, role, ttl, "test", alice_);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : IssuedAdminToken{};
  }

  FakeClock clock_;
  testing::FakeStore store_{clock_};
  AdminTokens tokens_{store_, clock_, CountingBytes()};
  const Principal alice_{"alice", Role::kAdmin};
};

TEST_F(AdminTokensTest, AnIssuedTokenAuthenticatesAsItsNameAndRole) {
  const IssuedAdminToken bob = MustCreate("bob", Role::kReleaser);
  EXPECT_EQ(bob.token.rfind("rwt_", 0), 0u) << bob.token;
  EXPECT_EQ(bob.record.expires_at, clock_.Now() + absl::Hours(24));
  EXPECT_EQ(bob.record.created_by, "alice");
  absl::StatusOr<Principal> p = tokens_.Authenticate(bob.token);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "bob");
  EXPECT_EQ(p->role, Role::kReleaser);
}

TEST_F(AdminTokensTest, AnExpiredTokenIsRefusedWithItsExpiry) {
  const IssuedAdminToken bob = MustCreate("bob", Role::kReleaser, absl::Hours(1));
  clock_.Advance(absl::Minutes(59));
  EXPECT_TRUE(tokens_.Authenticate(bob.token).ok());
  clock_.Advance(absl::Minutes(1));
  const absl::Status s = tokens_.Authenticate(bob.token).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr(absl::StrCat("admin token ", bob.record.id,
                                     " (bob) expired at 2023-11-14T23:13:20Z")));
}

TEST_F(AdminTokensTest, ARevokedTokenIsRefusedAtTheNextCall) {
  const IssuedAdminToken bob = MustCreate("bob", Role::kReleaser);
  ASSERT_TRUE(tokens_.Authenticate(bob.token).ok());
  ASSERT_TRUE(tokens_.Revoke(bob.record.id, false, "left the team", alice_).ok());
  const absl::Status s = tokens_.Authenticate(bob.token).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(s.message()), HasSubstr("(bob) was revoked at"));
}

TEST_F(AdminTokensTest, AWrongSecretReadsLikeAnUnknownToken) {
  const IssuedAdminToken bob = MustCreate("bob", Role::kReleaser);
  std::string forged = bob.token;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  const absl::Status wrong = tokens_.Authenticate(forged).status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(wrong.message()), HasSubstr("unknown admin token"));
  // Revocation and expiry are not told to someone without the secret.
  ASSERT_TRUE(tokens_.Revoke(bob.record.id, false, "", alice_).ok());
  EXPECT_THAT(std::string(tokens_.Authenticate(forged).status().message()),
              HasSubstr("unknown admin token"));
}

TEST_F(AdminTokensTest, MalformedTokensAreRefusedCleanly) {
  const std::string secret(43, 'A');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "does not start with rwt_"},
      {"Bearer-xyz", "does not start with rwt_"},
      {"rwa1.abc.def", "does not start with rwt_"},
      {std::string(100000, 'x'), "longer than 256 characters"},
      {"rwt_0123456789ab_" + std::string(42, '!') + "A", "not base64url"},
      {"rwt_0123456789ab_abc", "must be 43 base64url characters"},
      {"rwt_0123456789AB_" + secret, "12 lowercase hex"},
      {"rwt_0123_" + secret, "12 lowercase hex"},
      {"rwt_0123456789ab" + secret, "12 lowercase hex"},
      {"rwt_0123456789ab_" + secret + "\n", "not base64url"},
      {"rwt_0123456789ab_" + secret, "unknown admin token rwt_0123456789ab_..."},
  };
  for (const auto& [token, message] : cases) {
    const absl::Status s = tokens_.Authenticate(token).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << token.substr(0, 40);
    EXPECT_THAT(std::string(s.message()), HasSubstr(message)) << token.substr(0, 40);
    EXPECT_EQ(std::string(s.message()).find(secret), std::string::npos);
  }
}

TEST_F(AdminTokensTest, NoTokenWithARoleAboveTheCreatorsOwn) {
  const Principal bob{"bob", Role::kReleaser};
  absl::StatusOr<IssuedAdminToken> admin =
      tokens_.Create("mallory", Role::kAdmin, absl::Hours(24), "", bob);
  EXPECT_EQ(admin.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(admin.status().message(),
            "bob has role releaser; it cannot create a token with role admin, above its own");
  EXPECT_TRUE(tokens_.Create("ci", Role::kReleaser, absl::Hours(24), "", bob).ok());
  EXPECT_TRUE(store_.Calls("insert_admin_token") == 1);
}

TEST_F(AdminTokensTest, NamesAndLifetimesAreBounded) {
  for (const std::string& name : {std::string(), std::string(65, 'a'), std::string("a b"),
                                  std::string("x\n"), std::string("a;drop")}) {
    const absl::Status s = tokens_.Create(name, Role::kViewer, absl::Hours(2), "", alice_).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(s.message()), HasSubstr("must be 1-64 characters")) << name;
  }
  for (absl::Duration ttl : {absl::Minutes(59), absl::Hours(24 * 366), -absl::Hours(2)}) {
    const absl::Status s = tokens_.Create("ci", Role::kViewer, ttl, "", alice_).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("between 1h and 365d"));
  }
  EXPECT_TRUE(tokens_.Create("ci@example.com", Role::kViewer, absl::Hours(1), "", alice_).ok());
  EXPECT_TRUE(tokens_.Create("a.b_c-d", Role::kViewer, absl::Hours(24 * 365), "", alice_).ok());
}

TEST_F(AdminTokensTest, TheLastLiveAdminTokenIsRevokedOnlyWithForce) {
  absl::StatusOr<IssuedAdminToken> first = tokens_.Bootstrap("alice", absl::Hours(24));
  ASSERT_TRUE(first.ok()) << first.status();
  const absl::Status last = tokens_.Revoke(first->record.id, false, "", alice_).status();
  EXPECT_EQ(last.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(last.message()), HasSubstr("last unexpired admin token"));

  const absl::Status no_reason = tokens_.Revoke(first->record.id, true, "", alice_).status();
  EXPECT_EQ(no_reason.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(no_reason.message(), "--force needs --reason (it is audited)");

  // With a second admin token the first may go.
  const IssuedAdminToken second = MustCreate("dave", Role::kAdmin);
  EXPECT_TRUE(tokens_.Revoke(first->record.id, false, "rotation", alice_).ok());
  EXPECT_EQ(tokens_.Revoke(second.record.id, false, "", alice_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(tokens_.Revoke(second.record.id, true, "INC-7", alice_).ok());
  EXPECT_EQ(store_.Audit().back().action, "token.revoke_forced");

  const absl::Status bad_id = tokens_.Revoke("../../etc", false, "", alice_).status();
  EXPECT_EQ(bad_id.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_id.message()), HasSubstr("must be 12 lowercase hex characters"));
}

TEST_F(AdminTokensTest, BootstrapOnlyWhileNoAdminTokenIsLive) {
  absl::StatusOr<IssuedAdminToken> first = tokens_.Bootstrap("alice", absl::Hours(2));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->record.created_by, kBootstrapActor);
  const absl::Status again = tokens_.Bootstrap("eve", absl::Hours(2)).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.message()), HasSubstr("unexpired admin token already exists"));
  // Once every admin token expired, the fleet is recovered with bootstrap-admin.
  clock_.Advance(absl::Hours(2));
  EXPECT_TRUE(tokens_.Bootstrap("alice", absl::Hours(2)).ok());
}

TEST_F(AdminTokensTest, EveryChangeIsAuditedWithoutTheSecret) {
  const IssuedAdminToken bob = MustCreate("bob", Role::kReleaser);
  ASSERT_TRUE(tokens_.Revoke(bob.record.id, false, "left", alice_).ok());
  const std::vector<AuditRecord> audit = store_.Audit();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].action, "token.create");
  EXPECT_EQ(audit[1].action, "token.revoke");
  EXPECT_EQ(audit[1].actor, "alice");
  EXPECT_EQ(audit[1].reason, "left");
  const nlohmann::json evidence = nlohmann::json::parse(audit[0].evidence_json);
  EXPECT_EQ(evidence["token_id"], bob.record.id);
  EXPECT_EQ(evidence["role"], "releaser");
  const std::string secret = bob.token.substr(kAdminTokenPrefix.size() + 13);
  for (const AuditRecord& a : audit) {
    EXPECT_EQ(a.evidence_json.find(secret), std::string::npos);
    EXPECT_EQ(a.evidence_json.find(bob.record.secret_sha256), std::string::npos);
  }
}

TEST_F(AdminTokensTest, StorageFailuresAreNotAnsweredAsUnknownTokens) {
  const IssuedAdminToken bob = MustCreate("bob", Role::kReleaser);
  store_.FailNext("get_admin_token", absl::UnavailableError("database down"));
  EXPECT_EQ(tokens_.Authenticate(bob.token).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ringwarden
