#include "server/core/policy_json.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace ringwarden {
namespace {

using nlohmann::json;

constexpr size_t kMaxPolicyBytes = 64 * 1024;

json GateToJson(const RingGatePolicy& g) {
  return {{"min_bake_seconds", absl::ToDoubleSeconds(g.min_bake)},
          {"min_healthy", g.min_healthy},
          {"silence_timeout_seconds", absl::ToDoubleSeconds(g.silence_timeout)},
          {"catastrophic_min_failed", g.catastrophic_min_failed},
          {"catastrophic_failure_rate", g.catastrophic_failure_rate},
          {"alpha", g.alpha},
          {"beta", g.beta},
          {"regression_ratio", g.regression_ratio},
          {"baseline_failure_rate", g.baseline_failure_rate},
          {"auto_action", std::string(AutoActionName(g.auto_action))},
          {"promotion", g.manual_promotion ? "manual" : "auto"}};
}

absl::Status WrongType(const std::string& field, const char* want) {
  return absl::InvalidArgumentError(absl::StrCat("policy field ", field, " must be ", want));
}

absl::StatusOr<double> Number(const json& v, const std::string& field) {
  if (!v.is_number()) {
    return WrongType(field, "a number");
  }
  return v.get<double>();
}

absl::StatusOr<int64_t> Integer(const json& v, const std::string& field) {
  if (!v.is_number_integer()) {
    return WrongType(field, "a whole number");
  }
  return v.get<int64_t>();
}

absl::StatusOr<std::string> String(const json& v, const std::string& field) {
  if (!v.is_string()) {
    return WrongType(field, "a string");
  }
  return v.get<std::string>();
}

absl::StatusOr<absl::Duration> Seconds(const json& v, const std::string& field) {
  ASSIGN_OR_RETURN(double s, Number(v, field));
  if (s < 0 || s > 30 * 24 * 3600) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy field ", field, " must be between 0 and 30 days in seconds"));
  }
  return absl::Milliseconds(static_cast<int64_t>(s * 1000));
}

absl::Status GateFromJson(const json& doc, const std::string& ring, RingGatePolicy& g) {
  if (!doc.is_object()) {
    return WrongType(ring, "an object");
  }
  for (const auto& [key, v] : doc.items()) {
    const std::string field = absl::StrCat(ring, ".", key);
    if (key == "min_bake_seconds") {
      ASSIGN_OR_RETURN(g.min_bake, Seconds(v, field));
    } else if (key == "min_healthy") {
      ASSIGN_OR_RETURN(g.min_healthy, Integer(v, field));
    } else if (key == "silence_timeout_seconds") {
      ASSIGN_OR_RETURN(g.silence_timeout, Seconds(v, field));
    } else if (key == "catastrophic_min_failed") {
      ASSIGN_OR_RETURN(g.catastrophic_min_failed, Integer(v, field));
    } else if (key == "catastrophic_failure_rate") {
      ASSIGN_OR_RETURN(g.catastrophic_failure_rate, Number(v, field));
    } else if (key == "alpha") {
      ASSIGN_OR_RETURN(g.alpha, Number(v, field));
    } else if (key == "beta") {
      ASSIGN_OR_RETURN(g.beta, Number(v, field));
    } else if (key == "regression_ratio") {
      ASSIGN_OR_RETURN(g.regression_ratio, Number(v, field));
    } else if (key == "baseline_failure_rate") {
      ASSIGN_OR_RETURN(g.baseline_failure_rate, Number(v, field));
    } else if (key == "auto_action") {
      ASSIGN_OR_RETURN(std::string s, String(v, field));
      ASSIGN_OR_RETURN(g.auto_action, ParseAutoAction(s));
    } else if (key == "promotion") {
      ASSIGN_OR_RETURN(std::string s, String(v, field));
      if (s != "auto" && s != "manual") {
        return absl::InvalidArgumentError(
            absl::StrCat("policy field ", field, " must be \"auto\" or \"manual\""));
      }
      g.manual_promotion = s == "manual";
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown policy field ", field));
    }
  }
  return absl::OkStatus();
}

json SlowStartToJson(const SlowStartPolicy& s) {
  return {{"enabled", s.enabled},
          {"initial_exposure", s.initial_exposure},
          {"growth_factor", s.growth_factor},
          {"probation_seconds", absl::ToDoubleSeconds(s.probation)},
          {"max_unproven", s.max_unproven}};
}

