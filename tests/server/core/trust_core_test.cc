// The core's part of the trust chain, on the fake store: floors refuse
// rollouts and pins below them, content is verified against the release keys
// trusted now, and the snapshot carries what a signed answer names (manifest
// digests, stored roots, floors) so polls never touch the database.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/dsse.h"
#include "common/sha256.h"
#include "server/core/rollout_manager.h"
#include "tests/server/core/core_fixture.h"

namespace ringwarden::testing {
namespace {

// TextManifests decodes "channel|version|sha256|size", so the core can be
// tested without the protobuf codec (which the transport owns).
absl::StatusOr<ContentManifest> TextManifests(absl::string_view payload) {
  std::vector<std::string> fields = absl::StrSplit(payload, '|');
  ContentManifest m;
  if (fields.size() != 4 || !absl::SimpleAtoi(fields[1], &m.version) ||
      !absl::SimpleAtoi(fields[3], &m.size)) {
    return absl::InvalidArgumentError("not a test manifest");
  }
  m.channel = fields[0];
  m.sha256 = fields[2];
  return m;
}

class TrustCoreTest : public CoreFixture {
 protected:
  TrustCoreTest()
      : key_a_(*Ed25519PrivateKey::Generate()),
        key_b_(*Ed25519PrivateKey::Generate()),
        release_keys_({key_a_.PublicKey()}),
        manager_(
            store_, snapshots_, policies_, [this] { return release_keys_; }, TextManifests,
            clock_) {}

  // Complete uploads `version` and walks a rollout of it to COMPLETED.
  void Complete(int64_t version) {
    Upload(version);
    const std::string id = absl::StrCat("ro-", version);
    StartRollout(id, version, version - 1);
    while (Rollout(id).position.state != RolloutState::kCompleted) {
      ASSERT_TRUE(Step(id, RolloutAction::kPromote).ok());
    }
  }

  void PutFloor(int64_t min_version, std::string channel = kChannel) {
    FloorRecord floor;
    floor.channel = std::move(channel);
    floor.min_version = min_version;
    floor.envelope_json = absl::StrCat("{\"floor\":", min_version, "}");
    ASSERT_TRUE(store_.UpsertFloor(floor, AuditAs("trust.floor_upload")).ok());
  }

  void PutRoot(int64_t version) {
    RootRecord root;
    root.version = version;
    root.envelope_json = absl::StrCat("{\"root\":", version, "}");
    root.expires = clock_.Now() + absl::Hours(24 * 365);
    ASSERT_TRUE(store_.InsertRoot(root, AuditAs("trust.root_upload")).ok());
  }

  // Signed returns a content envelope over a text manifest, signed by `key`.
  static std::string Signed(const std::string& manifest, const Ed25519PrivateKey& key) {
    absl::StatusOr<DsseEnvelope> envelope = SignEnvelope(kManifestPayloadType, manifest, {&key});
    EXPECT_TRUE(envelope.ok()) << envelope.status();
    return EncodeEnvelopeJson(*envelope);
  }

  ChannelAnswer Answer(int64_t current) {
    std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
    const AgentIdentity agent{"host-1", {}};
    std::vector<ChannelAnswer> answers =
        snapshot->Resolve(agent, snapshot->RingOf(agent), {{kChannel, current}}, {kChannel});
    EXPECT_EQ(answers.size(), 1u);
    return answers.empty() ? ChannelAnswer{} : answers[0];
  }

