// commands.h: ringctl's command tree (CLI11), one Add*Commands function per area.
//
//   CommandContext ctx(std::cout, std::cerr, /*out_is_tty=*/false);
//   std::unique_ptr<CLI::App> app = BuildRingctlApp(ctx);
//
// A verb's callback only records what to do in `ctx.action`; RunRingctl resolves the
// connection settings once parsing succeeded and then runs it, so `--help`, usage
// errors and the completion script never touch the network. Tests walk the tree
// (completion, help examples). Thread-safety: single-threaded, like ringctl.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/admin_client.h"
#include "cli/config.h"
#include "cli/output.h"

namespace ringwarden {

// GlobalOptions are the flags every verb accepts (before or after the verb).
struct GlobalOptions {
  std::string server;
  std::string token;
  std::string profile;
  std::string config;
  std::string output = "table";
  double timeout_seconds = kDefaultTimeoutSeconds;
  std::string ca_file;
  bool insecure = false;
  // Whether each was given on the command line (precedence over env and config).
  CLI::Option* server_opt = nullptr;
  CLI::Option* token_opt = nullptr;
  CLI::Option* profile_opt = nullptr;
  CLI::Option* config_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
  CLI::Option* ca_opt = nullptr;
};

// CommandContext is what verbs share: streams, global flags, the chosen action and
// the connection, built on first use.
class CommandContext {
 public:
  CommandContext(std::ostream& out, std::ostream& err, bool out_is_tty)
      : out(out), err(err), out_is_tty(out_is_tty) {}

  std::ostream& out;
  std::ostream& err;
  const bool out_is_tty;  // stdout is a terminal: --watch may redraw in place
  GlobalOptions flags;

  // Set by the parsed verb's callback.
  std::function<absl::Status()> action;
  bool needs_server = true;      // false for offline verbs (content sign, keys, completion)
  std::optional<int> exit_code;  // overrides the code derived from action's status

  ConnectionSettings settings;  // resolved by RunRingctl before action runs

  OutputFormat format() const {
    return flags.output == "json" ? OutputFormat::kJson : OutputFormat::kTable;
  }
  // client returns the admin client for `settings`, creating it on first use.
  AdminClient& client();

 private:
  std::unique_ptr<AdminClient> client_;
};

// BuildRingctlApp builds the whole command tree bound to `ctx`.
std::unique_ptr<CLI::App> BuildRingctlApp(CommandContext& ctx);

// AddVerb adds a subcommand with a one-line description and examples in its help footer.
CLI::App* AddVerb(CLI::App* parent, const std::string& name, const std::string& description,
                  const std::vector<std::string>& examples);

void AddContentCommands(CLI::App& app, CommandContext& ctx);
void AddRolloutCommands(CLI::App& app, CommandContext& ctx);
// policy, pin, emergency-stop.
void AddOperatorCommands(CLI::App& app, CommandContext& ctx);
// agents, audit.
void AddInspectCommands(CLI::App& app, CommandContext& ctx);
// keys root create|sign|upload, keys inspect, floor sign|upload, trust list.
void AddTrustCommands(CLI::App& app, CommandContext& ctx);
// AddIdentityCommands needs the agents subcommand of AddInspectCommands.
void AddIdentityCommands(CLI::App& app, CommandContext& ctx);
// AddApprovalCommands adds `approvals list|approve|reject` and `rollout approve`
// (after AddRolloutCommands).
void AddApprovalCommands(CLI::App& app, CommandContext& ctx);
// token create|list|revoke.
void AddTokenCommands(CLI::App& app, CommandContext& ctx);
// completion bash, generated from `app` itself.
void AddCompletionCommand(CLI::App& app, CommandContext& ctx);

}  // namespace ringwarden