absl::Status SlowStartFromJson(const json& doc, SlowStartPolicy& s) {
  if (!doc.is_object()) {
    return WrongType("slow_start", "an object");
  }
  for (const auto& [key, v] : doc.items()) {
    const std::string field = absl::StrCat("slow_start.", key);
    if (key == "enabled") {
      if (!v.is_boolean()) {
        return WrongType(field, "true or false");
      }
      s.enabled = v.get<bool>();
    } else if (key == "initial_exposure") {
      ASSIGN_OR_RETURN(s.initial_exposure, Integer(v, field));
    } else if (key == "growth_factor") {
      ASSIGN_OR_RETURN(s.growth_factor, Number(v, field));
    } else if (key == "probation_seconds") {
      ASSIGN_OR_RETURN(s.probation, Seconds(v, field));
    } else if (key == "max_unproven") {
      ASSIGN_OR_RETURN(s.max_unproven, Integer(v, field));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown policy field ", field));
    }
  }
  return absl::OkStatus();
}

json HealthEventsToJson(const HealthEventPolicy& h) {
  return {{"weights", h.weights}, {"failure_threshold", h.failure_threshold}};
}

// A "weights" object replaces the default weights whole, so a policy says every kind it counts.
absl::Status HealthEventsFromJson(const json& doc, HealthEventPolicy& h) {
  if (!doc.is_object()) {
    return WrongType("health_events", "an object");
  }
  for (const auto& [key, v] : doc.items()) {
    const std::string field = absl::StrCat("health_events.", key);
    if (key == "failure_threshold") {
      ASSIGN_OR_RETURN(h.failure_threshold, Number(v, field));
    } else if (key == "weights") {
      if (!v.is_object()) {
        return WrongType(field, "an object of kind: weight");
      }
      if (v.size() > kMaxHealthEventWeights) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, " names ", v.size(), " kinds; at most ", kMaxHealthEventWeights));
      }
      h.weights.clear();
      for (const auto& [kind, weight] : v.items()) {
        ASSIGN_OR_RETURN(h.weights[kind], Number(weight, absl::StrCat(field, ".", kind)));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown policy field ", field));
    }
  }
  return absl::OkStatus();
}

json SequentialJson(const SequentialTestEvidence& s) {
  return {{"applies", s.applies},
          {"h0", s.h0},
          {"h1", s.h1},
          {"llr", s.llr},
          {"accept_llr", s.accept_llr},
          {"outcome", std::string(SprtOutcomeName(s.outcome))}};
}

}  // namespace

json PolicyToJson(const RolloutPolicy& policy) {
  return {{"name", policy.name},
          {"version", policy.version},
          {"canary", GateToJson(policy.canary)},
          {"early", GateToJson(policy.early)},
          {"broad", GateToJson(policy.broad)},
          {"broad_waves", policy.broad_waves},
          {"slow_start", SlowStartToJson(policy.slow_start)},
          {"health_events", HealthEventsToJson(policy.health_events)},
          {"watch_after_completion_seconds", absl::ToDoubleSeconds(policy.watch_after_completion)},
          {"two_person_rule", policy.two_person.enabled},
          {"approval_ttl_seconds", absl::ToInt64Seconds(policy.two_person.approval_ttl)}};
}

namespace {

// ParsePolicyOver parses `text` over `policy`: keys left out keep its values.
absl::StatusOr<RolloutPolicy> ParsePolicyOver(const std::string& text, RolloutPolicy policy);

}  // namespace

absl::StatusOr<RolloutPolicy> PolicyFromJson(const std::string& text) {
  return ParsePolicyOver(text, DefaultRolloutPolicy());
}

absl::StatusOr<RolloutPolicy> StoredPolicyFromJson(const std::string& text) {
  // Stored bodies name every field but health_events when written before it existed.
  RolloutPolicy base = DefaultRolloutPolicy();
  base.health_events.weights.clear();
  return ParsePolicyOver(text, std::move(base));
}

