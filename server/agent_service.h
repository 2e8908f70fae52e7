// agent_service.h: AgentService, the endpoint agents' side of the server.
//
// Polls and content are answered from the in-memory snapshot; telemetry is
// queued to the TelemetryWriter. Only enrollment touches the database, on the
// work queue, never on a gRPC thread. The caller's identity comes from its
// credential (agent_credentials.h), never from a request body.
// Every poll answer carries a statement signed with --server-key
// (assignment_statement.h), the stored roots newer than the agent's and the
// floors of the channels it names.
// Every call is checked against its method's size limit (request_limits.h) and,
// once the agent is known, its token bucket (rate_limit.h): an agent over its
// rate is answered RESOURCE_EXHAUSTED with a "retry-after-ms" hint
// (common/retry_hint.h), and so is a batch beyond the agent's share of the
// telemetry queue. Per-agent state is bounded (rate_limit.h, LruMap).
// Thread-safety: handlers run on gRPC threads concurrently; shared state is
// the immutable snapshot, the atomic assignment sequence, the rate limiters
// and a mutex-guarded batch-sequence table.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/ed25519.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "server/agent_credentials.h"
#include "server/arena_messages.h"
#include "server/assignment_statement.h"
#include "server/core/agent_registry.h"
#include "server/core/snapshot.h"
#include "server/core/telemetry_writer.h"
#include "server/core/work_queue.h"
#include "server/domain/lru_map.h"
#include "server/domain/rate_limit.h"
#include "server/metrics.h"
#include "server/trust_keeper.h"

namespace ringwarden {

// A telemetry batch number may run at most this far ahead of the agent's
// last accepted one: a larger jump is refused, so no batch can push an
// agent's sequence out of reach of its next batches. Agents number batches
// by the microsecond (a restarted agent never reuses a number), so the
// window is seven days of microseconds.
inline constexpr int64_t kMaxBatchSeqJump = int64_t{7} * 24 * 3600 * 1'000'000;

struct AgentServiceOptions {
  absl::Duration poll_interval = absl::Seconds(30);
  double poll_jitter = 0.2;
  size_t chunk_bytes = 64 * 1024;
  // A download still streaming after this long is ended (DEADLINE_EXCEEDED).
  absl::Duration max_fetch_duration = absl::Minutes(10);
  absl::Duration assignment_ttl = kDefaultAssignmentTtl;
  // Per-agent token bucket on every call (Enroll has one of its own, by the
  // agent id it names).
  RateLimitOptions rate_limit;
  // Agents whose last telemetry batch number is remembered; the least recently
  // seen is forgotten first, and its next batch sets a new base.
  size_t max_tracked_agents = 200'000;
  // What a batch refused for a full telemetry queue or share is told to wait.
  absl::Duration telemetry_retry_after = absl::Seconds(1);
};

// kMaxVersionsPerEvent bounds the channel versions one telemetry event names.
inline constexpr int kMaxVersionsPerEvent = 64;

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  // `trust` names the root version statements are signed under; `server_key`
  // signs them. References must outlive the service.
  AgentServiceImpl(AgentServiceOptions options, SnapshotHolder& snapshots,
                   TelemetryWriter& telemetry, Metrics& metrics, const TrustKeeper& trust,
                   const Ed25519PrivateKey& server_key, const Clock& clock, AgentRegistry& registry,
                   const AgentCredentials& credentials, WorkQueue& enroll_queue);

  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* ctx, const v1::EnrollRequest* req,
                                   v1::EnrollResponse* resp) override;
  grpc::ServerUnaryReactor* RenewCredential(grpc::CallbackServerContext* ctx,
                                            const v1::RenewCredentialRequest* req,
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
  absl::Status DoEnroll(const v1::EnrollRequest& req, bool holds_credential,
                        v1::EnrollResponse& resp);
  absl::Status DoRenew(grpc::CallbackServerContext& ctx, const v1::RenewCredentialRequest& req,
                       v1::EnrollResponse& resp);
  absl::Status DoGetAssignment(grpc::CallbackServerContext& ctx,
                               const v1::GetAssignmentRequest& req,
                               v1::GetAssignmentResponse& resp);
  absl::Status DoReportTelemetry(grpc::CallbackServerContext& ctx,
                                 const v1::ReportTelemetryRequest& req,
                                 v1::ReportTelemetryResponse& resp);
  grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, absl::string_view method,
                                   absl::Time start, const absl::Status& status);
  // Throttle takes a token from `key`'s bucket in `limiter`; when empty it
  // answers RESOURCE_EXHAUSTED and sets the retry hint on `ctx`.
  absl::Status Throttle(grpc::CallbackServerContext& ctx, AgentRateLimiter& limiter,
                        absl::string_view key, absl::string_view method);

  const AgentServiceOptions options_;
  SnapshotHolder& snapshots_;
  TelemetryWriter& telemetry_;
  Metrics& metrics_;
  const TrustKeeper& trust_;
  const Ed25519PrivateKey& server_key_;
  const Clock& clock_;
  AgentRegistry& registry_;
  const AgentCredentials& credentials_;
  WorkQueue& enroll_queue_;
  AssignmentSequence sequence_;
  // Each poll's request and answer live on one arena (arena_messages.h).
  ArenaMessageAllocator<v1::GetAssignmentRequest, v1::GetAssignmentResponse> poll_messages_;
  AgentRateLimiter limiter_;
  AgentRateLimiter enroll_limiter_;
  absl::Mutex mu_;
  // Last accepted batch per agent, so a resent batch is not counted twice.
  LruMap<int64_t> last_batch_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ringwarden
