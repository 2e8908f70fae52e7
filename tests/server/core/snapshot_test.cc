#include "server/core/snapshot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "tests/server/core/core_fixture.h"

namespace ringwarden::testing {
namespace {

const std::map<std::string, std::string> kDogfood = {{"group", "dogfood"}};  // canary by label

class SnapshotTest : public CoreFixture {
 protected:
  void SetUp() override {
    CoreFixture::SetUp();
    for (int64_t v = 1; v <= 4; ++v) {
      Upload(v);
    }
    Complete("ro-1", 1);
    Complete("ro-2", 2, 1);
    Complete("ro-3", 3, 2);
  }

  void Complete(const std::string& id, int64_t version, int64_t previous = 0) {
    StartRollout(id, version, previous);
    while (Rollout(id).position.state != RolloutState::kCompleted) {
      ASSERT_TRUE(Step(id, RolloutAction::kPromote).ok());
    }
  }

  // Answer resolves one agent currently on `current` for the test channel.
  ChannelAnswer Answer(const std::string& agent_id, std::map<std::string, std::string> labels,
                       int64_t current) {
    std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
    const AgentIdentity agent{agent_id, std::move(labels)};
    std::vector<ChannelAnswer> answers =
        snapshot->Resolve(agent, snapshot->RingOf(agent), {{kChannel, current}}, {kChannel});
    EXPECT_EQ(answers.size(), 1u);
    return answers.empty() ? ChannelAnswer{} : answers[0];
  }

  void Pin(const std::string& key, const std::string& value, const std::string& policy) {
    PinRecord pin{key, value, kChannel, *ParsePinPolicy(policy)};
    ASSERT_TRUE(store_.UpsertPin(pin, AuditAs("pin.set")).ok());
    ASSERT_TRUE(snapshots_.Refresh().ok());
  }
};

TEST_F(SnapshotTest, TheNewestCompletedVersionIsHandedOutWithItsBytes) {
  const ChannelAnswer a = Answer("host-1", {}, 0);
  EXPECT_EQ(a.assignment.version, 3);
  ASSERT_NE(a.blob, nullptr);
  EXPECT_EQ(*a.blob->payload, "payload v3");
  EXPECT_EQ(a.blob->meta.sha256, "sha-3");
  EXPECT_TRUE(a.revoked.empty());
}

TEST_F(SnapshotTest, AHoldingPinWinsOverLatest) {
  Pin("group", "payments", "latest");
  Pin("site", "eu", "n-1");
  EXPECT_EQ(Answer("host-1", {{"group", "payments"}}, 0).assignment.version, 3);
  EXPECT_EQ(Answer("host-1", {{"site", "eu"}}, 0).assignment.version, 2);
  // Both pins match: the one that holds back wins, whatever the order.
  EXPECT_EQ(Answer("host-1", {{"group", "payments"}, {"site", "eu"}}, 0).assignment.version, 2);
  Pin("group", "payments", "1");
  EXPECT_EQ(Answer("host-1", {{"group", "payments"}, {"site", "eu"}}, 3).assignment.version, 1);
  EXPECT_TRUE(Answer("host-1", {{"group", "payments"}, {"site", "eu"}}, 3).assignment.rollback);
  ASSERT_EQ(snapshots_.Current()->pins().size(), 2u);
}

TEST_F(SnapshotTest, LabelsReadInPlaceFromTheSnapshotDecidePinsAndRings) {
  // A poll's identity points at the labels the snapshot holds (AgentIdentity::snapshot_labels)
  // instead of carrying a copy; they must count as its own would.
  Pin("site", "eu", "n-1");
  const std::map<std::string, std::string> held = {{"site", "eu"}};
  AgentIdentity agent{"host-1", {}};
  agent.snapshot_labels = &held;
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  const std::vector<ChannelAnswer> answers =
      snapshot->Resolve(agent, snapshot->RingOf(agent), {{kChannel, 0}}, {kChannel});
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].assignment.version, 2);
  EXPECT_EQ(Answer("host-1", {}, 0).assignment.version, 3);
  const std::map<std::string, std::string> dogfood = kDogfood;
  ASSERT_NE(snapshot->RingOf(AgentIdentity{"sybil-1", {}}), Ring::kCanary);
  AgentIdentity canary{"sybil-1", {}};
  canary.snapshot_labels = &dogfood;
  EXPECT_EQ(snapshot->RingOf(canary), Ring::kCanary);
}

