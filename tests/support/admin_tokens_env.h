// admin_tokens_env.h: admin tokens for integration tests, made the way an
// operator makes them.
//
//   TestDatabase db;
//   TestKeys keys;
//   BootstrapTestTokens(db.conninfo(), keys);  // before or after the server starts
//   Ringctl(server.address(), keys.admin_token, {"token", "list"});
//   std::string dave = IssueTestToken(db.conninfo(), "dave", Role::kReleaser);
//
// Thread-safety: call from the test's main thread.
#pragma once

#include <string>

#include "server/core/identity.h"
#include "tests/support/test_env.h"

namespace ringwarden::testing {

// BootstrapTestTokens runs `ringwarden-server bootstrap-admin --name alice`
// against `database` (which migrates it), then, as alice, creates a releaser
// token for bob and a viewer token for carol; it keeps the three token texts
// in `keys`. Aborts the test binary on failure.
void BootstrapTestTokens(const std::string& database, TestKeys& keys);

// IssueTestToken writes a token for `name` with `role` (valid 24 h) straight
// to `database`, as an admin would with `ringctl token create`, and returns
// its text. Aborts the test binary on failure.
std::string IssueTestToken(const std::string& database, const std::string& name, Role role);

// RunServerCommand runs ringwarden-server with `args` and returns its exit
// code, stdout and stderr.
CliResult RunServerCommand(const std::vector<std::string>& args);

}  // namespace ringwarden::testing
