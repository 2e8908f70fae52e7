// names.h: validation of names that cross the wire (channels, agent ids).
//
// Shared by the server, which refuses bad names, and the tools that produce
// them (ringctl content sign), so a bad name is caught before signing.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

// SanitizeText makes agent-supplied free text safe to store: every byte that
// does not start well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or
// code points above U+10FFFF, which PostgreSQL and JSON refuse) and every NUL
// becomes U+FFFD, and the result is cut to at most `max_bytes` on a character
// boundary.
std::string SanitizeText(absl::string_view text, size_t max_bytes);

// ValidateChannelName accepts 1-64 characters of [a-z0-9._-], starting with a letter.
absl::Status ValidateChannelName(absl::string_view channel);

// ValidateHealthEventKind accepts the kind of an agent health event ("cpu_high"): 1-64
// characters of [a-z0-9_], starting with a letter. Policies weigh events by kind.
absl::Status ValidateHealthEventKind(absl::string_view kind);

// kMaxAgentIdLength bounds an agent id.
inline constexpr size_t kMaxAgentIdLength = 128;

// ValidateAgentId accepts 1-128 (kMaxAgentIdLength) characters of [A-Za-z0-9._:-].
absl::Status ValidateAgentId(absl::string_view agent_id);
bool IsValidAgentId(absl::string_view agent_id);

}  // namespace ringwarden
