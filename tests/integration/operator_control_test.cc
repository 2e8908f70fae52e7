// Operator controls against the real server: the emergency stop freezes every
// rollout and agents are told to apply nothing new; pins hold agent groups
// back; both are audited.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/synchronization/notification.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::CliResult;
using testing::Ringctl;
using testing::ServerProcess;
using testing::TestDatabase;
using testing::TestKeys;

constexpr char kChannel[] = "rules.behavioral";

class OperatorControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_);
    const std::string policy = keys_.dir.File("p.json");
    testing::WriteFile(policy, R"({"broad_waves": [1.0]})");
    ASSERT_EQ(Ctl({"policy", "set", "default", "--file", policy}).code, 0);
  }

  CliResult Ctl(std::vector<std::string> args) {
    return Ctl(std::move(args), keys_.releaser_token);
  }
  CliResult Ctl(std::vector<std::string> args, const std::string& token) {
    return Ringctl(server_->address(), token, std::move(args));
  }

  void Publish(int64_t version) {
    CliResult r = testing::PublishContent(server_->address(), keys_, kChannel, version,
                                          "rules " + std::to_string(version));
    ASSERT_EQ(r.code, 0) << r.err;
  }

  std::string Start(int64_t version) {
    CliResult r = Ctl({"rollout", "start", "--channel", kChannel, "--version",
                       std::to_string(version), "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out)["id"].get<std::string>();
  }

  void Complete(const std::string& id) {
    for (int i = 0; i < 3; ++i) {
      CliResult r = Ctl({"rollout", "promote", id, "--force", "--reason", "test"});
      ASSERT_EQ(r.code, 0) << r.err;
    }
  }

  // Enroll enrolls an agent with a token that gives it `labels` (the labels
  // that decide rings and pins come from tokens and admins only).
  testing::TestAgent Enroll(const std::string& id, std::map<std::string, std::string> labels) {
    std::vector<std::string> label_args;
    for (const auto& [k, v] : labels) {
      label_args.push_back(k + "=" + v);
    }
    absl::StatusOr<testing::TestAgent> agent = testing::EnrollAgent(
        server_->address(), id,
        testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 1, label_args));
    EXPECT_TRUE(agent.ok()) << agent.status();
    return agent.ok() ? *agent : testing::TestAgent{};
  }

  v1::GetAssignmentResponse Poll(const std::string& id, const testing::TestAgent& agent,
                                 int64_t current) {
    v1::GetAssignmentRequest req;
    req.set_agent_id(id);
    v1::ChannelVersion* cv = req.add_current();
    cv->set_channel(kChannel);
    cv->set_version(current);
    v1::GetAssignmentResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = v1::AgentService::NewStub(testing::ServerChannel(server_->address(), &agent))
                         ->GetAssignment(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  static int64_t Version(const v1::GetAssignmentResponse& r) {
    for (const auto& a : r.assignments()) {
      if (a.channel() == kChannel) {
        return a.version();
      }
    }
    return -1;
  }

  TestDatabase db_;
  TestKeys keys_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(OperatorControlTest, EmergencyStopFreezesEverythingUntilLifted) {
  const testing::TestAgent token = Enroll("dog-1", {{"group", "dogfood"}});  // canary by label
  Publish(1);
  const std::string id = Start(1);
  EXPECT_EQ(Version(Poll("dog-1", token, 0)), 1);

  // Only admins may pull the stop, and it needs a reason.
  EXPECT_EQ(Ctl({"emergency-stop", "--reason", "INC-1"}).code, 2);
  EXPECT_EQ(Ctl({"emergency-stop"}, keys_.admin_token).code, 1);
  CliResult stop = Ctl({"emergency-stop", "--reason", "INC-1"}, keys_.admin_token);
  ASSERT_EQ(stop.code, 0) << stop.err;

  v1::GetAssignmentResponse frozen = Poll("dog-1", token, 0);
  EXPECT_TRUE(frozen.emergency_stop());
  EXPECT_EQ(Version(frozen), 0);  // nothing new
  CliResult promote = Ctl({"rollout", "promote", id, "--force", "--reason", "x"});
  EXPECT_EQ(promote.code, 2);
  EXPECT_NE(promote.err.find("emergency stop"), std::string::npos) << promote.err;

  ASSERT_EQ(Ctl({"emergency-stop", "--lift", "--reason", "INC-1 resolved"}, keys_.admin_token).code,
            0);
  v1::GetAssignmentResponse lifted = Poll("dog-1", token, 0);
  EXPECT_FALSE(lifted.emergency_stop());
  EXPECT_EQ(Version(lifted), 1);
  auto audit = nlohmann::json::parse(Ctl({"audit", "-o", "json"}).out);
  EXPECT_EQ(audit[0]["action"], "emergency_stop.lift");
  EXPECT_EQ(audit[1]["action"], "emergency_stop.activate");
  EXPECT_EQ(audit[1]["actor"], "alice");
}

TEST_F(OperatorControlTest, PinsHoldGroupsBack) {
  const testing::TestAgent pinned = Enroll("pay-1", {{"group", "payments"}});
  const testing::TestAgent n1 = Enroll("fin-1", {{"group", "finance"}});
  const testing::TestAgent free = Enroll("dog-1", {{"group", "dogfood"}});
  Publish(1);
  Complete(Start(1));
  Publish(2);
  Complete(Start(2));
  ASSERT_EQ(Ctl({"pin", "set", "--label", "group=payments", "--channel", kChannel, "1"}).code, 0);
  ASSERT_EQ(Ctl({"pin", "set", "--label", "group=finance", "--channel", kChannel, "n-1"}).code, 0);
  Publish(3);
  Start(3);  // canary: dogfood gets it

  EXPECT_EQ(Version(Poll("dog-1", free, 2)), 3);
  EXPECT_EQ(Version(Poll("pay-1", pinned, 0)), 1);
  v1::GetAssignmentResponse back = Poll("pay-1", pinned, 2);
  EXPECT_EQ(Version(back), 1);
  EXPECT_TRUE(back.assignments(0).rollback());
  EXPECT_EQ(Version(Poll("fin-1", n1, 0)), 1);  // n-1 of completed {1, 2}

  // Bad pins are refused with a message that says what is allowed.
  CliResult bad = Ctl({"pin", "set", "--label", "group=payments", "--channel", kChannel, "n-2"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("latest, n-1"), std::string::npos) << bad.err;
  EXPECT_EQ(Ctl({"pin", "set", "--label", "nolabel", "--channel", kChannel, "1"}).code, 2);
  auto pins = nlohmann::json::parse(Ctl({"pin", "list", "-o", "json"}).out);
  EXPECT_EQ(pins.size(), 2u);
}

TEST_F(OperatorControlTest, PolicyInputIsValidatedAndVersioned) {
  const std::string bad = keys_.dir.File("bad.json");
  testing::WriteFile(bad, R"({"canary": {"alpha": 0.9}})");
  CliResult r = Ctl({"policy", "set", "strict", "--file", bad});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("canary.alpha"), std::string::npos) << r.err;
  testing::WriteFile(bad, "not json");
  EXPECT_EQ(Ctl({"policy", "set", "strict", "--file", bad}).code, 2);
  EXPECT_EQ(Ctl({"policy", "show", "strict"}).code, 2);  // nothing was stored
  const std::string good = keys_.dir.File("good.json");
  testing::WriteFile(good, R"({"canary": {"min_bake_seconds": 60}})");
  ASSERT_EQ(Ctl({"policy", "set", "strict", "--file", good}).code, 0);
  ASSERT_EQ(Ctl({"policy", "set", "strict", "--file", good}).code, 0);
  auto shown = nlohmann::json::parse(Ctl({"policy", "show", "strict", "-o", "json"}).out);
  EXPECT_EQ(shown["version"], 2);
  EXPECT_EQ(shown["policy"]["canary"]["min_bake_seconds"], 60);
  // A viewer cannot change policies.
  EXPECT_EQ(Ctl({"policy", "set", "strict", "--file", good}, keys_.viewer_token).code, 2);
}

}  // namespace
}  // namespace ringwarden

namespace ringwarden {
namespace {

// The standard gRPC health service answers SERVING: load balancers and the
// Kubernetes grpc probe in deploy/k8s rely on it.
TEST(ServerHealthTest, StandardHealthServiceReportsServing) {
  testing::TestDatabase db;
  testing::TestKeys keys;
  testing::ServerProcess server(db.conninfo(), keys);
  grpc::GenericStub stub(testing::ServerChannel(server.address()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  // HealthCheckRequest{service: ""} serializes to no bytes.
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  grpc::Slice empty;
  request = grpc::ByteBuffer(&empty, 1);
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // HealthCheckResponse{status: SERVING (1)} is field 1, varint 1.
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

}  // namespace
}  // namespace ringwarden
