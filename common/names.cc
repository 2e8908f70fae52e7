#include "common/names.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {

std::string SanitizeText(absl::string_view text, size_t max_bytes) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool valid = len != 0 && c != 0 && i + len <= text.size();
    for (size_t k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    const absl::string_view piece = valid ? text.substr(i, len) : absl::string_view(kReplacement);
    if (out.size() + piece.size() > max_bytes) {
      break;
    }
    out.append(piece.data(), piece.size());
    i += valid ? len : 1;
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

bool IsValidAgentId(absl::string_view agent_id) {
  if (agent_id.empty() || agent_id.size() > 128) {
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
  if (agent_id.empty() || agent_id.size() > 128) {
    return absl::InvalidArgumentError("agent_id must be 1-128 characters");
  }
  if (!IsValidAgentId(agent_id)) {
    return absl::InvalidArgumentError("agent_id may only contain letters, digits and . _ : -");
  }
  return absl::OkStatus();
}

}  // namespace ringwarden
