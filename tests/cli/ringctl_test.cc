// RunRingctl end to end in-process: usage errors, help, settings, an unreachable
// server, and verbs against a fake AdminService.
#include "cli/ringctl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/commands.h"
#include "tests/cli/fake_admin_service.h"
#include "tests/cli/test_util.h"

namespace ringwarden::cli_testing {
namespace {

using ::testing::AllOf;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// LeafPaths walks the command tree: every verb that runs something.
void LeafPaths(const CLI::App& app, std::vector<std::string> prefix,
               std::vector<std::vector<std::string>>& out) {
  auto subs = app.get_subcommands(std::function<bool(const CLI::App*)>());
  if (subs.empty()) {
    out.push_back(prefix);
    return;
  }
  for (const CLI::App* sub : subs) {
    std::vector<std::string> p = prefix;
    p.push_back(sub->get_name());
    LeafPaths(*sub, p, out);
  }
}

std::vector<std::vector<std::string>> AllVerbs() {
  std::ostringstream out, err;
  CommandContext ctx(out, err, false);
  auto app = BuildRingctlApp(ctx);
  std::vector<std::vector<std::string>> paths;
  LeafPaths(*app, {}, paths);
  return paths;
}

class RingctlTest : public ::testing::Test {
 protected:
  ScopedEnv env_;
};

TEST_F(RingctlTest, UsageErrorsExitOne) {
  EXPECT_EQ(Ringctl({}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"rollout", "frobnicate"}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"rollout"}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"rollout", "status"}).code, kExitUsage);  // missing ID
  EXPECT_EQ(Ringctl({"rollout", "start", "--channel", "c"}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"rollout", "list", "-o", "yaml"}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"rollout", "list", "--bogus"}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"rollout", "status", "ro-1", "--interval", "1"}).code,
            kExitUsage);  // no --watch
  EXPECT_EQ(Ringctl({"rollout", "status", "ro-1", "--watch", "--interval", "0"}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"completion", "zsh"}).code, kExitUsage);
  EXPECT_EQ(Ringctl({"agents", "list", "--ring", "nope"}).code, kExitUsage);
  CliRun missing = Ringctl({"rollout", "status"});
  EXPECT_THAT(missing.err, HasSubstr("id is required"));
}

