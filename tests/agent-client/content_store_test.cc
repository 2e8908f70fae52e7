#include "agent-client/content_store.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "agent-client/sim/memory_content_store.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/agent-client/test_files.h"

namespace ringwarden::agent {
namespace {

ContentVersion Version(int64_t v, const std::string& payload) {
  return ContentVersion{v, Sha256Hex(payload), static_cast<int64_t>(payload.size())};
}

TEST(ChannelNameTest, AcceptsOnlySafeDirectoryNames) {
  EXPECT_TRUE(IsValidChannelName("rules.behavioral"));
  EXPECT_TRUE(IsValidChannelName("a-b_c.9"));
  EXPECT_FALSE(IsValidChannelName(""));
  EXPECT_FALSE(IsValidChannelName(".."));
  EXPECT_FALSE(IsValidChannelName(".state.json"));
  EXPECT_FALSE(IsValidChannelName("a/b"));
  EXPECT_FALSE(IsValidChannelName("Rules"));
  EXPECT_FALSE(IsValidChannelName(std::string(65, 'a')));
}

TEST(DiskContentStoreTest, ApplyKeepsPreviousAsLastKnownGoodAndSurvivesReload) {
  TempDir dir;
  {
    auto store = DiskContentStore::Open(dir.path());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Load().ok());
    EXPECT_TRUE((*store)->state().channels.empty());
    ASSERT_TRUE((*store)->Apply("rules.test", Version(1, "one"), "one").ok());
    ASSERT_TRUE((*store)->MarkAllKnownGood().ok());
    ASSERT_TRUE((*store)->Apply("rules.test", Version(2, "two"), "two").ok());
    AgentMeta meta = (*store)->state().meta;
    meta.next_batch_seq = 42;
    meta.running = true;
    ASSERT_TRUE((*store)->SaveMeta(meta).ok());
    EXPECT_EQ(ReadAll((*store)->ContentPath("rules.test")), "two");
    EXPECT_EQ(ReadAll((*store)->PreviousPath("rules.test")), "one");
  }
  // No temp files are left behind.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/rules.test/.incoming"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/.state.json.tmp"));

  auto store = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Load().ok());
  const AgentState& state = (*store)->state();
  EXPECT_TRUE(state.repairs.empty());
  ASSERT_EQ(state.channels.count("rules.test"), 1u);
  const ChannelSlot& slot = state.channels.at("rules.test");
  EXPECT_EQ(slot.current, Version(2, "two"));
  EXPECT_FALSE(slot.current_known_good);
  EXPECT_EQ(slot.last_known_good, Version(1, "one"));
  EXPECT_EQ(state.meta.next_batch_seq, 42);
  EXPECT_TRUE(state.meta.running);

  // Revert brings the last-known-good back, on disk too.
  ASSERT_TRUE((*store)->Revert("rules.test").ok());
  EXPECT_EQ(ReadAll((*store)->ContentPath("rules.test")), "one");
  EXPECT_EQ((*store)->state().CurrentVersion("rules.test"), 1);
  EXPECT_TRUE((*store)->state().channels.at("rules.test").current_known_good);
}

TEST(DiskContentStoreTest, UnprovenVersionNeverDisplacesLastKnownGood) {
  TempDir dir;
  auto store = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Load().ok());
  ASSERT_TRUE((*store)->Apply("rules.test", Version(1, "one"), "one").ok());
  ASSERT_TRUE((*store)->MarkAllKnownGood().ok());
  ASSERT_TRUE((*store)->Apply("rules.test", Version(2, "two"), "two").ok());
  // v2 never proved healthy, so v3 replaces it and v1 stays last-known-good.
  ASSERT_TRUE((*store)->Apply("rules.test", Version(3, "three"), "three").ok());
  EXPECT_EQ((*store)->state().channels.at("rules.test").last_known_good.version, 1);
  EXPECT_EQ(ReadAll((*store)->PreviousPath("rules.test")), "one");
  EXPECT_EQ(ReadAll((*store)->ContentPath("rules.test")), "three");
}

TEST(DiskContentStoreTest, RevertWithoutLastKnownGoodRemovesContent) {
  TempDir dir;
  auto store = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Load().ok());
  ASSERT_TRUE((*store)->Apply("rules.test", Version(1, "one"), "one").ok());
  ASSERT_TRUE((*store)->Revert("rules.test").ok());
  EXPECT_EQ((*store)->state().CurrentVersion("rules.test"), 0);
  EXPECT_FALSE(std::filesystem::exists((*store)->ContentPath("rules.test")));
  EXPECT_EQ((*store)->Revert("rules.test").code(), absl::StatusCode::kNotFound);
}

TEST(DiskContentStoreTest, SecondOpenOfSameDirectoryIsRefused) {
  TempDir dir;
  auto first = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(first.ok());
  auto second = DiskContentStore::Open(dir.path());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos);
}

