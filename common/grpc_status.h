// grpc_status.h: the one mapping between absl::Status and grpc::Status.
//
// Codes map one to one (both follow google.rpc.Code); messages pass through.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ringwarden {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) {
    return grpc::Status::OK;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& s) {
  if (s.ok()) {
    return absl::OkStatus();
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

}  // namespace ringwarden
