#include "tests/fuzz/service_world.h"

#include <prometheus/registry.h>

#include "absl/time/time.h"
#include "common/admin_token.h"
#include "common/ed25519.h"
#include "common/secret_token.h"
#include "server/admin_service.h"
#include "server/agent_credentials.h"
#include "server/agent_service.h"
#include "server/auth.h"
#include "server/core/admin_tokens.h"
#include "server/core/agent_registry.h"
#include "server/core/policy_cache.h"
#include "server/core/rollout_manager.h"
#include "server/core/telemetry_writer.h"
#include "server/core/work_queue.h"
#include "server/manifest_codec.h"
#include "server/metrics.h"
#include "server/request_limits.h"
#include "server/trust_keeper.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/server/trust_fixture.h"
#include "tests/support/fake_store.h"

namespace ringwarden::fuzzing {
namespace {

using ::ringwarden::testing::FinishRollout;
using ::ringwarden::testing::RootPlan;
using ::ringwarden::testing::SignFloor;
using ::ringwarden::testing::SignRoot;
using ::ringwarden::testing::UploadSignedContent;

constexpr int kRecycleAfterCalls = 2000;

Ed25519PrivateKey SeededKey(char seed) {
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromSeed(std::string(32, seed));
  FUZZ_CHECK(key.ok()) << key.status();
  return *std::move(key);
}

void Check(const absl::Status& status) { FUZZ_CHECK(status.ok()) << status; }

// CountingBytes is a deterministic "random" source, so a world's tokens are the same
// in every run (they guard nothing here).
RandomBytesFn CountingBytes() {
  auto next = std::make_shared<unsigned char>(0);
  return [next](unsigned char* out, size_t size) {
    for (size_t i = 0; i < size; ++i) {
      out[i] = (*next)++;
    }
  };
}

std::string IssueToken(AdminTokens& tokens, const std::string& name, Role role) {
  const Principal admin{"root-admin", Role::kAdmin};
  absl::StatusOr<IssuedAdminToken> issued =
      tokens.Create(name, role, absl::Hours(24 * 30), "fuzz world", admin);
  Check(issued.status());
  return issued->token;
}

}  // namespace

// Parts is the server's wiring, in construction order (destroyed in reverse).
struct World::Parts {
  Parts();
  ~Parts() { grpc_server->Shutdown(); }

