#include "server/auth.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/names.h"

namespace ringwarden {
namespace {

TEST(AdminAuthTest, RolesAreOrdered) {
  AdminAuthenticator auth({{"tok-viewer-0123456789", {"carol", Role::kViewer}},
                           {"tok-admin-01234567890", {"alice", Role::kAdmin}}});
  EXPECT_TRUE(auth.Authorize("Bearer tok-viewer-0123456789", Role::kViewer).ok());
  EXPECT_EQ(auth.Authorize("Bearer tok-viewer-0123456789", Role::kReleaser).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(auth.Authorize("Bearer tok-admin-01234567890", Role::kAdmin).ok());
  EXPECT_EQ(auth.Authorize("", Role::kViewer).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authorize("Bearer nope", Role::kViewer).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AdminAuthTest, TokensFileIsValidated) {
  const std::string path = ::testing::TempDir() + "/tokens";
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write("# comment\n\nabcdefghijklmnop0 admin alice\n");
  EXPECT_TRUE(AdminAuthenticator::LoadFile(path).ok());
  write("short admin alice\n");
  EXPECT_EQ(AdminAuthenticator::LoadFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  write("abcdefghijklmnop0 root alice\n");
  EXPECT_EQ(AdminAuthenticator::LoadFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  write("abcdefghijklmnop0 admin\n");
  EXPECT_EQ(AdminAuthenticator::LoadFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  write("");
  EXPECT_EQ(AdminAuthenticator::LoadFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AdminAuthenticator::LoadFile(path + ".missing").status().code(),
            absl::StatusCode::kNotFound);
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
