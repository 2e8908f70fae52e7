// identity.h: who acts on the server, as the core sees it.
//
// Principals (a name and a role) act on rollouts; agents are known by an id
// and the labels their credential carries. How either is proven is the
// transport's business (server/auth.h); the core only reads the result.
// Value types and pure functions; thread-safe.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/names.h"  // ValidateAgentId

namespace ringwarden {

// Role orders what a principal may do: viewer < releaser < admin.
enum class Role { kViewer = 0, kReleaser = 1, kAdmin = 2 };

// Principal is an authenticated person or service acting on the server.
struct Principal {
  std::string name;
  Role role = Role::kViewer;
};

// RoleName returns "viewer", "releaser" or "admin"; ParseRole is its inverse.
absl::string_view RoleName(Role role);
absl::StatusOr<Role> ParseRole(absl::string_view name);

// AgentIdentity is what an agent credential proves.
struct AgentIdentity {
  std::string agent_id;
  std::map<std::string, std::string> labels;
  // When set, the labels held by the snapshot the call reads, used in place of `labels`:
  // every call of a labelled agent authenticates, and none should copy its labels. The
  // snapshot outlives the call that reads it.
  const std::map<std::string, std::string>* snapshot_labels = nullptr;

  const std::map<std::string, std::string>& Labels() const {
    return snapshot_labels != nullptr ? *snapshot_labels : labels;
  }
};

// ValidateLabels accepts at most 32 labels, keys 1-64 and values 0-64
// characters of [A-Za-z0-9._:/-].
absl::Status ValidateLabels(const std::map<std::string, std::string>& labels);

}  // namespace ringwarden
