// pg_store.h: the PostgreSQL implementation of every storage role.
//
// Owns a small pool of connections; each call borrows one and runs one short
// transaction of prepared statements (server/postgres/sql.h). Only transient
// failures (lost connection, serialization failure, deadlock) are retried, a
// bounded number of times; a refusal or an in-doubt commit never is. The
// methods live in pg_catalog.cc, pg_trust.cc, pg_rollouts.cc, pg_telemetry.cc,
// pg_health.cc, pg_audit.cc, pg_approvals.cc and pg_admin_tokens.cc. Thread-safety: safe to call
// from many threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/storage/store.h"

namespace ringwarden {

class PgPool;

class PgStore final : public Store {
 public:
  // `pool_size` connections at most; they open lazily.
  PgStore(std::string conninfo, int pool_size);
  ~PgStore() override;
  PgStore(const PgStore&) = delete;
  PgStore& operator=(const PgStore&) = delete;

  // SetObserver reports every operation's latency and outcome to `observer`
  // (which must outlive the store); null stops reporting.
  void SetObserver(StoreObserver* observer);

  // Ping checks that the database answers.
  absl::Status Ping();

  // CatalogStore (pg_catalog.cc)
  absl::Status InsertContent(const ContentRecord& content, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<ContentRecord>> ListContent(const std::string& channel) override;
  absl::StatusOr<ContentRecord> GetContent(const std::string& channel, int64_t version) override;
  absl::Status SetEmergencyStop(bool active, const AuditRecord& audit) override;
  absl::Status UpsertPin(const PinRecord& pin, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<PinRecord>> ListPins() override;
  absl::StatusOr<CatalogData> LoadCatalog(
      std::optional<AgentGateCursor> gates_changed_since) override;

  // TrustStore (pg_trust.cc)
  absl::Status InsertRoot(const RootRecord& root, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<RootRecord>> ListRoots() override;
  absl::Status UpsertFloor(const FloorRecord& floor, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<FloorRecord>> ListFloors() override;
  absl::StatusOr<std::optional<FloorRecord>> GetFloor(const std::string& channel) override;

  // PolicyStore (pg_catalog.cc)
  absl::StatusOr<PolicyRecord> PutPolicy(const std::string& name, const std::string& body_json,
                                         const AuditRecord& audit) override;
  absl::StatusOr<PolicyRecord> GetPolicy(const std::string& name, int64_t version) override;
  absl::StatusOr<std::vector<PolicyRecord>> ListPolicies() override;

  // RolloutStore (pg_rollouts.cc)
  absl::Status CreateRollout(const NewRollout& create) override;
  absl::StatusOr<RolloutRecord> GetRollout(const std::string& id) override;
  absl::StatusOr<std::vector<RolloutRecord>> ListRollouts(const std::string& channel,
                                                          bool active_only, int limit) override;
  absl::StatusOr<std::optional<RolloutRecord>> GetUnfinishedRollout(
      const std::string& channel) override;
  absl::Status ApplyRolloutChange(const RolloutChange& change) override;
  absl::Status UpdateExposure(const std::string& rollout_id, int64_t expected_revision,
                              double admitted_fraction, int64_t admitted_hosts) override;
  absl::Status UpsertDecision(const DecisionRecord& decision) override;
  absl::StatusOr<std::vector<DecisionRecord>> ListDecisions(const std::string& rollout_id) override;

  // TelemetrySink (pg_telemetry.cc)
  absl::Status WriteTelemetry(const TelemetryRows& rows) override;
  absl::StatusOr<TelemetryUpkeep> MaintainTelemetry(absl::Duration retention,
                                                    absl::Time now) override;

  // HealthSource (pg_health.cc)
  absl::StatusOr<RolloutHealthRows> LoadRolloutHealth(const HealthQuery& query) override;
  absl::StatusOr<HealthChanges> ReadHealthChanges(std::optional<uint64_t> after) override;
  absl::Status TrimHealthChanges(absl::Duration keep) override;
  absl::StatusOr<std::pair<std::vector<AgentRecord>, int64_t>> ListAgents(std::optional<Ring> ring,
                                                                          int limit) override;
  absl::StatusOr<FleetStats> LoadFleetStats() override;

  // AgentDirectory (pg_agents.cc)
  absl::Status CreateEnrollmentToken(const EnrollmentTokenRecord& token,
                                     const AuditRecord& audit) override;
  absl::StatusOr<std::vector<EnrollmentTokenRecord>> ListEnrollmentTokens() override;
  absl::StatusOr<EnrollmentTokenRecord> RevokeEnrollmentToken(const std::string& id,
                                                              const AuditRecord& audit) override;
  absl::StatusOr<EnrolledAgent> EnrollAgent(const EnrollmentRequest& request) override;
  absl::StatusOr<AgentRecord> LabelAgent(const std::string& agent_id,
                                         const std::map<std::string, std::string>& labels,
                                         Ring ring, const AuditRecord& audit) override;
  absl::StatusOr<AgentRecord> RevokeAgent(const std::string& agent_id,
                                          const AuditRecord& audit) override;
  absl::StatusOr<AgentRecord> ResetAgent(const std::string& agent_id,
                                         const AuditRecord& audit) override;

  // AuditLog (pg_audit.cc)
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(const std::string& rollout_id,
                                                     int limit) override;
  absl::StatusOr<std::vector<AuditRecord>> ListAuditOldestFirst(const std::string& rollout_id,
                                                                int64_t after_seq,
                                                                int limit) override;

  // ApprovalStore (pg_approvals.cc)
  absl::StatusOr<ApprovalRecord> OpenApproval(const ApprovalRecord& request,
                                              const AuditRecord& audit) override;
  absl::StatusOr<ApprovalRecord> GetApproval(const std::string& id) override;
  absl::StatusOr<std::vector<ApprovalRecord>> ListApprovals(bool pending_only, absl::Time now,
                                                            int limit) override;
  absl::Status RejectApproval(const std::string& id, const std::string& decided_by,
                              const std::string& reason, absl::Time at,
                              const AuditRecord& audit) override;

  // AdminTokenStore (pg_admin_tokens.cc)
  absl::Status InsertAdminToken(const AdminTokenRecord& token,
                                const std::string& refuse_if_live_role,
                                const AuditRecord& audit) override;
  absl::StatusOr<AdminTokenRecord> GetAdminToken(const std::string& id) override;
  absl::StatusOr<std::vector<AdminTokenRecord>> ListAdminTokens() override;
  absl::Status RevokeAdminToken(const std::string& id, absl::Time at, const std::string& by,
                                const std::string& keep_live_role,
                                const AuditRecord& audit) override;

 private:
  std::unique_ptr<PgPool> pool_;  // pimpl: keeps the driver out of this header
};

}  // namespace ringwarden
