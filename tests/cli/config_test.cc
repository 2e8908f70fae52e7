// ringctl settings: the TOML file (toml++), profiles, token files and precedence
// (flag > environment > config file > default).
#include "cli/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/cli/test_util.h"

namespace ringwarden::cli_testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kFull[] = R"(# ringctl settings
server = "prod.example.com:7600"   # trailing comment
token = 'lit\eral'
timeout = 12.5

[profiles.staging]
server = "staging.example.com:7600"
token_file = "staging.token"

  [ profiles.local ]   # spaces are fine
server="127.0.0.1:7600"
timeout=3
)";

// ExpectRefused checks that ParseConfig refuses `text` (file "f") as INVALID_ARGUMENT
// with `message` in its error.
void ExpectRefused(const std::string& text, absl::string_view message) {
  auto file = ParseConfig(text, "f");
  ASSERT_FALSE(file.ok()) << text.substr(0, 80);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << text.substr(0, 80);
  EXPECT_THAT(file.status().message(), HasSubstr(std::string(message))) << text.substr(0, 80);
}

TEST(ParseConfigTest, ParsesTheSubset) {
  auto file = ParseConfig(kFull, "ringctl.toml");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->top.server, "prod.example.com:7600");
  EXPECT_EQ(file->top.token, "lit\\eral");  // literal strings keep backslashes
  EXPECT_EQ(file->top.timeout_seconds, 12.5);
  ASSERT_THAT(file->profiles, SizeIs(2));
  EXPECT_EQ(file->profiles["staging"].token_file, "staging.token");
  EXPECT_FALSE(file->profiles["staging"].timeout_seconds.has_value());
  EXPECT_EQ(file->profiles["local"].timeout_seconds, 3);
}

TEST(ParseConfigTest, BasicStringEscapesAndEmptyFile) {
  auto file = ParseConfig("token = \"a\\\"b\\\\c\\td\"\r\n", "f");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->top.token, "a\"b\\c\td");
  auto empty = ParseConfig("\n# nothing\n\n", "f");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->top.server.has_value());
}

// A syntax error, or a key, table or type that is not ringctl's, is an error naming the line.
TEST(ParseConfigTest, RejectsEverythingElseWithTheLine) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"server = \"a\"\nsrever = \"b\"\n", "f:2: unknown key \"srever\""},
      {"\n\nserver \"a\"\n", "f:3: Error while parsing key-value pair: expected '='"},
      {"server = a.example.com\n",
       "f:1: Error while parsing value: could not determine value type"},
      {"server = \"a\nb\"\n",
       "f:1: Error while parsing string: unterminated string, the closing \" is missing on this "
       "line (column 12)"},
      {"server = \"a\r\nb\"\n", "f:1: Error while parsing string: unterminated string"},
      {"server = 'a\n",
       "f:1: Error while parsing literal string: unterminated string, the closing ' is missing "
       "on this line (column 12)"},
      {"server = \"a", "f:1: Error while parsing string: encountered end-of-file"},
      {"server = \"a\" b\n",
       "f:1: Error while parsing key-value pair: expected a comment or whitespace, saw 'b'"},
      {"server = \"a\"\nserver = \"b\"\n",
       "f:2: Error while parsing key-value pair: cannot redefine existing string 'server'"},
      {"server = 7600\n", "f:1: server must be a \"quoted string\""},
      {"timeout = \"30\"\n", "f:1: timeout must be a number"},
      {"timeout = 0\n", "f:1: timeout must be between"},
      {"timeout = 1e9\n", "f:1: timeout must be between"},
      {"timeout = inf\n", "f:1: timeout must be between"},
      {"timeout = nan\n", "f:1: timeout must be between"},
      {"timeout = true\n", "f:1: timeout must be a number of seconds, not a boolean"},
      {"token = \"\"\n", "f:1: token must not be empty"},
      {"token = \"a\"\ntoken_file = \"b\"\n", "f:2: set token or token_file, not both"},
      {"token = \"\\q\"\n", "f:1: Error while parsing string: unknown escape sequence '\\q'"},
      {"server =\n", "f:1: Error while parsing key-value pair: expected value"},
      {"[server]\n", "f:1: unknown table [server]"},
      {"[profiles]\n", "f:1: unknown table [profiles]"},
      {"[profiles.a.b]\n", "f:1: bad profile name \"a.b\""},
      {"[profiles.x\n", "f:1: Error while parsing table header: expected ']'"},
      {"[[profiles.x]]\n", "f:1: arrays of tables are not supported"},
      {"[profiles.x]\n[profiles.x]\n",
       "f:2: Error while parsing table header: cannot redefine existing table 'profiles.x'"},
      {"[profiles.x] junk\n", "f:1: Error while parsing table header: expected a comment"},
      {"a.b = \"c\"\n", "f:1: unknown table [a]"},
  };
  for (const Case& c : cases) {
    ExpectRefused(c.text, c.message);
  }
}