TEST(DiskContentStoreTest, RejectsInvalidChannelAndWrongSize) {
  TempDir dir;
  auto store = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Load().ok());
  EXPECT_EQ((*store)->Apply("../etc", Version(1, "x"), "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Apply("rules.test", Version(1, "xy"), "x").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DiskContentStoreTest, LoadFinishesApplyInterruptedAfterRename) {
  TempDir dir;
  {
    auto store = DiskContentStore::Open(dir.path());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Load().ok());
    ASSERT_TRUE((*store)->Apply("rules.test", Version(1, "one"), "one").ok());
  }
  // Simulate a crash after the renames of an apply of v2 but before the final
  // state write: files moved, the state still holds the journal entry.
  const std::string state_path = dir.path() + "/.state.json";
  nlohmann::json state = nlohmann::json::parse(ReadAll(state_path));
  state["pending"] = {{"channel", "rules.test"},
                      {"version", {{"version", 2}, {"sha256", Sha256Hex("two")}, {"size", 3}}},
                      {"keep", true}};
  std::ofstream(state_path, std::ios::trunc) << state.dump();
  std::filesystem::rename(dir.path() + "/rules.test/current", dir.path() + "/rules.test/previous");
  std::ofstream(dir.path() + "/rules.test/current", std::ios::trunc) << "two";

  auto store = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Load().ok());
  const ChannelSlot& slot = (*store)->state().channels.at("rules.test");
  EXPECT_EQ(slot.current.version, 2);
  EXPECT_EQ(slot.last_known_good.version, 1);
  ASSERT_EQ((*store)->state().repairs.size(), 1u);
  EXPECT_NE((*store)->state().repairs[0].find("finished"), std::string::npos);
}

TEST(DiskContentStoreTest, LoadUndoesApplyInterruptedBeforeRename) {
  TempDir dir;
  {
    auto store = DiskContentStore::Open(dir.path());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Load().ok());
    ASSERT_TRUE((*store)->Apply("rules.test", Version(1, "one"), "one").ok());
  }
  const std::string state_path = dir.path() + "/.state.json";
  nlohmann::json state = nlohmann::json::parse(ReadAll(state_path));
  state["pending"] = {{"channel", "rules.test"},
                      {"version", {{"version", 2}, {"sha256", Sha256Hex("two")}, {"size", 3}}},
                      {"keep", true}};
  std::ofstream(state_path, std::ios::trunc) << state.dump();
  std::ofstream(dir.path() + "/rules.test/.incoming", std::ios::trunc) << "tw";

  auto store = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Load().ok());
  EXPECT_EQ((*store)->state().CurrentVersion("rules.test"), 1);
  EXPECT_EQ(ReadAll((*store)->ContentPath("rules.test")), "one");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/rules.test/.incoming"));
}

TEST(DiskContentStoreTest, DamagedCurrentFileFallsBackToLastKnownGood) {
  TempDir dir;
  {
    auto store = DiskContentStore::Open(dir.path());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Load().ok());
    ASSERT_TRUE((*store)->Apply("rules.test", Version(1, "one"), "one").ok());
    ASSERT_TRUE((*store)->Apply("rules.test", Version(2, "two"), "two").ok());
  }
  std::ofstream(dir.path() + "/rules.test/current", std::ios::trunc) << "tw0";
  auto store = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Load().ok());
  EXPECT_EQ((*store)->state().CurrentVersion("rules.test"), 1);
  EXPECT_EQ(ReadAll((*store)->ContentPath("rules.test")), "one");
  EXPECT_FALSE((*store)->state().repairs.empty());
}

TEST(DiskContentStoreTest, CorruptStateFileIsReportedWithAHint) {
  TempDir dir;
  std::ofstream(dir.path() + "/.state.json") << "{not json";
  auto store = DiskContentStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  absl::Status status = (*store)->Load();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find("move it away"), std::string::npos);
}

TEST(MemoryContentStoreTest, SameLastKnownGoodRulesWithOptionalPayloads) {
  MemoryContentStore store(/*keep_payloads=*/true);
  ASSERT_TRUE(store.Apply("rules.test", Version(1, "one"), "one").ok());
  ASSERT_TRUE(store.Apply("rules.test", Version(2, "two"), "two").ok());
  EXPECT_EQ(store.state().channels.at("rules.test").last_known_good.version, 1);
  EXPECT_EQ(*store.CurrentPayload("rules.test"), "two");
  ASSERT_TRUE(store.Revert("rules.test").ok());
  EXPECT_EQ(*store.CurrentPayload("rules.test"), "one");
  EXPECT_EQ(store.ContentPath("rules.test"), "");

  MemoryContentStore lean;
  ASSERT_TRUE(lean.Apply("rules.test", Version(1, "one"), "one").ok());
  EXPECT_EQ(lean.state().CurrentVersion("rules.test"), 1);
  EXPECT_EQ(lean.CurrentPayload("rules.test").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ringwarden::agent
