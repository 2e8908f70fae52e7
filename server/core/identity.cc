#include "server/core/identity.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

bool IsLabelChar(char c) {
  return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-' || c == '/';
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kReleaser:
      return "releaser";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role r : {Role::kViewer, Role::kReleaser, Role::kAdmin}) {
    if (RoleName(r) == name) {
      return r;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role \"", name, "\"; expected viewer, releaser or admin"));
}

absl::Status ValidateLabels(const std::map<std::string, std::string>& labels) {
  if (labels.size() > 32) {
    return absl::InvalidArgumentError("at most 32 labels per agent");
  }
  auto ok_chars = [](absl::string_view s) {
    for (char c : s) {
      if (!IsLabelChar(c)) {
        return false;
      }
    }
    return true;
  };
  for (const auto& [k, v] : labels) {
    if (k.empty() || k.size() > 64 || v.size() > 64 || !ok_chars(k) || !ok_chars(v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label \"", absl::CHexEscape(k.substr(0, 64)),
          "\": keys must be 1-64 and values 0-64 characters of letters, digits and . _ : / -"));
    }
  }
  return absl::OkStatus();
}

}  // namespace ringwarden