  Ed25519PrivateKey root_key = SeededKey('r');
  Ed25519PrivateKey release_key = SeededKey('l');
  Ed25519PrivateKey server_key = SeededKey('s');
  FakeClock clock;
  testing::FakeStore store{clock};
  SnapshotHolder snapshots{store};
  TrustKeeper trust{store, snapshots, server_key.PublicKey(), clock};
  prometheus::Registry registry;
  Metrics metrics{registry};
  TelemetryWriter telemetry{store, absl::Seconds(60), 10000};
  WorkQueue admin_queue{1, 64};
  PolicyCache policies{store};
  RolloutManager manager{
      store, snapshots, policies, [this] { return trust.ReleaseKeys(); }, DecodeContentManifest,
      clock};
  AgentRegistry agents{store, snapshots, clock};
  AgentCredentials credentials = AgentCredentials::Insecure(absl::Hours(24), clock);
  WorkQueue enroll_queue{1, 64};
  AdminTokens admin_tokens{store, clock, CountingBytes()};
  AdminAuthenticator auth{admin_tokens};
  std::unique_ptr<AgentServiceImpl> agent_service;
  std::unique_ptr<AdminServiceImpl> admin_service;
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<v1::AgentService::Stub> agent_stub;
  std::unique_ptr<v1::AdminService::Stub> admin_stub;
  std::string agent_token;
  std::string other_agent_token;
  std::string viewer_token;
  std::string releaser_token;
  std::string admin_token;
  int calls = 0;
};

World::Parts::Parts() {
  const absl::Time expires = clock.Now() + absl::Hours(24 * 365);
  const std::string root1 =
      SignRoot(RootPlan{1, {&root_key}, &release_key, &server_key, expires}, {&root_key});
  Check(trust.Open(root1));
  const Principal admin{"root-admin", Role::kAdmin};
  Check(trust
            .UploadRoot(
                SignRoot(RootPlan{2, {&root_key}, &release_key, &server_key, expires}, {&root_key}),
                "", admin)
            .status());
  Check(UploadSignedContent(store, kFuzzChannel, 1, "payload v1", release_key));
  Check(UploadSignedContent(store, kFuzzChannel, 2, "payload v2", release_key));
  Check(FinishRollout(store, "ro-1", kFuzzChannel, 1, /*revoke=*/false));
  Check(FinishRollout(store, "ro-2", kFuzzChannel, 2, /*revoke=*/true));
  Check(trust
            .UploadFloor(SignFloor(kFuzzChannel, 1, release_key), "",
                         Principal{"alice", Role::kReleaser})
            .status());
  Check(snapshots.Refresh());
  Check(manager.EnsureDefaultPolicy());
  // kFuzzEnrollmentToken, stored as an admin's CreateEnrollmentToken would.
  absl::StatusOr<ParsedToken> parsed = ParseSecretToken("rwe", kFuzzEnrollmentToken);
  Check(parsed.status());
  EnrollmentTokenRecord token;
  token.id = parsed->id;
  token.secret_sha256 = parsed->secret_sha256;
  token.labels = {{"ring", "canary"}};
  token.max_uses = 1000000;
  token.created_at = clock.Now();
  token.created_by = "root-admin";
  token.expires_at = clock.Now() + absl::Hours(24 * 30);
  Check(store.CreateEnrollmentToken(token, AuditRecord{}));
  Check(snapshots.Refresh());

  AgentServiceOptions options;
  options.assignment_ttl = absl::Hours(6);
  // The fake clock never moves, so a server-sized bucket would be empty after
  // its first 40 calls and every later input would only meet RESOURCE_EXHAUSTED.
  // The limiter still runs on every call; its bucket outlasts a world.
  options.rate_limit.burst = 2.0 * kRecycleAfterCalls;
  agent_service =
      std::make_unique<AgentServiceImpl>(options, snapshots, telemetry, metrics, trust, server_key,
                                         clock, agents, credentials, enroll_queue);
  absl::StatusOr<IssuedAdminToken> bootstrap =
      admin_tokens.Bootstrap("root-admin", absl::Hours(24 * 30));
  Check(bootstrap.status());
  admin_token = bootstrap->token;
  releaser_token = IssueToken(admin_tokens, "alice", Role::kReleaser);
  viewer_token = IssueToken(admin_tokens, "vera", Role::kViewer);
  admin_service = std::make_unique<AdminServiceImpl>(manager, trust, store, auth, admin_tokens,
                                                     admin_queue, metrics, clock, agents);
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(static_cast<int>(MaxServerReceiveBytes()));
  builder.RegisterService(agent_service.get());
  builder.RegisterService(admin_service.get());
  grpc_server = builder.BuildAndStart();
  FUZZ_CHECK(grpc_server != nullptr);
  std::shared_ptr<grpc::Channel> channel = grpc_server->InProcessChannel(grpc::ChannelArguments());
  agent_stub = v1::AgentService::NewStub(channel);
  admin_stub = v1::AdminService::NewStub(channel);
  absl::StatusOr<IssuedCredential> issued = credentials.Issue(kFuzzAgent, "", *snapshots.Current());
  Check(issued.status());
  agent_token = issued->token;
  absl::StatusOr<IssuedCredential> other = credentials.Issue("host-2", "", *snapshots.Current());
  Check(other.status());
  other_agent_token = other->token;
}

World::World() : parts_(std::make_unique<Parts>()) {}

World& World::Get() {
  static World* const world = new World();
  return *world;
}

v1::AgentService::Stub& World::agent() { return *parts_->agent_stub; }
v1::AdminService::Stub& World::admin() { return *parts_->admin_stub; }

void World::Authorize(grpc::ClientContext& ctx, Caller caller) {
  ++parts_->calls;
  // A handler that does not answer within this is a hang: the target checks the status.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(8));
  switch (caller) {
    case Caller::kNone:
    case Caller::kCount:
      return;
    case Caller::kAgent:
      ctx.AddMetadata("authorization", "Bearer " + parts_->agent_token);
      return;
    case Caller::kOtherAgent:
      ctx.AddMetadata("authorization", "Bearer " + parts_->other_agent_token);
      return;
    case Caller::kGarbage:
      ctx.AddMetadata("authorization", "Bearer rwa3.1.99999999999.agent-1.AAAA");
      return;
    case Caller::kViewer:
      ctx.AddMetadata("authorization", "Bearer " + parts_->viewer_token);
      return;
    case Caller::kReleaser:
      ctx.AddMetadata("authorization", "Bearer " + parts_->releaser_token);
      return;
    case Caller::kAdmin:
      ctx.AddMetadata("authorization", "Bearer " + parts_->admin_token);
      return;
  }
}

void World::RecycleIfLarge() {
  if (parts_->calls >= kRecycleAfterCalls) {
    parts_.reset();
    parts_ = std::make_unique<Parts>();
  }
}

}  // namespace ringwarden::fuzzing
