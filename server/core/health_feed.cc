#include "server/core/health_feed.h"

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace ringwarden {

HealthLedger BuildLedger(const RolloutHealthRows& rows, const RolloutRecord& rollout,
                         absl::Time window_start, const HealthEventPolicy& health_events) {
  HealthLedger ledger(health_events.failure_threshold);
  absl::flat_hash_map<std::string, const AgentHealthRow*> agents;
  agents.reserve(rows.agents.size());
  for (const AgentHealthRow& a : rows.agents) {
    agents[a.agent_id] = &a;
  }
  auto ring_of = [&](const std::string& id) -> std::optional<Ring> {
    auto it = agents.find(id);
    return it == agents.end() ? std::nullopt : std::optional<Ring>(it->second->ring);
  };

  // Apply reports first; a download without any report is taken as an apply
  // (the host may have died before it could say so).
  absl::flat_hash_set<std::string> reported;
  for (const ApplyRow& a : rows.applies) {
    auto ring = ring_of(a.agent_id);
    if (!ring.has_value() || a.outcome == ApplyOutcome::kUnspecified || a.at < window_start) {
      continue;
    }
    // Reverted implies it was applied first.
    if (a.outcome == ApplyOutcome::kReverted) {
      ledger.RecordApply(a.agent_id, *ring, ApplyOutcome::kApplied, a.at);
    }
    ledger.RecordApply(a.agent_id, *ring, a.outcome, a.at);
    reported.insert(a.agent_id);
  }
  for (const FetchRow& f : rows.fetches) {
    auto ring = ring_of(f.agent_id);
    if (!ring.has_value() || f.at < window_start || reported.contains(f.agent_id)) {
      continue;
    }
    ledger.RecordApply(f.agent_id, *ring, ApplyOutcome::kApplied, f.at);
  }

  for (const AgentHealthRow& a : rows.agents) {
    if (!a.last_seen.has_value()) {
      continue;
    }
    if (a.version == rollout.version && a.version != 0) {
      if (a.since.has_value() && *a.since >= window_start) {
        ledger.RecordHeartbeat(a.agent_id, a.ring, true, *a.since);
        if (*a.last_seen > *a.since) {
          ledger.RecordHeartbeat(a.agent_id, a.ring, true, *a.last_seen);
        }
      }
      continue;
    }
    // On another version: control, seen from the later of the window start
    // and when it took that version, until its last heartbeat.
    absl::Time first = window_start;
    if (a.since.has_value() && *a.since > first) {
      first = *a.since;
    }
    if (*a.last_seen >= first) {
      ledger.RecordControlHeartbeat(a.agent_id, a.ring, first);
      ledger.RecordControlHeartbeat(a.agent_id, a.ring, *a.last_seen);
    } else {
      ledger.RecordControlHeartbeat(a.agent_id, a.ring, *a.last_seen);
    }
  }

  for (const CrashRow& c : rows.crashes) {
    auto ring = ring_of(c.agent_id);
    if (!ring.has_value() || c.at < window_start) {
      continue;
    }
    ledger.RecordCrash(c.agent_id, *ring, c.at, c.version == rollout.version, c.kind);
  }
  // In time order, so the event that crosses a host's threshold is the one that happened last.
  std::vector<const HealthEventRow*> events;
  events.reserve(rows.health_events.size());
  for (const HealthEventRow& h : rows.health_events) {
    events.push_back(&h);
  }
  std::sort(events.begin(), events.end(),
            [](const HealthEventRow* a, const HealthEventRow* b) { return a->at < b->at; });
  for (const HealthEventRow* h : events) {
    auto it = agents.find(h->agent_id);
    if (it == agents.end() || h->at < window_start) {
      continue;
    }
    const AgentHealthRow& agent = *it->second;
    const bool on_new = h->version == rollout.version;
    // A host that took the version before this window (an earlier wave, or before a resume) is
    // judged on this window's evidence only, as its heartbeats are.
    if (on_new && agent.version == rollout.version && agent.since.has_value() &&
        *agent.since < window_start) {
      continue;
    }
    ledger.RecordHealthEvent(h->agent_id, agent.ring, health_events.WeightOf(h->kind), h->at,
                             on_new);
  }
  return ledger;
}

HealthQuery HealthQueryFor(const RolloutRecord& rollout, absl::Time since,
                           const std::vector<LabelPin>& pins) {
  HealthQuery query;
  query.channel = rollout.channel;
  query.version = rollout.version;
  query.previous_version = rollout.previous_version;
  query.since = since;
  query.holding_pins = HoldingPins(pins, rollout.channel);
  return query;
}

ExposurePlan ExposureFor(const RolloutHealthRows& rows, const HealthLedger& ledger,
                         const RolloutRecord& rollout, const RolloutPolicy& policy,
                         absl::string_view seed, absl::Time now) {
  const std::optional<Ring> ring = StageRing(rollout.position.state);
  if (!ring.has_value()) {
    return ExposurePlan{};
  }
  const RingGatePolicy& gate = policy.ForRing(*ring);
  std::vector<ExposureHost> hosts;
  for (const AgentHealthRow& a : rows.agents) {
    if (a.ring != *ring) {
      continue;
    }
    ExposureHost h;
    h.position = WavePosition(seed, a.agent_id);
    const HealthLedger::AgentVerdict verdict =
        ledger.Verdict(a.agent_id, now, gate.silence_timeout);
    // Hosts that took the version in an earlier wave (or before a resume) are outside the
    // judged window but still run it: they count as loaded and may be proven.
    h.loaded = verdict != HealthLedger::AgentVerdict::kUntried || a.version == rollout.version;
    h.failed = verdict == HealthLedger::AgentVerdict::kFailed;
    if (a.version == rollout.version && a.since.has_value()) {
      h.alive_since = *a.since;
      if (a.boot_since.has_value() && *a.boot_since > *h.alive_since) {
        h.alive_since = *a.boot_since;
      }
    }
    h.last_seen = a.last_seen;
    hosts.push_back(h);
  }
  const double cap = rollout.position.state == RolloutState::kBroad ? rollout.broad_fraction : 1.0;
  return PlanExposure(policy.slow_start, gate.baseline_failure_rate, std::move(hosts),
                      rollout.admitted_fraction, cap, now);
}

std::vector<RingProgressRecord> ProgressByRing(const RolloutHealthRows& rows,
                                               const RolloutRecord& rollout,
                                               const RolloutPolicy& policy, absl::Time now) {
  const absl::Time window_start = rollout.created_at;
  const HealthLedger ledger = BuildLedger(rows, rollout, window_start, policy.health_events);
  std::vector<RingProgressRecord> out;
  for (Ring ring : kAllRings) {
    RingProgressRecord p;
    p.ring = ring;
    for (const AgentHealthRow& a : rows.agents) {
      if (a.ring == ring) {
        ++p.targeted;
        p.applied += a.version == rollout.version ? 1 : 0;
      }
    }
    const RingHealth health =
        ledger.Summarize(ring, now, policy.ForRing(ring).silence_timeout, window_start);
    p.healthy = health.healthy;
    p.failed = health.failed;
    out.push_back(p);
  }
  return out;
}

}  // namespace ringwarden
