#include "common/admin_token.h"

#include <gtest/gtest.h>

namespace ringwarden {
namespace {

TEST(AdminTokenTest, FormatAndParseRoundTrip) {
  const AdminTokenParts parts = NewAdminTokenParts(SecureRandomBytes);
  EXPECT_TRUE(IsAdminTokenId(parts.id)) << parts.id;
  EXPECT_EQ(parts.secret.size(), kAdminTokenSecretBytes);
  const std::string text = FormatAdminToken(parts);
  EXPECT_EQ(text.size(), 4 + 12 + 1 + 43u) << text;
  absl::StatusOr<AdminTokenParts> back = ParseAdminToken(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, parts.id);
  EXPECT_EQ(back->secret, parts.secret);
  EXPECT_TRUE(AdminTokenSecretMatches(back->secret, AdminTokenSecretSha256(parts.secret)));
  EXPECT_FALSE(AdminTokenSecretMatches(back->secret, AdminTokenSecretSha256("other")));
  EXPECT_FALSE(AdminTokenSecretMatches(back->secret, ""));
  // Two tokens never share an id or a secret.
  const AdminTokenParts other = NewAdminTokenParts(SecureRandomBytes);
  EXPECT_NE(other.id, parts.id);
  EXPECT_NE(other.secret, parts.secret);
}

TEST(AdminTokenTest, LifetimesAreParsedWithinBounds) {
  EXPECT_EQ(*ParseAdminTokenTtl("90m"), absl::Minutes(90));
  EXPECT_EQ(*ParseAdminTokenTtl("24h"), absl::Hours(24));
  EXPECT_EQ(*ParseAdminTokenTtl("365d"), absl::Hours(24 * 365));
  for (const char* bad : {"", "d", "30", "30s", "-1h", "1.5h", "0h", "99999999d", "1 h", "h1"}) {
    const absl::Status s = ParseAdminTokenTtl(bad).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("is not a lifetime"), absl::string_view::npos) << s;
  }
  for (const char* out_of_range : {"59m", "366d"}) {
    const absl::Status s = ParseAdminTokenTtl(out_of_range).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("between 1h and 365d"), absl::string_view::npos) << s;
  }
}

}  // namespace
}  // namespace ringwarden
