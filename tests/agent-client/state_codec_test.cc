#include "agent-client/state_codec.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent-client/content_store.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/agent-client/test_files.h"

namespace ringwarden::agent {
namespace {

using nlohmann::json;

constexpr char kPath[] = "/var/lib/ringwarden/.state.json";

ContentVersion V(int64_t version) {
  return ContentVersion{version, std::string(64, static_cast<char>('a' + version % 6)),
                        100 + version};
}

AgentState SampleState() {
  AgentState state;
  ChannelSlot& rules = state.channels["rules.behavioral"];
  rules.current = V(3);
  rules.current_known_good = true;
  rules.last_known_good = V(2);
  ChannelSlot& models = state.channels["models.x-1_b"];
  models.current = V(7);
  state.meta.boot_marker.present = true;
  state.meta.boot_marker.hits = 2;
  state.meta.boot_marker.versions = {{"models.x-1_b", 7}, {"rules.behavioral", 3}};
  state.meta.running = true;
  state.meta.next_batch_seq = 42;
  state.meta.blocked_versions["rules.behavioral"] = {4, 5};
  return state;
}

void ExpectSameState(const AgentState& got, const AgentState& want) {
  ASSERT_EQ(got.channels.size(), want.channels.size());
  for (const auto& [name, slot] : want.channels) {
    ASSERT_EQ(got.channels.count(name), 1u) << name;
    const ChannelSlot& g = got.channels.at(name);
    EXPECT_EQ(g.current, slot.current) << name;
    EXPECT_EQ(g.current_known_good, slot.current_known_good) << name;
    EXPECT_EQ(g.last_known_good, slot.last_known_good) << name;
  }
  EXPECT_EQ(got.meta.boot_marker.present, want.meta.boot_marker.present);
  EXPECT_EQ(got.meta.boot_marker.hits, want.meta.boot_marker.hits);
  EXPECT_EQ(got.meta.boot_marker.versions, want.meta.boot_marker.versions);
  EXPECT_EQ(got.meta.running, want.meta.running);
  EXPECT_EQ(got.meta.next_batch_seq, want.meta.next_batch_seq);
  EXPECT_EQ(got.meta.blocked_versions, want.meta.blocked_versions);
  EXPECT_TRUE(got.repairs.empty());
}

// ExpectCorrupt wants DATA_LOSS naming the file, with the hint to move it away.
void ExpectCorrupt(const absl::StatusOr<StoredState>& parsed, const std::string& why) {
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << why << ": " << parsed.status();
  EXPECT_NE(parsed.status().message().find(kPath), std::string::npos) << why;
  EXPECT_NE(parsed.status().message().find("move it away"), std::string::npos) << why;
}

std::string SampleText() {
  return StateToJson(SampleState(), PendingApply{"rules.behavioral", V(4), true});
}

TEST(StateCodecTest, RoundTripsStateAndPendingApply) {
  const AgentState state = SampleState();
  absl::StatusOr<StoredState> parsed =
      StateFromJson(StateToJson(state, PendingApply{"rules.behavioral", V(4), true}), kPath);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameState(parsed->state, state);
  ASSERT_TRUE(parsed->pending.has_value());
  EXPECT_EQ(parsed->pending->channel, "rules.behavioral");
  EXPECT_EQ(parsed->pending->version, V(4));
  EXPECT_TRUE(parsed->pending->keep);
}

TEST(StateCodecTest, RoundTripsEmptyStateWithoutPendingApply) {
  const std::string text = StateToJson(AgentState{}, std::nullopt);
  EXPECT_EQ(json::parse(text).at("format"), kStateFormat);
  EXPECT_FALSE(json::parse(text).contains("pending"));
  absl::StatusOr<StoredState> parsed = StateFromJson(text, kPath);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameState(parsed->state, AgentState{});
  EXPECT_FALSE(parsed->pending.has_value());
}

TEST(StateCodecTest, RepairsAreNotPersisted) {
  AgentState state = SampleState();
  state.repairs.push_back("dropped damaged last-known-good of rules.behavioral");
  absl::StatusOr<StoredState> parsed = StateFromJson(StateToJson(state, std::nullopt), kPath);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->state.repairs.empty());
}

TEST(StateCodecTest, InvalidUtf8IsWrittenWithoutThrowing) {
  AgentState state;
  state.channels["rules.x"].current = ContentVersion{1, "\xff\xfe", 1};
  std::string text;
  ASSERT_NO_THROW(text = StateToJson(state, std::nullopt));
  EXPECT_TRUE(StateFromJson(text, kPath).ok());
}

TEST(StateCodecTest, OtherFormatIsFailedPrecondition) {
  json j = json::parse(SampleText());
  j["format"] = kStateFormat + 1;
  absl::StatusOr<StoredState> parsed = StateFromJson(j.dump(), kPath);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kFailedPrecondition) << parsed.status();
  EXPECT_NE(parsed.status().message().find("unsupported state format"), std::string::npos);
}

