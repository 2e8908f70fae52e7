// The bash completion script: generated from the tree, so every verb and flag is in
// it; and it really completes when bash sources it.
#include "cli/completion.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/ringctl.h"
#include "tests/cli/test_util.h"

namespace ringwarden::cli_testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

std::string Script() {
  CliRun r = Ringctl({"completion", "bash"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  return r.out;
}

void Walk(const CLI::App& app, const std::string& path, const std::string& script) {
  for (const CLI::App* sub : app.get_subcommands(std::function<bool(const CLI::App*)>())) {
    const std::string child = path.empty() ? sub->get_name() : path + " " + sub->get_name();
    EXPECT_THAT(script, HasSubstr(absl::StrCat("\"", child, "\") echo"))) << child;
    for (const CLI::Option* opt : sub->get_options()) {
      for (const std::string& l : opt->get_lnames()) {
        EXPECT_THAT(script, HasSubstr("--" + l)) << child;
      }
    }
    Walk(*sub, child, script);
  }
}

TEST(CompletionTest, ContainsEveryVerbAndFlag) {
  const std::string script = Script();
  std::ostringstream out, err;
  CommandContext ctx(out, err, false);
  auto app = BuildRingctlApp(ctx);
  Walk(*app, "", script);
  // And by name, in case the tree walk above ever misses a level.
  for (const char* verb : {"content", "rollout", "policy", "emergency-stop", "pin", "agents",
                           "audit", "keys", "floor", "trust", "completion"}) {
    EXPECT_THAT(script, HasSubstr(verb));
  }
  for (const char* verb : {"start", "status", "wait", "list", "history", "explain", "promote",
                           "halt", "resume", "rollback"}) {
    EXPECT_THAT(script, HasSubstr(absl::StrCat("\"rollout ", verb, "\") echo"))) << verb;
  }
  EXPECT_THAT(script, HasSubstr("\"rollout status|--interval\""));
  for (const char* verb : {"keys root create", "keys root sign", "keys root upload", "keys inspect",
                           "floor sign", "floor upload", "trust list"}) {
    EXPECT_THAT(script, HasSubstr(absl::StrCat("\"", verb, "\") echo"))) << verb;
  }
}

// Complete runs the script in bash for a command line whose last word is being typed.
std::vector<std::string> Complete(const std::string& script, const std::string& line) {
  TempDir dir;
  const std::string file = dir.Write("ringctl.bash", script);
  std::vector<std::string> words = absl::StrSplit(line, ' ');
  std::string words_array;
  for (const std::string& w : words) {
    absl::StrAppend(&words_array, " \"", w, "\"");
  }
  const std::string cmd = absl::StrCat(
      "cd ", dir.path(), " && bash --norc --noprofile -c 'source ringctl.bash; COMP_WORDS=(",
      words_array, "); COMP_CWORD=", words.size() - 1,
      "; _ringctl; printf \"%s\\n\" \"${COMPREPLY[@]}\"' 2>&1");
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  size_t n;
  while (pipe != nullptr && (n = fread(buf, 1, sizeof(buf), pipe)) > 0) {
    output.append(buf, n);
  }
  if (pipe != nullptr) {
    pclose(pipe);
  }
  return absl::StrSplit(output, '\n', absl::SkipEmpty());
}

TEST(CompletionTest, BashCompletesVerbsFlagsAndValues) {
  const std::string script = Script();
  EXPECT_THAT(Complete(script, "ringctl rollout st"), UnorderedElementsAre("start", "status"));
  EXPECT_THAT(Complete(script, "ringctl ro"), UnorderedElementsAre("rollout"));
  EXPECT_THAT(Complete(script, "ringctl -o json rollout h"),
              UnorderedElementsAre("halt", "history"));
  EXPECT_THAT(Complete(script, "ringctl rollout status ro-1 --w"), UnorderedElementsAre("--watch"));
  // Global flags fall through to every verb.
  EXPECT_THAT(Complete(script, "ringctl rollout list --se"), UnorderedElementsAre("--server"));
  EXPECT_THAT(Complete(script, "ringctl rollout list -o "), UnorderedElementsAre("table", "json"));
  EXPECT_THAT(Complete(script, "ringctl rollout wait ro-1 --until H"),
              UnorderedElementsAre("HALTED"));
  EXPECT_THAT(Complete(script, "ringctl completion "), UnorderedElementsAre("bash"));
  // The trust verbs, and -o naming a file (not a format) where it writes one.
  EXPECT_THAT(Complete(script, "ringctl keys "), UnorderedElementsAre("root", "inspect"));
  EXPECT_THAT(Complete(script, "ringctl keys root "),
              UnorderedElementsAre("create", "sign", "upload"));
  EXPECT_THAT(Complete(script, "ringctl keys root create --root-t"),
              UnorderedElementsAre("--root-threshold"));
  EXPECT_THAT(Complete(script, "ringctl keys inspect --tr"),
              UnorderedElementsAre("--trusted-root"));
  EXPECT_THAT(Complete(script, "ringctl floor "), UnorderedElementsAre("sign", "upload"));
  EXPECT_THAT(Complete(script, "ringctl trust list -o "), UnorderedElementsAre("table", "json"));
  EXPECT_THAT(Complete(script, "ringctl floor sign -o "), Not(Contains("json")));
  // A value of a free-form flag is not mistaken for a verb.
  EXPECT_THAT(Complete(script, "ringctl --server rollout con"), UnorderedElementsAre("content"));
}

}  // namespace
}  // namespace ringwarden::cli_testing
