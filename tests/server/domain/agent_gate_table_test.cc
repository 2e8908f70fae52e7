// AgentGateTable: changes layered over a shared base, folded into a new base past
// kMaxLayeredChanges, always answering what applying every change in order to a plain map
// would.
#include "server/domain/agent_gate_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

AgentGate Labelled(const std::string& group) { return AgentGate{{{"group", group}}, {}, {}}; }
AgentGate Revoked(int64_t at) { return AgentGate{{}, absl::FromUnixSeconds(at), {}}; }
AgentGate Reset(int64_t at) { return AgentGate{{}, {}, absl::FromUnixSeconds(at)}; }

TEST(AgentGateTableTest, AnEmptyTableHasNoGates) {
  const AgentGateTable table;
  EXPECT_EQ(table.Find("a"), nullptr);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.layered(), 0u);
}

TEST(AgentGateTableTest, AWholeTableDropsEmptyGates) {
  const AgentGateTable table({{"a", Labelled("dogfood")}, {"b", AgentGate{}}, {"c", Revoked(5)}});
  EXPECT_EQ(table.size(), 2u);
  ASSERT_NE(table.Find("a"), nullptr);
  EXPECT_EQ(table.Find("a")->labels.at("group"), "dogfood");
  EXPECT_EQ(table.Find("b"), nullptr);
  EXPECT_EQ(*table.Find("c"), Revoked(5));
}

TEST(AgentGateTableTest, ChangesAddReplaceAndClearGatesAndLeaveTheEarlierTableAsItWas) {
  const AgentGateTable before({{"a", Labelled("dogfood")}, {"b", Revoked(5)}});
  const AgentGateTable after =
      before.With({{"a", AgentGate{}}, {"b", Reset(9)}, {"c", Labelled("payments")}});
  EXPECT_EQ(after.Find("a"), nullptr);  // cleared
  EXPECT_EQ(*after.Find("b"), Reset(9));
  EXPECT_EQ(*after.Find("c"), Labelled("payments"));
  EXPECT_EQ(after.size(), 2u);
  EXPECT_EQ(after.layered(), 3u);
  // A snapshot still answering polls keeps its own gates.
  EXPECT_EQ(*before.Find("a"), Labelled("dogfood"));
  EXPECT_EQ(*before.Find("b"), Revoked(5));
  EXPECT_EQ(before.Find("c"), nullptr);
  EXPECT_EQ(before.size(), 2u);
  // Clearing an agent that has no gate changes nothing but the layer.
  const AgentGateTable again = after.With({{"d", AgentGate{}}, {"a", AgentGate{}}});
  EXPECT_EQ(again.size(), 2u);
  EXPECT_EQ(again.Find("d"), nullptr);
}

TEST(AgentGateTableTest, NoChangesCopyNothing) {
  const AgentGateTable table = AgentGateTable({{"a", Labelled("x")}}).With({{"b", Revoked(1)}});
  const AgentGateTable same = table.With({});
  EXPECT_EQ(same.Find("b"), table.Find("b"));  // the same layer, not a copy
  EXPECT_EQ(same.Find("a"), table.Find("a"));
}

TEST(AgentGateTableTest, AChangeToTheGateAnAgentAlreadyHasIsLeftOut) {
  const AgentGateTable table({{"a", Labelled("x")}});
  // An agent enrolled without labels, and one read again as it is.
  const AgentGateTable same = table.With({{"a", Labelled("x")}, {"b", AgentGate{}}});
  EXPECT_EQ(same.layered(), 0u);
  EXPECT_EQ(same.Find("a"), table.Find("a"));
  EXPECT_EQ(same.size(), 1u);

  // While an old transaction holds the cursor back, every refresh reads the same changes
  // again: past the bound they fold once, and then change nothing.
  AgentGateTable::Gates changes;
  for (size_t i = 0; i <= AgentGateTable::kMaxLayeredChanges; ++i) {
    changes[absl::StrCat("m-", i)] = Revoked(static_cast<int64_t>(i));
  }
  const AgentGateTable folded = table.With(changes);
  EXPECT_EQ(folded.layered(), 0u);
  const AgentGate* gate = folded.Find("m-7");
  const AgentGateTable again = folded.With(changes);
  EXPECT_EQ(again.Find("m-7"), gate);  // the same base, not a copy
  EXPECT_EQ(again.layered(), 0u);
  EXPECT_EQ(again.size(), AgentGateTable::kMaxLayeredChanges + 2);
}

