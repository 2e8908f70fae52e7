// admin_client.h: a small wrapper over the AdminService stub for ringctl.
//
// Adds the bearer token and a deadline to every call and returns absl::Status.
// Thread-safety: one instance per thread (ringctl is single-threaded).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "ringwarden/v1/admin.grpc.pb.h"

namespace ringwarden {

class AdminClient {
 public:
  // TLS verifying the server against `server_ca_pem`; plaintext when it is empty.
  AdminClient(const std::string& server, std::string token, absl::Duration timeout,
              const std::string& server_ca_pem);

  // Call invokes `method` on the stub with credentials and deadline set.
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Call(grpc::Status (v1::AdminService::Stub::*method)(grpc::ClientContext*,
                                                                           const Req&, Resp*),
                            const Req& request) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout_));
    if (!token_.empty()) {
      ctx.AddMetadata("authorization", "Bearer " + token_);
    }
    Resp response;
    grpc::Status status = (stub_.get()->*method)(&ctx, request, &response);
    if (!status.ok()) {
      return FromGrpcStatus(status);
    }
    return response;
  }

 private:
  std::unique_ptr<v1::AdminService::Stub> stub_;
  std::string token_;
  absl::Duration timeout_;
};

}  // namespace ringwarden
