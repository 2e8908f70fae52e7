// Fuzzes every AgentService method in process (service_world.h): the first
// byte picks the method, the second the credential, the rest is the request.
// Handlers must answer every request with a mapped status, in time, without
// a sanitizer report or a leak.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/service_call.h"

namespace ringwarden::fuzzing {
namespace {

using Stub = v1::AgentService::Stub;

// FetchContent streams; the chunks are read to the end.
bool FetchContent(World& world, Caller caller, absl::string_view bytes) {
  v1::FetchContentRequest request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return false;
  }
  grpc::ClientContext ctx;
  world.Authorize(ctx, caller);
  std::unique_ptr<grpc::ClientReader<v1::ContentChunk>> reader =
      world.agent().FetchContent(&ctx, request);
  v1::ContentChunk chunk;
  while (reader->Read(&chunk)) {
  }
  CheckAnswer("FetchContent", reader->Finish());
  return true;
}

const std::vector<Method>& Methods() {
  static const std::vector<Method>* const methods = new std::vector<Method>{
      Unary("Enroll", &World::agent, &Stub::Enroll),
      Unary("RenewCredential", &World::agent, &Stub::RenewCredential),
      Unary("GetAssignment", &World::agent, &Stub::GetAssignment),
      Method{"FetchContent", FetchContent},
      Unary("ReportTelemetry", &World::agent, &Stub::ReportTelemetry),
  };
  return *methods;
}

}  // namespace
}  // namespace ringwarden::fuzzing

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return ringwarden::fuzzing::RunCall(ringwarden::fuzzing::Methods(), data, size);
}
