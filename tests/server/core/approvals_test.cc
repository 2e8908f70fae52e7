// The two-person rule on the core: held steps, approval by a second person,
// expiry, a world that moved, and the controller waiting at broad.
#include "server/core/approvals.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/core/controller.h"
#include "server/core/rollout_manager.h"
#include "tests/server/core/core_fixture.h"

namespace ringwarden::testing {
namespace {

// Message returns the text of a failed StatusOr (or "" when it succeeded).
template <typename T>
std::string Message(const absl::StatusOr<T>& r) {
  return std::string(r.status().message());
}

// RequestId finds the "ap-xxxxxxxx" a hold message names.
std::string RequestId(absl::string_view message) {
  const size_t at = message.find("ap-");
  return at == absl::string_view::npos ? "" : std::string(message.substr(at, 11));
}

class ApprovalsTest : public CoreFixture {
 protected:
  ApprovalsTest()
      : manager_(store_, snapshots_, policies_, keys_, NoManifests, clock_),
        controller_(
            store_, store_, snapshots_, policies_, observer_, clock_,
            [] { return absl::StatusOr<bool>(true); }, ControllerOptions{}, &manager_.approvals()) {
  }

  void SetUp() override {
    RolloutPolicy policy = TestPolicy();
    policy.two_person.enabled = rule_on_;
    policy.two_person.approval_ttl = absl::Hours(1);
    PutPolicy(policy);  // "default" v1: the policy rollouts record
    Upload(1);
    Upload(2);
    canary_ = Enroll("c", Ring::kCanary, 20);
    early_ = Enroll("e", Ring::kEarly, 20);
    broad_ = Enroll("b", Ring::kBroad, 20);
    ASSERT_TRUE(snapshots_.Refresh().ok());
  }

  absl::StatusOr<RolloutView> ForcePromote(const std::string& id, const Principal& who) {
    return manager_.Act(id, RolloutAction::kPromote, "hotfix INC-1", 0, /*force=*/true, who);
  }

  std::vector<ApprovalRecord> Pending() {
    absl::StatusOr<std::vector<ApprovalRecord>> list = manager_.approvals().List(true, 100);
    EXPECT_TRUE(list.ok()) << list.status();
    return list.ok() ? *list : std::vector<ApprovalRecord>{};
  }

  // FindAudit returns the first entry of `action` (by `actor`, when given).
  const AuditRecord* FindAudit(const std::string& action, const std::string& actor = "") {
    audit_ = store_.Audit();
    for (const AuditRecord& a : audit_) {
      if (a.action == action && (actor.empty() || a.actor == actor)) {
        return &a;
      }
    }
    return nullptr;
  }

  bool rule_on_ = true;
  const Principal alice_{"alice", Role::kReleaser};
  const Principal bob_{"bob", Role::kReleaser};
  const Principal carol_{"carol", Role::kViewer};
  TrustedKeys keys_;
  NullObserver observer_;
  RolloutManager manager_;
  Controller controller_;
  std::vector<std::string> canary_, early_, broad_;
  std::vector<AuditRecord> audit_;
};

TEST_F(ApprovalsTest, AForcedPromotionWaitsForADifferentPrincipal) {
  StartRollout("ro-1", 2);
  absl::StatusOr<RolloutView> held = ForcePromote("ro-1", alice_);
  ASSERT_TRUE(absl::IsFailedPrecondition(held.status())) << held.status();
  EXPECT_NE(Message(held).find("two-person rule"), std::string::npos) << Message(held);
  EXPECT_NE(Message(held).find("ringctl rollout approve ap-"), std::string::npos) << Message(held);
  const std::string id = RequestId(Message(held));
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);  // nothing changed
  EXPECT_EQ(Rollout("ro-1").revision, 1);
  std::vector<ApprovalRecord> pending = Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, id);
  EXPECT_EQ(pending[0].requested_by, "alice");
  EXPECT_EQ(pending[0].steps, std::vector<GatedStep>{GatedStep::kForce});
  EXPECT_EQ(pending[0].policy, "default v1");
  EXPECT_EQ(pending[0].expires_at, clock_.Now() + absl::Hours(1));

