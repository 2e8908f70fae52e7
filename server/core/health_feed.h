// health_feed.h: turns the stored telemetry of a rollout into a HealthLedger,
// and the ledger into the per-ring progress operators read.
//
// The controller rebuilds the ledger from PostgreSQL on every evaluation, so a
// restart or a new leader judges on exactly the committed evidence. Only
// evidence from the current stage window counts for the treated group, so a
// resumed rollout is not halted again on the evidence it was resumed over.
// Pure function; thread-safe.
#pragma once

#include <vector>

#include "absl/time/time.h"
#include "server/domain/assignment.h"
#include "server/domain/decision_policy.h"
#include "server/domain/exposure.h"
#include "server/domain/health_ledger.h"
#include "server/storage/records.h"
#include "server/storage/store.h"

namespace ringwarden {

// BuildLedger feeds `rows` for `rollout` into a fresh ledger. Treated evidence
// (fetches, apply results, crashes, heartbeats on the version) counts from
// `window_start`; agents on any other version form the control group.
// Health events weigh as `health_events` says.
HealthLedger BuildLedger(const RolloutHealthRows& rows, const RolloutRecord& rollout,
                         absl::Time window_start, const HealthEventPolicy& health_events);

// HealthQueryFor selects `rollout`'s telemetry since `since`, leaving out the
// agents that `pins` hold back on its channel (the domain's pin rule).
HealthQuery HealthQueryFor(const RolloutRecord& rollout, absl::Time since,
                           const std::vector<LabelPin>& pins);

// ExposureFor computes the exposure budget of `rollout`'s stage ring after one look (exposure.h):
// the ring's hosts in wave order under `seed` (RingPolicy::seed), which of them took the version
// or failed in the stage window by `ledger`'s rules (built from `rows` over that window), and
// since when each has run it in one boot. A rollout outside a stage has an empty plan.
ExposurePlan ExposureFor(const RolloutHealthRows& rows, const HealthLedger& ledger,
                         const RolloutRecord& rollout, const RolloutPolicy& policy,
                         absl::string_view seed, absl::Time now);

// ProgressByRing summarizes `rollout` per ring, in ring order, from the same
// ledger and silence rule the controller judges with, over the whole rollout
// (from its creation): targeted counts the ring's agents not held back,
// applied those running the version now, healthy and failed come from
// HealthLedger::Summarize (failed = crashed + reverted + silent + apply
// failed), so the table never contradicts the explanation.
std::vector<RingProgressRecord> ProgressByRing(const RolloutHealthRows& rows,
                                               const RolloutRecord& rollout,
                                               const RolloutPolicy& policy, absl::Time now);

}  // namespace ringwarden
