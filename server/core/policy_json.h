// policy_json.h: JSON forms of rollout policies and decisions.
//
// Policies are written by release engineers (`ringctl policy set --file`), so
// parsing is strict: unknown keys, wrong types and out-of-range values are
// INVALID_ARGUMENT naming the field; keys left out keep their defaults.
// Decisions become audit evidence and `ringctl rollout explain` output.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "server/domain/decision.h"
#include "server/domain/decision_policy.h"
#include "server/domain/exposure.h"

namespace ringwarden {

// PolicyToJson is the stored and displayed form.
nlohmann::json PolicyToJson(const RolloutPolicy& policy);

// PolicyFromJson parses `text` (at most 64 KiB) over DefaultRolloutPolicy().
absl::StatusOr<RolloutPolicy> PolicyFromJson(const std::string& text);

// StoredPolicyFromJson parses a stored policy body (always written by PolicyToJson). A body
// stored before health events were weighed has no "health_events" key: it weighs none, so a
// recorded policy version keeps meaning what it meant when the rollout started.
absl::StatusOr<RolloutPolicy> StoredPolicyFromJson(const std::string& text);

// DecisionToJson is the evidence of one decision: counts, rates, test, bounds.
nlohmann::json DecisionToJson(const Decision& decision);

// ExposureToJson is the exposure budget of a stage at one look (exposure.h).
nlohmann::json ExposureToJson(const ExposurePlan& plan);

}  // namespace ringwarden