namespace {

absl::StatusOr<RolloutPolicy> ParsePolicyOver(const std::string& text, RolloutPolicy policy) {
  if (text.size() > kMaxPolicyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy is larger than ", kMaxPolicyBytes, " bytes"));
  }
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("policy is not a JSON object");
  }
  for (const auto& [key, v] : doc.items()) {
    if (key == "canary" || key == "early" || key == "broad") {
      ASSIGN_OR_RETURN(Ring ring, ParseRing(key));
      RETURN_IF_ERROR(GateFromJson(v, key, policy.ForRing(ring)));
    } else if (key == "broad_waves") {
      if (!v.is_array() || v.empty() || v.size() > 20) {
        return WrongType("broad_waves", "an array of 1-20 numbers");
      }
      policy.broad_waves.clear();
      for (const json& w : v) {
        ASSIGN_OR_RETURN(double d, Number(w, "broad_waves"));
        policy.broad_waves.push_back(d);
      }
    } else if (key == "slow_start") {
      RETURN_IF_ERROR(SlowStartFromJson(v, policy.slow_start));
    } else if (key == "health_events") {
      RETURN_IF_ERROR(HealthEventsFromJson(v, policy.health_events));
    } else if (key == "watch_after_completion_seconds") {
      ASSIGN_OR_RETURN(policy.watch_after_completion, Seconds(v, key));
    } else if (key == "two_person_rule") {
      if (!v.is_boolean()) {
        return WrongType("two_person_rule", "true or false");
      }
      policy.two_person.enabled = v.get<bool>();
    } else if (key == "approval_ttl_seconds") {
      ASSIGN_OR_RETURN(int64_t ttl, Integer(v, "approval_ttl_seconds"));
      // Bounded before the conversion so that no value can overflow it.
      if (ttl < absl::ToInt64Seconds(kMinApprovalTtl) ||
          ttl > absl::ToInt64Seconds(kMaxApprovalTtl)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "policy field approval_ttl_seconds must be between ",
            absl::ToInt64Seconds(kMinApprovalTtl), " and ", absl::ToInt64Seconds(kMaxApprovalTtl)));
      }
      policy.two_person.approval_ttl = absl::Seconds(ttl);
    } else if (key == "name" || key == "version") {
      // Set by the server; accepted so `policy show -o json` output can be edited and set back.
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown policy field ", key));
    }
  }
  RETURN_IF_ERROR(policy.Validate());
  return policy;
}

}  // namespace

json DecisionToJson(const Decision& d) {
  const Evidence& e = d.evidence;
  const RingHealth& h = e.health;
  return {
      {"kind", std::string(DecisionKindName(d.kind))},
      {"reason", std::string(DecisionReasonName(d.reason))},
      {"gate_passed", d.gate_passed},
      {"summary", d.summary},
      {"treated",
       {{"attempted", h.attempted},
        {"applied", h.applied},
        {"healthy", h.healthy},
        {"pending", h.pending},
        {"failed", h.failed},
        {"crashed", h.crashed},
        {"process_crashed", h.process_crashed},
        {"unclean_shutdowns", h.unclean_shutdowns},
        {"unhealthy", h.unhealthy},
        {"silent", h.silent},
        {"reverted", h.reverted},
        {"apply_failed", h.apply_failed},
        {"rejected", h.rejected},
        {"crash_reports", h.crash_reports},
        {"health_events", h.health_events},
        {"exposure_hours", absl::ToDoubleHours(h.exposure)},
        {"failure_rate", e.treated_failure_rate}}},
      {"control",
       {{"agents", h.control_agents},
        {"failed", h.control_failed},
        {"exposure_hours", absl::ToDoubleHours(h.control_exposure)},
        {"failure_rate", e.control_failure_rate},
        {"informative", e.control_informative}}},
      {"catastrophic",
       {{"crossed", e.catastrophic},
        {"min_failed", e.catastrophic_min_failed},
        {"failure_rate", e.catastrophic_failure_rate},
        {"excess_failure_rate", e.excess_failure_rate}}},
      {"test",
       {{"name", e.test},
        {"alpha", e.alpha},
        {"beta", e.beta},
        {"regression_ratio", e.regression_ratio},
        {"halt_bound", e.halt_bound},
        {"accept_bound", e.accept_bound},
        {"vs_baseline", SequentialJson(e.vs_baseline)},
        {"vs_control", SequentialJson(e.vs_control)}}},
      {"bake",
       {{"elapsed_seconds", absl::ToDoubleSeconds(e.bake_elapsed)},
        {"min_seconds", absl::ToDoubleSeconds(e.min_bake)},
        {"remaining_seconds", absl::ToDoubleSeconds(e.bake_remaining)}}},
      {"min_healthy", e.min_healthy},
      {"waiting_for", e.waiting_for},
  };
}

json ExposureToJson(const ExposurePlan& p) {
  json out = {{"enabled", p.enabled},
              {"ring_hosts", p.ring_hosts},
              {"cap", p.cap},
              {"admitted", p.admitted},
              {"admitted_fraction", p.admitted_fraction},
              {"loaded", p.loaded},
              {"proven", p.proven},
              {"unproven", p.unproven},
              {"failed", p.failed},
              {"allowed_failures", p.allowed_failures},
              {"frozen", p.frozen},
              {"complete", p.complete},
              {"next_step", p.next_step},
              {"text", ExposureText(p)}};
  if (p.next_step_at.has_value()) {
    out["next_step_unix_ms"] = absl::ToUnixMillis(*p.next_step_at);
  }
  return out;
}

}  // namespace ringwarden