  absl::StatusOr<ApprovalRecord> own = manager_.approvals().Approve(id, "", alice_);
  EXPECT_TRUE(absl::IsPermissionDenied(own.status())) << own.status();
  EXPECT_NE(Message(own).find("two-person rule"), std::string::npos) << Message(own);
  absl::StatusOr<ApprovalRecord> viewer = manager_.approvals().Approve(id, "", carol_);
  EXPECT_TRUE(absl::IsPermissionDenied(viewer.status())) << viewer.status();
  EXPECT_NE(Message(viewer).find("needs role releaser"), std::string::npos) << Message(viewer);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);

  absl::StatusOr<ApprovalRecord> approved = manager_.approvals().Approve(id, "checked", bob_);
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->state, ApprovalState::kApproved);
  EXPECT_EQ(approved->decided_by, "bob");
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kEarly);
  const AuditRecord* approve = FindAudit("approval.approve");
  ASSERT_NE(approve, nullptr);
  EXPECT_EQ(approve->actor, "bob");
  EXPECT_EQ(approve->rollout_id, "ro-1");
  const AuditRecord* forced = FindAudit("rollout.force_promote");
  ASSERT_NE(forced, nullptr);
  EXPECT_EQ(forced->actor, "alice");
  EXPECT_EQ(nlohmann::json::parse(forced->evidence_json)["approval"]["approved_by"], "bob");
  EXPECT_TRUE(Pending().empty());

  absl::StatusOr<ApprovalRecord> again = manager_.approvals().Approve(id, "", bob_);
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status())) << again.status();
  EXPECT_NE(Message(again).find("already approved by bob"), std::string::npos) << Message(again);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kEarly);  // not promoted twice
}

TEST_F(ApprovalsTest, AskingAgainFindsThePendingRequest) {
  StartRollout("ro-1", 2);
  const std::string first = RequestId(Message(ForcePromote("ro-1", alice_)));
  const std::string second = RequestId(Message(ForcePromote("ro-1", alice_)));
  EXPECT_EQ(first, second);
  EXPECT_EQ(Pending().size(), 1u);
  // Someone else asking is their own request.
  const std::string bobs = RequestId(Message(ForcePromote("ro-1", bob_)));
  EXPECT_NE(bobs, first);
  EXPECT_EQ(Pending().size(), 2u);
}

TEST_F(ApprovalsTest, AnExpiredRequestCannotBeApproved) {
  StartRollout("ro-1", 2);
  const std::string id = RequestId(Message(ForcePromote("ro-1", alice_)));
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<ApprovalRecord> late = manager_.approvals().Approve(id, "", bob_);
  EXPECT_TRUE(absl::IsFailedPrecondition(late.status())) << late.status();
  EXPECT_NE(Message(late).find("expired"), std::string::npos) << Message(late);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);
  EXPECT_TRUE(Pending().empty());
  // Asking again opens a fresh request.
  const std::string fresh = RequestId(Message(ForcePromote("ro-1", alice_)));
  EXPECT_NE(fresh, id);
  EXPECT_EQ(Pending().size(), 1u);
}

TEST_F(ApprovalsTest, ApprovalFailsWhenTheRolloutMovedMeanwhile) {
  StartRollout("ro-1", 2);
  const std::string id = RequestId(Message(ForcePromote("ro-1", alice_)));
  ASSERT_TRUE(manager_.Act("ro-1", RolloutAction::kHalt, "look closer", 0, false, bob_).ok());
  absl::StatusOr<ApprovalRecord> stale = manager_.approvals().Approve(id, "", bob_);
  EXPECT_TRUE(absl::IsFailedPrecondition(stale.status())) << stale.status();
  EXPECT_NE(Message(stale).find("moved since the request"), std::string::npos) << Message(stale);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kHalted);
  EXPECT_EQ(Pending().size(), 1u);  // still pending: it can be rejected or left to expire
}

