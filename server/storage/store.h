// store.h: the storage interface; PostgreSQL (pg_store.h) is the implementation.
//
// Each method is one short transaction. Errors: NOT_FOUND, ALREADY_EXISTS,
// FAILED_PRECONDITION (do not retry), ABORTED (a concurrent change won; re-read
// and retry), UNAVAILABLE (database unreachable; retry later).
// Thread-safety: implementations are safe to call from many threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/storage/records.h"

namespace ringwarden {

// RolloutChange is one state change and its audit entry, applied together.
struct RolloutChange {
  std::string rollout_id;
  int64_t expected_revision = 0;  // ABORTED when the row moved on
  RolloutPosition to;
  bool stage_changed = false;  // resets stage_started_at
  AuditRecord audit;
  // Side effects that must commit with the change.
  bool mark_completed = false;  // content version becomes a completed version
  bool revoke_version = false;  // content version is revoked forever
  // New broad wave and its share of the broad ring; negative keeps the current one.
  int broad_wave = -1;
  double broad_fraction = -1;
};

// NewRollout creates a rollout, optionally cancelling the channel's unfinished one.
struct NewRollout {
  RolloutRecord rollout;
  std::vector<AuditRecord> audit;          // rollout_id is filled in
  std::optional<RolloutChange> supersede;  // cancels the previous unfinished rollout
};

// StoreObserver hears about every storage operation (for metrics).
class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  // OnOperation: `operation` is a short snake_case name, e.g. "create_rollout".
  virtual void OnOperation(const char* operation, absl::Duration latency,
                           absl::StatusCode code) = 0;
};

// FleetStats are the counts the metrics report about the fleet and rollouts.
struct FleetStats {
  std::map<std::pair<std::string, std::string>, int64_t> rollouts;  // (channel, state) -> n
  std::map<std::string, int64_t> agents_by_ring;
  std::map<std::pair<std::string, int64_t>, int64_t> agents_by_version;  // (channel, version)
  int64_t agents_seen_5m = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // InsertContent stores a verified version; FAILED_PRECONDITION unless its
  // version is above the channel's newest (checked under a row lock).
  virtual absl::Status InsertContent(const ContentRecord& content, const AuditRecord& audit) = 0;
  // ListContent lists metadata (no payload), newest first; empty channel = all.
  virtual absl::StatusOr<std::vector<ContentRecord>> ListContent(const std::string& channel) = 0;
  // GetContent returns one version with its payload; NOT_FOUND when absent.
  virtual absl::StatusOr<ContentRecord> GetContent(const std::string& channel, int64_t version) = 0;

  // CreateRollout inserts a rollout (and its supersede change) atomically.
  // FAILED_PRECONDITION when another unfinished rollout of the channel exists.
  virtual absl::Status CreateRollout(const NewRollout& create) = 0;
  virtual absl::StatusOr<RolloutRecord> GetRollout(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<RolloutRecord>> ListRollouts(const std::string& channel,
                                                                  bool active_only, int limit) = 0;
  virtual absl::StatusOr<std::optional<RolloutRecord>> GetUnfinishedRollout(
      const std::string& channel) = 0;
  // ApplyRolloutChange commits the change and its audit entry, or nothing.
  virtual absl::Status ApplyRolloutChange(const RolloutChange& change) = 0;
  // RingProgress counts agents per ring for a rollout.
  virtual absl::StatusOr<std::vector<RingProgressRecord>> RingProgress(
      const RolloutRecord& rollout) = 0;

  virtual absl::Status SetEmergencyStop(bool active, const AuditRecord& audit) = 0;
  virtual absl::Status UpsertPin(const PinRecord& pin, const AuditRecord& audit) = 0;
  virtual absl::StatusOr<std::vector<PinRecord>> ListPins() = 0;

  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(const std::string& rollout_id,
                                                             int limit) = 0;
  // ListAgents returns up to `limit` agents (ring filter optional) and the total.
  virtual absl::StatusOr<std::pair<std::vector<AgentRecord>, int64_t>> ListAgents(
      std::optional<Ring> ring, int limit) = 0;

  // LoadCatalog reads what the assignment snapshot is built from.
  virtual absl::StatusOr<CatalogData> LoadCatalog() = 0;

  // WriteTelemetry writes a batch of agent rows in one transaction.
  virtual absl::Status WriteTelemetry(const TelemetryRows& rows) = 0;

  // PutPolicy stores `body_json` as the next version of policy `name`; returns it.
  virtual absl::StatusOr<PolicyRecord> PutPolicy(const std::string& name,
                                                 const std::string& body_json,
                                                 const AuditRecord& audit) = 0;
  // GetPolicy returns version `version` of `name`, or the newest when 0; NOT_FOUND otherwise.
  virtual absl::StatusOr<PolicyRecord> GetPolicy(const std::string& name, int64_t version) = 0;
  // ListPolicies returns the newest version of every policy.
  virtual absl::StatusOr<std::vector<PolicyRecord>> ListPolicies() = 0;

  // LoadRolloutHealth reads the per-agent telemetry a rollout is judged on:
  // every unpinned agent's version in effect and last heartbeat, the apply
  // results of the rollout's version, and crash reports since `since`.
  virtual absl::StatusOr<RolloutHealthRows> LoadRolloutHealth(const RolloutRecord& rollout,
                                                              absl::Time since) = 0;
  // UpsertDecision records the latest decision for a rollout and ring.
  virtual absl::Status UpsertDecision(const DecisionRecord& decision) = 0;
  virtual absl::StatusOr<std::vector<DecisionRecord>> ListDecisions(
      const std::string& rollout_id) = 0;

  // LoadFleetStats counts rollouts by channel and state and agents by ring and version.
  virtual absl::StatusOr<FleetStats> LoadFleetStats() = 0;
};

}  // namespace ringwarden