TEST_F(SnapshotTest, PinnedAgentsNeverReceiveTheRollout) {
  Pin("group", "dogfood", "n-1");
  StartRollout("ro-4", 4, 3);
  EXPECT_EQ(Answer("canary-host", kDogfood, 2).assignment.version, 2);
  EXPECT_EQ(Answer("canary-host", {{"group", "dogfood"}, {"x", "y"}}, 2).assignment.rollout_id, "");
}

TEST_F(SnapshotTest, ARolloutReachesOnlyTheRingsItsStageAllows) {
  StartRollout("ro-4", 4, 3);
  ChannelAnswer canary = Answer("canary-host", kDogfood, 3);
  EXPECT_EQ(canary.assignment.version, 4);
  EXPECT_EQ(canary.assignment.rollout_id, "ro-4");
  ASSERT_NE(canary.blob, nullptr);
  EXPECT_EQ(*canary.blob->payload, "payload v4");
  const Ring ring = snapshots_.Current()->RingOf(AgentIdentity{"host-1", {}});
  ASSERT_NE(ring, Ring::kCanary);
  EXPECT_EQ(Answer("host-1", {}, 3).assignment.version, 3);
}

TEST_F(SnapshotTest, AHaltedRolloutReachesNobodyNewAndWhoHasItKeepsIt) {
  StartRollout("ro-4", 4, 3);
  ASSERT_TRUE(Step("ro-4", RolloutAction::kHalt).ok());
  EXPECT_EQ(Answer("canary-new", kDogfood, 3).assignment.version, 3);
  const ChannelAnswer keeps = Answer("canary-has-it", kDogfood, 4);
  EXPECT_EQ(keeps.assignment.version, 4);
  EXPECT_FALSE(keeps.assignment.rollback);
}

TEST_F(SnapshotTest, ARevokedVersionIsLeftForTheNewestCompletedBelowIt) {
  StartRollout("ro-4", 4, 3);
  ASSERT_TRUE(Step("ro-4", RolloutAction::kRollback).ok());
  const ChannelAnswer a = Answer("canary-host", kDogfood, 4);
  EXPECT_EQ(a.assignment.version, 3);
  EXPECT_TRUE(a.assignment.rollback);
  EXPECT_EQ(a.revoked, std::vector<int64_t>{4});
  EXPECT_TRUE(snapshots_.Current()->IsRevoked(kChannel, 4));
  EXPECT_EQ(snapshots_.Current()->Blob(kChannel, 4), nullptr);  // never handed out again
}

