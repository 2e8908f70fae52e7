// service_world.h: AgentService and AdminService served in process on the
// FakeStore, for the service fuzz targets.
//
// The world is the server's wiring (server/server.cc) with a FakeStore, a
// FakeClock and an --insecure agent credential: a pinned root and a second
// root, two content versions of one channel, a completed and a rolled-back
// rollout, a floor and an enrollment token, with deterministic keys. Calls go
// through a real in-process gRPC channel, so the request bytes are parsed by
// the same generated code the server uses.
//
//   World& world = World::Get();
//   grpc::ClientContext ctx;
//   world.Authorize(ctx, Caller::kAdmin);
//   world.admin().ListContent(&ctx, req, &resp);
//
// Not thread-safe; one per fuzz process (libFuzzer runs inputs one at a time).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "ringwarden/v1/admin.grpc.pb.h"
#include "ringwarden/v1/agent.grpc.pb.h"

namespace ringwarden::fuzzing {

// kFuzzAgent is the agent whose credential Caller::kAgent presents.
inline constexpr char kFuzzAgent[] = "host-1";
inline constexpr char kFuzzChannel[] = "rules.behavioral";

// FuzzEnrollmentToken is the world's enrollment token (fixed, so seeds can carry it).
inline constexpr char kFuzzEnrollmentToken[] =
    "rwe_00112233445566ff_a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s";

// Caller picks the "authorization" metadata of a call.
enum class Caller { kNone, kAgent, kOtherAgent, kGarbage, kViewer, kReleaser, kAdmin, kCount };

class World {
 public:
  // Get builds the world on first use.
  static World& Get();

  v1::AgentService::Stub& agent();
  v1::AdminService::Stub& admin();
  // Authorize adds the caller's credential (and a deadline) to `ctx`.
  void Authorize(grpc::ClientContext& ctx, Caller caller);
  // RecycleIfLarge rebuilds the world once it has taken in many calls, so a
  // long fuzz run's store stays small.
  void RecycleIfLarge();

  struct Parts;

 private:
  World();
  std::unique_ptr<Parts> parts_;
};

}  // namespace ringwarden::fuzzing
