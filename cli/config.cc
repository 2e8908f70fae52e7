#include "cli/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>

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

bool IsBareKeyChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

bool IsBareKey(absl::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (!IsBareKeyChar(c)) {
      return false;
    }
  }
  return true;
}

// A parsed right-hand side.
struct Value {
  bool is_string = false;
  std::string text;  // the string, or the number's spelling
  double number = 0;
};

// ParseBasicString parses a "..." string at the start of `in` (which starts with
// '"'), leaving `in` after the closing quote.
absl::StatusOr<std::string> ParseBasicString(absl::string_view& in) {
  std::string out;
  size_t i = 1;
  while (i < in.size()) {
    const char c = in[i];
    if (c == '"') {
      in.remove_prefix(i + 1);
      return out;
    }
    if (c == '\\') {
      if (i + 1 >= in.size()) {
        break;
      }
      const char e = in[i + 1];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        default:
          return absl::InvalidArgumentError(
              absl::StrCat("unsupported escape \\", std::string(1, e),
                           " (use \\\", \\\\, \\n, \\t or \\r, or a 'literal string')"));
      }
      i += 2;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      return absl::InvalidArgumentError("control character in a string");
    }
    out += c;
    ++i;
  }
  return absl::InvalidArgumentError("unterminated string (strings end on the same line)");
}

absl::StatusOr<Value> ParseValue(absl::string_view& in) {
  Value v;
  if (absl::StartsWith(in, "\"\"\"") || absl::StartsWith(in, "'''")) {
    return absl::InvalidArgumentError("multi-line strings are not supported");
  }
  if (absl::StartsWith(in, "\"")) {
    v.is_string = true;
    ASSIGN_OR_RETURN(v.text, ParseBasicString(in));
    return v;
  }
  if (absl::StartsWith(in, "'")) {
    const size_t close = in.find('\'', 1);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("unterminated string (strings end on the same line)");
    }
    v.is_string = true;
    v.text = std::string(in.substr(1, close - 1));
    in.remove_prefix(close + 1);
    return v;
  }
  size_t end = 0;
  while (end < in.size() && !absl::ascii_isspace(in[end]) && in[end] != '#') {
    ++end;
  }
  v.text = std::string(in.substr(0, end));
  in.remove_prefix(end);
  bool digit = false, ok_chars = true;
  for (char c : v.text) {
    digit = digit || absl::ascii_isdigit(c);
    ok_chars = ok_chars &&
               (absl::ascii_isdigit(c) || c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E');
  }
  if (!digit || !ok_chars || !absl::SimpleAtod(v.text, &v.number)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read value \"", v.text,
                                                   "\": expected a \"quoted string\" or a number"));
  }
  return v;
}

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
  ConfigFile file;
  file.path = std::string(path);
  ConfigValues* table = &file.top;
  std::set<std::string> seen;  // keys of the current table
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    auto fail = [&](absl::string_view message) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", message));
    };
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') {
      continue;
    }
    if (line[0] == '[') {
      if (absl::StartsWith(line, "[[")) {
        return fail("arrays of tables are not supported; only [profiles.NAME] tables are");
      }
      const size_t close = line.find(']');
      if (close == absl::string_view::npos) {
        return fail("unterminated table header; expected [profiles.NAME]");
      }
      absl::string_view rest = absl::StripLeadingAsciiWhitespace(line.substr(close + 1));
      if (!rest.empty() && rest[0] != '#') {
        return fail("unexpected text after the table header");
      }
      absl::string_view name = absl::StripAsciiWhitespace(line.substr(1, close - 1));
      if (!absl::ConsumePrefix(&name, "profiles.")) {
        return fail(
            absl::StrCat("unknown table [", name, "]; only [profiles.NAME] tables are allowed"));
      }
      if (!IsBareKey(name)) {
        return fail(
            absl::StrCat("bad profile name \"", name, "\": use letters, digits, '-' and '_'"));
      }
      const std::string profile(name);
      if (file.profiles.count(profile) > 0) {
        return fail(absl::StrCat("profile ", profile, " is defined twice"));
      }
      table = &file.profiles[profile];
      seen.clear();
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return fail("expected key = value, a [profiles.NAME] header or a # comment");
    }
    const std::string key(absl::StripTrailingAsciiWhitespace(line.substr(0, eq)));
    if (!IsBareKey(key)) {
      return fail(absl::StrCat("bad key \"", key,
                               "\"; expected one of server, token, "
                               "token_file, ca_file, timeout"));
    }
    if (key != "server" && key != "token" && key != "token_file" && key != "timeout" &&
        key != "ca_file") {
      return fail(absl::StrCat("unknown key \"", key,
                               "\"; expected one of server, token, token_file, ca_file, timeout"));
    }
    if (!seen.insert(key).second) {
      return fail(absl::StrCat("key \"", key, "\" is set twice"));
    }
    absl::string_view rhs = absl::StripLeadingAsciiWhitespace(line.substr(eq + 1));
    if (rhs.empty() || rhs[0] == '#') {
      return fail(absl::StrCat("key \"", key, "\" has no value"));
    }
    absl::StatusOr<Value> value = ParseValue(rhs);
    if (!value.ok()) {
      return fail(value.status().message());
    }
    rhs = absl::StripLeadingAsciiWhitespace(rhs);
    if (!rhs.empty() && rhs[0] != '#') {
      return fail(absl::StrCat("unexpected text after the value of \"", key, "\""));
    }
    if (key == "timeout") {
      if (value->is_string) {
        return fail("timeout must be a number of seconds, without quotes");
      }
      if (value->number < kMinTimeoutSeconds || value->number > kMaxTimeoutSeconds) {
        return fail(absl::StrCat("timeout must be between ", kMinTimeoutSeconds, " and ",
                                 kMaxTimeoutSeconds, " seconds"));
      }
      table->timeout_seconds = value->number;
      continue;
    }
    if (!value->is_string) {
      return fail(absl::StrCat(key, " must be a \"quoted string\""));
    }
    if (value->text.empty()) {
      return fail(absl::StrCat(key, " must not be empty"));
    }
    if (key == "server") {
      table->server = value->text;
    } else if (key == "ca_file") {
      table->ca_file = value->text;
    } else if (key == "token" || key == "token_file") {
      if (seen.count(key == "token" ? "token_file" : "token") > 0) {
        return fail("set token or token_file, not both");
      }
      (key == "token" ? table->token : table->token_file) = value->text;
    }
  }
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