TEST(StateCodecTest, EveryTruncationIsDataLoss) {
  const std::string text = SampleText();
  for (size_t n = 0; n < text.size(); ++n) {
    ExpectCorrupt(StateFromJson(text.substr(0, n), kPath), absl::StrCat("first ", n, " bytes"));
  }
}

TEST(StateCodecTest, NotAJsonObjectIsDataLoss) {
  for (const char* text : {"", " ", "null", "42", "\"state\"", "[]", "[{\"format\": 1}]", "{}",
                           "{\"format\": 1}", "\xef\xbb\xbf{", "{\"format\": 1,}"}) {
    ExpectCorrupt(StateFromJson(text, kPath), text);
  }
}

TEST(StateCodecTest, WrongTypesAndMissingFieldsAreDataLoss) {
  const json good = json::parse(SampleText());
  const std::vector<std::pair<std::string, json>> cases = {
      {"/format", "1"},
      {"/channels", json::array({1, 2})},
      {"/channels", "rules.behavioral"},
      {"/channels/rules.behavioral", nullptr},
      {"/channels/rules.behavioral/current", json::array()},
      {"/channels/rules.behavioral/current/version", "3"},
      {"/channels/rules.behavioral/current/sha256", 7},
      {"/channels/rules.behavioral/current/size", "103"},
      {"/channels/rules.behavioral/current_known_good", "yes"},
      {"/channels/rules.behavioral/last_known_good", nullptr},
      {"/boot_marker", json::array()},
      {"/boot_marker/present", 1},
      {"/boot_marker/hits", "2"},
      {"/boot_marker/versions", json::array({7, 3})},
      {"/boot_marker/versions/rules.behavioral", "3"},
      {"/running", nullptr},
      {"/next_batch_seq", "42"},
      {"/blocked_versions", json::array({4})},
      {"/blocked_versions/rules.behavioral", 4},
      {"/blocked_versions/rules.behavioral", json::array({"4"})},
      {"/pending", "rules.behavioral"},
      {"/pending/channel", 5},
      {"/pending/version", nullptr},
      {"/pending/keep", "true"},
  };
  for (const auto& [pointer, value] : cases) {
    json bad = good;
    bad[json::json_pointer(pointer)] = value;
    ExpectCorrupt(StateFromJson(bad.dump(), kPath), absl::StrCat(pointer, " = ", value.dump()));
  }
  for (const char* pointer :
       {"/channels", "/channels/rules.behavioral/current",
        "/channels/rules.behavioral/current/sha256",
        "/channels/rules.behavioral/current_known_good", "/boot_marker", "/boot_marker/hits",
        "/running", "/next_batch_seq", "/blocked_versions", "/pending/keep", "/format"}) {
    json bad = good;
    json::json_pointer ptr(pointer);
    bad[ptr.parent_pointer()].erase(ptr.back());
    ExpectCorrupt(StateFromJson(bad.dump(), kPath), absl::StrCat("without ", pointer));
  }
}

TEST(StateCodecTest, InvalidChannelNamesAnywhereAreDataLoss) {
  const json good = json::parse(SampleText());
  for (const std::string& name :
       {std::string(""), std::string(".."), std::string("../outside"), std::string(".state.json"),
        std::string("a/b"), std::string("Rules"), std::string(65, 'a'), std::string("x\0y", 3)}) {
    json in_channels = good;
    in_channels["channels"][name] = in_channels["channels"]["rules.behavioral"];
    json in_pending = good;
    in_pending["pending"]["channel"] = name;
    json in_blocked = good;
    in_blocked["blocked_versions"][name] = json::array({1});
    json in_marker = good;
    in_marker["boot_marker"]["versions"][name] = 1;
    for (const json* bad : {&in_channels, &in_pending, &in_blocked, &in_marker}) {
      absl::StatusOr<StoredState> parsed = StateFromJson(bad->dump(), kPath);
      ExpectCorrupt(parsed, absl::StrCat("name \"", name, "\""));
      EXPECT_NE(parsed.status().message().find("is not valid"), std::string::npos)
          << parsed.status();
    }
  }
}

