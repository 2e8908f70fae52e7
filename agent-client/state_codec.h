// state_codec.h: the agent's state file (<dir>/.state.json) <-> AgentState.
//
//   std::string text = StateToJson(state, PendingApply{"rules.x", version, true});
//   ASSIGN_OR_RETURN(StoredState stored, StateFromJson(text, path));
//
// The file holds every channel slot, the agent's bookkeeping (AgentMeta: boot
// marker, trust state, the newest accepted root) and, while an apply is in
// progress, its journal entry (PendingApply); one file, so the trust state is
// replaced atomically with the rest. Format 2 added the trust state ("trust",
// EncodeTrustState's JSON) and the newest accepted root ("trusted_root", ""
// while the pinned one is the newest), both required, and each version's
// "manifest_sha256" (optional: absent means unknown). A format 1 file still
// loads, with an empty trust state, so an upgraded agent starts from its
// pinned root and records its ring at its next enrollment. StateFromJson treats
// the text as untrusted: any malformed, mistyped or truncated content and any
// channel name that ValidateChannelName refuses (names become directory names)
// is DATA_LOSS, never an exception. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent-client/content_store.h"

namespace ringwarden::agent {

// kStateFormat is the "format" number StateToJson writes; StateFromJson also
// accepts kOldestStateFormat (before signed assignments).
inline constexpr int kStateFormat = 2;
inline constexpr int kOldestStateFormat = 1;

// PendingApply is the journal entry of an apply in progress: `version` is being
// made current on `channel`, keeping the old current one as last-known-good when `keep`.
struct PendingApply {
  std::string channel;
  ContentVersion version;
  bool keep = false;
};

// StoredState is what a state file holds.
struct StoredState {
  AgentState state;  // repairs stay empty
  std::optional<PendingApply> pending;
};

// StateToJson returns the state file text (indented JSON) for `state` and `pending`.
std::string StateToJson(const AgentState& state, const std::optional<PendingApply>& pending);

// StateFromJson parses state file text; `path` only names the file in messages.
// FAILED_PRECONDITION for another format number; DATA_LOSS for corrupt content,
// with a hint to move the file away.
absl::StatusOr<StoredState> StateFromJson(absl::string_view text, absl::string_view path);

}  // namespace ringwarden::agent
