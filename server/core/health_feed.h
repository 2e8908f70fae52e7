// health_feed.h: turns the stored telemetry of a rollout into a HealthLedger,
// and the ledger into the per-ring progress operators read.
//
// The leader keeps the evidence and ledgers of its active rollouts in memory
// (health_tracker.h) and recomputes only the agents whose rows changed; a new
// leader loads them from PostgreSQL, so it judges on the committed evidence. Only
// evidence from the current stage window counts for the treated group, so a
// resumed rollout is not halted again on the evidence it was resumed over.
// Pure function; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/assignment.h"
#include "server/domain/decision_policy.h"
#include "server/domain/exposure.h"
#include "server/domain/health_ledger.h"
#include "server/domain/wave_exposure.h"
#include "server/storage/records.h"
#include "server/storage/store.h"

namespace ringwarden {

// AgentEvidence is one agent's rows of a RolloutHealthRows. The agent id is
// the key it is filed under; the rows below leave out the id and the channel,
// which the key and the rollout already say, so a large ring stays small.
struct AgentEvidence {
  AgentHealthRow agent;
  std::vector<ApplyRow> applies;
  std::vector<FetchRow> fetches;
  std::vector<CrashRow> crashes;
  std::vector<HealthEventRow> health_events;
};

// EvidenceByAgent files a rollout's telemetry by agent. Every ledger record is
// a function of one agent's rows alone, which lets the leader recompute just
// the agents that changed (health_tracker.h).
using EvidenceByAgent = absl::flat_hash_map<std::string, AgentEvidence>;

// GroupByAgent files `rows` by agent; rows of agents not in `rows.agents`
// (held back, or unknown) are dropped, as the ledger ignores them.
EvidenceByAgent GroupByAgent(RolloutHealthRows rows);

// FeedAgent records one agent's evidence for `rollout` into `ledger`. Treated
// evidence (fetches, apply results, crashes, heartbeats on the version) counts
// from `window_start`; an agent on any other version is control. Health events
// weigh as `health_events` says. The agent must have no record in `ledger` yet
// (HealthLedger::Forget).
void FeedAgent(HealthLedger& ledger, absl::string_view agent_id, const AgentEvidence& evidence,
               const RolloutRecord& rollout, absl::Time window_start,
               const HealthEventPolicy& health_events);

// BuildLedger feeds every agent of `evidence` (or of `rows`) into a fresh ledger.
HealthLedger BuildLedger(const EvidenceByAgent& evidence, const RolloutRecord& rollout,
                         absl::Time window_start, const HealthEventPolicy& health_events);
HealthLedger BuildLedger(const RolloutHealthRows& rows, const RolloutRecord& rollout,
                         absl::Time window_start, const HealthEventPolicy& health_events);

// FirstApply returns the earliest download or apply report of the rollout's
// version at or after `window_start`.
std::optional<absl::Time> FirstApply(const EvidenceByAgent& evidence, absl::Time window_start);
// LastApply returns the latest download or apply report of the version: the last host to take it.
std::optional<absl::Time> LastApply(const EvidenceByAgent& evidence);
// FirstApplyOf and LastApplyOf are FirstApply and LastApply over one agent's rows.
std::optional<absl::Time> FirstApplyOf(const AgentEvidence& evidence, absl::Time window_start);
std::optional<absl::Time> LastApplyOf(const AgentEvidence& evidence);
// TargetedIn counts the agents of `ring` in `evidence`.
int64_t TargetedIn(const EvidenceByAgent& evidence, Ring ring);

// HealthQueryFor selects `rollout`'s telemetry since `since`, leaving out the
// agents that `pins` hold back on its channel (the domain's pin rule).
HealthQuery HealthQueryFor(const RolloutRecord& rollout, absl::Time since,
                           const std::vector<LabelPin>& pins);

// WaveFactsOf is what agent `agent_id` (with `evidence`) brings to the exposure budget of
// `rollout`'s stage, apart from the clock: `ledger` is the stage's, `bucket` its WaveBucket.
WaveFacts WaveFactsOf(absl::string_view agent_id, const AgentEvidence& evidence,
                      const HealthLedger& ledger, const RolloutRecord& rollout, int bucket,
                      absl::Duration silence_timeout);

// ExposureFor computes the exposure budget of `rollout`'s stage ring after one look (exposure.h):
// the ring's hosts in wave order under `seed` (RingPolicy::seed), which of them took the version
// or failed in the stage window by `ledger`'s rules (built from `evidence` over that window), and
// since when each has run it in one boot. A rollout outside a stage has an empty plan.
ExposurePlan ExposureFor(const EvidenceByAgent& evidence, const HealthLedger& ledger,
                         const RolloutRecord& rollout, const RolloutPolicy& policy,
                         absl::string_view seed, absl::Time now);

// ProgressByRing summarizes `rollout` per ring, in ring order, from the same
// ledger and silence rule the controller judges with, over the whole rollout
// (from its creation): targeted counts the ring's agents not held back,
// applied those running the version now, healthy and failed come from
// HealthLedger::Summarize (failed = crashed + reverted + silent + apply
// failed), so the table never contradicts the explanation.
std::vector<RingProgressRecord> ProgressByRing(const EvidenceByAgent& evidence,
                                               const RolloutRecord& rollout,
                                               const RolloutPolicy& policy, absl::Time now);

}  // namespace ringwarden