// The file is TOML: what the old hand-written subset refused but TOML defines
// (unicode escapes, multi-line and literal strings, integers for seconds) reads as TOML says.
TEST(ParseConfigTest, AcceptsTheRestOfToml) {
  auto file = ParseConfig(
      "token = \"\\u0041\"\nserver = \"\"\"\nhost:1\"\"\"\nca_file = '''c\\a'''\n"
      "timeout = 0x10\n",
      "f");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->top.token, "A");
  EXPECT_EQ(file->top.server, "host:1");  // the first newline of a multi-line string is trimmed
  EXPECT_EQ(file->top.ca_file, "c\\a");
  EXPECT_EQ(file->top.timeout_seconds, 16);
}

// Hostile and malformed files: every refusal names the file, the line and the key.
TEST(ParseConfigTest, RefusesWrongTypesAndUnknownKeysNamingKeyAndLine) {
  struct Case {
    std::string text;
    const char* message;
  } cases[] = {
      {"server = [\"a\"]\n", "f:1: server must be a \"quoted string\", not an array"},
      {"ca_file = { a = 1 }\n", "f:1: ca_file must be a \"quoted string\", not a table"},
      {"token_file = 1979-05-27\n", "f:1: token_file must be a \"quoted string\", not a date"},
      {"timeout = 1979-05-27T07:32:00Z\n", "f:1: timeout must be a number of seconds, not a date"},
      {"timeout = [1]\n", "f:1: timeout must be a number of seconds, not an array"},
      {"server = true\n", "f:1: server must be a \"quoted string\", not a boolean"},
      {"server = 1.5\n", "f:1: server must be a \"quoted string\", not a float"},
      {"\n[profiles.x]\nsrever = \"b\"\n", "f:3: unknown key \"srever\" in [profiles.x]"},
      {"[profiles.x]\ntimeout = \"3\"\n",
       "f:2: timeout in [profiles.x] must be a number of seconds, without quotes"},
      {"[profiles.x]\nserver = 1\n", "f:2: server in [profiles.x] must be a \"quoted string\""},
      {"[profiles.x]\ntoken = \"\"\n", "f:2: token in [profiles.x] must not be empty"},
      {"[profiles.x]\ntoken_file = \"a\"\ntoken = \"b\"\n",
       "f:3: set token or token_file in [profiles.x], not both"},
      {"[profiles.x]\ntimeout = 7200\n", "f:2: timeout in [profiles.x] must be between"},
      {"timeout = 99999999999999999999\n", "f:1: Error while parsing"},
      {"timeout = -1\n", "f:1: timeout must be between"},
      {"profiles = \"x\"\n", "f:1: profiles must be [profiles.NAME] tables"},
      {"profiles = { x = { server = \"a\" } }\n", "f:1: profiles must be [profiles.NAME] tables"},
      {"[profiles]\nx = \"a\"\n", "f:2: profiles.x must be a [profiles.x] table"},
      {"[profiles.x]\n[profiles.x.y]\n", "f:2: bad profile name \"x.y\": profiles do not nest"},
      {"[profiles.\"a b\"]\n", "f:1: bad profile name \"a b\""},
      {"[profiles.\"\"]\n", "f:1: bad profile name \"\""},
      {"[a.b.c.d]\n", "f:1: unknown table [a]"},
      {"[[server]]\n", "f:1: arrays of tables are not supported"},
      // Invalid UTF-8 in a value, a key or a comment; NUL and other control characters.
      {"server = \"\xff\"\n", "f:1: Encountered invalid utf-8 sequence"},
      {"# \xc3\x28\n", "f:1: Encountered invalid utf-8 sequence"},
      {"\nk\xed\xa0\x80 = 1\n", "f:2: Encountered invalid utf-8 sequence"},
      // toml++ places a bad sequence that opens a line at the end of the line before.
      {"\n\xed\xa0\x80 = 1\n", "f:1: Encountered invalid utf-8 sequence"},
      {std::string("token = \"a\0b\"\n", 13),
       "f:1: Error while parsing string: unescaped control characters"},
      {"token = \"a\x1b[31mb\"\n", "f:1: Error while parsing string: unescaped control characters"},
      // Deep nesting is bounded by the parser, not by the stack.
      {"x = " + std::string(100000, '[') + "\n",
       "f:1: Error while parsing value: exceeded maximum nested value depth"},
      {"x = " + std::string(100000, '{'), "f:1: Error while parsing"},
  };
  for (const Case& c : cases) {
    ExpectRefused(c.text, c.message);
  }
}

