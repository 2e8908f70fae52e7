// TrustKeeper on the fake store: the pinned root and the stored chain at
// start, root rotation and floor uploads, and the hostile uploads they refuse.
#include "server/trust_keeper.h"

#include <gtest/gtest.h>

#include "ringwarden/v1/trust.pb.h"
#include "server/core/rollout_manager.h"
#include "tests/server/trust_fixture.h"

namespace ringwarden::testing {
namespace {

constexpr char kChannel[] = "rules.behavioral";

class TrustKeeperTest : public TrustFixture {
 protected:
  // Keeper builds a keeper whose --server-key is `server` (default: the fixture's).
  std::unique_ptr<TrustKeeper> Keeper(const Ed25519PrivateKey* server = nullptr) {
    return std::make_unique<TrustKeeper>(
        store_, snapshots_, (server != nullptr ? *server : server_key).PublicKey(), clock_);
  }

  // Opened returns a keeper opened on root v1, signed by the fixture's root key.
  std::unique_ptr<TrustKeeper> Opened() {
    std::unique_ptr<TrustKeeper> keeper = Keeper();
    const absl::Status opened = keeper->Open(SignRoot(Plan(1), {&root_key}));
    EXPECT_TRUE(opened.ok()) << opened;
    return keeper;
  }

  std::vector<RootRecord> StoredRoots() {
    absl::StatusOr<std::vector<RootRecord>> roots = store_.ListRoots();
    EXPECT_TRUE(roots.ok()) << roots.status();
    return roots.ok() ? *roots : std::vector<RootRecord>{};
  }

  int AuditCount(absl::string_view action) {
    int n = 0;
    for (const AuditRecord& a : store_.Audit()) {
      n += a.action == action;
    }
    return n;
  }

  const Principal admin_{"root-admin", Role::kAdmin};
  const Principal releaser_{"alice", Role::kReleaser};
};

TEST_F(TrustKeeperTest, OpenStoresThePinnedRootWhenNoneIsStored) {
  const std::string pinned = SignRoot(Plan(1), {&root_key});
  std::unique_ptr<TrustKeeper> keeper = Keeper();
  ASSERT_TRUE(keeper->Open(pinned).ok());
  EXPECT_EQ(keeper->RootVersion(), 1);
  EXPECT_TRUE(keeper->ServerKeyTrusted());
  EXPECT_EQ(keeper->ReleaseKeys().KeyIds(),
            std::vector<std::string>{release_key.PublicKey().KeyId()});
  const std::vector<RootRecord> stored = StoredRoots();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].envelope_json, pinned);
  EXPECT_EQ(stored[0].key_ids, std::vector<std::string>{root_key.PublicKey().KeyId()});
  ASSERT_EQ(store_.Audit().size(), 1u);
  EXPECT_EQ(store_.Audit()[0].action, "trust.root_upload");
  EXPECT_EQ(store_.Audit()[0].actor, kServerActor);
}

TEST_F(TrustKeeperTest, OpenFollowsTheStoredChainToTheNewestRoot) {
  Ed25519PrivateKey release2 = NewKey();
  {
    std::unique_ptr<TrustKeeper> first = Opened();
    RootPlan v2 = Plan(2);
    v2.release = &release2;
    ASSERT_TRUE(first->UploadRoot(SignRoot(v2, {&root_key}), "", admin_).ok());
  }
  // A restart with the same --root (as a file, ending in a newline) trusts v2,
  // whose release key is release2.
  std::unique_ptr<TrustKeeper> restarted = Keeper();
  const absl::Status reopened = restarted->Open(SignRoot(Plan(1), {&root_key}) + "\n");
  ASSERT_TRUE(reopened.ok()) << reopened;
  EXPECT_EQ(restarted->RootVersion(), 2);
  EXPECT_EQ(restarted->ReleaseKeys().KeyIds(),
            std::vector<std::string>{release2.PublicKey().KeyId()});
}

TEST_F(TrustKeeperTest, AServerKeyNotInTheRootStartsButIsReportedUntrusted) {
  Ed25519PrivateKey other = NewKey();
  std::unique_ptr<TrustKeeper> keeper = Keeper(&other);
  ASSERT_TRUE(keeper->Open(SignRoot(Plan(1), {&root_key})).ok());
  EXPECT_FALSE(keeper->ServerKeyTrusted());
  // A rotation that names the key makes it trusted.
  RootPlan v2 = Plan(2);
  v2.server = &other;
  ASSERT_TRUE(keeper->UploadRoot(SignRoot(v2, {&root_key}), "new server key", admin_).ok());
  EXPECT_TRUE(keeper->ServerKeyTrusted());
}