TEST_F(RingctlTest, TopLevelHelpDocumentsExitCodesAndSettings) {
  CliRun help = Ringctl({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, AllOf(HasSubstr("Exit codes:"), HasSubstr("0    ok"),
                              HasSubstr("1    usage error"), HasSubstr("2    refused"),
                              HasSubstr("3    server unavailable"), HasSubstr("130  interrupted"),
                              HasSubstr("RINGWARDEN_SERVER"), HasSubstr("ringctl.toml")));
}

TEST_F(RingctlTest, EveryVerbHelpHasAnExample) {
  const auto verbs = AllVerbs();
  ASSERT_THAT(verbs, SizeIs(testing::Ge(20u)));
  for (const auto& verb : verbs) {
    std::vector<std::string> args = verb;
    args.push_back("--help");
    CliRun help = Ringctl(args);
    const std::string name = absl::StrJoin(verb, " ");
    EXPECT_EQ(help.code, kExitOk) << name;
    EXPECT_THAT(help.out, HasSubstr("Example")) << name;
    EXPECT_THAT(help.out, HasSubstr(absl::StrCat("ringctl ", name))) << name;
  }
}

TEST_F(RingctlTest, NewVerbsExist) {
  const auto verbs = AllVerbs();
  for (const std::vector<std::string>& want :
       std::vector<std::vector<std::string>>{{"rollout", "history"},
                                             {"rollout", "status"},
                                             {"rollout", "list"},
                                             {"rollout", "explain"},
                                             {"keys", "root", "create"},
                                             {"keys", "root", "sign"},
                                             {"keys", "root", "upload"},
                                             {"keys", "inspect"},
                                             {"floor", "sign"},
                                             {"floor", "upload"},
                                             {"trust", "list"},
                                             {"token", "create"},
                                             {"token", "list"},
                                             {"token", "revoke"},
                                             {"completion"}}) {
    EXPECT_NE(std::find(verbs.begin(), verbs.end(), want), verbs.end()) << absl::StrJoin(want, " ");
  }
}

TEST_F(RingctlTest, TokenCreateChecksItsFlagsBeforeAnyCall) {
  CliRun ttl = Ringctl({"--server", "127.0.0.1:1", "--timeout", "0.5", "token", "create", "--name",
                        "ci", "--role", "viewer", "--ttl", "5s"});
  EXPECT_EQ(ttl.code, kExitUsage) << ttl.err;
  EXPECT_THAT(ttl.err, HasSubstr("is not a lifetime; write a whole number and m, h or d"));
  CliRun long_ttl = Ringctl({"--server", "127.0.0.1:1", "--timeout", "0.5", "token", "create",
                             "--name", "ci", "--role", "viewer", "--ttl", "400d"});
  EXPECT_EQ(long_ttl.code, kExitUsage) << long_ttl.err;
  EXPECT_THAT(long_ttl.err, HasSubstr("between 1h and 365d"));
  CliRun role =
      Ringctl({"--server", "127.0.0.1:1", "token", "create", "--name", "ci", "--role", "root"});
  EXPECT_EQ(role.code, kExitUsage) << role.err;
  EXPECT_EQ(Ringctl({"--server", "127.0.0.1:1", "token", "revoke"}).code, kExitUsage);
}

TEST_F(RingctlTest, UnreachableServerExitsThree) {
  const absl::Time start = absl::Now();
  CliRun r = Ringctl({"--server", "127.0.0.1:1", "--timeout", "0.5", "rollout", "list"});
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  // Global flags may also follow the verb, and --watch fails the same way.
  EXPECT_EQ(Ringctl({"rollout", "status", "ro-1", "--watch", "--server", "127.0.0.1:1", "--timeout",
                     "0.5"})
                .code,
            kExitUnavailable);
}

TEST_F(RingctlTest, SettingsComeFromTheConfigFile) {
  TempDir dir;
  const std::string config = dir.Write("ringctl.toml",
                                       "server = \"127.0.0.1:1\"\ntimeout = 0.5\n"
                                       "[profiles.broken]\nserver = \"127.0.0.1:1\"\n");
  CliRun r = Ringctl({"--config", config, "rollout", "list"});
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
  env_.Set("RINGWARDEN_CONFIG", config);
  EXPECT_EQ(Ringctl({"--profile", "broken", "rollout", "list"}).code, kExitUnavailable);
  CliRun unknown = Ringctl({"--profile", "prod", "rollout", "list"});
  EXPECT_EQ(unknown.code, kExitUsage);
  EXPECT_THAT(unknown.err, HasSubstr("no profile \"prod\""));
  CliRun missing = Ringctl({"--config", dir.path() + "/nope.toml", "rollout", "list"});
  EXPECT_EQ(missing.code, kExitUsage);
  const std::string bad = dir.Write("bad.toml", "server = \"a:1\"\nserver: b\n");
  CliRun malformed = Ringctl({"--config", bad, "rollout", "list"});
  EXPECT_EQ(malformed.code, kExitUsage);
  EXPECT_THAT(malformed.err, HasSubstr(bad + ":2:"));
}

TEST_F(RingctlTest, OfflineVerbsIgnoreABrokenConfig) {
  TempDir dir;
  env_.Set("RINGWARDEN_CONFIG", dir.Write("bad.toml", "nonsense\n"));
  CliRun r = Ringctl({"completion", "bash"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("complete -F _ringctl ringctl"));
  // keys inspect is offline too: its only error is the missing file.
  CliRun inspect = Ringctl({"keys", "inspect", dir.File("missing.json")});
  EXPECT_EQ(inspect.code, kExitUsage);
  EXPECT_THAT(inspect.err, HasSubstr("cannot read"));
  EXPECT_THAT(inspect.err, Not(HasSubstr("bad.toml")));
}

class RingctlFakeServerTest : public RingctlTest {
 protected:
  static v1::ExplainRolloutResponse Step(v1::RolloutState state) {
    v1::ExplainRolloutResponse x;
    *x.mutable_rollout() = RolloutIn(state);
    return x;
  }
  std::vector<std::string> With(const std::vector<std::string>& args) const {
    return server_.With(args);
  }
  FakeAdminServer server_;
};

TEST_F(RingctlFakeServerTest, WatchPrintsFramesUntilCompleted) {
  server_.service().SetScript(
      {Step(v1::CANARY), Step(v1::EARLY), Step(v1::BROAD), Step(v1::COMPLETED)});
  CliRun r = Ringctl(With({"rollout", "status", "ro-1a2b3c4d", "--watch", "--interval", "0.1"}));
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(server_.service().calls("ExplainRollout"), 4);
  // Not a terminal: no escapes, frames one after another separated by a blank line.
  EXPECT_THAT(r.out, Not(HasSubstr("\033[")));
  std::vector<std::string> frames = absl::StrSplit(r.out, "\n\nrollout ");
  EXPECT_THAT(frames, SizeIs(4));
  EXPECT_THAT(r.out, HasSubstr("canary  [##############################] 18/18 applied, 18 "
                               "healthy of 18"));
  EXPECT_THAT(frames.back(), HasSubstr("COMPLETED: every ring runs v42"));
}

TEST_F(RingctlFakeServerTest, WatchExitsTwoWhenTheRolloutHalts) {
  server_.service().SetScript({Step(v1::CANARY), Step(v1::HALTED)});
  CliRun r = Ringctl(With({"rollout", "status", "ro-1a2b3c4d", "-w", "--interval", "0.1"}));
  EXPECT_EQ(r.code, kExitRefused);
  EXPECT_THAT(r.out, HasSubstr("HALTED in CANARY"));
  EXPECT_THAT(r.err, HasSubstr("rollout ro-1a2b3c4d ended HALTED (in CANARY)"));

  server_.service().SetScript({Step(v1::ROLLED_BACK)});
  EXPECT_EQ(Ringctl(With({"rollout", "status", "ro-1a2b3c4d", "--watch"})).code, kExitRefused);
  server_.service().SetScript({Step(v1::CANCELLED)});
  EXPECT_EQ(Ringctl(With({"rollout", "status", "ro-1a2b3c4d", "--watch"})).code, kExitRefused);
}

TEST_F(RingctlFakeServerTest, WatchJsonIsOneDocumentPerLine) {
  server_.service().SetScript({Step(v1::BROAD), Step(v1::COMPLETED)});
  CliRun r = Ringctl(
      With({"rollout", "status", "ro-1a2b3c4d", "--watch", "--interval", "0.1", "-o", "json"}));
  EXPECT_EQ(r.code, kExitOk) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_EQ(nlohmann::json::parse(lines[0])["rollout"]["state"], "BROAD");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["rollout"]["state"], "COMPLETED");
}

TEST_F(RingctlFakeServerTest, WatchOfAnUnknownRolloutIsRefused) {
  server_.service().SetScript({Step(v1::CANARY)});
  CliRun r = Ringctl(With({"rollout", "status", "ro-nope", "--watch"}));
  EXPECT_EQ(r.code, kExitRefused);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(RingctlFakeServerTest, HistoryIsOldestFirst) {
  server_.service().SetScript({Step(v1::HALTED)});
  server_.service().SetAudit(SampleAudit());
  CliRun r = Ringctl(With({"rollout", "history", "ro-1a2b3c4d"}));
  EXPECT_EQ(r.code, kExitOk) << r.err;
  const size_t start = r.out.find("rollout.start");
  const size_t promote = r.out.find("rollout.auto_promote");
  const size_t halt = r.out.find("rollout.halt");
  EXPECT_LT(start, promote);
  EXPECT_LT(promote, halt);
  ASSERT_THAT(server_.service().audit_requests(), SizeIs(1));
  EXPECT_EQ(server_.service().audit_requests()[0].limit(), 1000);

  CliRun json = Ringctl(With({"rollout", "history", "ro-1a2b3c4d", "-o", "json"}));
  auto doc = nlohmann::json::parse(json.out);
  ASSERT_EQ(doc.size(), 3u);
  EXPECT_EQ(doc[0]["action"], "rollout.start");
  EXPECT_EQ(doc[2]["action"], "rollout.halt");

  // No entries and no such rollout: NOT_FOUND, not an empty timeline.
  CliRun unknown = Ringctl(With({"rollout", "history", "ro-nope"}));
  EXPECT_EQ(unknown.code, kExitRefused);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));
}

