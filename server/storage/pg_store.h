// pg_store.h: the PostgreSQL implementation of Store (libpqxx).
//
// Owns a small pool of connections; each call borrows one, runs one short
// transaction with prepared statements, and returns it. Failed connections are
// dropped and reopened on the next call. ABORTED and UNAVAILABLE are retried a
// bounded number of times; an in-doubt commit never is.
// Thread-safety: safe to call from many threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/storage/store.h"

namespace ringwarden {

class PgStore final : public Store {
 public:
  // `pool_size` connections at most; they open lazily.
  PgStore(std::string conninfo, int pool_size);
  ~PgStore() override;

  // SetObserver reports every operation's latency and outcome to `observer`
  // (which must outlive the store); null stops reporting.
  void SetObserver(StoreObserver* observer) { observer_.store(observer); }

  // Ping checks that the database answers.
  absl::Status Ping();

  absl::Status InsertContent(const ContentRecord& content, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<ContentRecord>> ListContent(const std::string& channel) override;
  absl::StatusOr<ContentRecord> GetContent(const std::string& channel, int64_t version) override;
  absl::Status CreateRollout(const NewRollout& create) override;
  absl::StatusOr<RolloutRecord> GetRollout(const std::string& id) override;
  absl::StatusOr<std::vector<RolloutRecord>> ListRollouts(const std::string& channel,
                                                          bool active_only, int limit) override;
  absl::StatusOr<std::optional<RolloutRecord>> GetUnfinishedRollout(
      const std::string& channel) override;
  absl::Status ApplyRolloutChange(const RolloutChange& change) override;
  absl::StatusOr<std::vector<RingProgressRecord>> RingProgress(
      const RolloutRecord& rollout) override;
  absl::Status SetEmergencyStop(bool active, const AuditRecord& audit) override;
  absl::Status UpsertPin(const PinRecord& pin, const AuditRecord& audit) override;
  absl::StatusOr<std::vector<PinRecord>> ListPins() override;
  absl::StatusOr<std::vector<AuditRecord>> ListAudit(const std::string& rollout_id,
                                                     int limit) override;
  absl::StatusOr<std::pair<std::vector<AgentRecord>, int64_t>> ListAgents(std::optional<Ring> ring,
                                                                          int limit) override;
  absl::StatusOr<CatalogData> LoadCatalog() override;
  absl::Status WriteTelemetry(const TelemetryRows& rows) override;
  absl::StatusOr<PolicyRecord> PutPolicy(const std::string& name, const std::string& body_json,
                                         const AuditRecord& audit) override;
  absl::StatusOr<PolicyRecord> GetPolicy(const std::string& name, int64_t version) override;
  absl::StatusOr<std::vector<PolicyRecord>> ListPolicies() override;
  absl::StatusOr<RolloutHealthRows> LoadRolloutHealth(const RolloutRecord& rollout,
                                                      absl::Time since) override;
  absl::Status UpsertDecision(const DecisionRecord& decision) override;
  absl::StatusOr<std::vector<DecisionRecord>> ListDecisions(const std::string& rollout_id) override;
  absl::StatusOr<FleetStats> LoadFleetStats() override;

 private:
  // Run borrows a connection and runs `body` in a transaction (retrying
  // ABORTED/UNAVAILABLE up to 3 times), and reports it to the observer as
  // `operation`; `what` names the operation in error messages.
  absl::Status Run(const char* operation, const char* what,
                   const std::function<absl::Status(pqxx::work&)>& body);
  absl::Status RunWithRetries(const char* what,
                              const std::function<absl::Status(pqxx::work&)>& body);
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Acquire();
  void Release(std::unique_ptr<pqxx::connection> conn);

  const std::string conninfo_;
  const int pool_size_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<StoreObserver*> observer_{nullptr};
};

}  // namespace ringwarden
