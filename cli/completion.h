// completion.h: shell completion generated from the CLI11 command tree itself.
//
//   ringctl completion bash > /etc/bash_completion.d/ringctl
//   source <(ringctl completion bash)
//
// Walking the tree (rather than keeping a list) means a new verb or flag is
// completed as soon as it exists. Thread-safety: stateless.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace ringwarden {

// GenerateBashCompletion returns a bash script that completes `program`'s
// subcommands, each path's flags (with inherited global flags), the values of
// flags that take one of a fixed set, and file names elsewhere.
std::string GenerateBashCompletion(const CLI::App& root, const std::string& program);

}  // namespace ringwarden
