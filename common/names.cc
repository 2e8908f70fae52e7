#include "common/names.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {

namespace {

// Utf8Length is the length of the well-formed UTF-8 sequence (RFC 3629, as
// PostgreSQL and JSON accept it) at the start of `s`, or 0: no overlong forms,
// no surrogates, nothing above U+10FFFF, and no NUL.
size_t Utf8Length(absl::string_view s) {
  const unsigned char c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) {
    return c == 0 ? 0 : 1;
  }
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : 0x80;  // E0 80..9F would be overlong
    hi = c == 0xED ? 0x9F : 0xBF;  // ED A0..BF would be a surrogate
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : 0x80;  // F0 80..8F would be overlong
    hi = c == 0xF4 ? 0x8F : 0xBF;  // F4 90.. would be above U+10FFFF
  } else {
    return 0;  // a continuation byte, C0/C1 (overlong) or F5..FF
  }
  if (s.size() < len) {
    return 0;
  }
  const unsigned char second = static_cast<unsigned char>(s[1]);
  if (second < lo || second > hi) {
    return 0;
  }
  for (size_t k = 2; k < len; ++k) {
    if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) {
      return 0;
    }
  }
  return len;
}

}  // namespace

std::string SanitizeText(absl::string_view text, size_t max_bytes) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = Utf8Length(text.substr(i));
    const absl::string_view piece =
        len != 0 ? text.substr(i, len) : absl::string_view(kReplacement);
    if (out.size() + piece.size() > max_bytes) {
      break;
    }
    out.append(piece.data(), piece.size());
    i += len != 0 ? len : 1;
  }
  return out;
}

absl::Status ValidateChannelName(absl::string_view channel) {
  bool ok = !channel.empty() && channel.size() <= 64 && absl::ascii_islower(channel[0]);
  for (char c : channel) {
    ok = ok &&
         (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel \"", absl::CHexEscape(channel.substr(0, 64)),
        "\" is not valid: use 1-64 characters of a-z 0-9 . _ - starting with a letter"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHealthEventKind(absl::string_view kind) {
  bool ok = !kind.empty() && kind.size() <= 64 && absl::ascii_islower(kind[0]);
  for (char c : kind) {
    ok = ok && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("health event kind \"", absl::CHexEscape(kind.substr(0, 64)),
                     "\" is not valid: use 1-64 characters of a-z 0-9 _ starting with a letter"));
  }
  return absl::OkStatus();
}

bool IsValidAgentId(absl::string_view agent_id) {
  if (agent_id.empty() || agent_id.size() > kMaxAgentIdLength) {
    return false;
  }
  for (char c : agent_id) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::Status ValidateAgentId(absl::string_view agent_id) {
  if (agent_id.empty() || agent_id.size() > kMaxAgentIdLength) {
    return absl::InvalidArgumentError("agent_id must be 1-128 characters");
  }
  if (!IsValidAgentId(agent_id)) {
    return absl::InvalidArgumentError("agent_id may only contain letters, digits and . _ : -");
  }
  return absl::OkStatus();
}

}  // namespace ringwarden