TEST(StateCodecTest, RoundTripsTrustStateRootAndManifestDigests) {
  AgentState state = SampleState();
  state.channels["rules.behavioral"].current.manifest_sha256 = std::string(64, 'f');
  state.meta.trust.ring = "early";
  state.meta.trust.last_sequence = 17;
  state.meta.trust.last_payload_sha256 = std::string(64, 'e');
  state.meta.trust.floors["rules.behavioral"] = 2;
  state.meta.trust.highest["rules.behavioral"] = 3;
  state.meta.trust.revoked["rules.behavioral"] = {4};
  state.meta.trusted_root = R"({"payloadType": "x"})";
  absl::StatusOr<StoredState> parsed = StateFromJson(StateToJson(state, std::nullopt), kPath);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameState(parsed->state, state);
  const AgentTrustState& trust = parsed->state.meta.trust;
  EXPECT_EQ(trust.ring, "early");
  EXPECT_EQ(trust.last_sequence, 17);
  EXPECT_EQ(trust.last_payload_sha256, std::string(64, 'e'));
  EXPECT_EQ(trust.floors, state.meta.trust.floors);
  EXPECT_EQ(trust.highest, state.meta.trust.highest);
  EXPECT_EQ(trust.revoked, state.meta.trust.revoked);
  EXPECT_EQ(parsed->state.meta.trusted_root, state.meta.trusted_root);
}

// An agent upgraded from before signed assignments keeps its content and starts
// from its pinned root with an empty trust state.
TEST(StateCodecTest, FormatOneStillLoadsWithAnEmptyTrustState) {
  json old = json::parse(SampleText());
  old["format"] = 1;
  old.erase("trust");
  old.erase("trusted_root");
  for (auto& [name, slot] : old["channels"].items()) {
    slot["current"].erase("manifest_sha256");
    slot["last_known_good"].erase("manifest_sha256");
  }
  absl::StatusOr<StoredState> parsed = StateFromJson(old.dump(), kPath);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameState(parsed->state, SampleState());
  EXPECT_TRUE(parsed->state.meta.trust.ring.empty());
  EXPECT_EQ(parsed->state.meta.trust.last_sequence, 0);
  EXPECT_TRUE(parsed->state.meta.trusted_root.empty());
}

TEST(StateCodecTest, MissingOrTamperedTrustStateIsDataLoss) {
  const json good = json::parse(SampleText());
  for (const char* field : {"trust", "trusted_root"}) {
    json bad = good;
    bad.erase(field);
    ExpectCorrupt(StateFromJson(bad.dump(), kPath), absl::StrCat("without ", field));
  }
  const std::vector<std::pair<std::string, json>> cases = {
      {"/trust", json::array()},
      {"/trust", "broad"},
      {"/trust/ring", "moon"},
      {"/trust/last_sequence", "7"},
      {"/trust/floors", json::array({3})},
      {"/trust/floors/..", 3},
      {"/trusted_root", 5},
      {"/channels/rules.behavioral/current/manifest_sha256", 5},
  };
  for (const auto& [pointer, value] : cases) {
    json bad = good;
    bad[json::json_pointer(pointer)] = value;
    ExpectCorrupt(StateFromJson(bad.dump(), kPath), absl::StrCat(pointer, " = ", value.dump()));
  }
}

// A hostile journal entry must not make Load touch files outside its directory.
TEST(StateCodecTest, DiskStoreRefusesPendingChannelOutsideItsDirectory) {
  TempDir root;
  const std::string store_dir = root.path() + "/store";
  const std::string victim_dir = root.path() + "/victim";
  std::filesystem::create_directories(store_dir);
  std::filesystem::create_directories(victim_dir);
  std::ofstream(victim_dir + "/.incoming") << "keep me";
  json state = json::parse(StateToJson(AgentState{}, PendingApply{"rules.x", V(1), false}));
  state["pending"]["channel"] = "../victim";
  std::ofstream(store_dir + "/.state.json") << state.dump();

  auto store = DiskContentStore::Open(store_dir);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Load().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadAll(victim_dir + "/.incoming"), "keep me");
}

}  // namespace
}  // namespace ringwarden::agent
