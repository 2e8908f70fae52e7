#include "cli/ringctl.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/cord.h"
#include "cli/commands.h"
#include "cli/config.h"

namespace ringwarden {
namespace {

// kUsagePayload is the status payload that UsageError attaches.
constexpr char kUsagePayload[] = "type.ringwarden.dev/ringctl.UsageError";

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::nullopt : std::optional<std::string>(v);
}

bool IsTerminal(const std::ostream& out) {
  if (&out != &std::cout || isatty(STDOUT_FILENO) == 0) {
    return false;
  }
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

SettingsInputs InputsFrom(const GlobalOptions& g) {
  SettingsInputs in;
  if (g.server_opt->count() > 0) {
    in.server = g.server;
  }
  if (g.token_opt->count() > 0) {
    in.token = g.token;
  }
  if (g.profile_opt->count() > 0) {
    in.profile = g.profile;
  }
  if (g.config_opt->count() > 0) {
    in.config_path = g.config;
  }
  if (g.timeout_opt->count() > 0) {
    in.timeout_seconds = g.timeout_seconds;
  }
  if (g.ca_opt->count() > 0) {
    in.ca_file = g.ca_file;
  }
  in.insecure = g.insecure;
  in.env_ca = Env("RINGWARDEN_CA");
  in.env_insecure = Env("RINGWARDEN_INSECURE");
  in.env_server = Env("RINGWARDEN_SERVER");
  in.env_token = Env("RINGWARDEN_TOKEN");
  in.env_profile = Env("RINGWARDEN_PROFILE");
  in.env_config = Env("RINGWARDEN_CONFIG");
  in.env_home = Env("HOME");
  in.env_xdg_config_home = Env("XDG_CONFIG_HOME");
  return in;
}

}  // namespace

absl::Status UsageError(absl::Status status) {
  if (!status.ok()) {
    status.SetPayload(kUsagePayload, absl::Cord("1"));
  }
  return status;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.GetPayload(kUsagePayload).has_value()) {
    return kExitUsage;
  }
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    default:
      return kExitRefused;
  }
}

int RunRingctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CommandContext ctx(out, err, IsTerminal(out));
  std::unique_ptr<CLI::App> app = BuildRingctlApp(ctx);

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  if (!reversed.empty()) {
    reversed.pop_back();  // program name
  }
  try {
    app->parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    app->exit(e, out, err);
    return kExitOk;
  } catch (const CLI::CallForAllHelp& e) {
    app->exit(e, out, err);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    app->exit(e, out, err);
    return kExitUsage;
  }
  if (!ctx.action) {
    err << "ringctl: nothing to do; see ringctl --help\n";
    return kExitUsage;
  }
  if (ctx.needs_server) {
    absl::StatusOr<ConnectionSettings> settings = ResolveSettings(InputsFrom(ctx.flags));
    if (!settings.ok()) {
      err << "ringctl: " << settings.status().message() << "\n";
      return kExitUsage;
    }
    for (const std::string& warning : settings->warnings) {
      err << "ringctl: " << warning << "\n";
    }
    ctx.settings = *std::move(settings);
  }
  absl::Status st = ctx.action();
  if (ctx.exit_code.has_value()) {
    return *ctx.exit_code;
  }
  if (!st.ok()) {
    err << "ringctl: " << absl::StatusCodeToString(st.code()) << ": " << st.message() << "\n";
    return ExitCodeFor(st);
  }
  return kExitOk;
}

}  // namespace ringwarden
