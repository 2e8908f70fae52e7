#include "tests/cli/fake_admin_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"

namespace ringwarden::cli_testing {
namespace {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// Accepted is what the server answers for an accepted root or floor: key_ids
// are the keys of `signers` whose signatures on the envelope verify.
v1::TrustMetadata Accepted(const std::string& kind, int64_t version, const TrustedKeys& signers,
                           absl::string_view payload_type, const std::string& envelope_json) {
  v1::TrustMetadata m;
  m.set_kind(kind);
  m.set_version(version);
  m.set_envelope(envelope_json);
  absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(envelope_json);
  absl::StatusOr<VerifiedEnvelope> verified =
      envelope.ok() ? signers.Verify(*envelope, payload_type) : envelope.status();
  for (const std::string& id : verified.ok() ? verified->key_ids : std::vector<std::string>()) {
    m.add_key_ids(id);
  }
  return m;
}

}  // namespace

void FakeAdminService::SetScript(std::vector<v1::ExplainRolloutResponse> steps, int repeat) {
  absl::MutexLock lock(&mu_);
  steps_ = std::move(steps);
  repeat_ = std::max(1, repeat);
  served_ = 0;
}

void FakeAdminService::SetAudit(v1::ListAuditLogResponse audit) {
  absl::MutexLock lock(&mu_);
  audit_ = std::move(audit);
}

int FakeAdminService::calls(const std::string& method) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

std::vector<std::string> FakeAdminService::tokens() const {
  absl::MutexLock lock(&mu_);
  return tokens_;
}

std::vector<v1::ListAuditLogRequest> FakeAdminService::audit_requests() const {
  absl::MutexLock lock(&mu_);
  return audit_requests_;
}

std::vector<v1::UploadTrustMetadataRequest> FakeAdminService::trust_uploads() const {
  absl::MutexLock lock(&mu_);
  return trust_uploads_;
}

void FakeAdminService::RecordUpload(grpc::CallbackServerContext* ctx, const std::string& method,
                                    const v1::UploadTrustMetadataRequest& req) {
  Record(ctx, method);
  trust_uploads_.push_back(req);
}

void FakeAdminService::Record(grpc::CallbackServerContext* ctx, const std::string& method) {
  ++calls_[method];
  auto it = ctx->client_metadata().find("authorization");
  tokens_.push_back(
      it == ctx->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size()));
}

grpc::Status FakeAdminService::NextStep(grpc::CallbackServerContext* ctx, const std::string& method,
                                        const std::string& id, v1::ExplainRolloutResponse* step) {
  absl::MutexLock lock(&mu_);
  Record(ctx, method);
  if (steps_.empty() || steps_.front().rollout().id() != id) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no rollout with id ", id));
  }
  const size_t index = std::min(steps_.size() - 1, static_cast<size_t>(served_ / repeat_));
  ++served_;
  *step = steps_[index];
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* FakeAdminService::GetRollout(grpc::CallbackServerContext* ctx,
                                                       const v1::GetRolloutRequest* req,
                                                       v1::Rollout* resp) {
  v1::ExplainRolloutResponse step;
  grpc::Status status = NextStep(ctx, "GetRollout", req->id(), &step);
  *resp = step.rollout();
  return Reply(ctx, status);
}

grpc::ServerUnaryReactor* FakeAdminService::ExplainRollout(grpc::CallbackServerContext* ctx,
                                                           const v1::GetRolloutRequest* req,
                                                           v1::ExplainRolloutResponse* resp) {
  return Reply(ctx, NextStep(ctx, "ExplainRollout", req->id(), resp));
}

grpc::ServerUnaryReactor* FakeAdminService::ListAuditLog(grpc::CallbackServerContext* ctx,
                                                         const v1::ListAuditLogRequest* req,
                                                         v1::ListAuditLogResponse* resp) {
  absl::MutexLock lock(&mu_);
  Record(ctx, "ListAuditLog");
  audit_requests_.push_back(*req);
  for (const v1::AuditEntry& e : audit_.entries()) {
    if (req->rollout_id().empty() || e.rollout_id() == req->rollout_id()) {
      *resp->add_entries() = e;
    }
  }
  return Reply(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FakeAdminService::ListRollouts(grpc::CallbackServerContext* ctx,
                                                         const v1::ListRolloutsRequest*,
                                                         v1::ListRolloutsResponse* resp) {
  absl::MutexLock lock(&mu_);
  Record(ctx, "ListRollouts");
  if (!steps_.empty()) {
    *resp->add_rollouts() = steps_.front().rollout();
  }
  return Reply(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FakeAdminService::UploadRoot(grpc::CallbackServerContext* ctx,
                                                       const v1::UploadTrustMetadataRequest* req,
                                                       v1::TrustMetadata* resp) {
  absl::MutexLock lock(&mu_);
  RecordUpload(ctx, "UploadRoot", *req);
  absl::StatusOr<Root> root = root_.has_value() ? VerifyRootUpdate(*root_, req->envelope())
                                                : TrustInitialRoot(req->envelope(), absl::Now());
  if (!root.ok()) {
    return Reply(ctx, ToGrpcStatus(root.status()));
  }
  *resp = Accepted("root", root->version, root->root_keys, kRootPayloadType, req->envelope());
  resp->set_expires_unix(absl::ToUnixSeconds(root->expires));
  *trust_.add_roots() = *resp;
  root_ = *std::move(root);
  return Reply(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FakeAdminService::UploadFloor(grpc::CallbackServerContext* ctx,
                                                        const v1::UploadTrustMetadataRequest* req,
                                                        v1::TrustMetadata* resp) {
  absl::MutexLock lock(&mu_);
  RecordUpload(ctx, "UploadFloor", *req);
  if (!root_.has_value()) {
    return Reply(ctx, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no root uploaded yet"));
  }
  absl::StatusOr<Floor> floor = VerifyFloor(*root_, req->envelope());
  if (!floor.ok()) {
    return Reply(ctx, ToGrpcStatus(floor.status()));
  }
  *resp = Accepted("floor", floor->min_version, root_->release_keys, kFloorPayloadType,
                   req->envelope());
  resp->set_channel(floor->channel);
  *trust_.add_floors() = *resp;
  return Reply(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FakeAdminService::ListTrust(grpc::CallbackServerContext* ctx,
                                                      const v1::ListTrustRequest*,
                                                      v1::ListTrustResponse* resp) {
  absl::MutexLock lock(&mu_);
  Record(ctx, "ListTrust");
  *resp = trust_;
  return Reply(ctx, grpc::Status::OK);
}

FakeAdminServer::FakeAdminServer() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
}

FakeAdminServer::~FakeAdminServer() {
  if (server_ != nullptr) {
    server_->Shutdown();
    server_->Wait();
  }
}

std::string FakeAdminServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::vector<std::string> FakeAdminServer::With(const std::vector<std::string>& args) const {
  std::vector<std::string> full = {"--server", address(), "--timeout", "5"};
  full.insert(full.end(), args.begin(), args.end());
  return full;
}

}  // namespace ringwarden::cli_testing