TEST_F(ApprovalsTest, ARejectedRequestCannotBeApproved) {
  StartRollout("ro-1", 2);
  const std::string id = RequestId(Message(ForcePromote("ro-1", alice_)));
  absl::StatusOr<ApprovalRecord> rejected = manager_.approvals().Reject(id, "not yet", bob_);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->state, ApprovalState::kRejected);
  absl::StatusOr<ApprovalRecord> approved = manager_.approvals().Approve(id, "", bob_);
  EXPECT_TRUE(absl::IsFailedPrecondition(approved.status())) << approved.status();
  EXPECT_NE(Message(approved).find("already rejected by bob"), std::string::npos);
  ASSERT_NE(FindAudit("approval.reject"), nullptr);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kCanary);
}

TEST_F(ApprovalsTest, MalformedAndUnknownIdsAreRefusedClearly) {
  for (const char* bad : {"", "ap-zz", "../../etc", "ro-0123abcd"}) {
    absl::StatusOr<ApprovalRecord> r = manager_.approvals().Approve(bad, "", bob_);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad << ": " << r.status();
    EXPECT_NE(Message(r).find("malformed"), std::string::npos) << Message(r);
  }
  absl::StatusOr<ApprovalRecord> unknown = manager_.approvals().Approve("ap-00000000", "", bob_);
  EXPECT_TRUE(absl::IsNotFound(unknown.status())) << unknown.status();
  EXPECT_NE(Message(unknown).find("ap-00000000"), std::string::npos);
  absl::StatusOr<ApprovalRecord> long_reason =
      manager_.approvals().Approve("ap-00000000", std::string(2000, 'x'), bob_);
  EXPECT_TRUE(absl::IsInvalidArgument(long_reason.status())) << long_reason.status();
}

TEST_F(ApprovalsTest, AManualPromotionIntoBroadIsHeld) {
  StartRollout("ro-1", 2);
  ASSERT_TRUE(Step("ro-1", RolloutAction::kPromote).ok());  // EARLY
  absl::StatusOr<RolloutView> held = ForcePromote("ro-1", alice_);
  ASSERT_TRUE(absl::IsFailedPrecondition(held.status())) << held.status();
  ASSERT_EQ(Pending().size(), 1u);
  EXPECT_EQ(Pending()[0].steps,
            (std::vector<GatedStep>{GatedStep::kEnterBroad, GatedStep::kForce}));
  ASSERT_TRUE(manager_.approvals().Approve(RequestId(Message(held)), "ok", bob_).ok());
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kBroad);
}

TEST_F(ApprovalsTest, TheControllerAsksOnceAndWaitsAtBroad) {
  StartRollout("ro-1", 2);
  ASSERT_TRUE(Step("ro-1", RolloutAction::kPromote).ok());  // EARLY
  BakeHealthy(early_, broad_, 2);
  absl::StatusOr<int> changed = controller_.RunOnce();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 0);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kEarly);
  std::vector<ApprovalRecord> pending = Pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].requested_by, kControllerActor);
  EXPECT_EQ(pending[0].steps, std::vector<GatedStep>{GatedStep::kEnterBroad});
  // Idempotent: later periods find the same request.
  clock_.Advance(absl::Seconds(5));
  Heartbeat(early_, 2);
  ASSERT_TRUE(controller_.RunOnce().ok());
  ASSERT_TRUE(controller_.RunOnce().ok());
  EXPECT_EQ(Pending().size(), 1u);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kEarly);

  ASSERT_TRUE(manager_.approvals().Approve(pending[0].id, "numbers look right", bob_).ok());
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kBroad);
  const AuditRecord* promote = FindAudit("rollout.promote", kControllerActor);
  ASSERT_NE(promote, nullptr);
  EXPECT_EQ(promote->actor, kControllerActor);
  EXPECT_EQ(nlohmann::json::parse(promote->evidence_json)["approval"]["approved_by"], "bob");
}

