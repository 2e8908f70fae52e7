#include "common/names.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/escaping.h"

namespace ringwarden {
namespace {

TEST(ChannelNameTest, AcceptsLowercaseNamesStartingWithALetter) {
  for (const char* name : {"rules.behavioral", "a", "a-b_c.9", "r2", "z.z.z"}) {
    EXPECT_TRUE(ValidateChannelName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateChannelName(std::string(64, 'a')).ok());
}

TEST(ChannelNameTest, RefusesEverythingElseWithAMessageThatSaysTheRule) {
  const std::string refused[] = {
      "",
      std::string(65, 'a'),  // too long
      "Rules",               // uppercase
      "1rules",              // must start with a letter
      ".state.json",         // hidden file on the agent
      "..",                  // path traversal
      "a/b",                 // path separator
      "a\\b",
      "rules behavioral",
      std::string("rules\0x", 7),  // embedded NUL
      "r\xC3\xA9gles",             // non-ASCII
      "_rules",
      "-rules",
  };
  for (const std::string& name : refused) {
    absl::Status status = ValidateChannelName(name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(status.message().find("a-z 0-9 . _ -"), std::string::npos) << status;
  }
}

TEST(ChannelNameTest, TheMessageEscapesHostileBytesAndStaysShort) {
  const std::string hostile = std::string("\x1b[31mred\n", 9) + std::string(10000, 'x');
  absl::Status status = ValidateChannelName(hostile);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message().find('\x1b'), std::string::npos);
  EXPECT_EQ(status.message().find('\n'), std::string::npos);
  EXPECT_LT(status.message().size(), 400u);
}

// Found by sanitize_text_fuzz: the old check looked only at the shape of a
// sequence, so overlong forms, surrogates and code points above U+10FFFF went
// through to PostgreSQL (which refuses them) and to JSON output.
TEST(SanitizeTextTest, OnlyWellFormedUtf8GoesThrough) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  struct Case {
    std::string in, out;
  } cases[] = {
      {"plain ascii", "plain ascii"},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF",
       "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"},
      {"\xC0\x80", r + r},                      // overlong NUL
      {"\xC1\xBF", r + r},                      // overlong
      {"\xE0\x80\xAF", r + r + r},              // overlong '/'
      {"\xF0\x80\x80\xAF", r + r + r + r},      // overlong '/'
      {"\xED\xA0\x80", r + r + r},              // surrogate U+D800
      {"\xED\xBF\xBF", r + r + r},              // surrogate U+DFFF
      {"\xED\x9F\xBF", "\xED\x9F\xBF"},         // U+D7FF is fine
      {"\xF4\x90\x80\x80", r + r + r + r},      // U+110000
      {"\xF5\x80\x80\x80", r + r + r + r},      // no such lead byte
      {"\xFF", r},                              //
      {"a\xE2\x82", "a" + r + r},               // truncated at the end
      {std::string("a\0b", 3), "a" + r + "b"},  // NUL
      {"\x80\xBF", r + r},                      // stray continuations
  };
  for (const Case& c : cases) {
    EXPECT_EQ(SanitizeText(c.in, 100), c.out) << absl::CHexEscape(c.in);
  }
}

TEST(SanitizeTextTest, CutsOnACharacterBoundary) {
  EXPECT_EQ(SanitizeText("ab\xE2\x82\xAC", 4), "ab");
  EXPECT_EQ(SanitizeText("ab\xE2\x82\xAC", 5), "ab\xE2\x82\xAC");
  EXPECT_EQ(SanitizeText("ab\xFF", 4), "ab");  // the replacement does not fit either
  EXPECT_EQ(SanitizeText("anything", 0), "");
}

}  // namespace
}  // namespace ringwarden