TEST_F(SnapshotTest, AnEmergencyStopHandsOutNothingNew) {
  StartRollout("ro-4", 4, 3);
  ASSERT_TRUE(store_.SetEmergencyStop(true, AuditAs("emergency_stop.activate")).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  EXPECT_TRUE(snapshots_.Current()->emergency_stop());
  EXPECT_EQ(Answer("canary-host", kDogfood, 3).assignment.version, 3);
  EXPECT_EQ(Answer("host-1", {}, 2).assignment.version, 2);
}

TEST_F(SnapshotTest, UnchangedPayloadsCarryOverInsteadOfBeingReadAgain) {
  const int reads = store_.Calls("get_content");
  const ContentBlob* before = snapshots_.Current()->Blob(kChannel, 3);
  ASSERT_NE(before, nullptr);
  const std::shared_ptr<const std::string> payload = before->payload;
  ASSERT_TRUE(snapshots_.Refresh().ok());
  EXPECT_EQ(store_.Calls("get_content"), reads);
  EXPECT_EQ(snapshots_.Current()->Blob(kChannel, 3)->payload, payload);
}

TEST_F(SnapshotTest, AFailedRefreshKeepsServingTheLastSnapshot) {
  const std::shared_ptr<const AssignmentSnapshot> before = snapshots_.Current();
  // After the first refresh, a refresh reads the catalog and the agent gates changed since.
  store_.FailNext("load_catalog_changes", absl::UnavailableError("database unreachable"));
  EXPECT_EQ(snapshots_.Refresh().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(snapshots_.Current(), before);
  store_.FailNext("get_content", absl::UnavailableError("database unreachable"));
  StartRollout("ro-4", 4, 3, /*refresh=*/false);
  EXPECT_EQ(snapshots_.Refresh().code(), absl::StatusCode::kUnavailable);  // v4's bytes
  EXPECT_EQ(snapshots_.Current(), before);
  ASSERT_TRUE(snapshots_.Refresh().ok());
  EXPECT_NE(snapshots_.Current(), before);
  EXPECT_EQ(Answer("canary-host", kDogfood, 3).assignment.version, 4);
}

TEST_F(SnapshotTest, EveryReadSeesTheLatestRefreshOfItsOwnHolderOnAnyThread) {
  ASSERT_TRUE(snapshots_.Refresh().ok());
  SnapshotHolder other(store_);
  EXPECT_EQ(other.Current(), nullptr);
  ASSERT_TRUE(other.Refresh().ok());
  const std::shared_ptr<const AssignmentSnapshot> mine = snapshots_.Current();
  const std::shared_ptr<const AssignmentSnapshot> theirs = other.Current();
  ASSERT_NE(mine, nullptr);
  ASSERT_NE(theirs, nullptr);
  EXPECT_NE(mine, theirs);
  // Between refreshes a thread reads the same snapshot, from each holder its own.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(snapshots_.Current(), mine);
    EXPECT_EQ(other.Current(), theirs);
  }
  ASSERT_TRUE(snapshots_.Refresh().ok());
  const std::shared_ptr<const AssignmentSnapshot> next = snapshots_.Current();
  EXPECT_NE(next, mine);
  EXPECT_EQ(other.Current(), theirs);
  std::thread([&] {
    EXPECT_EQ(snapshots_.Current(), next);
    EXPECT_EQ(other.Current(), theirs);
  }).join();
  // A holder made after another was destroyed (perhaps at its address) never serves the
  // destroyed one's snapshot: here the newer one holds the emergency stop, the older not.
  for (int i = 0; i < 8; ++i) {
    {
      auto before = std::make_unique<SnapshotHolder>(store_);
      ASSERT_TRUE(before->Refresh().ok());
      ASSERT_EQ(before->Current()->emergency_stop(), i % 2 == 1);
    }
    ASSERT_TRUE(store_.SetEmergencyStop(i % 2 == 0, AuditRecord{}).ok());
    auto after = std::make_unique<SnapshotHolder>(store_);
    EXPECT_EQ(after->Current(), nullptr);
    ASSERT_TRUE(after->Refresh().ok());
    EXPECT_EQ(after->Current()->emergency_stop(), i % 2 == 0);
  }
}

TEST_F(SnapshotTest, ReadersRacingRefreshesNeverSeeAnOlderSnapshotThanTheyHaveSeen) {
  ASSERT_TRUE(snapshots_.Refresh().ok());
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  std::atomic<int> backwards{0};
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      // Kept alive, so that no later snapshot can take the address of one seen before.
      std::vector<std::shared_ptr<const AssignmentSnapshot>> seen;
      while (!stop.load()) {
        std::shared_ptr<const AssignmentSnapshot> now = snapshots_.Current();
        if (seen.empty() || seen.back() != now) {
          if (std::find(seen.begin(), seen.end(), now) != seen.end()) {
            ++backwards;
          }
          seen.push_back(now);
        }
      }
    });
  }
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(snapshots_.Refresh().ok());
  }
  stop = true;
  for (std::thread& t : readers) {
    t.join();
  }
  EXPECT_EQ(backwards.load(), 0);
}