TEST_F(ApprovalsTest, ADowngradePinIsHeldAndLatestIsNot) {
  absl::StatusOr<PinRecord> held =
      manager_.SetPin("group", "payments", kChannel, "n-1", "freeze", alice_);
  ASSERT_TRUE(absl::IsFailedPrecondition(held.status())) << held.status();
  EXPECT_NE(Message(held).find("ringctl approvals approve ap-"), std::string::npos);
  EXPECT_TRUE(store_.ListPins()->empty());
  EXPECT_TRUE(manager_.SetPin("group", "web", kChannel, "latest", "", bob_).ok());
  ASSERT_TRUE(manager_.approvals().Approve(RequestId(Message(held)), "ok", bob_).ok());
  absl::StatusOr<std::vector<PinRecord>> pins = store_.ListPins();
  ASSERT_EQ(pins->size(), 2u);
  const AuditRecord* set = FindAudit("pin.set", "alice");
  ASSERT_NE(set, nullptr);  // the held pin, executed as alice asked it
  EXPECT_NE(set->evidence_json.find("payments"), std::string::npos) << set->evidence_json;
  EXPECT_EQ(nlohmann::json::parse(set->evidence_json)["approval"]["approved_by"], "bob");
}

TEST_F(ApprovalsTest, APolicyChangeIsHeldUntilApproved) {
  absl::StatusOr<PolicyRecord> held =
      manager_.SetPolicy("default", R"({"two_person_rule": false})", "too slow", alice_);
  ASSERT_TRUE(absl::IsFailedPrecondition(held.status())) << held.status();
  EXPECT_EQ(store_.GetPolicy("default", 0)->version, 1);
  // A malformed policy is refused before anything is stored.
  absl::StatusOr<PolicyRecord> bad = manager_.SetPolicy("default", "{\"bogus\": 1}", "", alice_);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  EXPECT_EQ(Pending().size(), 1u);
  ASSERT_TRUE(manager_.approvals().Approve(RequestId(Message(held)), "agreed", bob_).ok());
  EXPECT_EQ(store_.GetPolicy("default", 0)->version, 2);
  // Now the rule is off: changes apply at once.
  EXPECT_TRUE(manager_.SetPolicy("default", "{}", "", alice_).ok());
}

TEST_F(ApprovalsTest, ANamedPolicyWithTheRuleCannotBeSwitchedOffAlone) {
  ASSERT_TRUE(manager_.approvals()
                  .Approve(RequestId(Message(manager_.SetPolicy(
                               "default", R"({"two_person_rule": false})", "", alice_))),
                           "", bob_)
                  .ok());
  // "strict" carries the rule; the default no longer does.
  ASSERT_TRUE(manager_.SetPolicy("strict", R"({"two_person_rule": true})", "", alice_).ok());
  absl::StatusOr<PolicyRecord> off =
      manager_.SetPolicy("strict", R"({"two_person_rule": false})", "", alice_);
  EXPECT_TRUE(absl::IsFailedPrecondition(off.status())) << off.status();
  EXPECT_NE(Message(off).find("policy strict v1"), std::string::npos) << Message(off);
}

class RuleOffTest : public ApprovalsTest {
 protected:
  RuleOffTest() { rule_on_ = false; }
};

TEST_F(RuleOffTest, EverythingAppliesAtOnceAsBefore) {
  StartRollout("ro-1", 2);
  absl::StatusOr<RolloutView> early = ForcePromote("ro-1", alice_);
  ASSERT_TRUE(early.ok()) << early.status();
  absl::StatusOr<RolloutView> broad = ForcePromote("ro-1", alice_);
  ASSERT_TRUE(broad.ok()) << broad.status();
  EXPECT_EQ(broad->rollout.position.state, RolloutState::kBroad);
  EXPECT_TRUE(manager_.SetPin("group", "payments", kChannel, "n-1", "", alice_).ok());
  EXPECT_TRUE(manager_.SetPolicy("default", "{}", "", alice_).ok());
  EXPECT_TRUE(Pending().empty());
}

TEST_F(RuleOffTest, TheControllerPromotesIntoBroadAsBefore) {
  StartRollout("ro-1", 2);
  ASSERT_TRUE(Step("ro-1", RolloutAction::kPromote).ok());  // EARLY
  BakeHealthy(early_, broad_, 2);
  absl::StatusOr<int> changed = controller_.RunOnce();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(*changed, 1);
  EXPECT_EQ(Rollout("ro-1").position.state, RolloutState::kBroad);
  EXPECT_TRUE(Pending().empty());
}

}  // namespace
}  // namespace ringwarden::testing