  const Principal releaser_{"alice", Role::kReleaser};
  Ed25519PrivateKey key_a_;
  Ed25519PrivateKey key_b_;
  TrustedKeys release_keys_;
  RolloutManager manager_;
};

TEST_F(TrustCoreTest, ARolloutBelowTheFloorIsRefusedNamingTheFloor) {
  Upload(1);
  Upload(2);
  Upload(3);
  PutFloor(2);
  absl::StatusOr<RolloutView> below =
      manager_.StartRollout(kChannel, 1, false, false, "", "", releaser_);
  EXPECT_EQ(below.status().code(), absl::StatusCode::kFailedPrecondition) << below.status();
  // Refused up front, before the store's own re-check under the channel lock.
  EXPECT_NE(below.status().message().find("release-signed floor v2"), std::string::npos)
      << below.status();
  EXPECT_EQ(store_.Calls("create_rollout"), 0);
  absl::StatusOr<std::vector<RolloutRecord>> rollouts = store_.ListRollouts(kChannel, false, 10);
  ASSERT_TRUE(rollouts.ok());
  EXPECT_TRUE(rollouts->empty());
  // At the floor is allowed.
  EXPECT_TRUE(manager_.StartRollout(kChannel, 2, false, false, "", "", releaser_).ok());
}

TEST_F(TrustCoreTest, TheStoreRefusesARolloutBelowAFloorRaisedMeanwhile) {
  Upload(1);
  PutFloor(2);
  NewRollout create;
  create.rollout.id = "ro-x";
  create.rollout.channel = kChannel;
  create.rollout.version = 1;
  create.rollout.position.state = RolloutState::kCanary;
  const absl::Status refused = store_.CreateRollout(create);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find("floor v2"), std::string::npos) << refused;
}

TEST_F(TrustCoreTest, AVersionPinBelowTheFloorIsRefused) {
  Complete(1);
  Complete(2);
  Complete(3);
  PutFloor(2);
  absl::StatusOr<PinRecord> below =
      manager_.SetPin("group", "payments", kChannel, "1", "", releaser_);
  EXPECT_EQ(below.status().code(), absl::StatusCode::kFailedPrecondition) << below.status();
  EXPECT_NE(below.status().message().find("floor v2"), std::string::npos) << below.status();
  absl::StatusOr<std::vector<PinRecord>> pins = store_.ListPins();
  ASSERT_TRUE(pins.ok());
  EXPECT_TRUE(pins->empty());
  EXPECT_TRUE(manager_.SetPin("group", "payments", kChannel, "2", "", releaser_).ok());
  EXPECT_TRUE(manager_.SetPin("group", "payments", kChannel, "latest", "", releaser_).ok());
  // A floor of another channel does not matter here.
  PutFloor(9, "rules.other");
  EXPECT_TRUE(manager_.SetPin("group", "eu", kChannel, "3", "", releaser_).ok());
}

TEST_F(TrustCoreTest, APinThatResolvesBelowTheFloorIsRefused) {
  Complete(1);
  Complete(2);
  PutFloor(2);
  // n-1 is v1 today, below the floor.
  absl::StatusOr<PinRecord> previous =
      manager_.SetPin("group", "payments", kChannel, "n-1", "", releaser_);
  EXPECT_EQ(previous.status().code(), absl::StatusCode::kFailedPrecondition) << previous.status();
  EXPECT_NE(previous.status().message().find("v1"), std::string::npos) << previous.status();
  EXPECT_NE(previous.status().message().find("floor v2"), std::string::npos) << previous.status();
  // Pin 5 holds at v2 (the newest completed at or below 5): allowed.
  EXPECT_TRUE(manager_.SetPin("group", "payments", kChannel, "5", "", releaser_).ok());
  PutFloor(3);
  Upload(3);
  // Pin 4 is above the floor but holds at v2 until v4 completes: refused.
  absl::StatusOr<PinRecord> holds_low =
      manager_.SetPin("group", "payments", kChannel, "4", "", releaser_);
  EXPECT_EQ(holds_low.status().code(), absl::StatusCode::kFailedPrecondition) << holds_low.status();
}

TEST_F(TrustCoreTest, ContentIsVerifiedAgainstTheReleaseKeysTrustedNow) {
  const std::string payload = "rules";
  const std::string manifest = absl::StrCat(kChannel, "|1|", Sha256Hex(payload), "|5");
  const std::string by_b = Signed(manifest, key_b_);
  absl::StatusOr<ContentRecord> refused = manager_.UploadContent(by_b, payload, releaser_);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();
  // A root rotation names key B as the release role.
  release_keys_ = TrustedKeys({key_b_.PublicKey()});
  absl::StatusOr<ContentRecord> accepted = manager_.UploadContent(by_b, payload, releaser_);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->envelope_json, by_b);
}