TEST_F(SnapshotTest, AChannelNamedTwiceInAPollRunsTheVersionNamedLast) {
  Pin("group", "payments", "1");
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  const AgentIdentity agent{"host-1", {{"group", "payments"}}};
  auto rollback = [&](std::initializer_list<AssignmentSnapshot::CurrentVersion> current) {
    std::vector<ChannelAnswer> answers =
        snapshot->Resolve(agent, snapshot->RingOf(agent), current, {kChannel});
    EXPECT_EQ(answers.size(), 1u);
    return !answers.empty() && answers[0].assignment.rollback;
  };
  // Pinned to 1: an agent on 3 rolls back, one on 1 does not.
  EXPECT_TRUE(rollback({{kChannel, 3}}));
  EXPECT_FALSE(rollback({{kChannel, 1}}));
  EXPECT_TRUE(rollback({{kChannel, 1}, {kChannel, 3}}));
  EXPECT_FALSE(rollback({{kChannel, 3}, {kChannel, 1}}));
  EXPECT_FALSE(rollback({{"rules.other", 3}, {kChannel, 1}, {"rules.unknown", 3}}));
}

TEST_F(SnapshotTest, UnknownChannelsAreLeftOutOfTheAnswer) {
  std::vector<ChannelAnswer> answers = snapshots_.Current()->Resolve(
      AgentIdentity{"host-1", {}}, Ring::kBroad, {}, {"rules.unknown", kChannel});
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].channel, kChannel);
}

// A holder reads every agent gate at its first refresh and every gate_full_read_interval, and in
// between only the gates changed since its last refresh, applied over its last snapshot's.
TEST_F(SnapshotTest, GateChangesAreReadAsChangesBetweenFullReads) {
  SnapshotHolder holder(store_, clock_, absl::Minutes(10));
  const std::vector<std::string> ids = Enroll("gated", Ring::kBroad, 4);
  ASSERT_TRUE(store_.LabelAgent(ids[0], kDogfood, Ring::kCanary, AuditAs("agent.label")).ok());
  const int whole = store_.Calls("load_catalog");
  const int changes = store_.Calls("load_catalog_changes");
  ASSERT_TRUE(holder.Refresh().ok());
  EXPECT_EQ(store_.Calls("load_catalog"), whole + 1);
  ASSERT_NE(holder.Current()->Gate(ids[0]), nullptr);

  // Labelled, revoked, reset, and a label taken away: each read as a change.
  ASSERT_TRUE(store_.LabelAgent(ids[1], {{"site", "eu"}}, Ring::kBroad, AuditAs("label")).ok());
  ASSERT_TRUE(store_.RevokeAgent(ids[2], AuditAs("agent.revoke")).ok());
  ASSERT_TRUE(store_.LabelAgent(ids[0], {}, Ring::kBroad, AuditAs("agent.label")).ok());
  ASSERT_TRUE(holder.Refresh().ok());
  std::shared_ptr<const AssignmentSnapshot> snapshot = holder.Current();
  EXPECT_EQ(snapshot->Gate(ids[0]), nullptr);
  ASSERT_NE(snapshot->Gate(ids[1]), nullptr);
  EXPECT_EQ(snapshot->Gate(ids[1])->labels.at("site"), "eu");
  ASSERT_NE(snapshot->Gate(ids[2]), nullptr);
  EXPECT_TRUE(snapshot->Gate(ids[2])->revoked_at.has_value());
  EXPECT_EQ(snapshot->Gate(ids[3]), nullptr);

  ASSERT_TRUE(store_.ResetAgent(ids[2], AuditAs("agent.reset")).ok());
  clock_.Advance(absl::Minutes(9));
  ASSERT_TRUE(holder.Refresh().ok());
  snapshot = holder.Current();
  ASSERT_NE(snapshot->Gate(ids[2]), nullptr);
  EXPECT_FALSE(snapshot->Gate(ids[2])->revoked_at.has_value());
  EXPECT_TRUE(snapshot->Gate(ids[2])->credentials_valid_after.has_value());
  EXPECT_EQ(store_.Calls("load_catalog"), whole + 1);
  EXPECT_EQ(store_.Calls("load_catalog_changes"), changes + 2);

  // The safety net: every gate again once the interval has passed.
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(holder.Refresh().ok());
  EXPECT_EQ(store_.Calls("load_catalog"), whole + 2);
  EXPECT_NE(holder.Current()->Gate(ids[1]), nullptr);
  EXPECT_EQ(holder.Current()->Gate(ids[0]), nullptr);
}

