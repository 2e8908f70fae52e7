#include "agent-client/sim/memory_content_store.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ringwarden::agent {

absl::Status MemoryContentStore::Apply(const std::string& channel, const ContentVersion& version,
                                       absl::string_view payload) {
  if (!IsValidChannelName(channel)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid channel name \"", channel, "\""));
  }
  ChannelSlot& slot = state_.channels[channel];
  const bool keep = slot.KeepsCurrentOnApply();
  if (keep_payloads_) {
    Payloads& p = payloads_[channel];
    if (keep) {
      p.previous = std::move(p.current);
    }
    p.current = std::string(payload);
  }
  slot.ApplyVersion(version, keep);
  return absl::OkStatus();
}

absl::Status MemoryContentStore::Revert(const std::string& channel) {
  auto found = state_.channels.find(channel);
  if (found == state_.channels.end()) {
    return absl::NotFoundError(absl::StrCat("no content for channel ", channel));
  }
  if (found->second.last_known_good.empty()) {
    state_.channels.erase(found);
    payloads_.erase(channel);
    return absl::OkStatus();
  }
  if (keep_payloads_) {
    Payloads& p = payloads_[channel];
    p.current = std::move(p.previous);
    p.previous.clear();
  }
  found->second.RevertToLastKnownGood();
  return absl::OkStatus();
}

absl::Status MemoryContentStore::MarkAllKnownGood() {
  for (auto& [name, slot] : state_.channels) {
    slot.current_known_good = true;
  }
  return absl::OkStatus();
}

absl::Status MemoryContentStore::SaveMeta(const AgentMeta& meta) {
  state_.meta = meta;
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemoryContentStore::CurrentPayload(const std::string& channel) const {
  if (!keep_payloads_) {
    return absl::FailedPreconditionError("this MemoryContentStore keeps no payloads");
  }
  auto it = payloads_.find(channel);
  if (it == payloads_.end() || state_.CurrentVersion(channel) == 0) {
    return absl::NotFoundError(absl::StrCat("no content for channel ", channel));
  }
  return it->second.current;
}

}  // namespace ringwarden::agent
