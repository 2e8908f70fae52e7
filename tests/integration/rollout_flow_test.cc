// The walking skeleton end to end: ringctl signs and uploads, a rollout moves
// through canary, early and broad with a real fleet of agents against the real
// server and PostgreSQL, survives a server restart, and rolls back.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "agent-client/agent.h"
#include "agent-client/sim/fleet.h"
#include "common/dsse.h"
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

class RolloutFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    port_ = testing::FreePort();
    server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_, port_, FastArgs());
    root_ = *agent::TrustConfiguredRoot(testing::ReadFileOrDie(keys_.root_path));
    // One broad wave, so BROAD reaches the whole ring and the next promotion completes.
    const std::string policy = keys_.dir.File("policy.json");
    testing::WriteFile(policy, R"({"broad_waves": [1.0]})");
    CliResult set = Ctl({"policy", "set", "skeleton", "--file", policy});
    ASSERT_EQ(set.code, 0) << set.err;
  }

  static std::vector<std::string> FastArgs() { return {"--poll-interval", "0.2"}; }

  CliResult Ctl(std::vector<std::string> args) {
    return Ringctl(server_->address(), keys_.releaser_token, std::move(args));
  }

  // Publish signs `version` with ringctl and uploads it.
  void Publish(int64_t version) {
    CliResult r = testing::PublishContent(server_->address(), keys_, kChannel, version,
                                          "detection rules v" + std::to_string(version) +
                                              std::string(2000, static_cast<char>('a' + version)));
    ASSERT_EQ(r.code, 0) << r.err;
  }

  nlohmann::json Status(const std::string& id) {
    CliResult r = Ctl({"rollout", "status", id, "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }

  std::string Start(int64_t version) {
    CliResult r = Ctl({"rollout", "start", "--channel", kChannel, "--version",
                       std::to_string(version), "--policy", "skeleton", "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["state"], "CANARY");
    return doc["id"].get<std::string>();
  }

  // Promote steps a rollout by hand: the default policy's gates bake for an
  // hour, so the walk through the rings is a forced, audited promotion.
  void Promote(const std::string& id, const std::string& want_state) {
    CliResult r =
        Ctl({"rollout", "promote", id, "--force", "--reason", "manual walk", "-o", "json"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["state"], want_state);
  }

  agent::FleetOptions FleetOpts(int agents) {
    agent::FleetOptions o;
    o.agents = agents;
    o.server = server_->address();
    o.connections = 2;
    o.threads = 6;
    // Dogfood hosts are canary because their enrollment token says so.
    o.token_fractions.push_back(
        agent::TokenFraction{testing::CreateEnrollmentToken(server_->address(), keys_.admin_token,
                                                            agents, {"group=dogfood"}),
                             0.02});
    o.server_ca_pem = testing::Pki().ServerCaPem();
    o.start_spread = absl::Milliseconds(500);
    o.agent.channels = {kChannel};
    o.agent.enrollment_token =
        testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, agents);
    o.agent.heartbeat_interval = absl::Milliseconds(300);
    o.agent.healthy_interval = absl::Seconds(1);
    o.agent.min_poll_interval = absl::Milliseconds(100);
    o.backoff.initial = absl::Milliseconds(100);
    o.backoff.max = absl::Seconds(1);
    return o;
  }

  // WaitRings waits until, for every ring, `want(ring)` agents run `version`.
  static bool Reached(const agent::FleetSummary& s, const std::string& ring, int64_t version) {
    auto it = s.ring_agents.find(ring);
    const int64_t in_ring = it == s.ring_agents.end() ? 0 : it->second;
    return s.InEffect(ring, kChannel, version) == in_ring;
  }

  TestDatabase db_;
  TestKeys keys_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> server_;
  Root root_;
};

TEST_F(RolloutFlowTest, SignedUpdateWalksThroughEveryRingThenRollsBack) {
  agent::Fleet fleet(FleetOpts(400), root_);
  ASSERT_TRUE(fleet.Start().ok());
  ASSERT_TRUE(fleet.WaitFor([](const agent::FleetSummary& s) { return s.enrolled == s.agents; },
                            absl::Seconds(60)))
      << fleet.Summary().ToLine();

  // v1: canary first, and nobody else.
  Publish(1);
  const std::string r1 = Start(1);
  ASSERT_TRUE(
      fleet.WaitFor([](const auto& s) { return Reached(s, "canary", 1); }, absl::Seconds(60)))
      << fleet.Summary().ToJson();
  agent::FleetSummary s = fleet.Summary();
  ASSERT_GT(s.ring_agents["canary"], 0);
  EXPECT_EQ(s.EverApplied("early", kChannel, 1), 0);
  EXPECT_EQ(s.EverApplied("broad", kChannel, 1), 0);

  Promote(r1, "EARLY");
  ASSERT_TRUE(
      fleet.WaitFor([](const auto& s) { return Reached(s, "early", 1); }, absl::Seconds(60)));
  EXPECT_EQ(fleet.Summary().EverApplied("broad", kChannel, 1), 0);
  Promote(r1, "BROAD");
  ASSERT_TRUE(
      fleet.WaitFor([](const auto& s) { return Reached(s, "broad", 1); }, absl::Seconds(60)));
  Promote(r1, "COMPLETED");

  // The server's own accounting agrees once telemetry is written.
  nlohmann::json status;
  for (int i = 0; i < 100; ++i) {
    status = Status(r1);
    int64_t applied = 0, targeted = 0;
    for (const auto& ring : status["rings"]) {
      applied += ring["applied"].get<int64_t>();
      targeted += ring["targeted"].get<int64_t>();
    }
    if (applied == 400 && targeted == 400) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  for (const auto& ring : status["rings"]) {
    EXPECT_EQ(ring["applied"], ring["targeted"]) << status.dump() << "\n"
                                                 << fleet.Summary().ToLine();
    EXPECT_EQ(ring["applied"], fleet.Summary().ring_agents[ring["ring"].get<std::string>()]);
  }

  // v2 reaches canary and early, then the server restarts: state survives.
  Publish(2);
  const std::string r2 = Start(2);
  Promote(r2, "EARLY");
  ASSERT_TRUE(
      fleet.WaitFor([](const auto& s) { return Reached(s, "canary", 2) && Reached(s, "early", 2); },
                    absl::Seconds(60)));
  const int64_t revision = Status(r2)["revision"].get<int64_t>();
  server_->Stop();
  server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_, port_, FastArgs());
  nlohmann::json after = Status(r2);
  EXPECT_EQ(after["state"], "EARLY");
  EXPECT_EQ(after["revision"], revision);
  EXPECT_EQ(fleet.Summary().EverApplied("broad", kChannel, 2), 0);

  // Roll back: every agent returns to v1, and v2 is revoked for good.
  CliResult rb = Ctl({"rollout", "rollback", r2, "--reason", "test rollback", "-o", "json"});
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_EQ(nlohmann::json::parse(rb.out)["state"], "ROLLED_BACK");
  ASSERT_TRUE(fleet.WaitFor(
      [](const auto& s) {
        return Reached(s, "canary", 1) && Reached(s, "early", 1) && Reached(s, "broad", 1);
      },
      absl::Seconds(60)))
      << fleet.Summary().ToJson();
  EXPECT_EQ(fleet.Summary().InEffect("", kChannel, 2), 0);
  CliResult again = Ctl({"rollout", "start", "--channel", kChannel, "--version", "2"});
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.err.find("revoked"), std::string::npos) << again.err;
  EXPECT_EQ(db_.Query("SELECT count(*) FROM content WHERE version = 2 AND revoked_at IS NOT NULL"),
            "1");

  // The audit log holds every step, with actor and reason.
  CliResult audit = Ctl({"audit", "--rollout", r2, "-o", "json"});
  ASSERT_EQ(audit.code, 0);
  auto entries = nlohmann::json::parse(audit.out);
  ASSERT_GE(entries.size(), 4u);
  EXPECT_EQ(entries[0]["action"], "rollout.rollback");
  EXPECT_EQ(entries[0]["actor"], "bob");
  EXPECT_EQ(entries[0]["reason"], "test rollback");
  EXPECT_TRUE(entries[0]["evidence"].contains("rings"));
  fleet.Stop();
}

TEST_F(RolloutFlowTest, CrashOfTheServerLosesNoCommittedStep) {
  Publish(1);
  const std::string id = Start(1);
  Promote(id, "EARLY");
  server_->Kill();  // SIGKILL: no graceful shutdown
  server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_, port_, FastArgs());
  EXPECT_EQ(Status(id)["state"], "EARLY");
  Promote(id, "BROAD");
  // A stale revision is refused: a step is never applied twice.
  // Without --force the gate is checked, and it has not passed.
  CliResult gated = Ctl({"rollout", "promote", id});
  EXPECT_EQ(gated.code, 2);
  EXPECT_NE(gated.err.find("gate has not passed"), std::string::npos) << gated.err;
  CliResult unexplained = Ctl({"rollout", "promote", id, "--force"});
  EXPECT_EQ(unexplained.code, 2);
  EXPECT_NE(unexplained.err.find("reason"), std::string::npos) << unexplained.err;
  CliResult stale =
      Ctl({"rollout", "promote", id, "--expected-revision", "2", "--force", "--reason", "replay"});
  EXPECT_EQ(stale.code, 2);
  EXPECT_NE(stale.err.find("ABORTED"), std::string::npos) << stale.err;
  EXPECT_EQ(Status(id)["state"], "BROAD");
}

}  // namespace
}  // namespace ringwarden
