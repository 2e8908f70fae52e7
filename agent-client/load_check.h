// load_check.h: the check an agent runs on newly applied content before keeping it.
//
//   CommandLoadChecker check("/opt/sensor/bin/validate --rules {path}");
//   absl::Status s = check.Check({"rules.behavioral", 42, content_path, payload});
//
// The real agent runs a configured command; the fleet simulator plugs in its own
// LoadChecker. Thread-safety: CommandLoadChecker is immutable and may be shared.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ringwarden::agent {

// LoadCheckRequest names the content to check; `path` is empty when the store
// keeps no files, `payload` is the applied bytes.
struct LoadCheckRequest {
  std::string channel;
  int64_t version = 0;
  std::string path;
  absl::string_view payload;
};

// LoadChecker says whether applied content loads; non-OK means it must not stay.
class LoadChecker {
 public:
  virtual ~LoadChecker() = default;
  virtual absl::Status Check(const LoadCheckRequest& request) = 0;
};

// ShellQuote returns `s` as one POSIX shell word ('...' with embedded quotes escaped).
std::string ShellQuote(absl::string_view s);

// CommandLoadChecker runs `/bin/sh -c <command>` and wants exit status 0 within
// `timeout` (the process is killed after it). In the command, {path}, {channel}
// and {version} are replaced by shell-quoted values; a command without {path}
// gets the quoted path appended as its last argument.
class CommandLoadChecker final : public LoadChecker {
 public:
  explicit CommandLoadChecker(std::string command, absl::Duration timeout = absl::Minutes(1));
  absl::Status Check(const LoadCheckRequest& request) override;

  // Render returns the shell command line for `request`.
  std::string Render(const LoadCheckRequest& request) const;

 private:
  const std::string command_;
  const absl::Duration timeout_;
};

}  // namespace ringwarden::agent
