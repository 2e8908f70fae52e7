// test_util.h: helpers for ringctl tests: temp dirs, a hermetic environment,
// golden files and fixed proto inputs.
//
// Goldens live in tests/cli/golden/; run a test with RINGWARDEN_UPDATE_GOLDENS=1 to
// rewrite them after an intended output change (and review the diff).
// Thread-safety: tests only, single-threaded use.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ringwarden/v1/admin.pb.h"

namespace ringwarden::cli_testing {

namespace v1 = ::ringwarden::v1;

// TempDir is a fresh directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Write creates `name` in the directory with `mode` and returns its path.
  std::string Write(const std::string& name, const std::string& content, int mode = 0600) const;
  // File returns the path of `name` in the directory.
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Read returns the bytes of `name` ("" and a test failure if it cannot be read).
  std::string Read(const std::string& name) const;

 private:
  std::string path_;
};

// ScopedEnv makes the environment hermetic for RunRingctl: HOME and
// XDG_CONFIG_HOME point at an empty temp dir and every RINGWARDEN_* variable is
// unset; Set() adds variables. Everything is restored on destruction.
class ScopedEnv {
 public:
  ScopedEnv();
  ~ScopedEnv();
  void Set(const std::string& name, const std::string& value);
  const std::string& home() const { return home_.path(); }

 private:
  void Save(const std::string& name);
  TempDir home_;
  std::map<std::string, std::optional<std::string>> saved_;
};

// ExpectGolden compares `actual` with tests/cli/golden/`name` (a gtest failure
// shows both), or rewrites the file when RINGWARDEN_UPDATE_GOLDENS=1.
void ExpectGolden(const std::string& name, const std::string& actual);

// Fixed inputs: a rollout in EARLY with three rings, and friends.
v1::Rollout SampleRollout();
v1::ExplainRolloutResponse SampleExplain();
v1::ListContentResponse SampleContent();
v1::ListAgentsResponse SampleAgents();
v1::ListAuditLogResponse SampleAudit();  // newest first, as the server answers
v1::Policy SamplePolicy();
v1::ListPinsResponse SamplePins();
v1::ListTrustResponse SampleTrust();  // two roots and a floor

// RolloutIn returns SampleRollout() moved to `state`, with progress to match.
v1::Rollout RolloutIn(v1::RolloutState state);

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};
// Ringctl runs RunRingctl in-process with `args` (without the program name).
CliRun Ringctl(const std::vector<std::string>& args);

}  // namespace ringwarden::cli_testing