TEST_F(TrustCoreTest, TheSnapshotCarriesManifestDigestsRootsAndFloors) {
  const std::string payload = "payload v1";
  const std::string manifest = absl::StrCat(kChannel, "|1|", Sha256Hex(payload), "|10");
  ASSERT_TRUE(manager_.UploadContent(Signed(manifest, key_a_), payload, releaser_).ok());
  StartRollout("ro-1", 1);
  while (Rollout("ro-1").position.state != RolloutState::kCompleted) {
    ASSERT_TRUE(Step("ro-1", RolloutAction::kPromote).ok());
  }
  PutRoot(1);
  PutRoot(2);
  PutRoot(3);
  PutFloor(1);
  ASSERT_TRUE(snapshots_.Refresh().ok());

  const ChannelAnswer answer = Answer(0);
  EXPECT_EQ(answer.assignment.version, 1);
  ASSERT_NE(answer.manifest, nullptr);
  // The digest of the signed manifest bytes, not of the payload or the JSON.
  EXPECT_EQ(answer.manifest->manifest_sha256, Sha256Hex(manifest));
  EXPECT_EQ(answer.manifest->size, 10);

  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  std::vector<const RootRecord*> newer = snapshot->RootsAfter(1, 16);
  ASSERT_EQ(newer.size(), 2u);
  EXPECT_EQ(newer[0]->version, 2);
  EXPECT_EQ(newer[1]->envelope_json, "{\"root\":3}");
  ASSERT_EQ(snapshot->RootsAfter(0, 2).size(), 2u);  // capped, oldest first
  EXPECT_EQ(snapshot->RootsAfter(0, 2)[0]->version, 1);
  EXPECT_TRUE(snapshot->RootsAfter(3, 16).empty());
  ASSERT_NE(snapshot->Floor(kChannel), nullptr);
  EXPECT_EQ(snapshot->Floor(kChannel)->min_version, 1);
  EXPECT_EQ(snapshot->Floor("rules.other"), nullptr);

  // Polls read the snapshot only.
  const int loads = store_.Calls("load_catalog") + store_.Calls("load_catalog_changes");
  const int floors = store_.Calls("get_floor") + store_.Calls("list_floors");
  Answer(0);
  snapshot->RootsAfter(0, 16);
  EXPECT_EQ(store_.Calls("load_catalog") + store_.Calls("load_catalog_changes"), loads);
  EXPECT_EQ(store_.Calls("get_floor") + store_.Calls("list_floors"), floors);
}

TEST_F(TrustCoreTest, AVersionNotHeldInMemoryIsStillNamedByItsDigest) {
  for (int64_t v = 1; v <= 5; ++v) {
    Complete(v);
  }
  ASSERT_TRUE(store_.SetEmergencyStop(true, AuditAs("emergency_stop.activate")).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  // During the stop the agent keeps v1, which is too old to be held in memory.
  const ChannelAnswer answer = Answer(1);
  EXPECT_EQ(answer.assignment.version, 1);
  EXPECT_EQ(answer.blob, nullptr);
  ASSERT_NE(answer.manifest, nullptr);
  EXPECT_EQ(answer.manifest->payload_sha256, "sha-1");
  // The fixture's content envelopes ("{}") cannot be parsed: no digest, and
  // the snapshot still builds.
  EXPECT_EQ(answer.manifest->manifest_sha256, "");
}

TEST_F(TrustCoreTest, TheFakeStoreKeepsTheTrustOrderingRules) {
  PutRoot(4);  // the first stored root may have any version
  RootRecord skip;
  skip.version = 6;
  EXPECT_EQ(store_.InsertRoot(skip, AuditAs("trust.root_upload")).code(),
            absl::StatusCode::kFailedPrecondition);
  skip.version = 4;
  EXPECT_EQ(store_.InsertRoot(skip, AuditAs("trust.root_upload")).code(),
            absl::StatusCode::kFailedPrecondition);
  PutFloor(3);
  FloorRecord lower;
  lower.channel = kChannel;
  lower.min_version = 2;
  EXPECT_EQ(store_.UpsertFloor(lower, AuditAs("trust.floor_upload")).code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::optional<FloorRecord>> floor = store_.GetFloor(kChannel);
  ASSERT_TRUE(floor.ok() && floor->has_value());
  EXPECT_EQ((*floor)->min_version, 3);
  int uploads = 0;
  for (const AuditRecord& a : store_.Audit()) {
    uploads += a.action == "trust.root_upload" || a.action == "trust.floor_upload";
  }
  EXPECT_EQ(uploads, 2);
}

}  // namespace
}  // namespace ringwarden::testing
