// service_call.h: one fuzzed unary or streaming call through a typed stub.
//
// The fuzz input is [method byte][caller byte][serialized request]: the
// method byte picks an entry of the target's table, the caller byte the
// credential (service_world.h), the rest is parsed as that method's request.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/service_world.h"

namespace ringwarden::fuzzing {

// A Method parses `request` and calls it; false when the bytes are not a request.
struct Method {
  const char* name;
  std::function<bool(World&, Caller, absl::string_view request)> call;
};

// CheckAnswer fails the run on an answer no hostile request may cause: an
// unmapped error (an exception or crash in a handler), an internal error,
// or no answer in time.
inline void CheckAnswer(const char* method, const grpc::Status& status) {
  FUZZ_CHECK(status.error_code() != grpc::StatusCode::UNKNOWN &&
             status.error_code() != grpc::StatusCode::INTERNAL &&
             status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED)
      << method << " answered " << status.error_code() << ": " << status.error_message();
}

// Unary makes a Method of a unary stub method.
template <typename Stub, typename Request, typename Response>
Method Unary(const char* name, Stub& (World::*stub)(),
             grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*)) {
  return Method{name, [name, stub, method](World& world, Caller caller, absl::string_view bytes) {
                  Request request;
                  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
                    return false;
                  }
                  grpc::ClientContext ctx;
                  world.Authorize(ctx, caller);
                  Response response;
                  CheckAnswer(name, ((world.*stub)().*method)(&ctx, request, &response));
                  return true;
                }};
}

// RunCall runs the input against `methods`.
inline int RunCall(const std::vector<Method>& methods, const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  World& world = World::Get();
  world.RecycleIfLarge();
  const Method& method = methods[data[0] % methods.size()];
  const Caller caller = static_cast<Caller>(data[1] % static_cast<int>(Caller::kCount));
  method.call(world, caller, AsView(data + 2, size - 2));
  return 0;
}

}  // namespace ringwarden::fuzzing
