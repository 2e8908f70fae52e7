#include "server/core/health_tracker.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "common/status_macros.h"

namespace ringwarden {
namespace {

using Kind = std::vector<std::string> HealthAgents::*;
constexpr Kind kKinds[] = {&HealthAgents::agents, &HealthAgents::applies, &HealthAgents::fetches,
                           &HealthAgents::crashes, &HealthAgents::health_events};

// SameSelectors reports whether two sets of holding pins leave out the same agents.
bool SameSelectors(const std::vector<LabelPin>& a, const std::vector<LabelPin>& b) {
  auto selectors = [](const std::vector<LabelPin>& pins) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const LabelPin& p : pins) {
      out.emplace_back(p.label_key, p.label_value);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  return selectors(a) == selectors(b);
}

}  // namespace

HealthTracker::HealthTracker(HealthSource& source, const Clock& clock, HealthTrackerOptions options)
    : source_(source), clock_(clock), options_(options) {}

absl::Status HealthTracker::Sync() {
  const absl::Time now = clock_.Now();
  if (horizon_.has_value() &&
      (now - last_sync_ > options_.stale_after || now - started_at_ >= options_.reload_every)) {
    Clear();  // the changes in between may be trimmed already, or held back
  }
  if (!horizon_.has_value()) {
    // Starting over: everything loaded after this horizon is read whole.
    ASSIGN_OR_RETURN(HealthChanges start, source_.ReadHealthChanges(std::nullopt));
    NoteHorizon(start, now);
    horizon_ = start.horizon;
    last_sync_ = now;
    started_at_ = now;
    return absl::OkStatus();
  }
  // With nothing tracked there is nothing to bring up to date: only the horizon moves, and a
  // rollout tracked later is loaded whole. A fleet at rest costs the leader no feed rows.
  ASSIGN_OR_RETURN(HealthChanges changes,
                   source_.ReadHealthChanges(rollouts_.empty() ? std::nullopt : horizon_));
  ++stats_.syncs;
  NoteHorizon(changes, now);
  stats_.changes_read += static_cast<int64_t>(changes.seen.size());
  for (Kind kind : kKinds) {
    stats_.changes_read += static_cast<int64_t>((changes.changed.*kind).size());
  }
  if (!changes.changed.empty() || !changes.seen.empty()) {
    for (auto& [id, t] : rollouts_) {
      RETURN_IF_ERROR(Refresh(t, changes.changed, changes.seen));
    }
  }
  horizon_ = changes.horizon;
  last_sync_ = now;
  if (now - last_trim_ >= options_.trim_every) {
    // Trimming is housekeeping: a failure is retried next time, judging goes on.
    if (source_.TrimHealthChanges(options_.keep_changes).ok()) {
      last_trim_ = now;
    }
  }
  return absl::OkStatus();
}

void HealthTracker::NoteHorizon(const HealthChanges& changes, absl::Time now) {
  if (!changes.held_open) {
    held_horizon_.reset();
  } else if (held_horizon_ != changes.horizon) {
    held_horizon_ = changes.horizon;
    held_since_ = now;
  }
}

absl::Duration HealthTracker::held_back() const {
  return held_horizon_.has_value() ? last_sync_ - held_since_ : absl::ZeroDuration();
}

namespace {

// Refile replaces, in `next`, the rows of `member` of every agent in `reread` with `fresh`.
template <typename Row>
void Refile(const std::vector<std::string>& reread, std::vector<Row>& fresh,
            std::vector<Row> AgentEvidence::*member,
            absl::flat_hash_map<std::string, AgentEvidence>& next) {
  for (const std::string& id : reread) {
    (next[id].*member).clear();
  }
  for (Row& row : fresh) {
    auto it = next.find(row.agent_id);
    if (it == next.end()) {
      continue;
    }
    Row& filed = (it->second.*member).emplace_back(std::move(row));
    std::string().swap(filed.agent_id);  // the key says it, as in GroupByAgent
    std::string().swap(filed.channel);
  }
}

template <typename Row>
void Append(std::vector<Row>& to, std::vector<Row>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

void HealthTracker::Recompute(Tracked& t, const std::string& agent_id,
                              const AgentEvidence& evidence) {
  TrackedHealth& h = t.health;
  h.stage.Forget(agent_id);
  FeedAgent(h.stage, agent_id, evidence, t.rollout, h.window_start, t.health_events);
  if (h.whole.has_value()) {
    h.whole->Forget(agent_id);
    FeedAgent(*h.whole, agent_id, evidence, t.rollout, t.rollout.created_at, t.health_events);
  }
  RefileWave(h, t.rollout, agent_id, evidence);
}

void HealthTracker::RefileWave(TrackedHealth& h, const RolloutRecord& rollout,
                               const std::string& agent_id, const AgentEvidence& evidence) {
  if (!h.wave.has_value()) {
    return;
  }
  if (evidence.agent.ring != h.wave_key.ring) {
    h.wave->Erase(agent_id);
    return;
  }
  const std::optional<int> bucket = h.wave->Bucket(agent_id);
  h.wave->Upsert(agent_id,
                 WaveFactsOf(agent_id, evidence, h.stage, rollout,
                             bucket.has_value() ? *bucket : WaveBucket(h.wave_key.seed, agent_id),
                             h.wave_key.silence_timeout));
}

void HealthTracker::Leave(TrackedHealth& h, const AgentEvidence& before) {
  --h.targeted[static_cast<int>(before.agent.ring)];
  // A bound this agent held may leave with its rows: it is found again by reading every agent's
  // rows when next asked.
  h.apply_bounds.erase(
      std::remove_if(h.apply_bounds.begin(), h.apply_bounds.end(),
                     [&](const ApplyBound& b) {
                       return b.value.has_value() &&
                              (b.latest ? LastApplyOf(before) : FirstApplyOf(before, b.window)) ==
                                  b.value;
                     }),
      h.apply_bounds.end());
}

void HealthTracker::Enter(TrackedHealth& h, const AgentEvidence& after) {
  ++h.targeted[static_cast<int>(after.agent.ring)];
  for (ApplyBound& b : h.apply_bounds) {
    const std::optional<absl::Time> t =
        b.latest ? LastApplyOf(after) : FirstApplyOf(after, b.window);
    if (t.has_value() && (!b.value.has_value() || (b.latest ? *t > *b.value : *t < *b.value))) {
      b.value = t;
    }
  }
}

absl::Status HealthTracker::Refresh(Tracked& t, const HealthAgents& changed,
                                    const std::vector<SeenChange>& seen) {
  TrackedHealth& h = t.health;
  RolloutHealthRows fresh;
  // ReadKind reads the rows of `kind` of `ids` into `fresh`, in bounded chunks.
  auto read_kind = [&](Kind kind, const std::vector<std::string>& ids) -> absl::Status {
    for (size_t begin = 0; begin < ids.size(); begin += options_.max_agents_per_read) {
      const size_t end = std::min(ids.size(), begin + options_.max_agents_per_read);
      HealthQuery query = t.query;
      query.only.emplace();
      ((*query.only).*kind)
          .assign(ids.begin() + static_cast<ptrdiff_t>(begin),
                  ids.begin() + static_cast<ptrdiff_t>(end));
      ASSIGN_OR_RETURN(RolloutHealthRows rows, source_.LoadRolloutHealth(query));
      Append(fresh.agents, rows.agents);
      Append(fresh.applies, rows.applies);
      Append(fresh.fetches, rows.fetches);
      Append(fresh.crashes, rows.crashes);
      Append(fresh.health_events, rows.health_events);
    }
    stats_.agents_reread += static_cast<int64_t>(ids.size());
    return absl::OkStatus();
  };

  // First the agent rows: they say which agents the rollout counts now.
  HealthAgents read;
  read.agents = changed.agents;
  RETURN_IF_ERROR(read_kind(&HealthAgents::agents, read.agents));
  const absl::flat_hash_set<std::string> agent_reread(changed.agents.begin(), changed.agents.end());
  absl::flat_hash_set<std::string> counted;  // re-read and still counted
  std::vector<std::string> newcomers;        // counted now, not before: none of their rows is here
  for (const AgentHealthRow& a : fresh.agents) {
    counted.insert(a.agent_id);
    if (!h.evidence.contains(a.agent_id)) {
      newcomers.push_back(a.agent_id);
    }
  }
  // Then, of each other kind, the named agents the rollout counts, and the newcomers whole.
  for (Kind kind : kKinds) {
    if (kind == &HealthAgents::agents) {
      continue;
    }
    absl::flat_hash_set<std::string> ids(newcomers.begin(), newcomers.end());
    for (const std::string& id : changed.*kind) {
      if (agent_reread.contains(id) ? counted.contains(id) : h.evidence.contains(id)) {
        ids.insert(id);
      }
    }
    (read.*kind).assign(ids.begin(), ids.end());
    RETURN_IF_ERROR(read_kind(kind, read.*kind));
  }

  // Each touched agent's complete rows: the kinds re-read from `fresh`, the others from memory.
  absl::flat_hash_map<std::string, AgentEvidence> next;
  absl::flat_hash_set<std::string> present;  // agents the rollout still counts
  for (Kind kind : kKinds) {
    for (const std::string& id : read.*kind) {
      if (next.contains(id)) {
        continue;
      }
      auto it = h.evidence.find(id);
      if (it == h.evidence.end()) {
        next[id];
        continue;
      }
      Leave(h, it->second);
      next[id] = std::move(it->second);
      if (!agent_reread.contains(id)) {
        present.insert(id);
      }
    }
  }
  for (AgentHealthRow& a : fresh.agents) {
    std::string id = std::move(a.agent_id);
    std::string().swap(a.agent_id);
    present.insert(id);
    next[std::move(id)].agent = std::move(a);
  }
  Refile(read.applies, fresh.applies, &AgentEvidence::applies, next);
  Refile(read.fetches, fresh.fetches, &AgentEvidence::fetches, next);
  Refile(read.crashes, fresh.crashes, &AgentEvidence::crashes, next);
  Refile(read.health_events, fresh.health_events, &AgentEvidence::health_events, next);

  // Recompute each from scratch; one that is gone (deleted, or now held back by a pin) has no
  // agent row any more and leaves the evidence.
  for (auto& [id, e] : next) {
    h.evidence.erase(id);
    if (!present.contains(id)) {
      h.stage.Forget(id);
      if (h.whole.has_value()) {
        h.whole->Forget(id);
      }
      if (h.wave.has_value()) {
        h.wave->Erase(id);
      }
      continue;
    }
    const AgentEvidence& stored = h.evidence.emplace(id, std::move(e)).first->second;
    Enter(h, stored);
    Recompute(t, id, stored);
  }

  // Heartbeats carry their values: applied in memory, no re-read. An agent re-read above has
  // newer values already; one not in the evidence is held back or unknown.
  for (const SeenChange& c : seen) {
    if (agent_reread.contains(c.agent_id)) {
      continue;
    }
    auto it = h.evidence.find(c.agent_id);
    if (it == h.evidence.end()) {
      continue;
    }
    it->second.agent.last_seen = c.last_seen;
    it->second.agent.boot_since = c.boot_since;
    Recompute(t, c.agent_id, it->second);
    ++stats_.heartbeats_applied;
  }
  return absl::OkStatus();
}

absl::StatusOr<TrackedHealth*> HealthTracker::Track(const RolloutRecord& rollout,
                                                    const std::vector<LabelPin>& pins,
                                                    const HealthEventPolicy& health_events) {
  if (!horizon_.has_value()) {
    return absl::FailedPreconditionError("the health tracker has not read the change feed yet");
  }
  HealthQuery query = HealthQueryFor(rollout, rollout.created_at, pins);
  auto it = rollouts_.find(rollout.id);
  if (it == rollouts_.end() || !SameSelectors(it->second.query.holding_pins, query.holding_pins)) {
    // Everything committed before the horizon is in this read; later changes
    // come through the feed and are recomputed over it.
    ASSIGN_OR_RETURN(RolloutHealthRows rows, source_.LoadRolloutHealth(query));
    Tracked t;
    t.query = std::move(query);
    t.rollout = rollout;
    t.health_events = health_events;
    t.health.evidence = GroupByAgent(std::move(rows));
    for (const auto& [id, e] : t.health.evidence) {
      ++t.health.targeted[static_cast<int>(e.agent.ring)];
    }
    t.health.window_start = rollout.stage_started_at;
    t.health.stage = BuildLedger(t.health.evidence, rollout, t.health.window_start, health_events);
    ++stats_.full_loads;
    it = rollouts_.insert_or_assign(rollout.id, std::move(t)).first;
  }
  Tracked& t = it->second;
  t.rollout = rollout;  // its state and stage move; channel, versions and creation do not
  if (t.health.window_start != rollout.stage_started_at) {
    t.health.window_start = rollout.stage_started_at;
    t.health.stage = BuildLedger(t.health.evidence, rollout, t.health.window_start, health_events);
    t.health.wave.reset();  // filed from the old stage's ledger
    ++stats_.stage_rebuilds;
  }
  return &t.health;
}

HealthLedger& HealthTracker::Whole(TrackedHealth& tracked, const RolloutRecord& rollout,
                                   const HealthEventPolicy& health_events) {
  if (!tracked.whole.has_value()) {
    tracked.whole = BuildLedger(tracked.evidence, rollout, rollout.created_at, health_events);
  }
  return *tracked.whole;
}

ExposurePlan HealthTracker::Exposure(TrackedHealth& tracked, const RolloutRecord& rollout,
                                     const RolloutPolicy& policy, absl::string_view seed,
                                     absl::Time now) {
  const std::optional<Ring> ring = StageRing(rollout.position.state);
  if (!ring.has_value()) {
    return ExposurePlan{};
  }
  const RingGatePolicy& gate = policy.ForRing(*ring);
  WaveKey key{*ring, std::string(seed), gate.silence_timeout, policy.slow_start.probation};
  if (!tracked.wave.has_value() || !(tracked.wave_key == key)) {
    tracked.wave.emplace(key.probation);
    tracked.wave_key = std::move(key);
    for (const auto& [id, e] : tracked.evidence) {
      if (e.agent.ring == *ring) {
        tracked.wave->Upsert(id, WaveFactsOf(id, e, tracked.stage, rollout, WaveBucket(seed, id),
                                             gate.silence_timeout));
      }
    }
    ++stats_.wave_builds;
  }
  const double cap = rollout.position.state == RolloutState::kBroad ? rollout.broad_fraction : 1.0;
  return tracked.wave->Plan(policy.slow_start, gate.baseline_failure_rate,
                            rollout.admitted_fraction, cap, now);
}

std::optional<absl::Time> HealthTracker::Bound(TrackedHealth& tracked, absl::Time window,
                                               bool latest) {
  for (const ApplyBound& b : tracked.apply_bounds) {
    if (b.latest == latest && (latest || b.window == window)) {
      return b.value;
    }
  }
  ApplyBound b{window, latest,
               latest ? ringwarden::LastApply(tracked.evidence)
                      : ringwarden::FirstApply(tracked.evidence, window)};
  ++stats_.apply_scans;
  tracked.apply_bounds.push_back(b);
  return b.value;
}

std::optional<absl::Time> HealthTracker::FirstApply(TrackedHealth& tracked,
                                                    absl::Time window_start) {
  return Bound(tracked, window_start, /*latest=*/false);
}

std::optional<absl::Time> HealthTracker::LastApply(TrackedHealth& tracked) {
  return Bound(tracked, absl::InfinitePast(), /*latest=*/true);
}

void HealthTracker::Retain(const std::set<std::string>& rollout_ids) {
  absl::erase_if(rollouts_, [&](const auto& entry) { return rollout_ids.count(entry.first) == 0; });
}

void HealthTracker::Clear() {
  rollouts_.clear();
  horizon_.reset();
}

}  // namespace ringwarden
