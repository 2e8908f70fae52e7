#include "server/core/policy_json.h"

#include <gtest/gtest.h>

namespace ringwarden {
namespace {

TEST(PolicyJsonTest, RoundTripsEveryField) {
  RolloutPolicy p = DefaultRolloutPolicy();
  p.canary.min_bake = absl::Seconds(90);
  p.canary.auto_action = AutoAction::kRollback;
  p.early.manual_promotion = true;
  p.broad.alpha = 0.01;
  p.broad_waves = {0.2, 1.0};
  p.watch_after_completion = absl::Minutes(10);
  p.health_events.weights = {{"cpu_high", 0.5}, {"sensor_restart", 2}};
  p.health_events.failure_threshold = 2.5;
  auto parsed = PolicyFromJson(PolicyToJson(p).dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->canary.min_bake, absl::Seconds(90));
  EXPECT_EQ(parsed->canary.auto_action, AutoAction::kRollback);
  EXPECT_TRUE(parsed->early.manual_promotion);
  EXPECT_DOUBLE_EQ(parsed->broad.alpha, 0.01);
  EXPECT_EQ(parsed->broad_waves, (std::vector<double>{0.2, 1.0}));
  EXPECT_EQ(parsed->watch_after_completion, absl::Minutes(10));
  EXPECT_EQ(parsed->health_events.weights, p.health_events.weights);
  EXPECT_DOUBLE_EQ(parsed->health_events.failure_threshold, 2.5);
}

TEST(PolicyJsonTest, AStoredPolicyFromBeforeHealthEventsWeighsNone) {
  auto old = StoredPolicyFromJson(R"({"canary": {"min_healthy": 3}})");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_TRUE(old->health_events.weights.empty());
  EXPECT_EQ(old->canary.min_healthy, 3);
  // A body written now carries its weights and keeps them.
  auto current = StoredPolicyFromJson(PolicyToJson(DefaultRolloutPolicy()).dump());
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->health_events.weights, DefaultRolloutPolicy().health_events.weights);
}

TEST(PolicyJsonTest, HealthEventWeightsReplaceTheDefaultsWhole) {
  EXPECT_DOUBLE_EQ(DefaultRolloutPolicy().health_events.WeightOf("cpu_high"), 0.25);
  EXPECT_DOUBLE_EQ(DefaultRolloutPolicy().health_events.WeightOf("never_heard_of"), 0);
  auto parsed = PolicyFromJson(R"({"health_events": {"weights": {"load_check_slow": 1}}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_DOUBLE_EQ(parsed->health_events.WeightOf("load_check_slow"), 1);
  EXPECT_DOUBLE_EQ(parsed->health_events.WeightOf("cpu_high"), 0);
  EXPECT_DOUBLE_EQ(parsed->health_events.failure_threshold, 1);
}

TEST(PolicyJsonTest, KeysLeftOutKeepDefaults) {
  auto parsed = PolicyFromJson(R"({"canary": {"min_healthy": 3}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->canary.min_healthy, 3);
  EXPECT_EQ(parsed->early.min_healthy, DefaultRolloutPolicy().early.min_healthy);
  EXPECT_EQ(parsed->watch_after_completion, absl::Hours(1));
}

TEST(PolicyJsonTest, RefusesBadInputNamingTheField) {
  struct Case {
    const char* json;
    const char* hint;
  };
  for (const Case& c : std::vector<Case>{
           {"", "JSON object"},
           {"[1,2]", "JSON object"},
           {"{\"canery\": {}}", "canery"},
           {"{\"canary\": {\"min_heathy\": 3}}", "canary.min_heathy"},
           {"{\"canary\": {\"alpha\": 0.9}}", "alpha"},
           {"{\"canary\": {\"alpha\": \"low\"}}", "canary.alpha"},
           {"{\"canary\": {\"min_healthy\": 2.5}}", "canary.min_healthy"},
           {"{\"canary\": {\"min_bake_seconds\": -1}}", "canary.min_bake_seconds"},
           {"{\"canary\": {\"auto_action\": \"panic\"}}", "panic"},
           {"{\"canary\": {\"promotion\": \"sometimes\"}}", "promotion"},
           {"{\"broad_waves\": [0.5, 0.2]}", "broad_waves"},
           {"{\"broad_waves\": []}", "broad_waves"},
           {"{\"broad_waves\": \"all\"}", "broad_waves"},
           {"{\"watch_after_completion_seconds\": -1}", "watch_after_completion_seconds"},
           {"{\"watch_after_completion_seconds\": \"1h\"}", "watch_after_completion_seconds"},
           {"{\"watch_after_completion_seconds\": 691200}",
            "watch_after_completion_seconds must be in [0, 7 days], got 192h"},
           {"{\"health_events\": []}", "health_events"},
           {"{\"health_events\": {\"weight\": {}}}", "unknown policy field health_events.weight"},
           {"{\"health_events\": {\"weights\": [1]}}", "health_events.weights"},
           {"{\"health_events\": {\"weights\": {\"cpu_high\": \"lots\"}}}",
            "health_events.weights.cpu_high"},
           {"{\"health_events\": {\"weights\": {\"cpu_high\": -1}}}",
            "health_events.weights.cpu_high must be in [0, 1000], got -1"},
           {"{\"health_events\": {\"weights\": {\"CPU High\": 1}}}",
            "health_events.weights: health event kind \"CPU High\" is not valid"},
           {"{\"health_events\": {\"weights\": {\"\": 1}}}", "health event kind"},
           {"{\"health_events\": {\"failure_threshold\": 0}}",
            "health_events.failure_threshold must be in (0, 1000], got 0"},
           {"{\"health_events\": {\"failure_threshold\": 1e308}}",
            "health_events.failure_threshold"},
       }) {
    auto parsed = PolicyFromJson(c.json);
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_NE(parsed.status().message().find(c.hint), absl::string_view::npos)
        << c.json << " -> " << parsed.status().message();
  }
  EXPECT_FALSE(PolicyFromJson(std::string(70 * 1024, ' ')).ok());
  // 65 kinds: more than a policy may weigh.
  std::string many = R"({"health_events": {"weights": {)";
  for (int i = 0; i < 65; ++i) {
    many += (i == 0 ? "" : ",") + std::string("\"k") + std::to_string(i) + "\": 1";
  }
  many += "}}}";
  auto parsed = PolicyFromJson(many);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("at most 64"), absl::string_view::npos)
      << parsed.status().message();
}

TEST(PolicyJsonTest, TheTwoPersonRuleIsOffByDefaultAndRoundTrips) {
  auto defaults = PolicyFromJson("{}");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->two_person.enabled);
  EXPECT_EQ(defaults->two_person.approval_ttl, absl::Hours(24));
  RolloutPolicy p = DefaultRolloutPolicy();
  p.two_person.enabled = true;
  p.two_person.approval_ttl = absl::Hours(2);
  auto parsed = PolicyFromJson(PolicyToJson(p).dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->two_person.enabled);
  EXPECT_EQ(parsed->two_person.approval_ttl, absl::Hours(2));
  EXPECT_EQ(PolicyToJson(p)["approval_ttl_seconds"], 7200);
}

TEST(PolicyJsonTest, RefusesABadTwoPersonRule) {
  for (const char* json :
       {R"({"two_person_rule": "yes"})", R"({"two_person_rule": 1})",
        R"({"approval_ttl_seconds": 299})", R"({"approval_ttl_seconds": 604801})",
        R"({"approval_ttl_seconds": -1})", R"({"approval_ttl_seconds": 3600.5})",
        R"({"approval_ttl_seconds": 1e300})", R"({"approval_ttl_seconds": 18446744073709551615})",
        R"({"approval_ttl_seconds": "1h"})"}) {
    auto parsed = PolicyFromJson(json);
    ASSERT_FALSE(parsed.ok()) << json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << json;
    const bool names_field =
        parsed.status().message().find("two_person_rule") != absl::string_view::npos ||
        parsed.status().message().find("approval_ttl_seconds") != absl::string_view::npos;
    EXPECT_TRUE(names_field) << json << " -> " << parsed.status().message();
  }
}

}  // namespace
}  // namespace ringwarden
