// config.h: where ringctl finds its server, token and timeout.
//
//   # ~/.config/ringwarden/ringctl.toml (or $RINGWARDEN_CONFIG, or --config)
//   server = "ringwarden.example.com:7600"
//   token_file = "~/.config/ringwarden/token"     # or: token = "..."
//   timeout = 30
//   [profiles.staging]
//   server = "staging.example.com:7600"
//
// Precedence: flag > environment (RINGWARDEN_SERVER, RINGWARDEN_TOKEN) > config file
// (the selected profile over the top-level keys) > default. The file is TOML (parsed by
// toml++), but only these keys and [profiles.NAME] tables: anything else (an unknown
// key or table, a wrong type, a TOML syntax error, invalid UTF-8) is an error naming the
// line, because a typo silently ignored would send a release command to the wrong server.
// Thread-safety: stateless functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

inline constexpr char kDefaultServer[] = "127.0.0.1:7600";
inline constexpr double kDefaultTimeoutSeconds = 30;

// ConfigValues are the keys of one table of the file; unset keys are nullopt.
struct ConfigValues {
  std::optional<std::string> server;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  std::optional<double> timeout_seconds;
  std::optional<std::string> ca_file;
};

// ConfigFile is a parsed ringctl.toml.
struct ConfigFile {
  std::string path;
  ConfigValues top;                              // keys before any [profiles.NAME]
  std::map<std::string, ConfigValues> profiles;  // by NAME
  bool readable_by_others = false;               // group or other may read the file
};

// ParseConfig parses TOML with the keys server, token, token_file, ca_file (non-empty
// strings) and timeout (seconds, a number in [0.1, 3600]) at the top level and in
// [profiles.NAME] tables (NAME of letters, digits, '-' and '_'). Errors read
// "PATH:LINE: what is wrong"; `text` over 1 MiB is refused. `path` is only used in messages.
absl::StatusOr<ConfigFile> ParseConfig(absl::string_view text, absl::string_view path);

// SettingsInputs is everything the settings come from, so tests need neither real
// flags nor a real environment. Unset is nullopt; empty environment values count
// as unset.
struct SettingsInputs {
  // Flags.
  std::optional<std::string> server, token, profile, config_path, ca_file;
  std::optional<double> timeout_seconds;
  bool insecure = false;
  // Environment.
  std::optional<std::string> env_server, env_token, env_profile, env_config, env_home,
      env_xdg_config_home, env_ca, env_insecure;
};

// ConnectionSettings is what the admin client is built from.
struct ConnectionSettings {
  std::string server = kDefaultServer;
  std::string token;
  double timeout_seconds = kDefaultTimeoutSeconds;
  // The CA bundle (PEM) that verifies the server; empty only with --insecure.
  std::string server_ca_pem;
  std::string config_path;            // the file read, "" if none
  std::vector<std::string> warnings;  // for stderr, e.g. a token readable by others
};

// DefaultConfigPath: --config, else $RINGWARDEN_CONFIG, else
// $XDG_CONFIG_HOME/ringwarden/ringctl.toml, else ~/.config/ringwarden/ringctl.toml
// ("" when not even HOME is known).
std::string DefaultConfigPath(const SettingsInputs& in);

// ResolveSettings reads the config file (a missing file is fine unless it was named
// by --config or $RINGWARDEN_CONFIG, or a profile was asked for), reads token_file,
// and applies the precedence. Errors are usage errors (InvalidArgument, NotFound or
// PermissionDenied).
absl::StatusOr<ConnectionSettings> ResolveSettings(const SettingsInputs& in);

}  // namespace ringwarden