TEST_F(TrustKeeperTest, OpenRefusesABadPinnedRoot) {
  RootPlan expired = Plan(1);
  expired.expires = clock_.Now() - absl::Minutes(1);
  Ed25519PrivateKey stranger = NewKey();
  for (const std::string& pinned :
       {std::string("{not json"), SignRoot(expired, {&root_key}), SignRoot(Plan(1), {&stranger}),
        SignFloor(kChannel, 1, root_key), std::string(kMaxEnvelopeJsonBytes + 1, ' ')}) {
    const absl::Status opened = Keeper()->Open(pinned);
    EXPECT_FALSE(opened.ok()) << pinned.substr(0, 40);
    EXPECT_NE(opened.message().find("--root"), std::string::npos) << opened;
  }
  EXPECT_TRUE(StoredRoots().empty());
}

TEST_F(TrustKeeperTest, OpenRefusesStoredRootsThatDoNotChainFromThePinnedOne) {
  Opened();
  // Another v1 (different keys) as --root: the database holds a different v1.
  Ed25519PrivateKey other_root = NewKey();
  RootPlan foreign = Plan(1);
  foreign.root_keys = {&other_root};
  const absl::Status different = Keeper()->Open(SignRoot(foreign, {&other_root}));
  EXPECT_EQ(different.code(), absl::StatusCode::kFailedPrecondition) << different;

  // A pinned root newer than anything stored.
  RootPlan v2 = Plan(2);
  const absl::Status newer = Keeper()->Open(SignRoot(v2, {&root_key}));
  EXPECT_EQ(newer.code(), absl::StatusCode::kFailedPrecondition) << newer;
  EXPECT_NE(newer.message().find("newest stored root is version 1"), std::string::npos) << newer;
}

TEST_F(TrustKeeperTest, OpenRefusesAStoredRootThatDoesNotVerify) {
  Opened();
  // Written around the server: v2 signed only by a key root v1 does not name.
  Ed25519PrivateKey intruder = NewKey();
  RootPlan v2 = Plan(2);
  v2.root_keys = {&intruder};
  RootRecord forged;
  forged.version = 2;
  forged.envelope_json = SignRoot(v2, {&intruder});
  forged.expires = v2.expires;
  ASSERT_TRUE(store_.InsertRoot(forged, AuditRecord{}).ok());
  const absl::Status opened = Keeper()->Open(SignRoot(Plan(1), {&root_key}));
  EXPECT_EQ(opened.code(), absl::StatusCode::kFailedPrecondition) << opened;
  EXPECT_NE(opened.message().find("version 2"), std::string::npos) << opened;
}

