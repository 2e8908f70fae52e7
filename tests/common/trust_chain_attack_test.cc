// TrustChainAttackTest (library level): each case is an attack from the TUF
// conformance suite, Uptane, or our own threat model against the pure
// verification in common/trust/trust.h. The agent-level cases (downloads,
// replays against a running agent) live in tests/agent-client.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/dsse.h"
#include "common/sha256.h"
#include "common/trust/trust.h"
#include "ringwarden/v1/content.pb.h"

namespace ringwarden {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

Ed25519PrivateKey NewKey() { return *Ed25519PrivateKey::Generate(); }

std::string Sign(absl::string_view type, absl::string_view payload,
                 std::vector<const Ed25519PrivateKey*> keys) {
  absl::StatusOr<DsseEnvelope> envelope = SignEnvelope(type, payload, keys);
  EXPECT_TRUE(envelope.ok()) << envelope.status();
  return EncodeEnvelopeJson(*envelope);
}

TrustRole Role(std::vector<const Ed25519PrivateKey*> keys, int threshold) {
  TrustRole role;
  for (const Ed25519PrivateKey* k : keys) {
    role.keyids.push_back(k->PublicKey().KeyId());
  }
  role.threshold = threshold;
  return role;
}

// Keys of one root generation.
struct Generation {
  Ed25519PrivateKey root = NewKey();
  Ed25519PrivateKey root2 = NewKey();
  Ed25519PrivateKey release = NewKey();
  Ed25519PrivateKey release2 = NewKey();
  Ed25519PrivateKey server = NewKey();
};

RootSpec SpecOf(const Generation& g, int64_t version, int release_threshold = 1,
                absl::Time expires = kNow + absl::Hours(24 * 365)) {
  RootSpec spec;
  spec.version = version;
  spec.expires = expires;
  for (const Ed25519PrivateKey* k : {&g.root, &g.root2, &g.release, &g.release2, &g.server}) {
    spec.keys.push_back(k->PublicKey());
  }
  spec.root = Role({&g.root, &g.root2}, 1);
  spec.release = Role({&g.release, &g.release2}, release_threshold);
  spec.server = Role({&g.server}, 1);
  return spec;
}

std::string RootJson(const RootSpec& spec, std::vector<const Ed25519PrivateKey*> signers) {
  absl::StatusOr<std::string> payload = EncodeRoot(spec);
  EXPECT_TRUE(payload.ok()) << payload.status();
  return Sign(kRootPayloadType, *payload, std::move(signers));
}

std::string ManifestJson(const std::string& channel, int64_t version, absl::string_view bytes,
                         std::vector<const Ed25519PrivateKey*> signers) {
  v1::ContentManifest m;
  m.set_channel(channel);
  m.set_version(version);
  m.set_sha256(Sha256Hex(bytes));
  m.set_size(static_cast<int64_t>(bytes.size()));
  return Sign(kManifestPayloadType, m.SerializeAsString(), std::move(signers));
}

std::string ManifestDigest(const std::string& envelope_json) {
  return Sha256Hex(ParseEnvelopeJson(envelope_json)->payload);
}

class TrustChainAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_json_ = RootJson(SpecOf(g1_, 1), {&g1_.root});
    absl::StatusOr<Root> root = TrustInitialRoot(root_json_, kNow);
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
  }

  Assignment BaseAssignment(int64_t sequence, const std::string& agent = "host-1") {
    Assignment a;
    a.agent_id = agent;
    a.ring = "broad";
    a.sequence = sequence;
    a.issued = kNow;
    a.expires = kNow + absl::Hours(12);
    a.root_version = 1;
    const std::string manifest = ManifestJson("rules.test", 3, "v3 bytes", {&g1_.release});
    a.channels.push_back(AssignedChannel{"rules.test", 3, ManifestDigest(manifest), 8, {}, false});
    return a;
  }

  std::string SignedBy(const Assignment& a, const Ed25519PrivateKey& key) {
    absl::StatusOr<std::string> json = SignAssignment(a, key);
    EXPECT_TRUE(json.ok()) << json.status();
    return *json;
  }

  // Verified verifies and accepts `a` signed by the server key for host-1 in broad.
  absl::StatusOr<std::vector<ChannelDecision>> Deliver(const Assignment& a,
                                                       std::map<std::string, int64_t> current,
                                                       std::vector<Floor> floors = {}) {
    absl::StatusOr<Assignment> verified =
        VerifyAssignment(root_, SignedBy(a, g1_.server), "host-1", kNow);
    if (!verified.ok()) {
      return verified.status();
    }
    return AcceptAssignment(state_, *verified, floors, current);
  }

  Generation g1_;
  std::string root_json_;
  Root root_;
  AgentTrustState state_{"broad", 0, "", {}, {}, {}};
};

