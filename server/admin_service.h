// admin_service.h: AdminService, what ringctl calls.
//
// Each handler queues its call on the bounded database work queue, where the
// caller's token is checked (a database read) and the operation runs, and
// finishes the call from there; a full queue answers RESOURCE_EXHAUSTED. Steps
// the two-person rule holds answer FAILED_PRECONDITION naming the approval
// request. Trust uploads go to the TrustKeeper, which verifies them; the server
// stores them and never signs them. Thread-safety: handlers run concurrently;
// the RolloutManager, TrustKeeper, AdminTokens and Store are thread-safe.
#pragma once

#include <functional>

#include "common/clock.h"
#include "ringwarden/v1/admin.grpc.pb.h"
#include "server/auth.h"
#include "server/core/admin_tokens.h"
#include "server/core/agent_registry.h"
#include "server/core/rollout_manager.h"
#include "server/core/work_queue.h"
#include "server/metrics.h"
#include "server/trust_keeper.h"

namespace ringwarden {

// AgentToProto fills the wire form of an agent.
void AgentToProto(const AgentRecord& a, v1::AgentInfo& out);

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(RolloutManager& manager, TrustKeeper& trust, Store& store,
                   const AdminAuthenticator& auth, AdminTokens& tokens, WorkQueue& queue,
                   Metrics& metrics, const Clock& clock, AgentRegistry& agents);

