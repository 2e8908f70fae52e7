// Golden tests of ringctl's renderers: fixed proto inputs, tables and JSON pinned in
// tests/cli/golden/. JSON is an interface for scripts (docs/ringctl.md), so a diff
// here is a schema change: fields may be added, never renamed or removed.
#include "cli/output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/cli/test_util.h"

namespace ringwarden::cli_testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// kRefreshed: 2024-07-19 05:02:05 UTC.
const absl::Time kRefreshed = absl::FromUnixSeconds(1721365325);

// Both renders `f` in both formats and checks them against NAME.txt and NAME.json.
template <typename F>
void Both(const std::string& name, F f) {
  std::ostringstream table, json;
  f(OutputFormat::kTable, table);
  f(OutputFormat::kJson, json);
  ExpectGolden(name + ".txt", table.str());
  ExpectGolden(name + ".json", json.str());
  // Every JSON output is exactly one parseable document and a newline.
  ASSERT_FALSE(json.str().empty());
  EXPECT_EQ(json.str().back(), '\n');
  EXPECT_EQ(json.str().find('\n'), json.str().size() - 1);
  EXPECT_FALSE(nlohmann::json::parse(json.str(), nullptr, false).is_discarded()) << json.str();
}

TEST(OutputGoldenTest, RolloutStatus) {
  Both("rollout_status",
       [](OutputFormat f, std::ostream& o) { RenderRollout(SampleRollout(), f, o); });
}

TEST(OutputGoldenTest, HaltedAndBroadRollouts) {
  Both("rollout_status_halted",
       [](OutputFormat f, std::ostream& o) { RenderRollout(RolloutIn(v1::HALTED), f, o); });
  Both("rollout_status_broad",
       [](OutputFormat f, std::ostream& o) { RenderRollout(RolloutIn(v1::BROAD), f, o); });
}

TEST(OutputGoldenTest, RolloutList) {
  v1::ListRolloutsResponse resp;
  *resp.add_rollouts() = SampleRollout();
  v1::Rollout halted = RolloutIn(v1::HALTED);
  halted.set_id("ro-00000001");
  halted.set_version(41);
  *resp.add_rollouts() = halted;
  Both("rollout_list", [&](OutputFormat f, std::ostream& o) { RenderRolloutList(resp, f, o); });
}

TEST(OutputGoldenTest, EmptyListsAreEmptyArrays) {
  std::ostringstream out;
  RenderRolloutList(v1::ListRolloutsResponse(), OutputFormat::kJson, out);
  RenderContentList(v1::ListContentResponse(), OutputFormat::kJson, out);
  RenderPins(v1::ListPinsResponse(), OutputFormat::kJson, out);
  RenderAudit(v1::ListAuditLogResponse(), OutputFormat::kJson, out);
  RenderHistory({}, OutputFormat::kJson, out);
  EXPECT_EQ(out.str(), "[]\n[]\n[]\n[]\n[]\n");
}

TEST(OutputGoldenTest, ContentList) {
  Both("content_list",
       [](OutputFormat f, std::ostream& o) { RenderContentList(SampleContent(), f, o); });
  Both("content_upload",
       [](OutputFormat f, std::ostream& o) { RenderUploaded(SampleContent().content(0), f, o); });
}

TEST(OutputGoldenTest, Agents) {
  Both("agents_list", [](OutputFormat f, std::ostream& o) { RenderAgents(SampleAgents(), f, o); });
}

TEST(OutputGoldenTest, Audit) {
  Both("audit", [](OutputFormat f, std::ostream& o) { RenderAudit(SampleAudit(), f, o); });
}

TEST(OutputGoldenTest, History) {
  const v1::ListAuditLogResponse audit = SampleAudit();
  std::vector<v1::AuditEntry> oldest_first(audit.entries().rbegin(), audit.entries().rend());
  Both("rollout_history",
       [&](OutputFormat f, std::ostream& o) { RenderHistory(oldest_first, f, o); });
}

TEST(OutputGoldenTest, Explain) {
  Both("rollout_explain",
       [](OutputFormat f, std::ostream& o) { RenderExplain(SampleExplain(), f, o); });
}

TEST(OutputGoldenTest, ExplainSurvivesOddEvidence) {
  v1::ExplainRolloutResponse x = SampleExplain();
  x.mutable_decisions(0)->set_evidence_json(R"({"treated":{},"control":3,"test":{"name":1},)"
                                            R"("waiting_for":[1,"two"]})");
  x.mutable_decisions(1)->set_evidence_json("{not json");
  std::ostringstream table, json;
  RenderExplain(x, OutputFormat::kTable, table);
  RenderExplain(x, OutputFormat::kJson, json);
  EXPECT_THAT(table.str(), HasSubstr("waiting for: 1; two"));
  auto doc = nlohmann::json::parse(json.str());
  EXPECT_EQ(doc["decisions"][1]["evidence"], "{not json");  // kept as text, not lost
}

