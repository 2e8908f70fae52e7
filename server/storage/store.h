// store.h: the storage interfaces, one per role; PostgreSQL (server/postgres/)
// implements them all, tests/support/fake_store.h does so in memory.
//
// Each component takes only the roles it uses: the snapshot reads a
// CatalogStore (whose catalog carries the trust metadata too), trust uploads
// write a TrustStore, the telemetry writer a TelemetrySink, the controller a
// RolloutStore and a HealthSource. Each method is one short transaction.
// Errors, each with one meaning:
//   NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT   the request names something wrong
//   FAILED_PRECONDITION  refused by a rule (a newer version exists, ...); do not retry
//   ABORTED              only: the rollout moved past `expected_revision`; re-read and retry
//   UNAVAILABLE          transient (database unreachable, or kept aborting the
//                        transaction); the store already retried, retry later
//   UNKNOWN              the commit's outcome is unknown; never retried
// Thread-safety: implementations are safe to call from many threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/domain/transition.h"
#include "server/storage/records.h"

namespace ringwarden {

// RolloutChange is one planned transition and its audit entry, applied together.
struct RolloutChange {
  std::string rollout_id;
  int64_t expected_revision = 0;  // ABORTED when the row moved on
  TransitionPlan plan;            // from PlanTransition, applied as it is
  AuditRecord audit;
};

// NewRollout creates a rollout, optionally cancelling the channel's unfinished one.
struct NewRollout {
  RolloutRecord rollout;
  std::vector<AuditRecord> audit;          // rollout_id is filled in
  std::optional<RolloutChange> supersede;  // cancels the previous unfinished rollout
};

// HealthAgents lists agents for each kind of row a rollout's evidence holds.
struct HealthAgents {
  std::vector<std::string> agents;         // the agent, its labels and ring, its versions in effect
  std::vector<std::string> applies;        // apply results
  std::vector<std::string> fetches;        // completed downloads
  std::vector<std::string> crashes;        // crash reports
  std::vector<std::string> health_events;  // health events

