#include "cli/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

// toml++ compiled into this file (header-only), without exceptions: toml::parse returns a
// parse_result. Formatters are not needed.
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

constexpr size_t kMaxConfigBytes = 1024 * 1024;
constexpr size_t kMaxTokenBytes = 64 * 1024;
constexpr size_t kMaxCaBytes = 1024 * 1024;
constexpr double kMinTimeoutSeconds = 0.1;
constexpr double kMaxTimeoutSeconds = 3600;

bool IsBareKey(absl::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

constexpr char kKnownKeys[] = "expected one of server, token, token_file, ca_file, timeout";

// ConfigReader turns the document toml++ parsed into ConfigValues, refusing every key,
// table and type that is not ringctl's, with the line it was found on.
class ConfigReader {
 public:
  explicit ConfigReader(absl::string_view path) : path_(path) {}

  absl::Status Fail(const toml::source_region& where, absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ":", where.begin.line, ": ", message));
  }

  // ReadTable reads the keys of the top level (`profile` empty) or of [profiles.NAME].
  absl::Status ReadTable(const toml::table& table, const std::string& profile,
                         ConfigValues& out) const {
    const std::string where = profile.empty() ? "" : absl::StrCat(" in [profiles.", profile, "]");
    const toml::key* token_key = nullptr;
    const toml::key* token_file_key = nullptr;
    for (const auto& [key, node] : table) {
      const std::string name(key.str());
      if (profile.empty() && name == "profiles") {
        continue;  // ReadProfiles
      }
      const bool known = name == "server" || name == "token" || name == "token_file" ||
                         name == "timeout" || name == "ca_file";
      if (node.is_table() && !node.as_table()->is_inline()) {
        if (!profile.empty()) {
          return Fail(key.source(), absl::StrCat("bad profile name \"", profile, ".", name,
                                                 "\": profiles do not nest"));
        }
        return Fail(key.source(), absl::StrCat("unknown table [", name,
                                               "]; only [profiles.NAME] tables are allowed"));
      }
      if (node.is_array_of_tables()) {
        return Fail(key.source(),
                    "arrays of tables are not supported; only [profiles.NAME] "
                    "tables are");
      }
      if (!known) {
        return Fail(key.source(),
                    absl::StrCat("unknown key \"", name, "\"", where, "; ", kKnownKeys));
      }
      const std::string label = absl::StrCat(name, where);
      if (name == "timeout") {
        std::optional<double> seconds = node.is_number() ? node.value<double>() : std::nullopt;
        if (!seconds.has_value()) {
          return Fail(key.source(),
                      absl::StrCat("timeout", where, " must be a number of seconds",
                                   node.is_string() ? ", without quotes"
                                                    : absl::StrCat(", not ", TypeName(node))));
        }
        if (!(*seconds >= kMinTimeoutSeconds && *seconds <= kMaxTimeoutSeconds)) {
          return Fail(key.source(),
                      absl::StrCat("timeout", where, " must be between ", kMinTimeoutSeconds,
                                   " and ", kMaxTimeoutSeconds, " seconds"));
        }
        out.timeout_seconds = *seconds;
        continue;
      }
      const std::string* text = node.is_string() ? &node.as_string()->get() : nullptr;
      if (text == nullptr) {
        return Fail(key.source(),
                    absl::StrCat(label, " must be a \"quoted string\", not ", TypeName(node)));
      }
      if (text->empty()) {
        return Fail(key.source(), absl::StrCat(label, " must not be empty"));
      }
      if (name == "server") {
        out.server = *text;
      } else if (name == "ca_file") {
        out.ca_file = *text;
      } else if (name == "token") {
        out.token = *text;
        token_key = &key;
      } else {
        out.token_file = *text;
        token_file_key = &key;
      }
    }
    if (token_key != nullptr && token_file_key != nullptr) {
      const toml::key* later =
          token_key->source().begin < token_file_key->source().begin ? token_file_key : token_key;
      return Fail(later->source(), absl::StrCat("set token or token_file", where, ", not both"));
    }
    return absl::OkStatus();
  }

  absl::Status ReadProfiles(const toml::table& root, ConfigFile& file) const {
    const toml::node* profiles = root.get("profiles");
    if (profiles == nullptr) {
      return absl::OkStatus();
    }
    const toml::key& key = root.find("profiles")->first;
    const toml::table* tables = profiles->as_table();
    if (tables == nullptr || tables->is_inline() || tables->empty()) {
      return Fail(key.source(), tables == nullptr || tables->is_inline()
                                    ? "profiles must be [profiles.NAME] tables"
                                    : "unknown table [profiles]; only [profiles.NAME] tables "
                                      "are allowed");
    }
    for (const auto& [name_key, node] : *tables) {
      const std::string name(name_key.str());
      if (node.is_array_of_tables()) {
        return Fail(name_key.source(),
                    "arrays of tables are not supported; only [profiles.NAME] tables are");
      }
      if (!node.is_table() || node.as_table()->is_inline()) {
        return Fail(name_key.source(),
                    absl::StrCat("profiles.", name, " must be a [profiles.", name, "] table"));
      }
      if (!IsBareKey(name)) {
        return Fail(name_key.source(), absl::StrCat("bad profile name \"", name,
                                                    "\": use letters, digits, '-' and '_'"));
      }
      RETURN_IF_ERROR(ReadTable(*node.as_table(), name, file.profiles[name]));
    }
    return absl::OkStatus();
  }

 private:
  static std::string TypeName(const toml::node& node) {
    switch (node.type()) {
      case toml::node_type::table:
        return "a table";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a float";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::date:
      case toml::node_type::time:
      case toml::node_type::date_time:
        return "a date or time";
      case toml::node_type::none:
        break;
    }
    return "a value";
  }

  const std::string path_;
};

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit,
                                          bool* readable_by_others) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  *readable_by_others = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  std::string data(limit + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is larger than the limit of ", limit, " bytes"));
  }
  return data;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

