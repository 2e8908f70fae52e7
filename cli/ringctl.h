// ringctl.h: the release engineer's command line, as a function tests can call.
//
//   int code = RunRingctl({"ringctl", "rollout", "status", "ro-1a2b3c4d"}, std::cout, std::cerr);
//
// Exit codes: 0 ok, 1 usage error (also a bad key file or flag value of an
// offline verb), 2 refused by the server (bad input, not allowed, wrong state,
// not found; or a watched rollout that did not complete; or signed metadata
// ringctl itself refuses), 3 server unavailable or timed out, 130 interrupted
// (Ctrl-C during --watch).
// The pieces live beside it: commands*.cc (the verbs), output.h (tables and JSON),
// config.h (settings), watch.h (--watch), completion.h.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ringwarden {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitRefused = 2;
inline constexpr int kExitUnavailable = 3;
inline constexpr int kExitInterrupted = 130;  // 128 + SIGINT, as shells report it

// ExitCodeFor maps a failed call's status to ringctl's exit code: a status
// marked by UsageError exits 1, UNAVAILABLE and DEADLINE_EXCEEDED exit 3, any
// other failure exits 2.
int ExitCodeFor(const absl::Status& status);

// UsageError marks `status` (a bad flag value, a key file that is missing or
// not Ed25519, ...) so that ringctl prints it like any error but exits 1
// (kExitUsage). An OK status stays OK.
absl::Status UsageError(absl::Status status);

// RunRingctl parses `args` (args[0] is the program name) and runs the command.
// Settings come from flags, then RINGWARDEN_* environment variables, then the
// config file (see config.h). `--watch` redraws in place only when `out` is
// std::cout and stdout is a terminal.
int RunRingctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ringwarden