TEST(OutputGoldenTest, PolicyPinsAndEmergencyStop) {
  Both("policy_show", [](OutputFormat f, std::ostream& o) { RenderPolicy(SamplePolicy(), f, o); });
  Both("pin_list", [](OutputFormat f, std::ostream& o) { RenderPins(SamplePins(), f, o); });
  Both("pin_set", [](OutputFormat f, std::ostream& o) { RenderPin(SamplePins().pins(0), f, o); });
  Both("emergency_stop", [](OutputFormat f, std::ostream& o) { RenderEmergencyStop(true, f, o); });
}

TEST(OutputGoldenTest, WatchFrames) {
  Both("watch_early", [](OutputFormat f, std::ostream& o) {
    RenderWatchFrame(SampleExplain(), kRefreshed, f, o);
  });
  for (auto [state, name] : {std::pair{v1::CANARY, "watch_canary"},
                             {v1::BROAD, "watch_broad"},
                             {v1::COMPLETED, "watch_completed"},
                             {v1::HALTED, "watch_halted"},
                             {v1::ROLLED_BACK, "watch_rolled_back"}}) {
    v1::ExplainRolloutResponse x;
    *x.mutable_rollout() = RolloutIn(state);
    Both(name, [&](OutputFormat f, std::ostream& o) { RenderWatchFrame(x, kRefreshed, f, o); });
  }
}

TEST(ProgressBarTest, CellsAreEarnedNotRounded) {
  v1::RingProgress p;
  p.set_targeted(18);
  p.set_applied(18);
  p.set_healthy(18);
  EXPECT_EQ(ProgressBar(p, 10), "[##########]");
  p.set_applied(17);
  p.set_healthy(17);
  EXPECT_EQ(ProgressBar(p, 10), "[#########-]");  // 17/18 never looks complete
  p.set_applied(9);
  p.set_healthy(3);
  p.set_failed(4);
  EXPECT_EQ(ProgressBar(p, 10), "[#++++xx---]");
  p.set_targeted(0);
  EXPECT_EQ(ProgressBar(p, 10), "[----------]");
  p.set_targeted(5);
  p.set_applied(9);  // inconsistent counts never overflow the bar
  p.set_healthy(12);
  p.set_failed(7);
  EXPECT_EQ(ProgressBar(p, 10), "[##########]");
}

TEST(FormatTest, ElapsedAndTime) {
  EXPECT_EQ(FormatElapsed(absl::Seconds(0)), "+0s");
  EXPECT_EQ(FormatElapsed(absl::Seconds(45)), "+45s");
  EXPECT_EQ(FormatElapsed(absl::Seconds(750)), "+12m30s");
  EXPECT_EQ(FormatElapsed(absl::Seconds(7500)), "+2h05m");
  EXPECT_EQ(FormatElapsed(absl::Hours(76)), "+3d04h");
  EXPECT_EQ(FormatElapsed(absl::Seconds(-5)), "+0s");
  EXPECT_EQ(FormatTime(0), "-");
  EXPECT_EQ(FormatTime(1721361600), "2024-07-19 04:00:00");
}

TEST(OutputTest, JsonKeepsTheFieldsScriptsUse) {
  // The integration tests and deploy/quickstart.sh read these; never drop them.
  auto r = RolloutJson(SampleRollout());
  for (const char* key : {"id", "state", "halted_from", "revision", "rings"}) {
    EXPECT_TRUE(r.contains(key)) << key;
  }
  std::ostringstream agents;
  v1::ListAgentsResponse one;
  one.set_total(1000);
  RenderAgents(one, OutputFormat::kJson, agents);
  EXPECT_THAT(agents.str(), HasSubstr("\"total\":1000"));  // quickstart greps this spelling
  EXPECT_THAT(agents.str(), Not(HasSubstr(" ")));
}

TEST(OutputGoldenTest, TrustListAndUploads) {
  Both("trust_list", [](OutputFormat f, std::ostream& o) { RenderTrustList(SampleTrust(), f, o); });
  Both("trust_upload_root",
       [](OutputFormat f, std::ostream& o) { RenderTrustUploaded(SampleTrust().roots(1), f, o); });
  Both("trust_upload_floor",
       [](OutputFormat f, std::ostream& o) { RenderTrustUploaded(SampleTrust().floors(0), f, o); });
  std::ostringstream empty;
  RenderTrustList(v1::ListTrustResponse(), OutputFormat::kJson, empty);
  EXPECT_EQ(empty.str(), "{\"floors\":[],\"roots\":[]}\n");
}

}  // namespace
}  // namespace ringwarden::cli_testing
