// The two-person rule on the real server and PostgreSQL, with two releasers
// (alice, bob), a viewer (carol) and an admin: dangerous steps wait for a
// second person, the requester cannot approve their own request, a viewer
// cannot approve at all, expired requests stay unexecuted, and the controller
// waits at the broad ring for a person. With the rule off nothing changes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "agent-client/agent.h"
#include "agent-client/sim/fleet.h"
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

// Fast gates (as in health_gate_test, with a 10% background so that a canary of
// about 15 agents can accept) and the rule on.
constexpr char kRulePolicy[] = R"({
  "canary": {"min_bake_seconds": 2, "min_healthy": 3, "silence_timeout_seconds": 6,
             "baseline_failure_rate": 0.1},
  "early":  {"min_bake_seconds": 2, "min_healthy": 3, "silence_timeout_seconds": 6,
             "baseline_failure_rate": 0.1},
  "broad":  {"min_bake_seconds": 2, "min_healthy": 3, "silence_timeout_seconds": 6,
             "baseline_failure_rate": 0.1},
  "broad_waves": [1.0],
  "two_person_rule": true,
  "approval_ttl_seconds": 3600
})";

class TwoPersonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CliResult boot = testing::RunServerCommand(
        {"bootstrap-admin", "--database", db_.conninfo(), "--name", "root"});
    ASSERT_EQ(boot.code, 0) << boot.err;
    admin_ = std::string(absl::StripAsciiWhitespace(boot.out));
    alice_ = testing::IssueTestToken(db_.conninfo(), "alice", Role::kReleaser);
    bob_ = testing::IssueTestToken(db_.conninfo(), "bob", Role::kReleaser);
    carol_ = testing::IssueTestToken(db_.conninfo(), "carol", Role::kViewer);
    // PublishContent uploads with this one.
    keys_.releaser_token = testing::IssueTestToken(db_.conninfo(), "publisher", Role::kReleaser);
    server_ = std::make_unique<ServerProcess>(
        db_.conninfo(), keys_, 0,
        std::vector<std::string>{"--poll-interval", "0.3", "--controller-interval", "0.3"});
  }

  CliResult Ctl(const std::string& token, std::vector<std::string> args) {
    return Ringctl(server_->address(), token, std::move(args));
  }

  // TurnRuleOn sets the default policy with the rule (the rule is off until then).
  void TurnRuleOn() {
    const std::string policy = keys_.dir.File("rule.json");
    testing::WriteFile(policy, kRulePolicy);
    CliResult set = Ctl(alice_, {"policy", "set", "default", "--file", policy, "--reason", "2PR"});
    ASSERT_EQ(set.code, 0) << set.err;
  }

  void Publish(int64_t version) {
    CliResult r = testing::PublishContent(server_->address(), keys_, kChannel, version,
                                          "rules " + std::to_string(version));
    ASSERT_EQ(r.code, 0) << r.err;
  }

  std::string Start(int64_t version) {
    CliResult r = Ctl(alice_, {"rollout", "start", "--channel", kChannel, "--version",
                               std::to_string(version), "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out)["id"].get<std::string>() : "";
  }

  std::string State(const std::string& id) {
    CliResult r = Ctl(carol_, {"rollout", "status", id, "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out)["state"].get<std::string>() : "";
  }

  nlohmann::json Pending() {
    CliResult r = Ctl(carol_, {"approvals", "list", "-o", "json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::array();
  }

  // HeldId checks that `r` was held by the rule and returns the request id it names.
  static std::string HeldId(const CliResult& r) {
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("two-person rule"), std::string::npos) << r.err;
    const size_t at = r.err.find("ap-");
    return at == std::string::npos ? "" : r.err.substr(at, 11);
  }

  TestDatabase db_;
  TestKeys keys_;
  // Two releasers, a viewer and an admin ("root").
  std::string alice_, bob_, carol_, admin_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(TwoPersonTest, AForcePromotionWaitsForASecondReleaser) {
  TurnRuleOn();
  Publish(1);
  const std::string ro = Start(1);
  ASSERT_EQ(State(ro), "CANARY");

  CliResult held = Ctl(alice_, {"rollout", "promote", ro, "--force", "--reason", "hotfix"});
  const std::string id = HeldId(held);
  ASSERT_FALSE(id.empty()) << held.err;
  EXPECT_NE(held.err.find("ringctl rollout approve " + id), std::string::npos) << held.err;
  EXPECT_EQ(State(ro), "CANARY");
  nlohmann::json pending = Pending();
  ASSERT_EQ(pending.size(), 1u) << pending.dump();
  EXPECT_EQ(pending[0]["id"], id);
  EXPECT_EQ(pending[0]["requested_by"], "alice");
  EXPECT_EQ(pending[0]["state"], "pending");

  CliResult own = Ctl(alice_, {"rollout", "approve", id});
  EXPECT_NE(own.code, 0);
  EXPECT_NE(own.err.find("PERMISSION_DENIED"), std::string::npos) << own.err;
  EXPECT_NE(own.err.find("two-person rule"), std::string::npos) << own.err;
  CliResult viewer = Ctl(carol_, {"rollout", "approve", id});
  EXPECT_NE(viewer.code, 0);
  EXPECT_NE(viewer.err.find("PERMISSION_DENIED"), std::string::npos) << viewer.err;
  EXPECT_EQ(State(ro), "CANARY");

  CliResult approved = Ctl(bob_, {"rollout", "approve", id, "--reason", "checked", "-o", "json"});
  ASSERT_EQ(approved.code, 0) << approved.err;
  EXPECT_EQ(nlohmann::json::parse(approved.out)["state"], "approved");
  EXPECT_EQ(State(ro), "EARLY");
  CliResult again = Ctl(bob_, {"approvals", "approve", id});
  EXPECT_NE(again.err.find("FAILED_PRECONDITION"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("already approved"), std::string::npos) << again.err;
  EXPECT_EQ(State(ro), "EARLY");

  // Both people are in the audit log.
  CliResult audit = Ctl(carol_, {"audit", "--rollout", ro, "-o", "json"});
  ASSERT_EQ(audit.code, 0) << audit.err << server_->Log();
  bool approval_entry = false, forced_entry = false;
  for (const auto& e : nlohmann::json::parse(audit.out)) {
    if (e["action"] == "approval.approve") {
      approval_entry = e["actor"] == "bob" && e["evidence"]["requested_by"] == "alice";
    }
    if (e["action"] == "rollout.force_promote") {
      forced_entry = e["actor"] == "alice" && e["evidence"]["approval"]["approved_by"] == "bob";
    }
  }
  EXPECT_TRUE(approval_entry) << audit.out;
  EXPECT_TRUE(forced_entry) << audit.out;
}

TEST_F(TwoPersonTest, AnExpiredRequestCannotBeApproved) {
  TurnRuleOn();
  Publish(1);
  const std::string ro = Start(1);
  const std::string id =
      HeldId(Ctl(alice_, {"rollout", "promote", ro, "--force", "--reason", "hotfix"}));
  ASSERT_FALSE(id.empty());
  // An hour passes (the policy's approval_ttl_seconds).
  db_.Exec(
      "UPDATE approval_requests SET expires_at = now() - interval '1 second', "
      "requested_at = now() - interval '1 hour'");
  CliResult late = Ctl(bob_, {"approvals", "approve", id});
  EXPECT_NE(late.code, 0);
  EXPECT_NE(late.err.find("FAILED_PRECONDITION"), std::string::npos) << late.err;
  EXPECT_NE(late.err.find("expired"), std::string::npos) << late.err;
  EXPECT_EQ(State(ro), "CANARY");
  EXPECT_TRUE(Pending().empty());
  CliResult all = Ctl(carol_, {"approvals", "list", "--all", "-o", "json"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(nlohmann::json::parse(all.out)[0]["state"], "expired");
}

TEST_F(TwoPersonTest, PolicyChangesAndFloorUploadsAreHeld) {
  TurnRuleOn();
  const std::string lax = keys_.dir.File("lax.json");
  testing::WriteFile(lax, R"({"two_person_rule": false})");
  const std::string policy_id =
      HeldId(Ctl(alice_, {"policy", "set", "default", "--file", lax, "--reason", "too slow"}));
  ASSERT_FALSE(policy_id.empty());
  CliResult shown = Ctl(carol_, {"policy", "show", "default", "-o", "json"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_EQ(nlohmann::json::parse(shown.out)["version"], 2);  // v1 is the built-in default

  Publish(1);
  Publish(2);
  const std::string floor = keys_.dir.File("floor.json");
  ASSERT_EQ(Ctl(alice_, {"floor", "sign", "--key", keys_.release_key_path, "--channel", kChannel,
                         "--version", "2", "-o", floor})
                .code,
            0);
  const std::string floor_id =
      HeldId(Ctl(alice_, {"floor", "upload", floor, "--reason", "v1 is bad"}));
  ASSERT_FALSE(floor_id.empty());
  EXPECT_NE(floor_id, policy_id);
  CliResult trust = Ctl(carol_, {"trust", "list", "-o", "json"});
  ASSERT_EQ(trust.code, 0) << trust.err;
  EXPECT_EQ(trust.out.find("\"floor\""), std::string::npos) << trust.out;  // nothing stored
  EXPECT_EQ(Pending().size(), 2u);

  CliResult floor_ok = Ctl(bob_, {"approvals", "approve", floor_id, "--reason", "agreed"});
  ASSERT_EQ(floor_ok.code, 0) << floor_ok.err;
  trust = Ctl(carol_, {"trust", "list", "-o", "json"});
  EXPECT_NE(trust.out.find("\"floor\""), std::string::npos) << trust.out;
  CliResult policy_no = Ctl(admin_, {"approvals", "reject", policy_id, "--reason", "keep it"});
  ASSERT_EQ(policy_no.code, 0) << policy_no.err;
  EXPECT_TRUE(Pending().empty());
  shown = Ctl(carol_, {"policy", "show", "default", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(shown.out)["version"], 2);  // v1 is the built-in default
}

TEST_F(TwoPersonTest, MalformedAndUnknownRequestIdsAreRefusedClearly) {
  CliResult malformed = Ctl(bob_, {"approvals", "approve", "../../etc/passwd"});
  EXPECT_NE(malformed.err.find("INVALID_ARGUMENT"), std::string::npos) << malformed.err;
  EXPECT_NE(malformed.err.find("ap-1a2b3c4d"), std::string::npos) << malformed.err;
  CliResult unknown = Ctl(bob_, {"approvals", "approve", "ap-00000000"});
  EXPECT_NE(unknown.err.find("NOT_FOUND"), std::string::npos) << unknown.err;
  CliResult reject = Ctl(bob_, {"approvals", "reject", "ap-00000000"});
  EXPECT_NE(reject.err.find("NOT_FOUND"), std::string::npos) << reject.err;
  CliResult huge = Ctl(bob_, {"approvals", "approve", std::string(5000, 'a')});
  EXPECT_NE(huge.err.find("INVALID_ARGUMENT"), std::string::npos) << huge.err;
  CliResult viewer = Ctl(carol_, {"approvals", "reject", "ap-00000000"});
  EXPECT_NE(viewer.err.find("PERMISSION_DENIED"), std::string::npos) << viewer.err;
}

TEST_F(TwoPersonTest, RuleOffKeepsTodaysBehaviour) {
  Publish(1);
  const std::string ro = Start(1);
  for (int i = 0; i < 2; ++i) {  // CANARY -> EARLY -> BROAD, forced, by one person
    CliResult r = Ctl(alice_, {"rollout", "promote", ro, "--force", "--reason", "test"});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  EXPECT_EQ(State(ro), "BROAD");
  CliResult pin =
      Ctl(alice_, {"pin", "set", "--label", "group=payments", "--channel", kChannel, "n-1"});
  EXPECT_EQ(pin.code, 0) << pin.err;
  EXPECT_TRUE(Pending().empty());
}

TEST_F(TwoPersonTest, TheControllerWaitsAtBroadForAPerson) {
  TurnRuleOn();
  const Root root = *agent::TrustConfiguredRoot(testing::ReadFileOrDie(keys_.root_path));
  agent::FleetOptions o;
  o.agents = 400;
  o.server = server_->address();
  o.connections = 2;
  o.threads = 4;
  o.seed = 7;
  o.token_fractions.push_back(agent::TokenFraction{
      testing::CreateEnrollmentToken(server_->address(), admin_, 400, {"group=dogfood"}), 0.03});
  o.server_ca_pem = testing::Pki().ServerCaPem();
  o.start_spread = absl::Milliseconds(500);
  o.agent.channels = {kChannel};
  o.agent.enrollment_token = testing::CreateEnrollmentToken(server_->address(), admin_, 400);
  o.agent.heartbeat_interval = absl::Milliseconds(500);
  o.agent.healthy_interval = absl::Seconds(1);
  o.agent.min_poll_interval = absl::Milliseconds(100);
  o.backoff.initial = absl::Milliseconds(100);
  o.backoff.max = absl::Seconds(1);
  agent::Fleet fleet(o, root);  // `root` outlives the fleet
  ASSERT_TRUE(fleet.Start().ok());
  ASSERT_TRUE(
      fleet.WaitFor([](const auto& s) { return s.enrolled == s.agents; }, absl::Seconds(60)));

  Publish(1);
  const std::string ro = Start(1);
  // Canary -> early is automatic; early -> broad waits for a request by the controller.
  nlohmann::json pending;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    pending = Pending();
    if (!pending.empty()) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(300));
  }
  ASSERT_EQ(pending.size(), 1u) << State(ro) << "\n" << Ctl(carol_, {"rollout", "explain", ro}).out;
  EXPECT_EQ(pending[0]["requested_by"], "controller");
  EXPECT_EQ(pending[0]["steps"], nlohmann::json::array({"enter_broad"}));
  // Many controller periods later it still waits, with one request.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(State(ro), "EARLY");
  EXPECT_EQ(Pending().size(), 1u);
  EXPECT_EQ(fleet.Summary().EverApplied("broad", kChannel, 1), 0);

  CliResult approved =
      Ctl(bob_, {"rollout", "approve", pending[0]["id"].get<std::string>(), "--reason", "go"});
  ASSERT_EQ(approved.code, 0) << approved.err;
  const absl::Time done = absl::Now() + absl::Seconds(60);
  while (absl::Now() < done && State(ro) == "EARLY") {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(State(ro) == "BROAD" || State(ro) == "COMPLETED") << State(ro);
  fleet.Stop();
}

}  // namespace
}  // namespace ringwarden
