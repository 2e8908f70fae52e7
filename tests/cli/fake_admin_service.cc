#include "tests/cli/fake_admin_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ringwarden::cli_testing {
namespace {

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
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

}  // namespace ringwarden::cli_testing
