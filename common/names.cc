#include "common/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {

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

}  // namespace ringwarden