TEST(AgentGateTableTest, TheLayerNeverHoldsMoreThanItsBoundAndFoldsIntoANewBase) {
  constexpr size_t kMax = AgentGateTable::kMaxLayeredChanges;
  AgentGateTable table({{"base", Labelled("old")}});
  const AgentGate* base_gate = table.Find("base");
  // Changes arrive 1,000 at a time, as refreshes read them.
  int next = 0;
  while (next < static_cast<int>(kMax) + 500) {
    AgentGateTable::Gates changes;
    for (int i = 0; i < 1000; ++i, ++next) {
      changes[absl::StrCat("agent-", next)] = Labelled(absl::StrCat(next));
    }
    table = table.With(std::move(changes));
    EXPECT_LE(table.layered(), kMax);
  }
  // Folded once past the bound: everything is in the new base, the layer is empty again, and
  // the untouched gate was copied into it.
  EXPECT_LT(table.layered(), kMax);
  EXPECT_NE(table.Find("base"), base_gate);
  EXPECT_EQ(*table.Find("base"), Labelled("old"));
  EXPECT_EQ(table.size(), static_cast<size_t>(next) + 1);
  for (int i = 0; i < next; ++i) {
    const AgentGate* gate = table.Find(absl::StrCat("agent-", i));
    ASSERT_NE(gate, nullptr) << i;
    EXPECT_EQ(gate->labels.at("group"), absl::StrCat(i));
  }
}

TEST(AgentGateTableTest, AClearFoldedIntoTheBaseRemovesTheGate) {
  constexpr int kMax = static_cast<int>(AgentGateTable::kMaxLayeredChanges);
  AgentGateTable table({{"cleared", Labelled("x")}, {"kept", Labelled("y")}});
  table = table.With({{"cleared", AgentGate{}}});
  AgentGateTable::Gates filler;
  for (int i = 0; i < kMax; ++i) {
    filler[absl::StrCat("f-", i)] = Revoked(i);
  }
  table = table.With(std::move(filler));  // past the bound: folds
  EXPECT_EQ(table.layered(), 0u);
  EXPECT_EQ(table.Find("cleared"), nullptr);
  EXPECT_EQ(*table.Find("kept"), Labelled("y"));
  EXPECT_EQ(table.size(), static_cast<size_t>(kMax) + 1);
}

// Random refreshes of random changes over a few hundred agents, checked after each against a
// plain map the same changes were applied to, through several folds.
TEST(AgentGateTableTest, AlwaysAnswersAsEveryChangeAppliedInOrderWould) {
  std::mt19937 rng(20261205);
  std::map<std::string, AgentGate> model;
  AgentGateTable table;
  std::vector<AgentGateTable> kept;  // earlier tables must not move
  std::vector<std::map<std::string, AgentGate>> kept_models;
  int folds = 0;
  for (int refresh = 0; refresh < 400; ++refresh) {
    AgentGateTable::Gates changes;
    const int n = std::uniform_int_distribution<int>(0, refresh % 50 == 0 ? 5000 : 40)(rng);
    for (int i = 0; i < n; ++i) {
      const std::string id = absl::StrCat("a-", std::uniform_int_distribution<int>(0, 6000)(rng));
      switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
        case 0:
          changes[id] = AgentGate{};
          break;
        case 1:
          changes[id] = Labelled(absl::StrCat(refresh));
          break;
        case 2:
          changes[id] = Revoked(refresh);
          break;
        default:
          changes[id] = Reset(refresh);
      }
    }
    for (const auto& [id, gate] : changes) {
      if (gate.empty()) {
        model.erase(id);
      } else {
        model[id] = gate;
      }
    }
    const size_t layered_before = table.layered();
    table = table.With(std::move(changes));
    folds += table.layered() < layered_before ? 1 : 0;
    ASSERT_LE(table.layered(), AgentGateTable::kMaxLayeredChanges);
    ASSERT_EQ(table.size(), model.size()) << "refresh " << refresh;
    for (int i = 0; i <= 6000; ++i) {
      const std::string id = absl::StrCat("a-", i);
      auto it = model.find(id);
      const AgentGate* gate = table.Find(id);
      ASSERT_EQ(gate != nullptr, it != model.end()) << id << " at refresh " << refresh;
      if (gate != nullptr) {
        ASSERT_EQ(*gate, it->second) << id;
      }
    }
    if (refresh % 97 == 0) {
      kept.push_back(table);
      kept_models.push_back(model);
    }
  }
  EXPECT_GE(folds, 2);
  for (size_t k = 0; k < kept.size(); ++k) {
    EXPECT_EQ(kept[k].size(), kept_models[k].size());
    for (const auto& [id, gate] : kept_models[k]) {
      ASSERT_NE(kept[k].Find(id), nullptr);
      EXPECT_EQ(*kept[k].Find(id), gate);
    }
  }
}

}  // namespace
}  // namespace ringwarden