// ExpandPath resolves "~/" against HOME and relative paths against the config file's folder.
std::string ExpandPath(const std::string& path, const std::string& config_path,
                       const std::optional<std::string>& home) {
  if (absl::StartsWith(path, "~/") && home.has_value()) {
    return absl::StrCat(*home, path.substr(1));
  }
  if (!path.empty() && path[0] != '/') {
    return absl::StrCat(Dirname(config_path), "/", path);
  }
  return path;
}

std::string LooseModeWarning(const std::string& what, const std::string& path) {
  return absl::StrCat("warning: ", what, " ", path,
                      " holds a token and is readable by group or others; run: chmod 600 ", path);
}

// NonEmpty treats an empty environment value as unset.
const std::optional<std::string>& NonEmpty(const std::optional<std::string>& v) {
  static const std::optional<std::string>* const kUnset = new std::optional<std::string>();
  return v.has_value() && !v->empty() ? v : *kUnset;
}

}  // namespace

absl::StatusOr<ConfigFile> ParseConfig(absl::string_view text, absl::string_view path) {
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is larger than the limit of ", kMaxConfigBytes, " bytes"));
  }
  toml::parse_result parsed =
      toml::parse(std::string_view(text.data(), text.size()), std::string_view());
  if (!parsed) {
    const toml::parse_error& error = parsed.error();
    const std::string_view description = error.description();
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", error.source().begin.line, ": ",
                     absl::string_view(description.data(), description.size()), " (column ",
                     error.source().begin.column, ")"));
  }
  ConfigFile file;
  file.path = std::string(path);
  const ConfigReader reader(path);
  RETURN_IF_ERROR(reader.ReadTable(parsed.table(), "", file.top));
  RETURN_IF_ERROR(reader.ReadProfiles(parsed.table(), file));
  return file;
}

std::string DefaultConfigPath(const SettingsInputs& in) {
  if (in.config_path.has_value()) {
    return *in.config_path;
  }
  if (NonEmpty(in.env_config).has_value()) {
    return *in.env_config;
  }
  if (NonEmpty(in.env_xdg_config_home).has_value()) {
    return absl::StrCat(*in.env_xdg_config_home, "/ringwarden/ringctl.toml");
  }
  if (NonEmpty(in.env_home).has_value()) {
    return absl::StrCat(*in.env_home, "/.config/ringwarden/ringctl.toml");
  }
  return "";
}

