#include "server/auth.h"

#include <gtest/gtest.h>

#include "common/admin_token.h"
#include "common/clock.h"
#include "common/names.h"
#include "tests/support/fake_store.h"

namespace ringwarden {
namespace {

TEST(AdminAuthTest, RolesAreOrdered) {
  FakeClock clock;
  testing::FakeStore store(clock);
  AdminTokens tokens(store, clock, SecureRandomBytes);
  const Principal root{"root", Role::kAdmin};
  const std::string viewer = tokens.Create("carol", Role::kViewer, absl::Hours(2), "", root)->token;
  const std::string admin = tokens.Create("alice", Role::kAdmin, absl::Hours(2), "", root)->token;
  AdminAuthenticator auth(tokens);
  EXPECT_TRUE(auth.Authorize("Bearer " + viewer, Role::kViewer).ok());
  const absl::Status denied = auth.Authorize("Bearer " + viewer, Role::kReleaser).status();
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(), "carol has role viewer; this needs releaser");
  EXPECT_TRUE(auth.Authorize("Bearer " + admin, Role::kAdmin).ok());
  const absl::Status missing = auth.Authorize("", Role::kViewer).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(missing.message(),
            "missing credentials: send metadata \"authorization: Bearer <token>\"");
  EXPECT_EQ(auth.Authorize(admin, Role::kViewer).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authorize("Bearer nope", Role::kViewer).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(ValidationTest, SanitizeTextKeepsStorableUtf8) {
  EXPECT_EQ(SanitizeText("plain", 64), "plain");
  EXPECT_EQ(SanitizeText(std::string("a\0b", 3), 64),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(SanitizeText("\xff\xfe", 64), "\xEF\xBF\xBD\xEF\xBF\xBD");
  // "é" is two bytes: a cut never splits it.
  EXPECT_EQ(SanitizeText("ab\xC3\xA9", 3), "ab");
  EXPECT_EQ(SanitizeText("ab\xC3\xA9", 4), "ab\xC3\xA9");
  EXPECT_EQ(SanitizeText("\xC3", 64), "\xEF\xBF\xBD");  // truncated sequence
  EXPECT_LE(SanitizeText(std::string(5000, 'x'), 1024).size(), 1024u);
}

TEST(ValidationTest, AgentIdsAndLabels) {
  EXPECT_TRUE(ValidateAgentId("host-1.example:42_a").ok());
  for (const char* bad : {"", "has space", "semi;colon", "slash/x", "\xff"}) {
    EXPECT_FALSE(ValidateAgentId(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateAgentId(std::string(129, 'a')).ok());
  EXPECT_TRUE(ValidateLabels({{"group", "dogfood"}, {"k8s.io/zone", "eu-1"}}).ok());
  EXPECT_FALSE(ValidateLabels({{"", "x"}}).ok());
  EXPECT_FALSE(ValidateLabels({{"k", std::string(65, 'v')}}).ok());
  EXPECT_FALSE(ValidateLabels({{"k", "a b"}}).ok());
}

}  // namespace
}  // namespace ringwarden