// Found by ringctl_config_fuzz: toml++ 3.3.0 reached __builtin_unreachable() for most
// non-ASCII characters outside strings (U+00A1..U+0499, U+2C6E..U+3067, U+FEA6..U+FEFE).
// Now they are plain syntax errors, and inside strings and comments they are text.
TEST(ParseConfigTest, NonAsciiOutsideStringsIsASyntaxErrorNotACrash) {
  for (const char* text : {"key\xC3\xA9 = 1\n", "server = 1\xD0\x96\n", "a\xE3\x80\x81 = 1\n",
                           "serv\xEF\xBB\x86rve[1, 2.x]]\n", "timeout = 3\xEF\xBA\xA6\n"}) {
    ExpectRefused(text, "f:1: ");
  }
  auto file = ParseConfig(
      "# caf\xC3\xA9 \xD0\x96 \xEF\xBB\x86\nserver = \"h\xC3\xA9\xE3\x80\x81:1\"\n", "f");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->top.server, "h\xC3\xA9\xE3\x80\x81:1");
}

// Found by ringctl_config_fuzz: toml++ 3.3.0 starts a table header's key without checking
// its first character, under an assertion (an abort, or undefined behaviour in a clang
// build without assertions). Now it is the parser's own syntax error, with the line.
TEST(ParseConfigTest, ATableHeaderThatOpensWithNoKeyIsASyntaxError) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"[&\n",
       "f:1: Error while parsing key: expected bare key starting character or string "
       "delimiter, saw '&'"},
      {"server = \"a\"\n[[[1]]]\n",
       "f:2: Error while parsing key: expected bare key starting "
       "character or string delimiter, saw '['"},
      {"[[=\n", "f:1: Error while parsing key: expected bare key starting character"},
      {"a.b.c = 1\n[\x1c eout = 1\n", "f:2: Error while parsing key: expected bare key"},
  };
  for (const Case& c : cases) {
    ExpectRefused(c.text, c.message);
  }
}

TEST(ParseConfigTest, OversizedTextIsRefusedBeforeParsing) {
  const std::string big = "# " + std::string(1024 * 1024, 'x') + "\n";
  auto file = ParseConfig(big, "f");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(file.status().message(), "f is larger than the limit of 1048576 bytes");

  // Just under the limit, many profiles are fine.
  std::string many;
  for (int i = 0; many.size() < 1000 * 1000; ++i) {
    many += "[profiles.p" + std::to_string(i) + "]\nserver = \"h" + std::to_string(i) + ":1\"\n";
  }
  auto ok = ParseConfig(many, "f");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->profiles["p7"].server, "h7:1");
}

TEST(ParseConfigTest, SameKeyInDifferentTablesIsFine) {
  auto file = ParseConfig("server = \"a\"\n[profiles.x]\nserver = \"b\"\n", "f");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->profiles["x"].server, "b");
}

class ResolveSettingsTest : public ::testing::Test {
 protected:
  SettingsInputs Inputs() const {
    SettingsInputs in;
    in.env_home = dir_.path();
    in.insecure = true;  // the CA has tests of its own below
    return in;
  }
  std::string WriteConfig(const std::string& text, int mode = 0600) {
    return dir_.Write(".config/ringwarden/ringctl.toml", text, mode);
  }
  TempDir dir_;
};

TEST_F(ResolveSettingsTest, DefaultsWithoutAnyFile) {
  auto s = ResolveSettings(Inputs());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->server, "127.0.0.1:7600");
  EXPECT_EQ(s->token, "");
  EXPECT_EQ(s->timeout_seconds, 30);
  EXPECT_EQ(s->config_path, "");
  EXPECT_THAT(s->warnings, IsEmpty());
}

