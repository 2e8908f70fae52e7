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

// Found by secret_token_fuzz: the 43rd character holds 2 bits past the 32 bytes, and a
// token whose spare bits were set decoded to the same secret, so one credential had four
// texts. Only the text FormatAdminToken prints is accepted.
TEST(AdminTokenTest, OnlyTheCanonicalTextOfASecretIsAccepted) {
  const std::string canonical = "rwt_0a1b2c3d4e5f_" + std::string(42, 'A') + "A";
  ASSERT_TRUE(ParseAdminToken(canonical).ok());
  for (const char last : {'B', 'C', 'D'}) {
    const std::string text = "rwt_0a1b2c3d4e5f_" + std::string(42, 'A') + last;
    const absl::Status s = ParseAdminToken(text).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << text;
    EXPECT_EQ(s.message(),
              "malformed admin token: the secret is not canonical base64url; expected "
              "rwt_<id>_<secret> as `ringctl token create` prints it")
        << text;
  }
  // The fuzzer's input: a real-looking token with its last character changed.
  const std::string found = "rwt_0a1b2c3d4e5f_a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra22";
  EXPECT_EQ(ParseAdminToken(found).status().code(), absl::StatusCode::kUnauthenticated);
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