  grpc::ServerUnaryReactor* UploadContent(grpc::CallbackServerContext* ctx,
                                          const v1::UploadContentRequest* req,
                                          v1::UploadContentResponse* resp) override;
  grpc::ServerUnaryReactor* ListContent(grpc::CallbackServerContext* ctx,
                                        const v1::ListContentRequest* req,
                                        v1::ListContentResponse* resp) override;
  grpc::ServerUnaryReactor* StartRollout(grpc::CallbackServerContext* ctx,
                                         const v1::StartRolloutRequest* req,
                                         v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* GetRollout(grpc::CallbackServerContext* ctx,
                                       const v1::GetRolloutRequest* req,
                                       v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* ListRollouts(grpc::CallbackServerContext* ctx,
                                         const v1::ListRolloutsRequest* req,
                                         v1::ListRolloutsResponse* resp) override;
  grpc::ServerUnaryReactor* PromoteRollout(grpc::CallbackServerContext* ctx,
                                           const v1::RolloutActionRequest* req,
                                           v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* HaltRollout(grpc::CallbackServerContext* ctx,
                                        const v1::RolloutActionRequest* req,
                                        v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* ResumeRollout(grpc::CallbackServerContext* ctx,
                                          const v1::RolloutActionRequest* req,
                                          v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* RollbackRollout(grpc::CallbackServerContext* ctx,
                                            const v1::RolloutActionRequest* req,
                                            v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* EmergencyStop(grpc::CallbackServerContext* ctx,
                                          const v1::EmergencyStopRequest* req,
                                          v1::EmergencyStopResponse* resp) override;
  grpc::ServerUnaryReactor* SetPin(grpc::CallbackServerContext* ctx, const v1::SetPinRequest* req,
                                   v1::Pin* resp) override;
  grpc::ServerUnaryReactor* ListPins(grpc::CallbackServerContext* ctx,
                                     const v1::ListPinsRequest* req,
                                     v1::ListPinsResponse* resp) override;
  grpc::ServerUnaryReactor* ExplainRollout(grpc::CallbackServerContext* ctx,
                                           const v1::GetRolloutRequest* req,
                                           v1::ExplainRolloutResponse* resp) override;
  grpc::ServerUnaryReactor* SetPolicy(grpc::CallbackServerContext* ctx,
                                      const v1::SetPolicyRequest* req, v1::Policy* resp) override;
  grpc::ServerUnaryReactor* GetPolicy(grpc::CallbackServerContext* ctx,
                                      const v1::GetPolicyRequest* req, v1::Policy* resp) override;
  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                       const v1::ListAgentsRequest* req,
                                       v1::ListAgentsResponse* resp) override;
  // Agent identity (admin_agents.cc).
  grpc::ServerUnaryReactor* CreateEnrollmentToken(grpc::CallbackServerContext* ctx,
                                                  const v1::CreateEnrollmentTokenRequest* req,
                                                  v1::CreateEnrollmentTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ListEnrollmentTokens(grpc::CallbackServerContext* ctx,
                                                 const v1::ListEnrollmentTokensRequest* req,
                                                 v1::ListEnrollmentTokensResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeEnrollmentToken(grpc::CallbackServerContext* ctx,
                                                  const v1::RevokeEnrollmentTokenRequest* req,
                                                  v1::EnrollmentToken* resp) override;
  grpc::ServerUnaryReactor* LabelAgent(grpc::CallbackServerContext* ctx,
                                       const v1::LabelAgentRequest* req,
                                       v1::AgentInfo* resp) override;
  grpc::ServerUnaryReactor* RevokeAgent(grpc::CallbackServerContext* ctx,
                                        const v1::AgentActionRequest* req,
                                        v1::AgentInfo* resp) override;
  grpc::ServerUnaryReactor* ResetAgent(grpc::CallbackServerContext* ctx,
                                       const v1::AgentActionRequest* req,
                                       v1::AgentInfo* resp) override;
  grpc::ServerUnaryReactor* ListAuditLog(grpc::CallbackServerContext* ctx,
                                         const v1::ListAuditLogRequest* req,
                                         v1::ListAuditLogResponse* resp) override;
  grpc::ServerUnaryReactor* UploadRoot(grpc::CallbackServerContext* ctx,
                                       const v1::UploadTrustMetadataRequest* req,
                                       v1::TrustMetadata* resp) override;
  grpc::ServerUnaryReactor* UploadFloor(grpc::CallbackServerContext* ctx,
                                        const v1::UploadTrustMetadataRequest* req,
                                        v1::TrustMetadata* resp) override;
  grpc::ServerUnaryReactor* ListTrust(grpc::CallbackServerContext* ctx,
                                      const v1::ListTrustRequest* req,
                                      v1::ListTrustResponse* resp) override;
  grpc::ServerUnaryReactor* ListApprovals(grpc::CallbackServerContext* ctx,
                                          const v1::ListApprovalsRequest* req,
                                          v1::ListApprovalsResponse* resp) override;
  grpc::ServerUnaryReactor* ApproveRequest(grpc::CallbackServerContext* ctx,
                                           const v1::DecideApprovalRequest* req,
                                           v1::ApprovalRequest* resp) override;
  grpc::ServerUnaryReactor* RejectRequest(grpc::CallbackServerContext* ctx,
                                          const v1::DecideApprovalRequest* req,
                                          v1::ApprovalRequest* resp) override;
  // Admin tokens (admin_service_tokens.cc).
  grpc::ServerUnaryReactor* CreateAdminToken(grpc::CallbackServerContext* ctx,
                                             const v1::CreateAdminTokenRequest* req,
                                             v1::CreateAdminTokenResponse* resp) override;
  grpc::ServerUnaryReactor* ListAdminTokens(grpc::CallbackServerContext* ctx,
                                            const v1::ListAdminTokensRequest* req,
                                            v1::ListAdminTokensResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeAdminToken(grpc::CallbackServerContext* ctx,
                                             const v1::RevokeAdminTokenRequest* req,
                                             v1::AdminToken* resp) override;

 private:
  // Run checks the request's size against `method`'s limit (request_limits.h),
  // then queues authorization and `work`, and finishes the call with their
  // status; work that waited too long for a worker is answered UNAVAILABLE.
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx,
                                const google::protobuf::MessageLite& req, const char* method,
                                Role needed, std::function<absl::Status(const Principal&)> work);
  grpc::ServerUnaryReactor* Act(grpc::CallbackServerContext* ctx, const char* method,
                                RolloutAction action, const v1::RolloutActionRequest* req,
                                v1::Rollout* resp);
  // Decide approves or rejects an approval request.
  grpc::ServerUnaryReactor* Decide(grpc::CallbackServerContext* ctx, const char* method,
                                   bool approve, const v1::DecideApprovalRequest* req,
                                   v1::ApprovalRequest* resp);
  // GateFloor holds a floor upload under the default policy's two-person rule.
  absl::Status GateFloor(const FloorRecord& floor, const std::string& envelope_json,
                         const std::string& reason, const Principal& actor);
  // ReplayFloor executes an approved floor request.
  absl::Status ReplayFloor(const ApprovalRecord& request, const Principal& asker,
                           const ApprovalClaim& claim);

  RolloutManager& manager_;
  TrustKeeper& trust_;
  Store& store_;
  const AdminAuthenticator& auth_;
  AdminTokens& tokens_;
  WorkQueue& queue_;
  Metrics& metrics_;
  const Clock& clock_;
  AgentRegistry& agents_;
};

}  // namespace ringwarden
