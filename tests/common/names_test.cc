#include "common/names.h"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace ringwarden