TEST_F(ResolveSettingsTest, DefaultPathIsHomeConfigOrXdg) {
  SettingsInputs in = Inputs();
  EXPECT_EQ(DefaultConfigPath(in), dir_.path() + "/.config/ringwarden/ringctl.toml");
  in.env_xdg_config_home = "/xdg";
  EXPECT_EQ(DefaultConfigPath(in), "/xdg/ringwarden/ringctl.toml");
  in.env_config = "/env.toml";
  EXPECT_EQ(DefaultConfigPath(in), "/env.toml");
  in.config_path = "/flag.toml";
  EXPECT_EQ(DefaultConfigPath(in), "/flag.toml");
}

TEST_F(ResolveSettingsTest, PrecedenceFlagOverEnvOverFileOverDefault) {
  const std::string path =
      WriteConfig("server = \"file:1\"\ntoken = \"file-token\"\ntimeout = 7\n");
  SettingsInputs in = Inputs();
  auto file_only = ResolveSettings(in);
  ASSERT_TRUE(file_only.ok()) << file_only.status();
  EXPECT_EQ(file_only->server, "file:1");
  EXPECT_EQ(file_only->token, "file-token");
  EXPECT_EQ(file_only->timeout_seconds, 7);
  EXPECT_EQ(file_only->config_path, path);

  in.env_server = "env:2";
  in.env_token = "env-token";
  auto env = ResolveSettings(in);
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->server, "env:2");
  EXPECT_EQ(env->token, "env-token");
  EXPECT_EQ(env->timeout_seconds, 7);

  in.server = "flag:3";
  in.token = "flag-token";
  in.timeout_seconds = 2;
  auto flags = ResolveSettings(in);
  ASSERT_TRUE(flags.ok());
  EXPECT_EQ(flags->server, "flag:3");
  EXPECT_EQ(flags->token, "flag-token");
  EXPECT_EQ(flags->timeout_seconds, 2);
}

TEST_F(ResolveSettingsTest, EmptyEnvironmentValuesCountAsUnset) {
  WriteConfig("server = \"file:1\"\n");
  SettingsInputs in = Inputs();
  in.env_server = "";
  in.env_config = "";
  auto s = ResolveSettings(in);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->server, "file:1");
}

TEST_F(ResolveSettingsTest, ProfileOverridesTopLevelKeys) {
  dir_.Write(".config/ringwarden/staging.token", "  staging-secret\n", 0600);
  WriteConfig(kFull);
  SettingsInputs in = Inputs();
  in.profile = "staging";
  auto s = ResolveSettings(in);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->server, "staging.example.com:7600");
  EXPECT_EQ(s->token, "staging-secret");  // token_file relative to the config, trimmed
  EXPECT_EQ(s->timeout_seconds, 12.5);    // not in the profile: the top-level value

  in.profile = std::nullopt;
  in.env_profile = "local";
  auto local = ResolveSettings(in);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->server, "127.0.0.1:7600");
  EXPECT_EQ(local->token, "lit\\eral");
  EXPECT_EQ(local->timeout_seconds, 3);

  in.profile = "staging";  // the flag beats RINGWARDEN_PROFILE
  EXPECT_EQ(ResolveSettings(in)->server, "staging.example.com:7600");
}

TEST_F(ResolveSettingsTest, UnknownProfileListsTheKnownOnes) {
  WriteConfig(kFull);
  SettingsInputs in = Inputs();
  in.profile = "prod";
  auto s = ResolveSettings(in);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("no profile \"prod\""));
  EXPECT_THAT(s.status().message(), HasSubstr("profiles: local, staging"));
}

TEST_F(ResolveSettingsTest, ProfileWithoutConfigFileIsAnError) {
  SettingsInputs in = Inputs();
  in.profile = "staging";
  auto s = ResolveSettings(in);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("no config file"));
}

TEST_F(ResolveSettingsTest, MissingFileIsAnErrorOnlyWhenNamed) {
  SettingsInputs in = Inputs();
  EXPECT_TRUE(ResolveSettings(in).ok());  // the default path may be absent
  in.env_config = dir_.path() + "/nope.toml";
  auto env = ResolveSettings(in);
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(env.status().message(), HasSubstr("nope.toml"));
  in.env_config = std::nullopt;
  in.config_path = dir_.path() + "/missing.toml";
  auto flag = ResolveSettings(in);
  ASSERT_FALSE(flag.ok());
  EXPECT_THAT(flag.status().message(), HasSubstr("missing.toml"));
}

