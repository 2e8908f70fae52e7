// health_feed.h: turns the stored telemetry of a rollout into a HealthLedger.
//
// The controller rebuilds the ledger from PostgreSQL on every evaluation, so a
// restart or a new leader judges on exactly the committed evidence. Only
// evidence from the current stage window counts for the treated group, so a
// resumed rollout is not halted again on the evidence it was resumed over.
// Pure function; thread-safe.
#pragma once

#include "absl/time/time.h"
#include "server/domain/health_ledger.h"
#include "server/storage/records.h"

namespace ringwarden {

// BuildLedger feeds `rows` for `rollout` into a fresh ledger. Treated evidence
// (fetches, apply results, crashes, heartbeats on the version) counts from
// `window_start`; agents on any other version form the control group.
HealthLedger BuildLedger(const RolloutHealthRows& rows, const RolloutRecord& rollout,
                         absl::Time window_start);

}  // namespace ringwarden