// --- TUF conformance: rollback of every signed object ------------------------

TEST_F(TrustChainAttackTest, RootRollbackToAnOlderVersionIsIgnored) {
  Generation g2;
  RootSpec spec2 = SpecOf(g2, 2);
  const std::string root2 = RootJson(spec2, {&g1_.root, &g2.root});
  absl::StatusOr<Root> walked = WalkRootChain(root_, {root2}, kNow);
  ASSERT_TRUE(walked.ok()) << walked.status();
  // Offering version 1 again never moves trust back.
  absl::StatusOr<Root> again = WalkRootChain(*walked, {root_json_}, kNow);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version, 2);
  EXPECT_EQ(again->server_keys.KeyIds(), walked->server_keys.KeyIds());
}

TEST_F(TrustChainAttackTest, AssignmentRollbackToAnOlderSequenceIsRefused) {
  ASSERT_TRUE(Deliver(BaseAssignment(10), {}).ok());
  absl::StatusOr<std::vector<ChannelDecision>> old = Deliver(BaseAssignment(9), {});
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(state_.last_sequence, 10);
}

TEST_F(TrustChainAttackTest, FloorRollbackNeverLowersTheKnownFloor) {
  absl::StatusOr<std::string> high = EncodeFloor("rules.test", 5, kNow);
  absl::StatusOr<std::string> low = EncodeFloor("rules.test", 2, kNow);
  absl::StatusOr<Floor> f5 = VerifyFloor(root_, Sign(kFloorPayloadType, *high, {&g1_.release}));
  absl::StatusOr<Floor> f2 = VerifyFloor(root_, Sign(kFloorPayloadType, *low, {&g1_.release}));
  ASSERT_TRUE(f5.ok() && f2.ok());
  ASSERT_TRUE(Deliver(BaseAssignment(1), {{"rules.test", 6}}, {*f5}).ok());
  Assignment a = BaseAssignment(2);
  a.channels[0].version = 3;
  a.channels[0].rollback = true;
  absl::StatusOr<std::vector<ChannelDecision>> d = Deliver(a, {{"rules.test", 6}}, {*f2});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(state_.floors["rules.test"], 5);
  EXPECT_TRUE((*d)[0].refused) << "v3 is below the floor v5 seen before";
}

TEST_F(TrustChainAttackTest, ContentRollbackWithoutADirectiveIsRefused) {
  Assignment a = BaseAssignment(1);
  a.channels[0].version = 2;
  absl::StatusOr<std::vector<ChannelDecision>> d = Deliver(a, {{"rules.test", 3}});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)[0].refused);
  EXPECT_FALSE((*d)[0].apply);
}

// --- TUF conformance: rotation, expiry, thresholds, signatures ---------------