TEST_F(ResolveSettingsTest, BadFileReportsPathAndLine) {
  const std::string path = WriteConfig("server = \"a\"\n\nservr = \"b\"\n");
  auto s = ResolveSettings(Inputs());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(path + ":3: unknown key \"servr\""));
}

TEST_F(ResolveSettingsTest, TokenFileProblems) {
  WriteConfig("token_file = \"~/missing.token\"\n");
  auto missing = ResolveSettings(Inputs());
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(dir_.path() + "/missing.token"));

  dir_.Write("empty.token", "\n\n", 0600);
  WriteConfig("token_file = \"~/empty.token\"\n");
  auto empty = ResolveSettings(Inputs());
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("is empty"));

  // A token given on the command line means the file is never read.
  SettingsInputs in = Inputs();
  in.token = "flag";
  ASSERT_TRUE(ResolveSettings(in).ok());
}

TEST_F(ResolveSettingsTest, AbsoluteTokenFile) {
  const std::string token = dir_.Write("abs.token", "abs-secret", 0600);
  WriteConfig("token_file = \"" + token + "\"\n");
  auto s = ResolveSettings(Inputs());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, "abs-secret");
  EXPECT_THAT(s->warnings, IsEmpty());
}

TEST_F(ResolveSettingsTest, WarnsWhenATokenIsReadableByOthers) {
  const std::string path = WriteConfig("token = \"t\"\n", 0644);
  auto s = ResolveSettings(Inputs());
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_THAT(s->warnings, SizeIs(1));
  EXPECT_THAT(s->warnings[0], HasSubstr("readable by group or others"));
  EXPECT_THAT(s->warnings[0], HasSubstr("chmod 600 " + path));

  // A token only in a profile still counts: the file holds it.
  WriteConfig("server = \"a:1\"\n[profiles.x]\ntoken = \"t\"\n", 0640);
  EXPECT_THAT(ResolveSettings(Inputs())->warnings, SizeIs(1));

  // No token in the file: nothing to protect.
  WriteConfig("server = \"a:1\"\n", 0644);
  EXPECT_THAT(ResolveSettings(Inputs())->warnings, IsEmpty());

  // A token file readable by others is the same leak.
  const std::string token = dir_.Write("loose.token", "t", 0644);
  WriteConfig("token_file = \"" + token + "\"\n", 0600);
  auto loose = ResolveSettings(Inputs());
  ASSERT_TRUE(loose.ok());
  EXPECT_THAT(loose->warnings, ElementsAre(HasSubstr("token file " + token)));
}

TEST_F(ResolveSettingsTest, TheServerIsVerifiedWithACaUnlessInsecureIsAskedFor) {
  SettingsInputs in = Inputs();
  in.insecure = false;
  auto missing = ResolveSettings(in);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("pass --ca FILE"));

  in.ca_file = dir_.path() + "/no-such-ca.pem";
  auto unreadable = ResolveSettings(in);
  EXPECT_FALSE(unreadable.ok());
  EXPECT_THAT(std::string(unreadable.status().message()), HasSubstr("CA file"));

  const std::string ca = dir_.Write("ca.pem", "-----BEGIN CERTIFICATE-----\nx\n", 0644);
  in.ca_file = ca;
  auto from_flag = ResolveSettings(in);
  ASSERT_TRUE(from_flag.ok()) << from_flag.status();
  EXPECT_THAT(from_flag->server_ca_pem, HasSubstr("BEGIN CERTIFICATE"));

  in.ca_file.reset();
  in.env_ca = ca;
  EXPECT_TRUE(ResolveSettings(in).ok());
  in.env_ca.reset();
  WriteConfig("ca_file = \"~/ca.pem\"\n");
  auto from_file = ResolveSettings(in);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_FALSE(from_file->server_ca_pem.empty());

  in.insecure = true;
  in.ca_file = ca;
  EXPECT_EQ(ResolveSettings(in).status().code(), absl::StatusCode::kInvalidArgument);
  in.ca_file.reset();
  auto plaintext = ResolveSettings(in);
  ASSERT_TRUE(plaintext.ok());
  EXPECT_TRUE(plaintext->server_ca_pem.empty());
}

}  // namespace
}  // namespace ringwarden::cli_testing
