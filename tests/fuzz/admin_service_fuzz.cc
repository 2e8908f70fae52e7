// Fuzzes every AdminService method in process (service_world.h): the first
// byte picks the method, the second the caller (none, agents, viewer,
// releaser, admin), the rest is the request. Handlers must answer every
// request with a mapped status, in time, without a sanitizer report or a leak.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/service_call.h"

namespace ringwarden::fuzzing {
namespace {

using Stub = v1::AdminService::Stub;

const std::vector<Method>& Methods() {
  static const std::vector<Method>* const methods = new std::vector<Method>{
      Unary("UploadContent", &World::admin, &Stub::UploadContent),
      Unary("ListContent", &World::admin, &Stub::ListContent),
      Unary("StartRollout", &World::admin, &Stub::StartRollout),
      Unary("GetRollout", &World::admin, &Stub::GetRollout),
      Unary("ListRollouts", &World::admin, &Stub::ListRollouts),
      Unary("PromoteRollout", &World::admin, &Stub::PromoteRollout),
      Unary("HaltRollout", &World::admin, &Stub::HaltRollout),
      Unary("ResumeRollout", &World::admin, &Stub::ResumeRollout),
      Unary("RollbackRollout", &World::admin, &Stub::RollbackRollout),
      Unary("EmergencyStop", &World::admin, &Stub::EmergencyStop),
      Unary("SetPin", &World::admin, &Stub::SetPin),
      Unary("ListPins", &World::admin, &Stub::ListPins),
      Unary("ExplainRollout", &World::admin, &Stub::ExplainRollout),
      Unary("SetPolicy", &World::admin, &Stub::SetPolicy),
      Unary("GetPolicy", &World::admin, &Stub::GetPolicy),
      Unary("ListAgents", &World::admin, &Stub::ListAgents),
      Unary("CreateEnrollmentToken", &World::admin, &Stub::CreateEnrollmentToken),
      Unary("ListEnrollmentTokens", &World::admin, &Stub::ListEnrollmentTokens),
      Unary("RevokeEnrollmentToken", &World::admin, &Stub::RevokeEnrollmentToken),
      Unary("LabelAgent", &World::admin, &Stub::LabelAgent),
      Unary("RevokeAgent", &World::admin, &Stub::RevokeAgent),
      Unary("ResetAgent", &World::admin, &Stub::ResetAgent),
      Unary("ListAuditLog", &World::admin, &Stub::ListAuditLog),
      Unary("UploadRoot", &World::admin, &Stub::UploadRoot),
      Unary("UploadFloor", &World::admin, &Stub::UploadFloor),
      Unary("ListTrust", &World::admin, &Stub::ListTrust),
      Unary("ListApprovals", &World::admin, &Stub::ListApprovals),
      Unary("ApproveRequest", &World::admin, &Stub::ApproveRequest),
      Unary("RejectRequest", &World::admin, &Stub::RejectRequest),
      Unary("CreateAdminToken", &World::admin, &Stub::CreateAdminToken),
      Unary("ListAdminTokens", &World::admin, &Stub::ListAdminTokens),
      Unary("RevokeAdminToken", &World::admin, &Stub::RevokeAdminToken),
  };
  return *methods;
}

}  // namespace
}  // namespace ringwarden::fuzzing

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ringwarden::fuzzing::RunCall(ringwarden::fuzzing::Methods(), data, size);
}
