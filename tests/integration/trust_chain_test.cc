// A real agent process against a real server that is restarted with a server
// key the root does not name: the agent refuses its answers and keeps running
// its content, then accepts again after a root rotation names the new key.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::CliResult;
using testing::Ringctl;
using testing::ServerProcess;
using testing::TestDatabase;
using testing::TestKeys;

constexpr char kChannel[] = "rules.behavioral";

struct AgentRun {
  int exit_code = -1;
  std::string log;
};

// RunAgentOnce runs ringwarden-agent --once and returns its exit code and stderr.
AgentRun RunAgentOnce(const std::vector<std::string>& flags, const std::string& log_path) {
  std::vector<std::string> args = {RINGWARDEN_AGENT_BIN};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back("--once");
  const pid_t pid = testing::Spawn(std::move(args), log_path);
  AgentRun run;
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log_path);
  run.log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return run;
}

std::string ReadOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class TrustChainIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::BootstrapTestTokens(db_.conninfo(), keys_); }

  CliResult Admin(std::vector<std::string> args) {
    return Ringctl(server_->address(), keys_.admin_token, std::move(args));
  }

  void Publish(int64_t version, const std::string& body) {
    CliResult r = testing::PublishContent(server_->address(), keys_, kChannel, version, body);
    ASSERT_EQ(r.code, 0) << r.err;
  }

  void StartInCanary(int64_t version) {
    CliResult r = Admin({"rollout", "start", "--channel", kChannel, "--version",
                         std::to_string(version), "--supersede", "--reason", "test"});
    ASSERT_EQ(r.code, 0) << r.err;
  }

  AgentRun Agent() {
    if (dogfood_token_.empty()) {
      // One host, enrolled once: later runs use the credential in its state.
      dogfood_token_ = testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 1,
                                                      std::vector<std::string>{"group=dogfood"});
    }
    return RunAgentOnce({"--server", server_->address(), "--state-dir", state_.path(), "--id",
                         "trust-host-1", "--root", keys_.root_path, "--enrollment-token",
                         dogfood_token_, "--ca", testing::Pki().server_ca, "--channel", kChannel,
                         "--healthy-interval", "1", "--heartbeat-interval", "1"},
                        state_.File(absl::StrCat("agent-", ++runs_, ".log")));
  }

  std::string Running() { return ReadOrEmpty(state_.path() + "/" + kChannel + "/current"); }

  TestDatabase db_;
  TestKeys keys_;
  testing::TempDir state_;
  std::unique_ptr<ServerProcess> server_;
  int runs_ = 0;
  std::string dogfood_token_;
};

TEST_F(TrustChainIntegrationTest, AServerKeyOutsideTheRootIsRefusedUntilARotationNamesIt) {
  server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_);
  Publish(1, "rules v1");
  StartInCanary(1);
  AgentRun first = Agent();
  ASSERT_EQ(first.exit_code, 0) << first.log;
  ASSERT_EQ(Running(), "rules v1") << first.log;

  // The server comes back with a key the root does not name (a stolen host
  // minting its own key, or a rotation done in the wrong order).
  const int port = server_->port();
  server_->Stop();
  const Ed25519PrivateKey rogue = *Ed25519PrivateKey::Generate();
  testing::WriteFile(keys_.server_key_path, rogue.ToPem());
  server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_, port);
  Publish(2, "rules v2");
  StartInCanary(2);
  AgentRun refused = Agent();
  EXPECT_NE(refused.exit_code, 0) << refused.log;
  EXPECT_NE(refused.log.find("not signed by the server keys"), std::string::npos) << refused.log;
  EXPECT_EQ(Running(), "rules v1") << "the agent keeps running what it has";

  // Root version 2 names the new server key, signed by the root key of version 1
  // (and of version 2: the same key here). Release engineers upload it.
  const std::string root2 = keys_.dir.File("root2.json");
  testing::WriteFile(root2, testing::RootJson(2, keys_.root, keys_.release, rogue, {&keys_.root}));
  CliResult upload = Admin({"keys", "root", "upload", root2, "--reason", "rotate the server key"});
  ASSERT_EQ(upload.code, 0) << upload.err;
  AgentRun accepted = Agent();
  EXPECT_EQ(accepted.exit_code, 0) << accepted.log;
  EXPECT_EQ(Running(), "rules v2") << accepted.log;
}

TEST_F(TrustChainIntegrationTest, ARootRotationNotSignedByTheOldRootIsRefusedByTheServer) {
  server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_);
  const Ed25519PrivateKey stranger = *Ed25519PrivateKey::Generate();
  const std::string forged = keys_.dir.File("forged.json");
  testing::WriteFile(forged,
                     testing::RootJson(2, stranger, keys_.release, keys_.server, {&stranger}));
  CliResult upload = Admin({"keys", "root", "upload", forged, "--reason", "attack"});
  EXPECT_EQ(upload.code, 2) << upload.out;
  const std::string skip = keys_.dir.File("root3.json");
  testing::WriteFile(skip,
                     testing::RootJson(3, keys_.root, keys_.release, keys_.server, {&keys_.root}));
  EXPECT_EQ(Admin({"keys", "root", "upload", skip, "--reason", "skip"}).code, 2);
}

// The agent's --root and --ca name files an operator or a configuration system supplies: a
// wrong one is a usage error that says what is wrong, before the agent connects anywhere, and
// an endless one (a device) does not hang it or fill its memory.
TEST(AgentInputFilesTest, AnEndlessEmptyMissingOrDirectoryRootOrCaIsRefusedNamingTheFile) {
  TestKeys keys;
  testing::TempDir dir;
  testing::WriteFile(dir.File("empty.pem"), "");
  struct Case {
    std::string root, ca, says;
  };
  const Case cases[] = {
      {keys.root_path, "/dev/zero", "--ca: /dev/zero is larger than the limit of 1048576 bytes"},
      {keys.root_path, dir.File("empty.pem"),
       absl::StrCat("--ca: ", dir.File("empty.pem"), " is empty")},
      // Flag parsing already refuses these two.
      {keys.root_path, dir.File("nope.pem"),
       absl::StrCat("--ca: File does not exist: ", dir.File("nope.pem"))},
      {keys.root_path, dir.path(),
       absl::StrCat("--ca: File is actually a directory: ", dir.path())},
      {"/dev/zero", testing::Pki().server_ca,
       "cannot trust --root /dev/zero: INVALID_ARGUMENT: /dev/zero is larger than the limit"},
  };
  int n = 0;
  for (const Case& c : cases) {
    AgentRun run =
        RunAgentOnce({"--server", "127.0.0.1:1", "--state-dir", dir.File("state"), "--id",
                      "files-host", "--root", c.root, "--ca", c.ca, "--channel", kChannel},
                     dir.File(absl::StrCat("agent-", ++n, ".log")));
    EXPECT_NE(run.exit_code, 0) << c.says;
    EXPECT_NE(run.log.find(c.says), std::string::npos) << run.log;
    if (c.root == keys.root_path) {
      EXPECT_EQ(run.exit_code, 2) << run.log;  // a usage error
    }
  }
}

}  // namespace
}  // namespace ringwarden