// BlockingCatalog holds catalog load number `block_at` (from 0), once it has read the store,
// until released, and passes everything else to the fake store.
class BlockingCatalog final : public CatalogStore {
 public:
  BlockingCatalog(CatalogStore& store, int block_at) : block_at_(block_at), store_(store) {}
  absl::Notification entered, release;
  std::atomic<int> loads{0};

  // Held waits until the load is held; when it never is, it lets any later one through.
  bool Held() {
    if (entered.WaitForNotificationWithTimeout(absl::Seconds(30))) {
      return true;
    }
    release.Notify();
    return false;
  }

  absl::Status InsertContent(const ContentRecord& c, const AuditRecord& a) override {
    return store_.InsertContent(c, a);
  }
  absl::StatusOr<std::vector<ContentRecord>> ListContent(const std::string& channel) override {
    return store_.ListContent(channel);
  }
  absl::StatusOr<ContentRecord> GetContent(const std::string& channel, int64_t v) override {
    return store_.GetContent(channel, v);
  }
  absl::Status SetEmergencyStop(bool active, const AuditRecord& a) override {
    return store_.SetEmergencyStop(active, a);
  }
  absl::Status UpsertPin(const PinRecord& pin, const AuditRecord& a) override {
    return store_.UpsertPin(pin, a);
  }
  absl::StatusOr<std::vector<PinRecord>> ListPins() override { return store_.ListPins(); }
  absl::StatusOr<CatalogData> LoadCatalog(std::optional<AgentGateCursor> since) override {
    absl::StatusOr<CatalogData> data = store_.LoadCatalog(std::move(since));
    if (loads.fetch_add(1) == block_at_) {
      entered.Notify();
      release.WaitForNotification();
    }
    return data;
  }

 private:
  const int block_at_;
  CatalogStore& store_;
};

// WaitUntilAsked waits until `n` calls of Refresh have asked.
void WaitUntilAsked(const SnapshotHolder& holder, uint64_t n) {
  while (holder.refreshes_asked() < n) {
    absl::SleepFor(absl::Milliseconds(1));
  }
}

// Calls that ask while a refresh runs share the next one, which reads what each committed
// before asking.
TEST_F(SnapshotTest, CallsThatAskDuringARefreshShareTheNext) {
  BlockingCatalog catalog(store_, /*block_at=*/0);
  SnapshotHolder holder(catalog, clock_, absl::Minutes(10));
  std::thread first([&] { EXPECT_TRUE(holder.Refresh().ok()); });
  if (!catalog.Held()) {
    first.join();
    FAIL() << "the refresh never read the catalog";
  }
  // Three agents labelled after the first refresh read the catalog, each refreshing after.
  // (EXPECT, not ASSERT, while the first refresh is held: the threads must be joined.)
  const std::vector<std::string> ids = Enroll("queued", Ring::kBroad, 3);
  std::vector<std::thread> queued;
  for (const std::string& id : ids) {
    EXPECT_TRUE(store_.LabelAgent(id, kDogfood, Ring::kCanary, AuditAs("agent.label")).ok());
    queued.emplace_back([&] { EXPECT_TRUE(holder.Refresh().ok()); });
  }
  WaitUntilAsked(holder, 4);
  catalog.release.Notify();
  first.join();
  for (std::thread& t : queued) {
    t.join();
  }
  EXPECT_EQ(catalog.loads.load(), 2);
  for (const std::string& id : ids) {
    ASSERT_NE(holder.Current()->Gate(id), nullptr) << id;
    EXPECT_EQ(holder.Current()->Gate(id)->labels, kDogfood);
  }
  // A call after that runs its own.
  ASSERT_TRUE(holder.Refresh().ok());
  EXPECT_EQ(catalog.loads.load(), 3);
}

