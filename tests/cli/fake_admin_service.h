// fake_admin_service.h: an in-process AdminService for ringctl tests.
//
// Serves a scripted rollout: each GetRollout or ExplainRollout call returns the
// next step of the script (the last step repeats), so a watcher sees the rollout
// advance. Keeps uploaded roots and floors, verified as the server does (the
// first root must be signed by its own root keys, each next one by the stored
// root's too; floors by the newest root's release keys). Records calls, the
// bearer tokens seen and the trust upload requests. FakeAdminServer runs it on
// 127.0.0.1:0. Thread-safety: all methods are safe from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/trust/trust.h"
#include "ringwarden/v1/admin.grpc.pb.h"

namespace ringwarden::cli_testing {

namespace v1 = ::ringwarden::v1;

class FakeAdminService final : public v1::AdminService::CallbackService {
 public:
  // SetScript sets the rollout steps; every step is served `repeat` times in a row.
  void SetScript(std::vector<v1::ExplainRolloutResponse> steps, int repeat = 1);
  void SetAudit(v1::ListAuditLogResponse audit);

  int calls(const std::string& method) const;
  std::vector<std::string> tokens() const;  // "authorization" values, in call order
  std::vector<v1::ListAuditLogRequest> audit_requests() const;
  std::vector<v1::UploadTrustMetadataRequest> trust_uploads() const;

  grpc::ServerUnaryReactor* GetRollout(grpc::CallbackServerContext* ctx,
                                       const v1::GetRolloutRequest* req,
                                       v1::Rollout* resp) override;
  grpc::ServerUnaryReactor* ExplainRollout(grpc::CallbackServerContext* ctx,
                                           const v1::GetRolloutRequest* req,
                                           v1::ExplainRolloutResponse* resp) override;
  grpc::ServerUnaryReactor* ListAuditLog(grpc::CallbackServerContext* ctx,
                                         const v1::ListAuditLogRequest* req,
                                         v1::ListAuditLogResponse* resp) override;
  grpc::ServerUnaryReactor* ListRollouts(grpc::CallbackServerContext* ctx,
                                         const v1::ListRolloutsRequest* req,
                                         v1::ListRolloutsResponse* resp) override;
  grpc::ServerUnaryReactor* UploadRoot(grpc::CallbackServerContext* ctx,
                                       const v1::UploadTrustMetadataRequest* req,
                                       v1::TrustMetadata* resp) override;
  grpc::ServerUnaryReactor* UploadFloor(grpc::CallbackServerContext* ctx,
                                        const v1::UploadTrustMetadataRequest* req,
                                        v1::TrustMetadata* resp) override;
  grpc::ServerUnaryReactor* ListTrust(grpc::CallbackServerContext* ctx,
                                      const v1::ListTrustRequest* req,
                                      v1::ListTrustResponse* resp) override;

 private:
  // NextStep records the call and returns the step to serve, or an error status.
  grpc::Status NextStep(grpc::CallbackServerContext* ctx, const std::string& method,
                        const std::string& id, v1::ExplainRolloutResponse* step);
  void Record(grpc::CallbackServerContext* ctx, const std::string& method)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordUpload(grpc::CallbackServerContext* ctx, const std::string& method,
                    const v1::UploadTrustMetadataRequest& req) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<v1::ExplainRolloutResponse> steps_ ABSL_GUARDED_BY(mu_);
  int repeat_ ABSL_GUARDED_BY(mu_) = 1;
  int served_ ABSL_GUARDED_BY(mu_) = 0;
  v1::ListAuditLogResponse audit_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ListAuditLogRequest> audit_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::UploadTrustMetadataRequest> trust_uploads_ ABSL_GUARDED_BY(mu_);
  std::optional<Root> root_ ABSL_GUARDED_BY(mu_);  // newest accepted root
  v1::ListTrustResponse trust_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> tokens_ ABSL_GUARDED_BY(mu_);
};

// FakeAdminServer runs a FakeAdminService on 127.0.0.1 with a kernel-chosen port.
class FakeAdminServer {
 public:
  FakeAdminServer();
  ~FakeAdminServer();
  FakeAdminService& service() { return service_; }
  std::string address() const;
  // With returns ringctl arguments `args` preceded by the flags that reach this server.
  std::vector<std::string> With(const std::vector<std::string>& args) const;

 private:
  FakeAdminService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace ringwarden::cli_testing
