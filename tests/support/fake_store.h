// fake_store.h: every storage role in memory, for unit tests of the core.
//
// Keeps PgStore's semantics (refusals, codes, all-or-nothing calls) with times
// from the injected Clock, which must outlive it. FailNext() makes the next
// calls of an operation fail; Calls() counts them.
// Thread-safety: every method is safe from any thread; one mutex guards all state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "server/storage/store.h"

namespace ringwarden::testing {

// FakeStore is a Store held in memory.
//
//   FakeClock clock;
//   FakeStore store(clock);
//   store.FailNext("write_telemetry", absl::UnavailableError("down"));
//   EXPECT_TRUE(absl::IsUnavailable(store.WriteTelemetry(rows)));
//   EXPECT_EQ(store.Calls("write_telemetry"), 1);
class FakeStore final : public Store {
 public:
  // kAgentTokenSecret is the agent_token_secret that LoadCatalog returns.
  static constexpr char kAgentTokenSecret[] = "fake-agent-token-secret";

  explicit FakeStore(const Clock& clock);
  FakeStore(const FakeStore&) = delete;
  FakeStore& operator=(const FakeStore&) = delete;

  // CatalogStore
  absl::Status InsertContent(const ContentRecord& content, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<ContentRecord>> ListContent(const std::string& channel) override;
  absl::StatusOr<ContentRecord> GetContent(const std::string& channel, int64_t version) override;
  absl::Status SetEmergencyStop(bool active, const AuditRecord& audit) override;
  absl::Status UpsertPin(const PinRecord& pin, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<PinRecord>> ListPins() override;
  absl::StatusOr<CatalogData> LoadCatalog(
      std::optional<AgentGateCursor> gates_changed_since) override;

  // TrustStore
  absl::Status InsertRoot(const RootRecord& root, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<RootRecord>> ListRoots() override;
  absl::Status UpsertFloor(const FloorRecord& floor, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<FloorRecord>> ListFloors() override;
  absl::StatusOr<std::optional<FloorRecord>> GetFloor(const std::string& channel) override;

  // PolicyStore
  absl::StatusOr<PolicyRecord> PutPolicy(const std::string& name, const std::string& body_json,
                                         const AuditRecord& audit) override;
  absl::StatusOr<PolicyRecord> GetPolicy(const std::string& name, int64_t version) override;
  absl::StatusOr<std::vector<PolicyRecord>> ListPolicies() override;

  // RolloutStore
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

  // TelemetrySink
  absl::Status WriteTelemetry(const TelemetryRows& rows) override;

  // TelemetryRetention: forgets the crash reports and health events of every
  // UTC day that ended before the cutoff, as PgStore drops day partitions.
  absl::StatusOr<TelemetryUpkeep> MaintainTelemetry(absl::Duration retention,
                                                    absl::Time now) override;

  // HealthSource
  absl::StatusOr<RolloutHealthRows> LoadRolloutHealth(const HealthQuery& query) override;
  // The change feed is the list of agents (and kinds of row) every write named,
  // in order; a horizon is a position in it. Never trimmed.
  absl::StatusOr<HealthChanges> ReadHealthChanges(std::optional<uint64_t> after) override;
  // HoldHealthChanges(true) holds the feed's horizon where it is, as a transaction left open
  // holds PostgreSQL's: reads name nothing written since, and say they are held, until
  // HoldHealthChanges(false).
  void HoldHealthChanges(bool hold);
  // BusyHealthChanges(true) makes reads say they are held while the horizon moves on, as
  // PostgreSQL's do under a steady stream of short writes: some write is always running.
  void BusyHealthChanges(bool busy);
  absl::Status TrimHealthChanges(absl::Duration keep) override;
  absl::StatusOr<std::pair<std::vector<AgentRecord>, int64_t>> ListAgents(std::optional<Ring> ring,
                                                                          int limit) override;
  absl::StatusOr<FleetStats> LoadFleetStats() override;

  // AuditLog
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(const std::string& rollout_id,
                                                     int limit) override;
  absl::StatusOr<std::vector<AuditRecord>> ListAuditOldestFirst(const std::string& rollout_id,
                                                                int64_t after_seq,
                                                                int limit) override;

  // AgentDirectory
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

  // ApprovalStore (a change whose audit record carries an ApprovalClaim
  // decides the request, or is refused, like PgStore)
  absl::StatusOr<ApprovalRecord> OpenApproval(const ApprovalRecord& request,
                                              const AuditRecord& audit) override;
  absl::StatusOr<ApprovalRecord> GetApproval(const std::string& id) override;
  absl::StatusOr<std::vector<ApprovalRecord>> ListApprovals(bool pending_only, absl::Time now,
                                                            int limit) override;
  absl::Status RejectApproval(const std::string& id, const std::string& decided_by,
                              const std::string& reason, absl::Time at,
                              const AuditRecord& audit) override;

  // AdminTokenStore (fake_store_admin_tokens.cc)
  absl::Status InsertAdminToken(const AdminTokenRecord& token,
                                const std::string& refuse_if_live_role,
                                const AuditRecord& audit) override;
  absl::StatusOr<AdminTokenRecord> GetAdminToken(const std::string& id) override;
  absl::StatusOr<std::vector<AdminTokenRecord>> ListAdminTokens() override;
  absl::Status RevokeAdminToken(const std::string& id, absl::Time at, const std::string& by,
                                const std::string& keep_live_role,
                                const AuditRecord& audit) override;

  // ForgetGateCursors makes the store another database server for the agent gate cursors it
  // returned (as after a failover): the next LoadCatalog given one reads every gate.
  void ForgetGateCursors();

  // FailNext makes the next `times` calls of `operation` return `status`
  // without any effect. `operation` is the method's name in snake_case, e.g.
  // "write_telemetry", "apply_rollout_change", "load_catalog",
  // "load_rollout_health", "get_content"; an unknown name aborts the test.
  // A later FailNext of the same operation replaces the earlier one.
  void FailNext(absl::string_view operation, absl::Status status, int times = 1);
  // Calls counts the calls of `operation` so far, failed ones included.
  int Calls(absl::string_view operation) const;
  // Audit returns every audit entry, oldest first, with the id, time and chain
  // (seq, prev_hash, entry_hash, as PostgreSQL's trigger assigns them) filled in.
  std::vector<AuditRecord> Audit() const;
  // Written returns every row of the WriteTelemetry calls that succeeded, in
  // call order, as given (rows of unknown agents included, though not stored).
  TelemetryRows Written() const;

 private:
  struct InjectedFailure {
    absl::Status status;
    int remaining = 0;
  };
  // VersionInEffect is what one agent last reported running on one channel.
  struct VersionInEffect {
    int64_t version = 0;
    absl::Time since;        // first report of this version, unbroken
    absl::Time reported_at;  // the newest report
  };
  using ApplyKey = std::tuple<std::string, std::string, int64_t, ApplyOutcome>;
  using FetchKey = std::tuple<std::string, std::string, int64_t>;
  using PinKey = std::tuple<std::string, std::string, std::string>;

  // BeginCall counts a call of `operation` and returns its injected failure, if any.
  absl::Status BeginCall(absl::string_view operation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AppendAudit(AuditRecord audit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  RolloutRecord* FindRollout(absl::string_view id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CheckChange returns what ApplyRolloutChange would refuse `change` with.
  absl::Status CheckChange(const RolloutChange& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CommitChange applies a change CheckChange accepted.
  void CommitChange(const RolloutChange& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // IsOpen reports a request still pending and unexpired at `at`.
  bool IsOpen(const ApprovalRecord& request, absl::Time at) const;
  // CheckClaim returns what a change carrying `audit.approval` is refused with;
  // CommitClaim decides the request of a change CheckClaim accepted.
  absl::Status CheckClaim(const AuditRecord& audit) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CommitClaim(const AuditRecord& audit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MergeHeartbeats(const std::vector<HeartbeatRow>& heartbeats)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // LiveAdminTokens counts tokens of `role` live at `at`, leaving out `except_id`.
  int LiveAdminTokens(const std::string& role, absl::Time at, absl::string_view except_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<RolloutRecord> SortedRollouts(const std::string& channel, bool active_only) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, int, std::less<>> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, InjectedFailure, std::less<>> failures_ ABSL_GUARDED_BY(mu_);

  std::map<std::pair<std::string, int64_t>, ContentRecord> content_ ABSL_GUARDED_BY(mu_);
  std::vector<RolloutRecord> rollouts_ ABSL_GUARDED_BY(mu_);  // in creation order
  std::map<std::pair<std::string, Ring>, DecisionRecord> decisions_ ABSL_GUARDED_BY(mu_);
  std::map<PinKey, PinRecord> pins_ ABSL_GUARDED_BY(mu_);
  bool emergency_stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::vector<PolicyRecord>> policies_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, RootRecord> roots_ ABSL_GUARDED_BY(mu_);        // by version
  std::map<std::string, FloorRecord> floors_ ABSL_GUARDED_BY(mu_);  // by channel
  std::vector<AuditRecord> audit_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ApprovalRecord> approvals_ ABSL_GUARDED_BY(mu_);  // by id
  std::vector<AdminTokenRecord> admin_tokens_ ABSL_GUARDED_BY(mu_);       // in creation order

  std::map<std::string, AgentRecord> agents_ ABSL_GUARDED_BY(mu_);  // versions kept below
  struct AgentCredentials {
    bool reenroll_allowed = false;
    std::optional<absl::Time> valid_after;
  };
  std::map<std::string, AgentCredentials> credentials_ ABSL_GUARDED_BY(mu_);
  // The agent gates as LoadCatalog last saw them, each with the load that saw it change (an
  // empty gate once cleared), as the gate_xid stamps of migration 0017 tell PostgreSQL's reads.
  struct SeenGate {
    AgentGate gate;
    uint64_t changed_at = 0;
  };
  std::map<std::string, SeenGate> seen_gates_ ABSL_GUARDED_BY(mu_);
  uint64_t catalog_loads_ ABSL_GUARDED_BY(mu_) = 0;
  std::string gate_server_ ABSL_GUARDED_BY(mu_) = "fake-store";  // AgentGateCursor::server
  std::map<std::string, EnrollmentTokenRecord> enrollment_tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, VersionInEffect> versions_ ABSL_GUARDED_BY(mu_);
  // agent id -> (current boot id, its first heartbeat): the agents table's boot_since.
  std::map<std::string, std::pair<std::string, absl::Time>> boots_ ABSL_GUARDED_BY(mu_);
  // Every agent a write of its health rows named, with the kind of row, in write order
  // (ReadHealthChanges).
  // A null kind is a heartbeat's change, whose values are in health_seen_ under its index.
  using HealthKind = std::vector<std::string> HealthAgents::*;
  std::vector<std::pair<HealthKind, std::string>> health_changes_ ABSL_GUARDED_BY(mu_);
  std::map<size_t, SeenChange> health_seen_ ABSL_GUARDED_BY(mu_);
  std::optional<size_t> held_at_ ABSL_GUARDED_BY(mu_);         // HoldHealthChanges
  bool busy_changes_ ABSL_GUARDED_BY(mu_) = false;             // BusyHealthChanges
  std::map<ApplyKey, ApplyRow> applies_ ABSL_GUARDED_BY(mu_);  // first time, newest detail
  std::map<FetchKey, FetchRow> fetches_ ABSL_GUARDED_BY(mu_);  // first time
  std::vector<CrashRow> crashes_ ABSL_GUARDED_BY(mu_);
  std::vector<HealthEventRow> health_events_ ABSL_GUARDED_BY(mu_);
  TelemetryRows written_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ringwarden::testing