// A call that asks while a refresh runs is not answered by that refresh, which began before
// the call's change was committed.
TEST_F(SnapshotTest, ACallThatAsksDuringARefreshIsNotAnsweredByIt) {
  BlockingCatalog catalog(store_, /*block_at=*/1);
  SnapshotHolder holder(catalog, clock_, absl::Minutes(10));
  ASSERT_TRUE(holder.Refresh().ok());
  std::thread running([&] { EXPECT_TRUE(holder.Refresh().ok()); });
  if (!catalog.Held()) {
    running.join();
    FAIL() << "the second refresh never read the catalog";
  }
  const std::vector<std::string> ids = Enroll("late", Ring::kBroad, 1);
  EXPECT_TRUE(store_.LabelAgent(ids[0], kDogfood, Ring::kCanary, AuditAs("agent.label")).ok());
  std::thread late([&] { EXPECT_TRUE(holder.Refresh().ok()); });
  WaitUntilAsked(holder, 3);
  catalog.release.Notify();
  running.join();
  late.join();
  EXPECT_EQ(catalog.loads.load(), 3);
  ASSERT_NE(holder.Current()->Gate(ids[0]), nullptr);
  EXPECT_EQ(holder.Current()->Gate(ids[0])->labels, kDogfood);
}

// A clock stepped back before the last full read does not put the next one off.
TEST_F(SnapshotTest, AClockSteppedBackReadsEveryGate) {
  SnapshotHolder holder(store_, clock_, absl::Minutes(10));
  ASSERT_TRUE(holder.Refresh().ok());
  const int whole = store_.Calls("load_catalog");
  ASSERT_TRUE(holder.Refresh().ok());
  EXPECT_EQ(store_.Calls("load_catalog"), whole);
  clock_.Advance(-absl::Seconds(1));
  ASSERT_TRUE(holder.Refresh().ok());
  EXPECT_EQ(store_.Calls("load_catalog"), whole + 1);
}

// A store that reads every gate although it was given a cursor (another database server)
// replaces the gates: a gate cleared meanwhile is gone.
TEST_F(SnapshotTest, AWholeReadReplacesTheGates) {
  SnapshotHolder holder(store_, clock_, absl::Minutes(10));
  const std::vector<std::string> ids = Enroll("gated", Ring::kBroad, 1);
  ASSERT_TRUE(store_.LabelAgent(ids[0], kDogfood, Ring::kCanary, AuditAs("agent.label")).ok());
  ASSERT_TRUE(holder.Refresh().ok());
  ASSERT_NE(holder.Current()->Gate(ids[0]), nullptr);
  ASSERT_TRUE(store_.LabelAgent(ids[0], {}, Ring::kBroad, AuditAs("agent.label")).ok());
  store_.ForgetGateCursors();
  const int changes = store_.Calls("load_catalog_changes");
  ASSERT_TRUE(holder.Refresh().ok());
  // Asked for the changes, given every gate.
  EXPECT_EQ(store_.Calls("load_catalog_changes"), changes + 1);
  EXPECT_EQ(holder.Current()->Gate(ids[0]), nullptr);
}

// A refresh that read the changes but failed to build its snapshot does not move the cursor:
// the next one reads those changes again.
TEST_F(SnapshotTest, ChangesReadByAFailedRefreshAreReadAgain) {
  SnapshotHolder holder(store_, clock_, absl::Minutes(10));
  const std::vector<std::string> ids = Enroll("gated", Ring::kBroad, 1);
  ASSERT_TRUE(holder.Refresh().ok());
  ASSERT_TRUE(store_.LabelAgent(ids[0], kDogfood, Ring::kCanary, AuditAs("agent.label")).ok());
  // A new rollout's bytes are read by the build, after the catalog.
  StartRollout("ro-4", 4, 3, /*refresh=*/false);
  store_.FailNext("get_content", absl::UnavailableError("database unreachable"));
  EXPECT_EQ(holder.Refresh().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(holder.Current()->Gate(ids[0]), nullptr);  // still the first snapshot
  ASSERT_TRUE(holder.Refresh().ok());
  ASSERT_NE(holder.Current()->Gate(ids[0]), nullptr);
  EXPECT_EQ(holder.Current()->Gate(ids[0])->labels, kDogfood);
}

}  // namespace
}  // namespace ringwarden::testing
