// `ringctl rollout status --watch` in a real terminal: the ringctl binary runs inside
// a tmux pane (120x40) against an in-process fake AdminService, and the test reads
// the screen with `tmux capture-pane`. tmux is required: without it the test fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "tests/cli/fake_admin_service.h"
#include "tests/cli/test_util.h"

namespace ringwarden::cli_testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ShellQuote(const std::string& s) {
  return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "'\\''"}}), "'");
}

struct ShellResult {
  int status = -1;
  std::string out;
};

ShellResult Shell(const std::string& command) {
  ShellResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return r;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) {
    r.out.append(buf, n);
  }
  r.status = pclose(pipe);
  return r;
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// Tmux runs commands against a private tmux server, killed on destruction.
class Tmux {
 public:
  Tmux() : socket_(absl::StrCat("ringctl-test-", getpid())) {}
  ~Tmux() { Run({"kill-server"}); }

  ShellResult Run(const std::vector<std::string>& args) const {
    // Unset TMUX so the test also works when run from inside a tmux session.
    std::string cmd = absl::StrCat("env -u TMUX tmux -L ", ShellQuote(socket_));
    for (const std::string& a : args) {
      absl::StrAppend(&cmd, " ", ShellQuote(a));
    }
    return Shell(cmd);
  }

  std::string Screen() const { return Run({"capture-pane", "-p", "-t", "watch"}).out; }

  // WaitFor polls the screen until it contains `text`; calls `each` with every capture.
  std::string WaitFor(const std::string& text, absl::Duration timeout,
                      const std::function<void(const std::string&)>& each = nullptr) const {
    const absl::Time deadline = absl::Now() + timeout;
    std::string screen;
    while (absl::Now() < deadline) {
      screen = Screen();
      if (each) {
        each(screen);
      }
      if (absl::StrContains(screen, text)) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(40));
    }
    return screen;
  }

 private:
  std::string socket_;
};

class WatchTmuxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Shell("tmux -V").status, 0)  // fail, never skip: deploy/install-deps.sh has it
        << "tmux is required for this test: apt-get install -y tmux";
  }

  static v1::ExplainRolloutResponse Step(v1::RolloutState state) {
    v1::ExplainRolloutResponse x;
    *x.mutable_rollout() = RolloutIn(state);
    if (state == v1::EARLY) {
      x = SampleExplain();
    }
    return x;
  }

  // StartWatch runs ringctl --watch in a new 120x40 session; the shell prints the
  // exit code afterwards and keeps the pane open.
  void StartWatch() {
    const std::string ringctl = absl::StrCat(
        "env -u RINGWARDEN_CONFIG -u RINGWARDEN_SERVER -u RINGWARDEN_TOKEN "
        "-u RINGWARDEN_PROFILE -u XDG_CONFIG_HOME HOME=",
        ShellQuote(home_.path()), " ", ShellQuote(RINGCTL_BINARY), " --insecure --server ",
        server_.address(), " --timeout 5 rollout status ro-1a2b3c4d --watch --interval 0.2");
    const std::string command = absl::StrCat(ringctl, "; echo ringctl-exit=$?; sleep 60");
    ShellResult started =
        tmux_.Run({"new-session", "-d", "-s", "watch", "-x", "120", "-y", "40", command});
    ASSERT_EQ(started.status, 0) << started.out;
  }

  TempDir home_;
  FakeAdminServer server_;
  Tmux tmux_;
};

TEST_F(WatchTmuxTest, RedrawsInPlaceUntilCompleted) {
  // Each state is served for 5 refreshes (about a second) so the screen can be seen.
  server_.service().SetScript(
      {Step(v1::CANARY), Step(v1::EARLY), Step(v1::BROAD), Step(v1::COMPLETED)}, 5);
  StartWatch();
  std::set<std::string> seen;
  const std::string screen =
      tmux_.WaitFor("ringctl-exit=", absl::Seconds(30), [&seen](const std::string& s) {
        for (const char* state : {"v42  CANARY", "v42  EARLY", "v42  BROAD"}) {
          if (absl::StrContains(s, state)) {
            seen.insert(state);
          }
        }
        // Whatever the moment, one frame is on screen, never two.
        EXPECT_LE(Count(s, "rollout ro-1a2b3c4d  "), 1) << s;
      });
  EXPECT_THAT(screen, HasSubstr("ringctl-exit=0")) << screen;
  EXPECT_EQ(Count(screen, "rollout ro-1a2b3c4d  "), 1) << screen;
  EXPECT_THAT(screen, HasSubstr("v42  COMPLETED")) << screen;
  EXPECT_THAT(screen, HasSubstr("COMPLETED: every ring runs v42")) << screen;
  EXPECT_THAT(screen, HasSubstr("canary  [##############################] 18/18 applied, 18 "
                                "healthy of 18"))
      << screen;
  EXPECT_THAT(screen, HasSubstr("broad   [#############################+] 862/862 applied, "
                                "860 healthy of 862"))
      << screen;
  EXPECT_THAT(screen, Not(HasSubstr("Ctrl-C"))) << screen;  // the hint left with the last frame
  EXPECT_GE(server_.service().calls("ExplainRollout"), 16);
  EXPECT_EQ(seen.size(), 3u) << "intermediate frames seen: " << seen.size();
}

TEST_F(WatchTmuxTest, CtrlCStopsTheWatch) {
  server_.service().SetScript({Step(v1::EARLY)});
  StartWatch();
  std::string screen = tmux_.WaitFor("Ctrl-C to stop", absl::Seconds(20));
  ASSERT_THAT(screen, HasSubstr("early   [#######+++--------------------] 40/120 applied"))
      << screen;
  EXPECT_THAT(screen, HasSubstr("wait: early: 30 of 120 healthy")) << screen;
  ASSERT_EQ(tmux_.Run({"send-keys", "-t", "watch", "C-c"}).status, 0);
  screen = tmux_.WaitFor("ringctl-exit=", absl::Seconds(20));
  EXPECT_THAT(screen, HasSubstr("ringctl-exit=130")) << screen;
  EXPECT_EQ(Count(screen, "rollout ro-1a2b3c4d  "), 1) << screen;
}

}  // namespace
}  // namespace ringwarden::cli_testing
