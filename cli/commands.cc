#include "cli/commands.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/completion.h"

namespace ringwarden {
namespace {

constexpr char kTopFooter[] = R"(Settings: flag > environment > config file > default.
  --server   RINGWARDEN_SERVER   server = "host:port"   (default 127.0.0.1:7600)
  --token    RINGWARDEN_TOKEN    token = "..." or token_file = "path"
  --timeout                      timeout = 30
  --profile  RINGWARDEN_PROFILE  [profiles.NAME] sections
  --config   RINGWARDEN_CONFIG   (default ~/.config/ringwarden/ringctl.toml)
Every read verb takes -o json; the schemas are in docs/ringctl.md.

Exit codes:
  0    ok (rollout status --watch: the rollout COMPLETED)
  1    usage error: unknown verb, bad or missing argument, bad config file
  2    refused by the server (bad input, not allowed, wrong state, not found);
       also rollout status --watch / wait --until when the rollout ends HALTED,
       ROLLED_BACK or CANCELLED instead; and signed metadata ringctl refuses
       itself (tampered, already signed by that key, keys inspect --trusted-root
       that does not verify)
  3    server unavailable or timed out
  130  interrupted (Ctrl-C during rollout status --watch)

Example:
  ringctl rollout start --channel rules.behavioral --version 42
  ringctl rollout status ro-1a2b3c4d --watch)";

}  // namespace

AdminClient& CommandContext::client() {
  if (client_ == nullptr) {
    client_ = std::make_unique<AdminClient>(settings.server, settings.token,
                                            absl::Milliseconds(settings.timeout_seconds * 1000),
                                            settings.server_ca_pem);
  }
  return *client_;
}

CLI::App* AddVerb(CLI::App* parent, const std::string& name, const std::string& description,
                  const std::vector<std::string>& examples) {
  CLI::App* cmd = parent->add_subcommand(name, description);
  cmd->footer(absl::StrCat(examples.size() == 1 ? "Example:\n  " : "Examples:\n  ",
                           absl::StrJoin(examples, "\n  ")));
  return cmd;
}

std::unique_ptr<CLI::App> BuildRingctlApp(CommandContext& ctx) {
  auto app = std::make_unique<CLI::App>(
      "ringctl: drive ringwarden rollouts (sign, upload, start, watch, promote, halt, roll "
      "back, emergency-stop, audit) and keep its root of trust and floors",
      "ringctl");
  app->require_subcommand(1);
  app->footer(kTopFooter);
  // Global options may follow the verb (ringctl rollout list -o json); subcommands
  // created below inherit this.
  app->fallthrough();
  GlobalOptions& g = ctx.flags;
  g.server_opt = app->add_option("--server", g.server,
                                 "server address host:port (env RINGWARDEN_SERVER, config "
                                 "server; default 127.0.0.1:7600)");
  g.token_opt = app->add_option("--token", g.token,
                                "admin bearer token (env RINGWARDEN_TOKEN, config "
                                "token or token_file)");
  app->add_option("-o,--output", g.output, "output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  g.timeout_opt = app->add_option("--timeout", g.timeout_seconds,
                                  "seconds to wait for the server (config timeout; default 30)")
                      ->check(CLI::Range(0.1, 3600.0));
  g.ca_opt = app->add_option("--ca", g.ca_file,
                             "CA bundle (PEM) that verifies the server's TLS certificate (env "
                             "RINGWARDEN_CA, config ca_file)");
  app->add_flag("--insecure", g.insecure,
                "plaintext, for a server started with --insecure on this host (env "
                "RINGWARDEN_INSECURE=1)");
  g.profile_opt = app->add_option("--profile", g.profile,
                                  "use [profiles.NAME] of the config file (env "
                                  "RINGWARDEN_PROFILE)");
  g.config_opt = app->add_option(
      "--config", g.config,
      "config file (env RINGWARDEN_CONFIG; default ~/.config/ringwarden/ringctl.toml)");

  AddContentCommands(*app, ctx);
  AddRolloutCommands(*app, ctx);
  AddOperatorCommands(*app, ctx);
  AddInspectCommands(*app, ctx);
  AddTrustCommands(*app, ctx);
  AddIdentityCommands(*app, ctx);
  AddApprovalCommands(*app, ctx);
  AddTokenCommands(*app, ctx);
  AddCompletionCommand(*app, ctx);
  return app;
}

void AddCompletionCommand(CLI::App& app, CommandContext& ctx) {
  auto shell = std::make_shared<std::string>();
  CLI::App* completion = AddVerb(&app, "completion", "print a shell completion script",
                                 {"source <(ringctl completion bash)",
                                  "ringctl completion bash > /etc/bash_completion.d/ringctl"});
  completion->add_option("shell", *shell, "the shell")->required()->check(CLI::IsMember({"bash"}));
  completion->callback([&ctx, &app, shell] {
    ctx.needs_server = false;
    ctx.action = [&ctx, &app]() -> absl::Status {
      ctx.out << GenerateBashCompletion(app, "ringctl");
      return absl::OkStatus();
    };
  });
}

}  // namespace ringwarden
