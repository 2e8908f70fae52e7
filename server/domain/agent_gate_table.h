// agent_gate_table.h: what a snapshot knows of individual agents (labels, revocation, reset),
// kept so that a refresh applies the gates changed since the last one instead of every gate.
//
//   AgentGateTable next = previous.With(changes);  // changes: gates read since the last refresh
//   const AgentGate* gate = next.Find(agent_id);   // null: nothing on record
//
// A table is a base, shared by every table built on it, and the changes layered over the base.
// With copies the layer, at most kMaxLayeredChanges gates, and folds it into a new base once it
// holds more: a refresh costs its own changes plus at most that many, whatever the fleet size,
// and the whole table is copied once per kMaxLayeredChanges changes. A refresh without changes
// copies nothing.
// Thread-safety: immutable; tables share their parts.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "server/domain/enrollment.h"

namespace ringwarden {

class AgentGateTable {
 public:
  using Gates = absl::flat_hash_map<std::string, AgentGate>;
  static constexpr size_t kMaxLayeredChanges = 4096;

  // An empty table: no agent has a gate.
  AgentGateTable();
  // A table of `whole`, every gated agent (an empty gate among them is dropped).
  explicit AgentGateTable(Gates whole);

  // With returns this table with `changes` over it. An empty gate in `changes` clears the
  // agent's; a change to the gate an agent already has is left out.
  AgentGateTable With(Gates changes) const;

  // Find returns the agent's gate, or null when it has none.
  const AgentGate* Find(const std::string& agent_id) const;

  // size: the agents with a gate.
  size_t size() const { return size_; }
  // layered: the changes held over the base (at most kMaxLayeredChanges).
  size_t layered() const { return layer_->size(); }

 private:
  AgentGateTable(std::shared_ptr<const Gates> base, std::shared_ptr<const Gates> layer,
                 size_t size);

  std::shared_ptr<const Gates> base_;   // no empty gates
  std::shared_ptr<const Gates> layer_;  // over base_; an empty gate clears one
  size_t size_ = 0;
};

}  // namespace ringwarden
