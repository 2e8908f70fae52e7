// PgStore's trust role against a real PostgreSQL: stored roots keep
// consecutive versions and their envelopes byte for byte; floors only rise and
// rollout creation re-checks them under the channel lock.
#include <gtest/gtest.h>

#include "server/postgres/pg_store.h"
#include "tests/server/postgres/store_fixture.h"

namespace ringwarden {
namespace {

// An envelope that is not canonical JSON: spacing, key order and a non-ASCII
// character must survive storage unchanged, since signatures cover the bytes.
std::string Envelope(absl::string_view tag) {
  return absl::StrCat(
      "{ \"signatures\":[{\"keyid\":\"k\",\"sig\":\"c2ln\"}],\n  \"payload\": \"", tag,
      "\", \"payloadType\":\"application/vnd.ringwarden.root+protobuf\" } \xc3\xa9");
}

class PgTrustTest : public StoreFixture {
 protected:
  RootRecord Root(int64_t version) {
    RootRecord r;
    r.version = version;
    r.envelope_json = Envelope(absl::StrCat("root-", version));
    r.expires = absl::FromUnixMicros(1'900'000'000'123'456);
    r.key_ids = {"root-a", "root-b"};
    r.uploaded_by = "alice";
    return r;
  }

  FloorRecord Floor(int64_t min_version, std::string channel = kChannel) {
    FloorRecord f;
    f.channel = std::move(channel);
    f.min_version = min_version;
    f.envelope_json = Envelope(absl::StrCat("floor-", min_version));
    f.key_ids = {"release-a"};
    f.uploaded_by = "bob";
    return f;
  }
};

TEST_F(PgTrustTest, RootsRoundTripByteForByteInVersionOrder) {
  // The first stored root may have any version (the pinned one).
  ASSERT_TRUE(store_.InsertRoot(Root(3), Audit("trust.root_upload")).ok());
  ASSERT_TRUE(store_.InsertRoot(Root(4), Audit("trust.root_upload")).ok());
  absl::StatusOr<std::vector<RootRecord>> roots = store_.ListRoots();
  ASSERT_TRUE(roots.ok()) << roots.status();
  ASSERT_EQ(roots->size(), 2u);
  EXPECT_EQ((*roots)[0].version, 3);
  EXPECT_EQ((*roots)[1].version, 4);
  EXPECT_EQ((*roots)[0].envelope_json, Root(3).envelope_json);
  EXPECT_EQ((*roots)[1].expires, Root(4).expires);
  EXPECT_EQ((*roots)[1].key_ids, (std::vector<std::string>{"root-a", "root-b"}));
  EXPECT_EQ((*roots)[1].uploaded_by, "alice");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM audit_log WHERE action = 'trust.root_upload'"), "2");
}

TEST_F(PgTrustTest, ARootThatSkipsOrRepeatsAVersionIsRefusedAndWritesNothing) {
  ASSERT_TRUE(store_.InsertRoot(Root(1), Audit("trust.root_upload")).ok());
  for (int64_t version : {1, 3, 0}) {
    const absl::Status status = store_.InsertRoot(Root(version), Audit("trust.root_upload"));
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << version << ": " << status;
  }
  EXPECT_EQ(db_.Query("SELECT count(*) FROM trust_roots"), "1");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM audit_log"), "1");
}

TEST_F(PgTrustTest, ConcurrentUploadsOfTheNextRootStoreItOnce) {
  ASSERT_TRUE(store_.InsertRoot(Root(1), Audit("trust.root_upload")).ok());
  const auto [ok, refused] =
      RunConcurrently(6, [&] { return store_.InsertRoot(Root(2), Audit("trust.root_upload")); });
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(refused, 5);
  EXPECT_EQ(db_.Query("SELECT max(version) FROM trust_roots"), "2");
}

TEST_F(PgTrustTest, FloorsOnlyRise) {
  absl::StatusOr<std::optional<FloorRecord>> none = store_.GetFloor(kChannel);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());

