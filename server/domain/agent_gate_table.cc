#include "server/domain/agent_gate_table.h"

#include <optional>
#include <utility>

namespace ringwarden {
namespace {

const std::shared_ptr<const AgentGateTable::Gates>& NoGates() {
  static const auto* none =
      new std::shared_ptr<const AgentGateTable::Gates>(std::make_shared<AgentGateTable::Gates>());
  return *none;
}

}  // namespace

AgentGateTable::AgentGateTable() : AgentGateTable(NoGates(), NoGates(), 0) {}

AgentGateTable::AgentGateTable(Gates whole) : layer_(NoGates()) {
  absl::erase_if(whole, [](const auto& entry) { return entry.second.empty(); });
  size_ = whole.size();
  base_ = std::make_shared<const Gates>(std::move(whole));
}

AgentGateTable::AgentGateTable(std::shared_ptr<const Gates> base,
                               std::shared_ptr<const Gates> layer, size_t size)
    : base_(std::move(base)), layer_(std::move(layer)), size_(size) {}

AgentGateTable AgentGateTable::With(Gates changes) const {
  // The layer is copied at the first change that moves a gate. A read of the changes may return
  // gates as they already are (an agent enrolled without labels; rows read again while an old
  // transaction holds the cursor back): those are left out, so they neither grow the layer nor
  // bring on a fold.
  std::optional<Gates> copied;
  size_t size = size_;
  for (auto& [agent_id, gate] : changes) {
    const AgentGate* now = Find(agent_id);
    if (now == nullptr ? gate.empty() : *now == gate) {
      continue;
    }
    if (!copied.has_value()) {
      copied.emplace(*layer_);
    }
    // The size moves by whether the agent had a gate before this change and has one after.
    size = size + (gate.empty() ? 0 : 1) - (now != nullptr ? 1 : 0);
    copied->insert_or_assign(agent_id, std::move(gate));
  }
  if (!copied.has_value()) {
    return *this;
  }
  Gates& layer = *copied;
  if (layer.size() <= kMaxLayeredChanges) {
    return AgentGateTable(base_, std::make_shared<const Gates>(std::move(layer)), size);
  }
  Gates base = *base_;
  for (auto& [agent_id, gate] : layer) {
    if (gate.empty()) {
      base.erase(agent_id);
    } else {
      base.insert_or_assign(agent_id, std::move(gate));
    }
  }
  return AgentGateTable(std::make_shared<const Gates>(std::move(base)), NoGates(), size);
}

const AgentGate* AgentGateTable::Find(const std::string& agent_id) const {
  if (!layer_->empty()) {
    if (auto it = layer_->find(agent_id); it != layer_->end()) {
      return it->second.empty() ? nullptr : &it->second;
    }
  }
  auto it = base_->find(agent_id);
  return it == base_->end() ? nullptr : &it->second;
}

}  // namespace ringwarden