TEST_F(TrustChainAttackTest, FastForwardRecoveryAfterAServerKeyRotation) {
  Generation g2;
  g2.root = std::move(g1_.root);  // same root key, new server key
  const std::string root2 = RootJson(SpecOf(g2, 2), {&g2.root});
  const Assignment a = BaseAssignment(1);
  EXPECT_FALSE(VerifyAssignment(root_, SignedBy(a, g2.server), "host-1", kNow).ok());
  absl::StatusOr<Root> walked = WalkRootChain(root_, {root2}, kNow);
  ASSERT_TRUE(walked.ok()) << walked.status();
  EXPECT_TRUE(VerifyAssignment(*walked, SignedBy(a, g2.server), "host-1", kNow).ok());
  // The rotated-out key is no longer trusted.
  EXPECT_EQ(VerifyAssignment(*walked, SignedBy(a, g1_.server), "host-1", kNow).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TrustChainAttackTest, ExpiredRootIsRefused) {
  const std::string expired = RootJson(SpecOf(g1_, 1, 1, kNow - absl::Seconds(1)), {&g1_.root});
  EXPECT_EQ(TrustInitialRoot(expired, kNow).status().code(), absl::StatusCode::kFailedPrecondition);
  Generation g2;
  const std::string root2 =
      RootJson(SpecOf(g2, 2, 1, kNow - absl::Seconds(1)), {&g1_.root, &g2.root});
  EXPECT_EQ(WalkRootChain(root_, {root2}, kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TrustChainAttackTest, AnExpiredTrustedRootStillNeedsItsOwnSignatures) {
  const RootSpec expired = SpecOf(g1_, 1, 1, kNow - absl::Seconds(1));
  absl::StatusOr<Root> kept = TrustRootSignatures(RootJson(expired, {&g1_.root}));
  ASSERT_TRUE(kept.ok()) << kept.status();  // stays trusted until an update replaces it
  EXPECT_EQ(kept->version, 1);
  EXPECT_EQ(TrustRootSignatures(RootJson(expired, {&g1_.release})).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(IsRingName("canary") && IsRingName("early") && IsRingName("broad"));
  EXPECT_FALSE(IsRingName("Canary") || IsRingName("") || IsRingName("moon"));
}

TEST_F(TrustChainAttackTest, ExpiredAssignmentIsRefusedBeyondFiveMinutesOfSkew) {
  Assignment a = BaseAssignment(1);
  a.expires = kNow - absl::Minutes(4);  // inside the skew allowance
  EXPECT_TRUE(VerifyAssignment(root_, SignedBy(a, g1_.server), "host-1", kNow).ok());
  a.expires = kNow - absl::Minutes(5);
  EXPECT_EQ(VerifyAssignment(root_, SignedBy(a, g1_.server), "host-1", kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
  a.expires = kNow + absl::Hours(1);
  a.issued = kNow + absl::Minutes(6);  // from a clock far ahead
  EXPECT_EQ(VerifyAssignment(root_, SignedBy(a, g1_.server), "host-1", kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
  a.issued = kNow + absl::Minutes(4);
  EXPECT_TRUE(VerifyAssignment(root_, SignedBy(a, g1_.server), "host-1", kNow).ok());
}

TEST_F(TrustChainAttackTest, ThresholdNotMetIsRefused) {
  ASSERT_TRUE(root_.release_keys.threshold() == 1);
  const std::string root = RootJson(SpecOf(g1_, 1, /*release_threshold=*/2), {&g1_.root});
  absl::StatusOr<Root> strict = TrustInitialRoot(root, kNow);
  ASSERT_TRUE(strict.ok());
  const std::string once = ManifestJson("rules.test", 3, "v3 bytes", {&g1_.release});
  const AssignedChannel expected{"rules.test", 3, ManifestDigest(once), 8, {}, false};
  EXPECT_EQ(VerifyContentEnvelope(*strict, once, expected).status().code(),
            absl::StatusCode::kPermissionDenied);
  const std::string twice =
      ManifestJson("rules.test", 3, "v3 bytes", {&g1_.release, &g1_.release2});
  EXPECT_TRUE(VerifyContentEnvelope(*strict, twice, expected).ok());
}

TEST_F(TrustChainAttackTest, DuplicateSignaturesOfOneKeyCountOnce) {
  absl::StatusOr<Root> strict = TrustInitialRoot(RootJson(SpecOf(g1_, 1, 2), {&g1_.root}), kNow);
  ASSERT_TRUE(strict.ok());
  const std::string doubled =
      ManifestJson("rules.test", 3, "v3 bytes", {&g1_.release, &g1_.release});
  const AssignedChannel expected{"rules.test", 3, ManifestDigest(doubled), 8, {}, false};
  EXPECT_EQ(VerifyContentEnvelope(*strict, doubled, expected).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TrustChainAttackTest, DuplicateKeysInARootAreRefused) {
  RootSpec spec = SpecOf(g1_, 1);
  spec.keys.push_back(g1_.release.PublicKey());
  EXPECT_EQ(EncodeRoot(spec).status().code(), absl::StatusCode::kInvalidArgument);
  spec = SpecOf(g1_, 1);
  spec.release.keyids.push_back(g1_.release.PublicKey().KeyId());  // one key counted twice
  spec.release.threshold = 2;
  EXPECT_EQ(EncodeRoot(spec).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TrustChainAttackTest, AnInvalidSignatureInsideValidMetadataDoesNotCount) {
  absl::StatusOr<Root> strict = TrustInitialRoot(RootJson(SpecOf(g1_, 1, 2), {&g1_.root}), kNow);
  ASSERT_TRUE(strict.ok());
  const std::string good = ManifestJson("rules.test", 3, "v3 bytes", {&g1_.release, &g1_.release2});
  DsseEnvelope envelope = *ParseEnvelopeJson(good);
  envelope.signatures[1].sig[0] ^= 0x01;  // one of two signatures is corrupt
  const AssignedChannel expected{"rules.test", 3, ManifestDigest(good), 8, {}, false};
  EXPECT_EQ(VerifyContentEnvelope(*strict, EncodeEnvelopeJson(envelope), expected).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Under threshold 1 the valid signature alone is enough, the corrupt one is ignored.
  EXPECT_TRUE(VerifyContentEnvelope(root_, EncodeEnvelopeJson(envelope), expected).ok());
}

TEST_F(TrustChainAttackTest, HashAndLengthMismatchesAreRefused) {
  const std::string manifest = ManifestJson("rules.test", 3, "v3 bytes", {&g1_.release});
  AssignedChannel expected{"rules.test", 3, ManifestDigest(manifest), 8, {}, false};
  ASSERT_TRUE(VerifyContentEnvelope(root_, manifest, expected).ok());
  AssignedChannel wrong_hash = expected;
  wrong_hash.manifest_sha256 = Sha256Hex("another manifest");
  EXPECT_EQ(VerifyContentEnvelope(root_, manifest, wrong_hash).status().code(),
            absl::StatusCode::kPermissionDenied);
  AssignedChannel wrong_length = expected;
  wrong_length.size = 9;
  EXPECT_EQ(VerifyContentEnvelope(root_, manifest, wrong_length).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TrustChainAttackTest, MetadataTypeConfusionIsRefused) {
  const std::string manifest = ManifestJson("rules.test", 3, "v3 bytes", {&g1_.server});
  EXPECT_EQ(VerifyAssignment(root_, manifest, "host-1", kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string assignment = SignedBy(BaseAssignment(1), g1_.release);
  const AssignedChannel expected{"rules.test", 3, ManifestDigest(assignment), 8, {}, false};
  EXPECT_EQ(VerifyContentEnvelope(root_, assignment, expected).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyFloor(root_, root_json_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TrustInitialRoot(assignment, kNow).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TrustChainAttackTest, RootRotationNotSignedByTheOldKeysIsRefused) {
  Generation g2;
  const std::string self_signed = RootJson(SpecOf(g2, 2), {&g2.root});
  EXPECT_EQ(WalkRootChain(root_, {self_signed}, kNow).status().code(),
            absl::StatusCode::kPermissionDenied);
  const std::string old_only = RootJson(SpecOf(g2, 2), {&g1_.root});
  EXPECT_EQ(WalkRootChain(root_, {old_only}, kNow).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TrustChainAttackTest, ARotationChainLongerThanTheCapIsRefused) {
  std::vector<std::string> chain;
  for (int64_t v = 2; v <= kMaxRootChain + 2; ++v) {
    chain.push_back(RootJson(SpecOf(g1_, v), {&g1_.root}));
  }
  EXPECT_EQ(WalkRootChain(root_, chain, kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
  chain.resize(kMaxRootChain);
  absl::StatusOr<Root> capped = WalkRootChain(root_, chain, kNow);
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_EQ(capped->version, kMaxRootChain + 1);
}

TEST_F(TrustChainAttackTest, ARootUpdateThatSkipsAVersionIsRefused) {
  const std::string root3 = RootJson(SpecOf(g1_, 3), {&g1_.root});
  EXPECT_EQ(WalkRootChain(root_, {root3}, kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// --- Uptane -----------------------------------------------------------------

TEST_F(TrustChainAttackTest, AnAssignmentForAnotherDeviceIsRefused) {
  const std::string other = SignedBy(BaseAssignment(1, "host-2"), g1_.server);
  EXPECT_EQ(VerifyAssignment(root_, other, "host-1", kNow).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TrustChainAttackTest, MetadataChangedWhileItsVersionStayedTheSameIsRefused) {
  ASSERT_TRUE(Deliver(BaseAssignment(5), {}).ok());
  Assignment changed = BaseAssignment(5);
  changed.emergency_stop = true;
  EXPECT_EQ(Deliver(changed, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  // The identical statement again is harmless.
  EXPECT_TRUE(Deliver(BaseAssignment(5), {}).ok());
  RootSpec same_version = SpecOf(g1_, 1);
  same_version.expires += absl::Hours(1);
  const std::string altered = RootJson(same_version, {&g1_.root});
  EXPECT_EQ(WalkRootChain(root_, {altered}, kNow).status().code(),
            absl::StatusCode::kPermissionDenied);
}

// --- Ours ---------------------------------------------------------------------

TEST_F(TrustChainAttackTest, ACanaryAssignmentReplayedToABroadAgentIsRefused) {
  Assignment canary = BaseAssignment(1);
  canary.ring = "canary";
  EXPECT_EQ(Deliver(canary, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(state_.last_sequence, 0);
}

TEST_F(TrustChainAttackTest, AnOldRollbackDirectiveReplayedIsRefused) {
  Assignment rollback = BaseAssignment(3);
  rollback.channels[0].version = 2;
  rollback.channels[0].rollback = true;
  ASSERT_TRUE(Deliver(rollback, {{"rules.test", 3}}).ok());
  ASSERT_TRUE(Deliver(BaseAssignment(4), {{"rules.test", 2}}).ok());  // v3 again
  absl::StatusOr<std::vector<ChannelDecision>> replay = Deliver(rollback, {{"rules.test", 3}});
  EXPECT_EQ(replay.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(TrustChainAttackTest, ContentSignedOnlyByTheServerKeyIsRefused) {
  const std::string forged = ManifestJson("rules.test", 3, "v3 bytes", {&g1_.server});
  const AssignedChannel expected{"rules.test", 3, ManifestDigest(forged), 8, {}, false};
  EXPECT_EQ(VerifyContentEnvelope(root_, forged, expected).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TrustChainAttackTest, ARollbackBelowTheFloorIsRefused) {
  absl::StatusOr<Floor> floor = VerifyFloor(
      root_, Sign(kFloorPayloadType, *EncodeFloor("rules.test", 3, kNow), {&g1_.release}));
  ASSERT_TRUE(floor.ok()) << floor.status();
  Assignment rollback = BaseAssignment(1);
  rollback.channels[0].version = 2;
  rollback.channels[0].rollback = true;
  absl::StatusOr<std::vector<ChannelDecision>> d = Deliver(rollback, {{"rules.test", 4}}, {*floor});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)[0].refused);
  EXPECT_NE((*d)[0].reason.find("floor"), std::string::npos);
  // Down to the floor itself is allowed.
  rollback.sequence = 2;
  rollback.channels[0].version = 3;
  d = Deliver(rollback, {{"rules.test", 4}});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)[0].apply);
}

TEST_F(TrustChainAttackTest, AFloorSignedByTheServerKeyIsRefused) {
  const std::string forged =
      Sign(kFloorPayloadType, *EncodeFloor("rules.test", 1, kNow), {&g1_.server});
  EXPECT_EQ(VerifyFloor(root_, forged).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(TrustChainAttackTest, AnEmergencyStopStrippedFromAReplayedAssignmentIsRefused) {
  ASSERT_TRUE(Deliver(BaseAssignment(1), {}).ok());  // before the stop
  Assignment stop = BaseAssignment(2);
  stop.emergency_stop = true;
  absl::StatusOr<std::vector<ChannelDecision>> d = Deliver(stop, {});
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE((*d)[0].apply) << "nothing new during an emergency stop";
  EXPECT_EQ(Deliver(BaseAssignment(1), {}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(TrustChainAttackTest, AHiddenRevokedListStillRefusesTheRevokedVersion) {
  Assignment revoking = BaseAssignment(1);
  revoking.channels[0].revoked_versions = {3};
  revoking.channels[0].version = 2;
  ASSERT_TRUE(Deliver(revoking, {}).ok());
  absl::StatusOr<std::vector<ChannelDecision>> d = Deliver(BaseAssignment(2), {{"rules.test", 2}});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)[0].refused);
}

TEST_F(TrustChainAttackTest, AnUnsignedOrGarbageAnswerIsRefused) {
  EXPECT_EQ(VerifyAssignment(root_, "", "host-1", kNow).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(VerifyAssignment(root_, "{not json", "host-1", kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyAssignment(root_, std::string(200 * 1024, '{'), "host-1", kNow).status().code(),
            absl::StatusCode::kInvalidArgument);
  DsseEnvelope unsigned_envelope = *ParseEnvelopeJson(SignedBy(BaseAssignment(1), g1_.server));
  unsigned_envelope.signatures.clear();
  EXPECT_FALSE(VerifyAssignment(root_, EncodeEnvelopeJson(unsigned_envelope), "host-1", kNow).ok());
}

TEST_F(TrustChainAttackTest, ATamperedTrustStateIsRefused) {
  state_.floors["rules.test"] = 4;
  absl::StatusOr<AgentTrustState> round = DecodeTrustState(EncodeTrustState(state_));
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_EQ(round->floors["rules.test"], 4);
  EXPECT_FALSE(DecodeTrustState("{}").ok());
  EXPECT_FALSE(DecodeTrustState("[]").ok());
  EXPECT_FALSE(
      DecodeTrustState(R"({"ring":"moon","last_sequence":1,"last_payload_sha256":"","floors":{},)"
                       R"("highest":{}})")
          .ok());
  EXPECT_FALSE(
      DecodeTrustState(R"({"ring":"broad","last_sequence":1,"last_payload_sha256":"","floors":)"
                       R"({"../etc":1},"highest":{}})")
          .ok());
}

}  // namespace
}  // namespace ringwarden