  ASSERT_TRUE(store_.UpsertFloor(Floor(3), Audit("trust.floor_upload")).ok());
  ASSERT_TRUE(store_.UpsertFloor(Floor(5), Audit("trust.floor_upload")).ok());
  const absl::Status lower = store_.UpsertFloor(Floor(4), Audit("trust.floor_upload"));
  EXPECT_EQ(lower.code(), absl::StatusCode::kFailedPrecondition) << lower;
  EXPECT_NE(lower.message().find("floor v5"), std::string::npos) << lower;
  // The same floor again (re-signed) is accepted.
  ASSERT_TRUE(store_.UpsertFloor(Floor(5), Audit("trust.floor_upload")).ok());
  ASSERT_TRUE(store_.UpsertFloor(Floor(1, "rules.other"), Audit("trust.floor_upload")).ok());

  absl::StatusOr<std::optional<FloorRecord>> stored = store_.GetFloor(kChannel);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->min_version, 5);
  EXPECT_EQ((*stored)->envelope_json, Floor(5).envelope_json);
  EXPECT_EQ((*stored)->key_ids, (std::vector<std::string>{"release-a"}));
  EXPECT_EQ((*stored)->uploaded_by, "bob");
  absl::StatusOr<std::vector<FloorRecord>> floors = store_.ListFloors();
  ASSERT_TRUE(floors.ok()) << floors.status();
  ASSERT_EQ(floors->size(), 2u);
  EXPECT_EQ((*floors)[0].channel, kChannel);  // by channel
  EXPECT_EQ((*floors)[1].channel, "rules.other");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM audit_log WHERE action = 'trust.floor_upload'"), "4");
}

TEST_F(PgTrustTest, TheCatalogCarriesRootsAndFloors) {
  ASSERT_TRUE(store_.InsertRoot(Root(1), Audit("trust.root_upload")).ok());
  ASSERT_TRUE(store_.InsertRoot(Root(2), Audit("trust.root_upload")).ok());
  ASSERT_TRUE(store_.UpsertFloor(Floor(2), Audit("trust.floor_upload")).ok());
  absl::StatusOr<CatalogData> catalog = store_.LoadCatalog(std::nullopt);
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  ASSERT_EQ(catalog->roots.size(), 2u);
  EXPECT_EQ(catalog->roots[1].version, 2);
  EXPECT_EQ(catalog->roots[1].envelope_json, Root(2).envelope_json);
  ASSERT_EQ(catalog->floors.size(), 1u);
  EXPECT_EQ(catalog->floors[0].min_version, 2);
}

TEST_F(PgTrustTest, ARolloutBelowTheFloorIsRefusedUnderTheChannelLock) {
  ASSERT_TRUE(store_.InsertContent(Content(1), Audit("content.upload")).ok());
  ASSERT_TRUE(store_.InsertContent(Content(2), Audit("content.upload")).ok());
  ASSERT_TRUE(store_.UpsertFloor(Floor(2), Audit("trust.floor_upload")).ok());
  NewRollout create;
  create.rollout.id = "ro-1";
  create.rollout.channel = kChannel;
  create.rollout.version = 1;
  create.rollout.position.state = RolloutState::kCanary;
  create.rollout.created_by = "alice";
  const absl::Status refused = store_.CreateRollout(create);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find("floor v2"), std::string::npos) << refused;
  EXPECT_EQ(db_.Query("SELECT count(*) FROM rollouts"), "0");
  create.rollout.version = 2;
  EXPECT_TRUE(store_.CreateRollout(create).ok());
}

TEST_F(PgTrustTest, AFloorForAChannelWithoutContentDoesNotBlockItsFirstUpload) {
  ASSERT_TRUE(store_.UpsertFloor(Floor(1, "rules.new"), Audit("trust.floor_upload")).ok());
  EXPECT_TRUE(store_.InsertContent(Content(1, "rules.new"), Audit("content.upload")).ok());
}

}  // namespace
}  // namespace ringwarden