absl::StatusOr<ConnectionSettings> ResolveSettings(const SettingsInputs& in) {
  ConnectionSettings s;
  const std::string path = DefaultConfigPath(in);
  const bool named = in.config_path.has_value() || NonEmpty(in.env_config).has_value();
  const std::optional<std::string>& profile =
      in.profile.has_value() ? in.profile : NonEmpty(in.env_profile);

  std::optional<ConfigFile> file;
  if (!path.empty() && (named || FileExists(path))) {
    bool loose = false;
    absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxConfigBytes, &loose);
    if (!text.ok()) {
      return absl::Status(text.status().code(),
                          absl::StrCat("config file: ", text.status().message()));
    }
    ASSIGN_OR_RETURN(file, ParseConfig(*text, path));
    file->readable_by_others = loose;
    s.config_path = path;
  }

  // The selected profile's keys replace the top-level ones; token and token_file
  // are one setting, so a profile's token_file also hides a top-level token.
  ConfigValues merged;
  bool any_token_in_file = false;
  if (file.has_value()) {
    merged = file->top;
    any_token_in_file = file->top.token.has_value();
    for (const auto& [name, values] : file->profiles) {
      any_token_in_file = any_token_in_file || values.token.has_value();
    }
    if (any_token_in_file && file->readable_by_others) {
      s.warnings.push_back(LooseModeWarning("config file", path));
    }
  }
  if (profile.has_value()) {
    if (!file.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("profile \"", *profile, "\" asked for, but there is no config file",
                       path.empty() ? std::string() : absl::StrCat(" at ", path)));
    }
    auto it = file->profiles.find(*profile);
    if (it == file->profiles.end()) {
      std::vector<std::string> names;
      for (const auto& [name, values] : file->profiles) {
        names.push_back(name);
      }
      return absl::InvalidArgumentError(
          absl::StrCat("no profile \"", *profile, "\" in ", path,
                       "; profiles: ", names.empty() ? "none" : absl::StrJoin(names, ", ")));
    }
    const ConfigValues& p = it->second;
    if (p.server.has_value()) {
      merged.server = p.server;
    }
    if (p.timeout_seconds.has_value()) {
      merged.timeout_seconds = p.timeout_seconds;
    }
    if (p.ca_file.has_value()) {
      merged.ca_file = p.ca_file;
    }
    if (p.token.has_value() || p.token_file.has_value()) {
      merged.token = p.token;
      merged.token_file = p.token_file;
    }
  }

  if (in.server.has_value()) {
    s.server = *in.server;
  } else if (NonEmpty(in.env_server).has_value()) {
    s.server = *in.env_server;
  } else if (merged.server.has_value()) {
    s.server = *merged.server;
  }

  if (in.timeout_seconds.has_value()) {
    s.timeout_seconds = *in.timeout_seconds;
  } else if (merged.timeout_seconds.has_value()) {
    s.timeout_seconds = *merged.timeout_seconds;
  }

  const bool insecure = in.insecure || NonEmpty(in.env_insecure).value_or("") == "1";
  std::optional<std::string> ca_path;
  if (in.ca_file.has_value()) {
    ca_path = *in.ca_file;
  } else if (NonEmpty(in.env_ca).has_value()) {
    ca_path = *in.env_ca;
  } else if (merged.ca_file.has_value()) {
    ca_path = ExpandPath(*merged.ca_file, path, in.env_home);
  }
  if (insecure && in.ca_file.has_value()) {
    return absl::InvalidArgumentError("pass --ca or --insecure, not both");
  }
  if (!insecure) {
    if (!ca_path.has_value()) {
      return absl::InvalidArgumentError(
          "the server's CA is needed to verify it: pass --ca FILE (or RINGWARDEN_CA, or ca_file "
          "in the config file); --insecure only for a plaintext server on this host");
    }
    bool unused_loose = false;
    absl::StatusOr<std::string> pem = ReadSmallFile(*ca_path, kMaxCaBytes, &unused_loose);
    if (!pem.ok()) {
      return absl::Status(pem.status().code(), absl::StrCat("CA file: ", pem.status().message()));
    }
    s.server_ca_pem = *std::move(pem);
  }

  if (in.token.has_value()) {
    s.token = *in.token;
  } else if (NonEmpty(in.env_token).has_value()) {
    s.token = *in.env_token;
  } else if (merged.token.has_value()) {
    s.token = *merged.token;
  } else if (merged.token_file.has_value()) {
    const std::string token_path = ExpandPath(*merged.token_file, path, in.env_home);
    bool loose = false;
    absl::StatusOr<std::string> token = ReadSmallFile(token_path, kMaxTokenBytes, &loose);
    if (!token.ok()) {
      return absl::Status(token.status().code(),
                          absl::StrCat("token_file of ", path, ": ", token.status().message()));
    }
    s.token = std::string(absl::StripAsciiWhitespace(*token));
    if (s.token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("token_file ", token_path, " (from ", path, ") is empty"));
    }
    if (loose) {
      s.warnings.push_back(LooseModeWarning("token file", token_path));
    }
  }
  return s;
}

}  // namespace ringwarden