TEST_F(TrustKeeperTest, ARotatedRootIsStoredTrustedAndInTheSnapshot) {
  std::unique_ptr<TrustKeeper> keeper = Opened();
  Ed25519PrivateKey root2 = NewKey();
  Ed25519PrivateKey release2 = NewKey();
  RootPlan v2 = Plan(2);
  v2.root_keys = {&root2};
  v2.release = &release2;
  const std::string envelope = SignRoot(v2, {&root_key, &root2});
  absl::StatusOr<RootRecord> stored = keeper->UploadRoot(envelope, "rotate release key", admin_);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->version, 2);
  EXPECT_EQ(stored->envelope_json, envelope);
  EXPECT_EQ(stored->key_ids.size(), 2u);  // old and new root keys signed
  EXPECT_EQ(stored->uploaded_by, "root-admin");
  EXPECT_EQ(keeper->RootVersion(), 2);
  EXPECT_EQ(keeper->ReleaseKeys().KeyIds(), std::vector<std::string>{release2.PublicKey().KeyId()});
  ASSERT_NE(snapshots_.Current(), nullptr);
  EXPECT_EQ(snapshots_.Current()->roots().back().version, 2);
  EXPECT_EQ(AuditCount("trust.root_upload"), 2);

  // From now on floors verify against the new release role.
  EXPECT_EQ(keeper->UploadFloor(SignFloor(kChannel, 1, release_key), "", releaser_).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(keeper->UploadFloor(SignFloor(kChannel, 1, release2), "", releaser_).ok());
  // And the next root must be signed by root2, not the retired root key.
  RootPlan v3 = Plan(3);
  v3.root_keys = {&root2};
  EXPECT_EQ(keeper->UploadRoot(SignRoot(v3, {&root_key}), "", admin_).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(keeper->UploadRoot(SignRoot(v3, {&root2}), "", admin_).ok());
}

TEST_F(TrustKeeperTest, ARootThatSkipsOrRepeatsAVersionIsRefused) {
  std::unique_ptr<TrustKeeper> keeper = Opened();
  absl::StatusOr<RootRecord> skipped =
      keeper->UploadRoot(SignRoot(Plan(3), {&root_key}), "", admin_);
  EXPECT_EQ(skipped.status().code(), absl::StatusCode::kFailedPrecondition) << skipped.status();
  EXPECT_NE(skipped.status().message().find("upload version 2 first"), std::string::npos)
      << skipped.status();
  // The pinned root, uploaded again: already stored, and said so.
  absl::StatusOr<RootRecord> pinned =
      keeper->UploadRoot(SignRoot(Plan(1), {&root_key}), "", admin_);
  EXPECT_EQ(pinned.status().code(), absl::StatusCode::kFailedPrecondition) << pinned.status();
  EXPECT_NE(pinned.status().message().find("stored already"), std::string::npos) << pinned.status();
  // The same version again, re-signed with a later expiry.
  RootPlan again = Plan(1);
  again.expires += absl::Hours(1);
  absl::StatusOr<RootRecord> repeated =
      keeper->UploadRoot(SignRoot(again, {&root_key}), "", admin_);
  EXPECT_EQ(repeated.status().code(), absl::StatusCode::kFailedPrecondition) << repeated.status();
  EXPECT_EQ(StoredRoots().size(), 1u);
  EXPECT_EQ(keeper->RootVersion(), 1);
}

TEST_F(TrustKeeperTest, ARootNotSignedByTheOldOrItsOwnKeysIsRefused) {
  std::unique_ptr<TrustKeeper> keeper = Opened();
  Ed25519PrivateKey root2 = NewKey();
  RootPlan v2 = Plan(2);
  v2.root_keys = {&root2};
  // Only the new root key: a stolen server cannot mint its own root.
  EXPECT_EQ(keeper->UploadRoot(SignRoot(v2, {&root2}), "", admin_).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Only the old root key: the new keys must accept their role.
  EXPECT_EQ(keeper->UploadRoot(SignRoot(v2, {&root_key}), "", admin_).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Signed by the release and server keys: neither is a root key.
  EXPECT_EQ(keeper->UploadRoot(SignRoot(Plan(2), {&release_key, &server_key}), "", admin_)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StoredRoots().size(), 1u);
  EXPECT_EQ(AuditCount("trust.root_upload"), 1);
}

TEST_F(TrustKeeperTest, MalformedAndOversizedRootsAreInvalidArguments) {
  std::unique_ptr<TrustKeeper> keeper = Opened();
  const std::string valid = SignRoot(Plan(2), {&root_key});
  std::string oversized = valid;
  oversized.append(kMaxEnvelopeJsonBytes, ' ');  // still valid JSON, but too large
  for (const std::string& hostile :
       {std::string(), std::string("garbage"), std::string("{\"payload\": 1}"), std::string("[]"),
        oversized,
        // Type confusion: a floor and a content manifest offered as a root.
        SignFloor(kChannel, 2, root_key), SignedJson(kManifestPayloadType, "manifest", {&root_key}),
        // A root envelope whose payload is not root metadata.
        SignedJson(kRootPayloadType, std::string("\xff\xff\xff", 3), {&root_key})}) {
    absl::StatusOr<RootRecord> refused = keeper->UploadRoot(hostile, "", admin_);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument)
        << hostile.substr(0, 60) << ": " << refused.status();
  }
  EXPECT_EQ(
      keeper->UploadRoot(valid, std::string(kMaxReasonBytes + 1, 'r'), admin_).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StoredRoots().size(), 1u);
}

TEST_F(TrustKeeperTest, AnExpiredRootIsRefused) {
  std::unique_ptr<TrustKeeper> keeper = Opened();
  RootPlan v2 = Plan(2);
  v2.expires = clock_.Now() - absl::Seconds(1);
  absl::StatusOr<RootRecord> refused = keeper->UploadRoot(SignRoot(v2, {&root_key}), "", admin_);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_NE(refused.status().message().find("expired"), std::string::npos) << refused.status();
}

TEST_F(TrustKeeperTest, AFloorIsStoredAsSignedAndOnlyRises) {
  std::unique_ptr<TrustKeeper> keeper = Opened();
  const std::string floor5 = SignFloor(kChannel, 5, release_key);
  absl::StatusOr<FloorRecord> stored = keeper->UploadFloor(floor5, "v4 crashes", releaser_);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->min_version, 5);
  EXPECT_EQ(stored->envelope_json, floor5);
  EXPECT_EQ(stored->key_ids, std::vector<std::string>{release_key.PublicKey().KeyId()});
  ASSERT_NE(snapshots_.Current()->Floor(kChannel), nullptr);
  EXPECT_EQ(snapshots_.Current()->Floor(kChannel)->envelope_json, floor5);
  EXPECT_EQ(AuditCount("trust.floor_upload"), 1);

  absl::StatusOr<FloorRecord> lower =
      keeper->UploadFloor(SignFloor(kChannel, 4, release_key), "", releaser_);
  EXPECT_EQ(lower.status().code(), absl::StatusCode::kFailedPrecondition) << lower.status();
  EXPECT_NE(lower.status().message().find("floor v5"), std::string::npos) << lower.status();
  EXPECT_TRUE(keeper->UploadFloor(SignFloor(kChannel, 6, release_key), "", releaser_).ok());
  EXPECT_EQ(AuditCount("trust.floor_upload"), 2);
}

TEST_F(TrustKeeperTest, HostileFloorsAreRefused) {
  std::unique_ptr<TrustKeeper> keeper = Opened();
  // Signed by keys that are not the release role.
  for (const Ed25519PrivateKey* signer : {&root_key, &server_key}) {
    EXPECT_EQ(keeper->UploadFloor(SignFloor(kChannel, 2, *signer), "", releaser_).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
  // A release-signed floor naming an invalid channel.
  v1::FloorMetadata bad_channel;
  bad_channel.set_channel("../etc/passwd");
  bad_channel.set_min_version(2);
  EXPECT_EQ(keeper
                ->UploadFloor(
                    SignedJson(kFloorPayloadType, bad_channel.SerializeAsString(), {&release_key}),
                    "", releaser_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  v1::FloorMetadata zero;
  zero.set_channel(kChannel);
  EXPECT_EQ(
      keeper
          ->UploadFloor(SignedJson(kFloorPayloadType, zero.SerializeAsString(), {&release_key}), "",
                        releaser_)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  // Garbage, oversized and a root offered as a floor.
  std::string oversized = SignFloor(kChannel, 2, release_key);
  oversized.append(kMaxEnvelopeJsonBytes, ' ');
  for (const std::string& hostile :
       {std::string("}{"), oversized, SignRoot(Plan(2), {&release_key}),
        SignedJson(kManifestPayloadType, "x", {&release_key})}) {
    EXPECT_EQ(keeper->UploadFloor(hostile, "", releaser_).status().code(),
              absl::StatusCode::kInvalidArgument)
        << hostile.substr(0, 60);
  }
  absl::StatusOr<std::vector<FloorRecord>> floors = store_.ListFloors();
  ASSERT_TRUE(floors.ok());
  EXPECT_TRUE(floors->empty());
  EXPECT_EQ(AuditCount("trust.floor_upload"), 0);
}

TEST_F(TrustKeeperTest, SyncFollowsRootsAnotherReplicaStored) {
  std::unique_ptr<TrustKeeper> here = Opened();
  std::unique_ptr<TrustKeeper> there = Keeper();
  ASSERT_TRUE(there->Open(SignRoot(Plan(1), {&root_key})).ok());
  Ed25519PrivateKey release2 = NewKey();
  RootPlan v2 = Plan(2);
  v2.release = &release2;
  ASSERT_TRUE(there->UploadRoot(SignRoot(v2, {&root_key}), "", admin_).ok());
  EXPECT_EQ(here->RootVersion(), 1);
  ASSERT_TRUE(here->Sync(*snapshots_.Current()).ok());
  EXPECT_EQ(here->RootVersion(), 2);
  EXPECT_EQ(here->ReleaseKeys().KeyIds(), std::vector<std::string>{release2.PublicKey().KeyId()});
}

TEST_F(TrustKeeperTest, SyncRefusesAForgedStoredRootAndKeepsTheCurrentOne) {
  std::unique_ptr<TrustKeeper> keeper = Opened();
  Ed25519PrivateKey intruder = NewKey();
  RootPlan v2 = Plan(2);
  v2.root_keys = {&intruder};
  v2.release = &intruder;
  RootRecord forged;
  forged.version = 2;
  forged.envelope_json = SignRoot(v2, {&intruder});
  ASSERT_TRUE(store_.InsertRoot(forged, AuditRecord{}).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  EXPECT_FALSE(keeper->Sync(*snapshots_.Current()).ok());
  EXPECT_EQ(keeper->RootVersion(), 1);
  EXPECT_EQ(keeper->ReleaseKeys().KeyIds(),
            std::vector<std::string>{release_key.PublicKey().KeyId()});
}

}  // namespace
}  // namespace ringwarden::testing
