#include "server/core/rollout_manager.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/core/controller.h"
#include "tests/server/core/core_fixture.h"

namespace ringwarden::testing {
namespace {

class RolloutManagerTest : public CoreFixture {
 protected:
  RolloutManagerTest()
      : manager_(store_, snapshots_, policies_, keys_, NoManifests, clock_),
        controller_(
            store_, store_, snapshots_, policies_, observer_, clock_,
            [] { return absl::StatusOr<bool>(true); }, ControllerOptions{}) {}

  void SetUp() override {
    CoreFixture::SetUp();
    Upload(1);
    Upload(2);
    canary_ = Enroll("c", Ring::kCanary, 18);
    broad_ = Enroll("b", Ring::kBroad, 30);
    Heartbeat(canary_, 0);
    Heartbeat(broad_, 0);
    ASSERT_TRUE(snapshots_.Refresh().ok());
  }

  const RingProgressRecord& RingOf(const RolloutView& view, Ring ring) {
    for (const RingProgressRecord& p : view.rings) {
      if (p.ring == ring) {
        return p;
      }
    }
    ADD_FAILURE() << "no ring " << RingName(ring);
    return view.rings.front();
  }

  const Principal releaser_{"alice", Role::kReleaser};
  TrustedKeys keys_;
  NullObserver observer_;
  RolloutManager manager_;
  Controller controller_;
  std::vector<std::string> canary_;
  std::vector<std::string> broad_;
};

// The quickstart's bad update: every canary host downloads it and goes silent.
// The table and the explanation come from the same ledger, so both say failed.
TEST_F(RolloutManagerTest, TheStatusTableCountsSilentAndCrashedAgentsAsFailed) {
  absl::StatusOr<RolloutView> started =
      manager_.StartRollout(kChannel, 2, false, false, "bad", "", releaser_);
  ASSERT_TRUE(started.ok()) << started.status();
  const std::string id = started->rollout.id;
  clock_.Advance(absl::Minutes(1));
  Fetched(std::vector<std::string>(canary_.begin(), canary_.begin() + 15), 2);
  Applied(std::vector<std::string>(canary_.begin() + 15, canary_.end()), 2);
  Crashed(std::vector<std::string>(canary_.begin() + 15, canary_.end()), 2);
  clock_.Advance(absl::Minutes(16));
  Heartbeat(broad_, 0);
  ASSERT_TRUE(controller_.RunOnce().ok());

  absl::StatusOr<RolloutExplanation> explained = manager_.Explain(id);
  ASSERT_TRUE(explained.ok()) << explained.status();
  EXPECT_EQ(explained->view.rollout.position.state, RolloutState::kHalted);
  ASSERT_FALSE(explained->decisions.empty());
  EXPECT_NE(explained->decisions[0].summary.find("18 of 18 agents failed"), std::string::npos)
      << explained->decisions[0].summary;
  const RingProgressRecord& canary = RingOf(explained->view, Ring::kCanary);
  EXPECT_EQ(canary.targeted, 18);
  EXPECT_EQ(canary.applied, 0);  // nobody runs it: they are down
  EXPECT_EQ(canary.healthy, 0);
  EXPECT_EQ(canary.failed, 18);  // 15 silent + 3 crashed, as in the explanation
  EXPECT_EQ(RingOf(explained->view, Ring::kBroad).targeted, 30);
  EXPECT_EQ(RingOf(explained->view, Ring::kBroad).failed, 0);
  ASSERT_EQ(explained->automatic_actions.size(), 1u);
  EXPECT_EQ(explained->automatic_actions[0].action, "rollout.auto_halt");
}

TEST_F(RolloutManagerTest, HealthyAgentsRunningTheVersionAreAppliedAndHealthy) {
  absl::StatusOr<RolloutView> started =
      manager_.StartRollout(kChannel, 2, false, false, "", "", releaser_);
  ASSERT_TRUE(started.ok()) << started.status();
  clock_.Advance(absl::Minutes(1));
  Applied(canary_, 2);
  Heartbeat(canary_, 2);
  absl::StatusOr<RolloutView> view = manager_.Get(started->rollout.id);
  ASSERT_TRUE(view.ok()) << view.status();
  const RingProgressRecord& canary = RingOf(*view, Ring::kCanary);
  EXPECT_EQ(canary.targeted, 18);
  EXPECT_EQ(canary.applied, 18);
  EXPECT_EQ(canary.healthy, 18);
  EXPECT_EQ(canary.failed, 0);
}

TEST_F(RolloutManagerTest, PinnedAgentsAreNotTargeted) {
  ASSERT_TRUE(
      manager_.SetPin("group", "payments", kChannel, "n-1", "change freeze", releaser_).ok());
  Enroll("p", Ring::kCanary, 4, {{"group", "payments"}});
  absl::StatusOr<RolloutView> started =
      manager_.StartRollout(kChannel, 2, false, false, "", "", releaser_);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(RingOf(*started, Ring::kCanary).targeted, 18);
}

TEST_F(RolloutManagerTest, APromotionNeedsAPassedGateOrForceWithAReason) {
  absl::StatusOr<RolloutView> started =
      manager_.StartRollout(kChannel, 2, false, false, "", "", releaser_);
  ASSERT_TRUE(started.ok());
  const std::string id = started->rollout.id;
  absl::StatusOr<RolloutView> refused =
      manager_.Act(id, RolloutAction::kPromote, "", 0, false, releaser_);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("gate has not passed"), std::string::npos);
  EXPECT_EQ(manager_.Act(id, RolloutAction::kPromote, " ", 0, true, releaser_).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<RolloutView> forced =
      manager_.Act(id, RolloutAction::kPromote, "hotfix", 0, true, releaser_);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ(forced->rollout.position.state, RolloutState::kEarly);
  absl::StatusOr<std::vector<AuditRecord>> audit = store_.ListAudit(id, 1);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->at(0).action, "rollout.force_promote");
  EXPECT_EQ(audit->at(0).actor, "alice");
}

TEST_F(RolloutManagerTest, AStaleExpectedRevisionIsAborted) {
  absl::StatusOr<RolloutView> started =
      manager_.StartRollout(kChannel, 2, false, false, "", "", releaser_);
  ASSERT_TRUE(started.ok());
  const std::string id = started->rollout.id;
  ASSERT_TRUE(
      manager_.Act(id, RolloutAction::kHalt, "look", started->rollout.revision, false, releaser_)
          .ok());
  absl::StatusOr<RolloutView> stale = manager_.Act(id, RolloutAction::kResume, "again",
                                                   started->rollout.revision, false, releaser_);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(manager_.Get(id)->rollout.position.state, RolloutState::kHalted);
}

TEST_F(RolloutManagerTest, RollbackRevokesTheVersionAndSupersedeCancelsExplicitly) {
  absl::StatusOr<RolloutView> first =
      manager_.StartRollout(kChannel, 1, false, false, "", "", releaser_);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(manager_.StartRollout(kChannel, 2, false, false, "", "", releaser_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<RolloutView> second =
      manager_.StartRollout(kChannel, 2, false, true, "newer", "", releaser_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(manager_.Get(first->rollout.id)->rollout.position.state, RolloutState::kCancelled);
  absl::StatusOr<std::vector<AuditRecord>> audit = store_.ListAudit(first->rollout.id, 10);
  ASSERT_TRUE(audit.ok());
  EXPECT_EQ(audit->at(0).action, "rollout.supersede");

  ASSERT_TRUE(
      manager_.Act(second->rollout.id, RolloutAction::kRollback, "boot loops", 0, false, releaser_)
          .ok());
  absl::StatusOr<std::vector<ContentRecord>> content = store_.ListContent(kChannel);
  ASSERT_TRUE(content.ok());
  EXPECT_TRUE(content->front().revoked);
  EXPECT_EQ(manager_.StartRollout(kChannel, 2, false, false, "", "", releaser_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(RolloutManagerTest, BadInputIsRefusedWithAClearError) {
  EXPECT_EQ(
      manager_.StartRollout("Bad Channel", 2, false, false, "", "", releaser_).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_.StartRollout(kChannel, 0, false, false, "", "", releaser_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_.StartRollout(kChannel, 9, false, false, "", "", releaser_).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_.StartRollout(kChannel, 2, false, false, std::string(2000, 'x'), "", releaser_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_.Get("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_.Get("ro-missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_.SetPin("group", "x", kChannel, "n-2", "", releaser_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_.UploadContent("{}", "", releaser_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ringwarden::testing