  size_t size() const {
    return agents.size() + applies.size() + fetches.size() + crashes.size() + health_events.size();
  }
  bool empty() const { return size() == 0; }
};

// SeenChange is a heartbeat's whole change to an agent row: when it was last
// seen and since when its current boot runs.
struct SeenChange {
  std::string agent_id;
  absl::Time last_seen;
  std::optional<absl::Time> boot_since;
};

// HealthChanges names, for each kind of row, the agents whose rows of that kind
// changed in the transactions that ended since the previous read.
struct HealthChanges {
  uint64_t horizon = 0;  // pass back to read the changes after these
  // A transaction that began at the horizon was still running at the read: the horizon can
  // move no further until it ends, and later writes wait with it.
  bool held_open = false;
  HealthAgents changed;  // distinct per kind; may name agents deleted since
  // Agent rows a heartbeat alone moved (not in changed.agents for that): the
  // newest per agent, whose values are the row's now unless a later change
  // named the agent.
  std::vector<SeenChange> seen;
};

// HealthQuery selects the telemetry one rollout is judged on.
struct HealthQuery {
  std::string channel;
  int64_t version = 0;
  int64_t previous_version = 0;
  absl::Time since;  // crash reports from this time on
  // Agents carrying the label of any of these pins are left out (HoldingPins()).
  std::vector<LabelPin> holding_pins;
  // When set, only these agents' rows are read, each kind for its own list: the
  // agents a change feed named.
  std::optional<HealthAgents> only;
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

// CatalogStore: content versions, pins, the emergency stop, and the catalog
// the assignment snapshot is built from.
class CatalogStore {
 public:
  virtual ~CatalogStore() = default;
  // InsertContent stores a verified version; FAILED_PRECONDITION unless its
  // version is above the channel's newest (checked under a row lock).
  virtual absl::Status InsertContent(const ContentRecord& content, const AuditRecord& audit) = 0;
  // ListContent lists metadata (no payload), newest first; empty channel = all.
  virtual absl::StatusOr<std::vector<ContentRecord>> ListContent(const std::string& channel) = 0;
  // GetContent returns one version with its payload; NOT_FOUND when absent.
  virtual absl::StatusOr<ContentRecord> GetContent(const std::string& channel, int64_t version) = 0;
  virtual absl::Status SetEmergencyStop(bool active, const AuditRecord& audit) = 0;
  virtual absl::Status UpsertPin(const PinRecord& pin, const AuditRecord& audit) = 0;
  // ListPins lists every pin by (label key, label value, channel).
  virtual absl::StatusOr<std::vector<PinRecord>> ListPins() = 0;
  // LoadCatalog reads what the assignment snapshot is built from, stored roots
  // and floors included, in one transaction. With `gates_changed_since` (the
  // agent_gates_cursor of an earlier read) it reads only the agent gates
  // changed since that read, unless it cannot tell which (a cursor of another
  // database server, or one this server has not reached): then it reads them
  // all and says so (agent_gates_complete).
  virtual absl::StatusOr<CatalogData> LoadCatalog(
      std::optional<AgentGateCursor> gates_changed_since) = 0;
};

// TrustStore: the root of trust and the channel floors, stored exactly as
// release engineers signed them offline. The caller verifies before storing;
// storage keeps the ordering rules under its own lock.
class TrustStore {
 public:
  virtual ~TrustStore() = default;
  // InsertRoot stores a verified root. FAILED_PRECONDITION unless its version
  // is exactly one above the newest stored root (any version when none is).
  virtual absl::Status InsertRoot(const RootRecord& root, const AuditRecord& audit) = 0;
  // ListRoots lists every stored root, ascending version.
  virtual absl::StatusOr<std::vector<RootRecord>> ListRoots() = 0;
  // UpsertFloor stores a verified floor as the channel's floor.
  // FAILED_PRECONDITION when its min_version is below the stored one (checked
  // under the channel's row lock, which rollout creation takes too).
  virtual absl::Status UpsertFloor(const FloorRecord& floor, const AuditRecord& audit) = 0;
  // ListFloors lists every channel's floor, by channel.
  virtual absl::StatusOr<std::vector<FloorRecord>> ListFloors() = 0;
  // GetFloor returns the channel's floor, nullopt when it has none.
  virtual absl::StatusOr<std::optional<FloorRecord>> GetFloor(const std::string& channel) = 0;
};

// PolicyStore: versioned rollout policies.
class PolicyStore {
 public:
  virtual ~PolicyStore() = default;
  // PutPolicy stores `body_json` as the next version of policy `name`; returns it.
  virtual absl::StatusOr<PolicyRecord> PutPolicy(const std::string& name,
                                                 const std::string& body_json,
                                                 const AuditRecord& audit) = 0;
  // GetPolicy returns version `version` of `name`, or the newest when 0; NOT_FOUND otherwise.
  virtual absl::StatusOr<PolicyRecord> GetPolicy(const std::string& name, int64_t version) = 0;
  // ListPolicies returns the newest version of every policy.
  virtual absl::StatusOr<std::vector<PolicyRecord>> ListPolicies() = 0;
};

// RolloutStore: rollouts, their transitions and the controller's decisions.
class RolloutStore {
 public:
  virtual ~RolloutStore() = default;
  // CreateRollout inserts a rollout (and its supersede change) atomically.
  // FAILED_PRECONDITION when another unfinished rollout of the channel exists,
  // or when the version was revoked, a newer one completed or the channel's
  // floor rose above it meanwhile.
  virtual absl::Status CreateRollout(const NewRollout& create) = 0;
  virtual absl::StatusOr<RolloutRecord> GetRollout(const std::string& id) = 0;
  // ListRollouts lists newest first; `active_only` leaves out final states.
  virtual absl::StatusOr<std::vector<RolloutRecord>> ListRollouts(const std::string& channel,
                                                                  bool active_only, int limit) = 0;
  virtual absl::StatusOr<std::optional<RolloutRecord>> GetUnfinishedRollout(
      const std::string& channel) = 0;
  // ApplyRolloutChange commits the plan, its side effects and the audit entry,
  // or nothing: ABORTED when the rollout is no longer at expected_revision.
  virtual absl::Status ApplyRolloutChange(const RolloutChange& change) = 0;
  // UpdateExposure raises the stage's exposure budget (it never shrinks) without a transition:
  // ABORTED when the rollout is no longer at expected_revision.
  virtual absl::Status UpdateExposure(const std::string& rollout_id, int64_t expected_revision,
                                      double admitted_fraction, int64_t admitted_hosts) = 0;
  // UpsertDecision records the latest decision for a rollout and ring.
  virtual absl::Status UpsertDecision(const DecisionRecord& decision) = 0;
  // ListDecisions lists a rollout's latest decision per ring, in ring order.
  virtual absl::StatusOr<std::vector<DecisionRecord>> ListDecisions(
      const std::string& rollout_id) = 0;
};

// TelemetrySink: where batched agent telemetry is written.
class TelemetrySink {
 public:
  virtual ~TelemetrySink() = default;
  // WriteTelemetry writes a batch of agent rows in one transaction.
  virtual absl::Status WriteTelemetry(const TelemetryRows& rows) = 0;
};

// TelemetryUpkeep is what one retention pass did.
struct TelemetryUpkeep {
  int partitions_created = 0;
  int partitions_dropped = 0;
  int64_t rows_expired = 0;  // rows deleted one by one (outside every day partition)
};

// TelemetryRetention keeps the telemetry that grows with time (crash reports,
// health events) within its retention.
class TelemetryRetention {
 public:
  virtual ~TelemetryRetention() = default;
  // MaintainTelemetry prepares storage for the coming days and forgets every
  // UTC day that ended more than `retention` before `now`. INVALID_ARGUMENT
  // for a retention under one day.
  virtual absl::StatusOr<TelemetryUpkeep> MaintainTelemetry(absl::Duration retention,
                                                            absl::Time now) = 0;
};

// HealthSource: the agents and their telemetry, as decisions and views read them.
class HealthSource {
 public:
  virtual ~HealthSource() = default;
  // LoadRolloutHealth reads the per-agent telemetry a rollout is judged on:
  // every agent not held back by `query.holding_pins`, with its version in
  // effect on the channel and last heartbeat; the apply results and completed
  // downloads of the version; crash reports on the version or the previous one
  // since `query.since`.
  virtual absl::StatusOr<RolloutHealthRows> LoadRolloutHealth(const HealthQuery& query) = 0;
  // ReadHealthChanges returns, per kind, every agent whose rows changed in a
  // transaction that ended after `after` (a horizon an earlier read returned)
  // and before the returned horizon. Without `after` it returns only the current
  // horizon: rows read after that call include everything before it. Changes are
  // kept for a while (TrimHealthChanges); a reader that fell further behind reads
  // everything again.
  virtual absl::StatusOr<HealthChanges> ReadHealthChanges(std::optional<uint64_t> after) = 0;
  // TrimHealthChanges forgets the changes recorded more than `keep` ago.
  virtual absl::Status TrimHealthChanges(absl::Duration keep) = 0;
  // ListAgents returns up to `limit` agents (ring filter optional) and the total.
  virtual absl::StatusOr<std::pair<std::vector<AgentRecord>, int64_t>> ListAgents(
      std::optional<Ring> ring, int limit) = 0;
  // LoadFleetStats counts rollouts by channel and state and agents by ring and version.
  virtual absl::StatusOr<FleetStats> LoadFleetStats() = 0;
};

// AuditLog: the append-only trail. Entries are appended by the changes they
// record, in the same transaction; this role only reads.
class AuditLog {
 public:
  virtual ~AuditLog() = default;
  // ListAudit lists newest first; empty rollout_id = every entry.
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAudit(const std::string& rollout_id,
                                                             int limit) = 0;
  // ListAuditOldestFirst lists up to `limit` entries with seq above
  // `after_seq` in ascending seq order, so a reader can page through the
  // whole chain; empty rollout_id = every entry.
  virtual absl::StatusOr<std::vector<AuditRecord>> ListAuditOldestFirst(
      const std::string& rollout_id, int64_t after_seq, int limit) = 0;
};

// AgentDirectory: enrollment tokens and the identity of enrolled agents.
class AgentDirectory {
 public:
  virtual ~AgentDirectory() = default;
  virtual absl::Status CreateEnrollmentToken(const EnrollmentTokenRecord& token,
                                             const AuditRecord& audit) = 0;
  // ListEnrollmentTokens lists every token, newest first.
  virtual absl::StatusOr<std::vector<EnrollmentTokenRecord>> ListEnrollmentTokens() = 0;
  // RevokeEnrollmentToken: NOT_FOUND for an unknown id; revoking twice keeps the first time.
  virtual absl::StatusOr<EnrollmentTokenRecord> RevokeEnrollmentToken(const std::string& id,
                                                                      const AuditRecord& audit) = 0;
  // EnrollAgent checks the token and the id (AdmitEnrollment) and stores the
  // agent with the token's labels, taking one use of the token, atomically:
  // concurrent enrollments never take more uses than the token has.
  // PERMISSION_DENIED for an unknown token or a wrong secret.
  virtual absl::StatusOr<EnrolledAgent> EnrollAgent(const EnrollmentRequest& request) = 0;
  // LabelAgent replaces an agent's assigned labels and ring; NOT_FOUND when unknown.
  virtual absl::StatusOr<AgentRecord> LabelAgent(const std::string& agent_id,
                                                 const std::map<std::string, std::string>& labels,
                                                 Ring ring, const AuditRecord& audit) = 0;
  // RevokeAgent refuses the agent's credentials from now on.
  virtual absl::StatusOr<AgentRecord> RevokeAgent(const std::string& agent_id,
                                                  const AuditRecord& audit) = 0;
  // ResetAgent lifts a revocation, refuses credentials issued before now
  // (whole seconds, as certificates count time) and allows one more enrollment.
  virtual absl::StatusOr<AgentRecord> ResetAgent(const std::string& agent_id,
                                                 const AuditRecord& audit) = 0;
};

// ApprovalStore: requests for a second person's approval (the two-person rule).
// Approving is not a method here: the change that executes a request carries
// an ApprovalClaim on its audit record, and UpsertPin, UpsertFloor, PutPolicy
// and ApplyRolloutChange decide the request in the same transaction, refusing
// the change (FAILED_PRECONDITION) when it is no longer pending or has expired.
class ApprovalStore {
 public:
  virtual ~ApprovalStore() = default;
  // OpenApproval stores `request` and its audit entry, unless a request with
  // the same dedupe_key is pending and unexpired at request.requested_at: that
  // one is returned instead and nothing is written.
  virtual absl::StatusOr<ApprovalRecord> OpenApproval(const ApprovalRecord& request,
                                                      const AuditRecord& audit) = 0;
  // GetApproval returns one request; NOT_FOUND when there is none.
  virtual absl::StatusOr<ApprovalRecord> GetApproval(const std::string& id) = 0;
  // ListApprovals lists newest first; `pending_only` keeps requests pending and unexpired at `now`.
  virtual absl::StatusOr<std::vector<ApprovalRecord>> ListApprovals(bool pending_only,
                                                                    absl::Time now, int limit) = 0;
  // RejectApproval decides a pending, unexpired request (at audit time `at`)
  // as rejected with its audit entry; FAILED_PRECONDITION otherwise.
  virtual absl::Status RejectApproval(const std::string& id, const std::string& decided_by,
                                      const std::string& reason, absl::Time at,
                                      const AuditRecord& audit) = 0;
};

// ApproverAudit is the approver's audit entry that a change carrying
// `change.approval` appends next to its own, in the same transaction.
inline AuditRecord ApproverAudit(const AuditRecord& change) {
  AuditRecord entry;
  entry.actor = change.approval->approved_by;
  entry.action = "approval.approve";
  entry.rollout_id = change.rollout_id;
  entry.reason = change.approval->reason;
  entry.evidence_json = change.approval->evidence_json;
  return entry;
}

// AdminTokenStore: the admin credentials (hashed). A token is "live" at a time
// when it is neither revoked nor expired then.
class AdminTokenStore {
 public:
  virtual ~AdminTokenStore() = default;
  // InsertAdminToken stores a new token. With `refuse_if_live_role` set,
  // FAILED_PRECONDITION when a token of that role is live at
  // token.created_at (checked under the table lock that revocations take).
  // ALREADY_EXISTS when the id is taken.
  virtual absl::Status InsertAdminToken(const AdminTokenRecord& token,
                                        const std::string& refuse_if_live_role,
                                        const AuditRecord& audit) = 0;
  // GetAdminToken returns one token; NOT_FOUND when absent.
  virtual absl::StatusOr<AdminTokenRecord> GetAdminToken(const std::string& id) = 0;
  // ListAdminTokens lists every token, oldest first.
  virtual absl::StatusOr<std::vector<AdminTokenRecord>> ListAdminTokens() = 0;
  // RevokeAdminToken marks token `id` revoked at `at` by `by`. NOT_FOUND when
  // absent, FAILED_PRECONDITION when already revoked, and, with
  // `keep_live_role` set, when the token has that role, is live at `at` and no
  // other token of that role would be (checked under the table lock).
  virtual absl::Status RevokeAdminToken(const std::string& id, absl::Time at, const std::string& by,
                                        const std::string& keep_live_role,
                                        const AuditRecord& audit) = 0;
};

// Store is every role at once, for wiring a server from one implementation.
class Store : public CatalogStore,
              public TrustStore,
              public PolicyStore,
              public RolloutStore,
              public TelemetrySink,
              public TelemetryRetention,
              public HealthSource,
              public AuditLog,
              public AgentDirectory,
              public ApprovalStore,
              public AdminTokenStore {};

}  // namespace ringwarden
