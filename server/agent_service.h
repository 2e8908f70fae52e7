// agent_service.h: AgentService, the endpoint agents' side of the server.
//
// Polls and content are answered from the in-memory snapshot; enrollment and
// telemetry are queued to the TelemetryWriter. No handler touches the database.
// Every poll answer carries a statement signed with --server-key
// (assignment_statement.h), the stored roots newer than the agent's and the
// floors of the channels it names.
// Thread-safety: handlers run on gRPC threads concurrently; shared state is
// the immutable snapshot, the atomic assignment sequence and a mutex-guarded
// batch-sequence table.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "server/assignment_statement.h"
#include "server/auth.h"
#include "server/core/snapshot.h"
#include "server/core/telemetry_writer.h"
#include "server/metrics.h"
#include "server/trust_keeper.h"

namespace ringwarden {

struct AgentServiceOptions {
  std::string enrollment_secret;
  absl::Duration poll_interval = absl::Seconds(30);
  double poll_jitter = 0.2;
  size_t chunk_bytes = 64 * 1024;
  absl::Duration assignment_ttl = kDefaultAssignmentTtl;
};

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  // `trust` names the root version statements are signed under; `server_key`
  // signs them. References must outlive the service.
  AgentServiceImpl(AgentServiceOptions options, SnapshotHolder& snapshots,
                   TelemetryWriter& telemetry, Metrics& metrics, const TrustKeeper& trust,
                   const Ed25519PrivateKey& server_key, const Clock& clock);

  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* ctx, const v1::EnrollRequest* req,
                                   v1::EnrollResponse* resp) override;
  grpc::ServerUnaryReactor* GetAssignment(grpc::CallbackServerContext* ctx,
                                          const v1::GetAssignmentRequest* req,
                                          v1::GetAssignmentResponse* resp) override;
  grpc::ServerWriteReactor<v1::ContentChunk>* FetchContent(
      grpc::CallbackServerContext* ctx, const v1::FetchContentRequest* req) override;
  grpc::ServerUnaryReactor* ReportTelemetry(grpc::CallbackServerContext* ctx,
                                            const v1::ReportTelemetryRequest* req,
                                            v1::ReportTelemetryResponse* resp) override;

 private:
  absl::Status DoEnroll(const v1::EnrollRequest& req, v1::EnrollResponse& resp);
  absl::Status DoGetAssignment(grpc::CallbackServerContext& ctx,
                               const v1::GetAssignmentRequest& req,
                               v1::GetAssignmentResponse& resp);
  absl::Status DoReportTelemetry(grpc::CallbackServerContext& ctx,
                                 const v1::ReportTelemetryRequest& req,
                                 v1::ReportTelemetryResponse& resp);
  // Authenticate checks the agent credential against the current snapshot.
  absl::StatusOr<AgentIdentity> Authenticate(grpc::CallbackServerContext& ctx,
                                             const std::string& agent_id,
                                             const AssignmentSnapshot& snapshot) const;
  grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, absl::string_view method,
                                   absl::Time start, const absl::Status& status);

  const AgentServiceOptions options_;
  SnapshotHolder& snapshots_;
  TelemetryWriter& telemetry_;
  Metrics& metrics_;
  const TrustKeeper& trust_;
  const Ed25519PrivateKey& server_key_;
  const Clock& clock_;
  AssignmentSequence sequence_;
  absl::Mutex mu_;
  // Last accepted batch per agent, so a resent batch is not counted twice.
  absl::flat_hash_map<std::string, int64_t> last_batch_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ringwarden