TEST_F(RingctlFakeServerTest, TokenPrecedenceReachesTheServer) {
  server_.service().SetScript({Step(v1::EARLY)});
  TempDir dir;
  const std::string config = dir.Write(
      "ringctl.toml", absl::StrCat("server = \"", server_.address(), "\"\ntoken = \"file\"\n"));
  env_.Set("RINGWARDEN_CONFIG", config);
  ASSERT_EQ(Ringctl({"rollout", "list"}).code, kExitOk);
  env_.Set("RINGWARDEN_TOKEN", "env");
  ASSERT_EQ(Ringctl({"rollout", "list"}).code, kExitOk);
  ASSERT_EQ(Ringctl({"rollout", "list", "--token", "flag"}).code, kExitOk);
  EXPECT_EQ(server_.service().tokens(),
            (std::vector<std::string>{"Bearer file", "Bearer env", "Bearer flag"}));
}

TEST_F(RingctlFakeServerTest, LooseConfigPermissionsWarnOnStderr) {
  server_.service().SetScript({Step(v1::EARLY)});
  TempDir dir;
  const std::string config = dir.Write(
      "ringctl.toml", absl::StrCat("server = \"", server_.address(), "\"\ntoken = \"t\"\n"), 0644);
  CliRun r = Ringctl({"--config", config, "rollout", "list", "-o", "json"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_THAT(r.err, HasSubstr("warning: config file " + config));
  EXPECT_EQ(nlohmann::json::parse(r.out).size(), 1u);  // stdout stays clean JSON
}

TEST_F(RingctlFakeServerTest, EveryReadVerbSpeaksJson) {
  // Only the verbs the fake serves; the renderers of the rest are golden-tested.
  server_.service().SetScript({Step(v1::EARLY)});
  server_.service().SetAudit(SampleAudit());
  for (const auto& verb :
       std::vector<std::vector<std::string>>{{"rollout", "status", "ro-1a2b3c4d"},
                                             {"rollout", "list"},
                                             {"rollout", "explain", "ro-1a2b3c4d"},
                                             {"rollout", "history", "ro-1a2b3c4d"},
                                             {"trust", "list"},
                                             {"audit"}}) {
    std::vector<std::string> args = verb;
    args.insert(args.end(), {"-o", "json"});
    CliRun r = Ringctl(With(args));
    EXPECT_EQ(r.code, kExitOk) << verb[0] << r.err;
    EXPECT_FALSE(nlohmann::json::parse(r.out, nullptr, false).is_discarded()) << r.out;
  }
}

}  // namespace
}  // namespace ringwarden::cli_testing
