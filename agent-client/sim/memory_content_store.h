// memory_content_store.h: the fleet simulator's ContentStore, kept in memory.
//
//   MemoryContentStore store;                          // versions and digests only
//   MemoryContentStore with_bytes(/*keep_payloads=*/true);  // tests: payloads too
//
// Same last-known-good rules as DiskContentStore (ChannelSlot), nothing persisted,
// nothing to repair on Load. Part of ringwarden::fleet_sim, never of the real agent.
// Thread-safety: not thread-safe; each store is owned by one Agent.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent-client/content_store.h"

namespace ringwarden::agent {

// MemoryContentStore keeps versions and digests in memory; payload bytes only
// when asked to (tests), since the fleet simulator runs 10^5 of them.
class MemoryContentStore final : public ContentStore {
 public:
  explicit MemoryContentStore(bool keep_payloads = false) : keep_payloads_(keep_payloads) {}

  absl::Status Load() override { return absl::OkStatus(); }
  const AgentState& state() const override { return state_; }
  absl::Status Apply(const std::string& channel, const ContentVersion& version,
                     absl::string_view payload) override;
  absl::Status Revert(const std::string& channel) override;
  absl::Status MarkAllKnownGood() override;
  absl::Status SaveMeta(const AgentMeta& meta) override;
  std::string ContentPath(const std::string&) const override { return ""; }

  // CurrentPayload returns the current bytes of `channel` (keep_payloads only).
  absl::StatusOr<std::string> CurrentPayload(const std::string& channel) const;

 private:
  struct Payloads {
    std::string current;
    std::string previous;
  };
  const bool keep_payloads_;
  AgentState state_;
  std::map<std::string, Payloads> payloads_;
};

}  // namespace ringwarden::agent
