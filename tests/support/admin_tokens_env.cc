#include "tests/support/admin_tokens_env.h"

#include <sys/wait.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/admin_token.h"
#include "common/clock.h"
#include "server/core/admin_tokens.h"
#include "server/postgres/pg_store.h"

namespace ringwarden::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "admin_tokens_env: " << what << std::endl;
  std::abort();
}

}  // namespace

CliResult RunServerCommand(const std::vector<std::string>& args) {
  TempDir dir;
  // Spawn discards stdout; a shell in between sends it to a file instead.
  std::vector<std::string> argv = {
      "/bin/sh",          "-c",          "out=$1; shift; exec \"$@\" > \"$out\"", "sh",
      dir.File("stdout"), ServerBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = Spawn(std::move(argv), dir.File("stderr"));
  int status = 0;
  waitpid(pid, &status, 0);
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  r.out = ReadFileOrDie(dir.File("stdout"));
  r.err = ReadFileOrDie(dir.File("stderr"));
  return r;
}

void BootstrapTestTokens(const std::string& database, TestKeys& keys) {
  CliResult boot = RunServerCommand({"bootstrap-admin", "--database", database, "--name", "alice"});
  if (boot.code != 0) {
    Die(absl::StrCat("bootstrap-admin failed (", boot.code, "): ", boot.err));
  }
  keys.admin_token = std::string(absl::StripAsciiWhitespace(boot.out));
  keys.releaser_token = IssueTestToken(database, "bob", Role::kReleaser);
  keys.viewer_token = IssueTestToken(database, "carol", Role::kViewer);
}

std::string IssueTestToken(const std::string& database, const std::string& name, Role role) {
  PgStore store(database, /*pool_size=*/1);
  AdminTokens tokens(store, RealClock::Instance(), SecureRandomBytes);
  absl::StatusOr<IssuedAdminToken> issued = tokens.Create(
      name, role, absl::Hours(24), "integration test", Principal{"alice", Role::kAdmin});
  if (!issued.ok()) {
    Die(absl::StrCat("cannot create the ", name, " token: ", issued.status().ToString()));
  }
  return issued->token;
}

}  // namespace ringwarden::testing
