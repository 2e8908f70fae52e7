#include "server/core/health_feed.h"

#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_map.h"

namespace ringwarden {

namespace {

// Forget releases a string's storage: the evidence rows do not repeat the key.
void Forget(std::string& s) { std::string().swap(s); }

}  // namespace

EvidenceByAgent GroupByAgent(RolloutHealthRows rows) {
  EvidenceByAgent out;
  out.reserve(rows.agents.size());
  for (AgentHealthRow& a : rows.agents) {
    std::string id = std::move(a.agent_id);
    Forget(a.agent_id);
    out[std::move(id)].agent = std::move(a);
  }
  // Files each row under its agent, without the id and channel it repeats.
  auto file = [&out](auto& from, auto member) {
    for (auto& row : from) {
      auto it = out.find(row.agent_id);
      if (it == out.end()) {
        continue;
      }
      auto& filed = ((it->second).*member).emplace_back(std::move(row));
      Forget(filed.agent_id);
      Forget(filed.channel);
    }
  };
  file(rows.applies, &AgentEvidence::applies);
  file(rows.fetches, &AgentEvidence::fetches);
  file(rows.crashes, &AgentEvidence::crashes);
  file(rows.health_events, &AgentEvidence::health_events);
  return out;
}

void FeedAgent(HealthLedger& ledger, absl::string_view agent_id, const AgentEvidence& evidence,
               const RolloutRecord& rollout, absl::Time window_start,
               const HealthEventPolicy& health_events) {
  const AgentHealthRow& a = evidence.agent;
  // Apply reports first; a download without any report is taken as an apply
  // (the host may have died before it could say so).
  bool reported = false;
  for (const ApplyRow& apply : evidence.applies) {
    if (apply.outcome == ApplyOutcome::kUnspecified || apply.at < window_start) {
      continue;
    }
    // Reverted implies it was applied first.
    if (apply.outcome == ApplyOutcome::kReverted) {
      ledger.RecordApply(agent_id, a.ring, ApplyOutcome::kApplied, apply.at);
    }
    ledger.RecordApply(agent_id, a.ring, apply.outcome, apply.at);
    reported = true;
  }
  if (!reported) {
    for (const FetchRow& f : evidence.fetches) {
      if (f.at >= window_start) {
        ledger.RecordApply(agent_id, a.ring, ApplyOutcome::kApplied, f.at);
      }
    }
  }

  if (a.last_seen.has_value()) {
    if (a.version == rollout.version && a.version != 0) {
      if (a.since.has_value() && *a.since >= window_start) {
        ledger.RecordHeartbeat(agent_id, a.ring, true, *a.since);
        if (*a.last_seen > *a.since) {
          ledger.RecordHeartbeat(agent_id, a.ring, true, *a.last_seen);
        }
      }
    } else {
      // On another version: control, seen from the later of the window start
      // and when it took that version, until its last heartbeat.
      absl::Time first = window_start;
      if (a.since.has_value() && *a.since > first) {
        first = *a.since;
      }
      if (*a.last_seen >= first) {
        ledger.RecordControlHeartbeat(agent_id, a.ring, first);
      }
      ledger.RecordControlHeartbeat(agent_id, a.ring, *a.last_seen);
    }
  }

  for (const CrashRow& c : evidence.crashes) {
    if (c.at >= window_start) {
      ledger.RecordCrash(agent_id, a.ring, c.at, c.version == rollout.version, c.kind);
    }
  }
  if (evidence.health_events.empty()) {
    return;
  }
  // In time order, so the event that crosses a host's threshold is the one that happened last.
  std::vector<const HealthEventRow*> events;
  events.reserve(evidence.health_events.size());
  for (const HealthEventRow& h : evidence.health_events) {
    events.push_back(&h);
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const HealthEventRow* x, const HealthEventRow* y) { return x->at < y->at; });
  for (const HealthEventRow* h : events) {
    if (h->at < window_start) {
      continue;
    }
    const bool on_new = h->version == rollout.version;
    // A host that took the version before this window (an earlier wave, or before a resume) is
    // judged on this window's evidence only, as its heartbeats are.
    if (on_new && a.version == rollout.version && a.since.has_value() && *a.since < window_start) {
      continue;
    }
    ledger.RecordHealthEvent(agent_id, a.ring, health_events.WeightOf(h->kind), h->at, on_new);
  }
}

HealthLedger BuildLedger(const EvidenceByAgent& evidence, const RolloutRecord& rollout,
                         absl::Time window_start, const HealthEventPolicy& health_events) {
  HealthLedger ledger(health_events.failure_threshold);
  for (const auto& [agent_id, e] : evidence) {
    FeedAgent(ledger, agent_id, e, rollout, window_start, health_events);
  }
  return ledger;
}

HealthLedger BuildLedger(const RolloutHealthRows& rows, const RolloutRecord& rollout,
                         absl::Time window_start, const HealthEventPolicy& health_events) {
  return BuildLedger(GroupByAgent(rows), rollout, window_start, health_events);
}

namespace {

// ApplyTimes calls `consider` with the time of every download and apply report of one agent.
template <typename Consider>
void ApplyTimes(const AgentEvidence& e, Consider consider) {
  for (const FetchRow& f : e.fetches) {
    consider(f.at);
  }
  for (const ApplyRow& a : e.applies) {
    consider(a.at);
  }
}

void KeepEarlier(std::optional<absl::Time>& first, std::optional<absl::Time> t) {
  if (t.has_value() && (!first.has_value() || *t < *first)) {
    first = t;
  }
}

void KeepLater(std::optional<absl::Time>& last, std::optional<absl::Time> t) {
  if (t.has_value() && (!last.has_value() || *t > *last)) {
    last = t;
  }
}

}  // namespace

std::optional<absl::Time> FirstApplyOf(const AgentEvidence& evidence, absl::Time window_start) {
  std::optional<absl::Time> first;
  ApplyTimes(evidence, [&](absl::Time t) {
    if (t >= window_start) {
      KeepEarlier(first, t);
    }
  });
  return first;
}

std::optional<absl::Time> LastApplyOf(const AgentEvidence& evidence) {
  std::optional<absl::Time> last;
  ApplyTimes(evidence, [&](absl::Time t) { KeepLater(last, t); });
  return last;
}

std::optional<absl::Time> FirstApply(const EvidenceByAgent& evidence, absl::Time window_start) {
  std::optional<absl::Time> first;
  for (const auto& [id, e] : evidence) {
    KeepEarlier(first, FirstApplyOf(e, window_start));
  }
  return first;
}

std::optional<absl::Time> LastApply(const EvidenceByAgent& evidence) {
  std::optional<absl::Time> last;
  for (const auto& [id, e] : evidence) {
    KeepLater(last, LastApplyOf(e));
  }
  return last;
}

int64_t TargetedIn(const EvidenceByAgent& evidence, Ring ring) {
  int64_t n = 0;
  for (const auto& [id, e] : evidence) {
    n += e.agent.ring == ring ? 1 : 0;
  }
  return n;
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

WaveFacts WaveFactsOf(absl::string_view agent_id, const AgentEvidence& evidence,
                      const HealthLedger& ledger, const RolloutRecord& rollout, int bucket,
                      absl::Duration silence_timeout) {
  const AgentHealthRow& a = evidence.agent;
  const HealthLedger::Standing standing = ledger.StandingOf(agent_id);
  WaveFacts f;
  f.bucket = bucket;
  // Hosts that took the version in an earlier wave (or before a resume) are outside the
  // judged window but still run it: they count as loaded and may be proven.
  f.loaded = standing.attempted || a.version == rollout.version;
  f.failed = standing.attempted && standing.failed;
  if (standing.attempted && !standing.failed) {
    // Saturated: an endless timeout never fails a host (HealthLedger::Verdict's rule).
    const __int128 after =
        static_cast<__int128>(standing.last_sign_us) + absl::ToInt64Microseconds(silence_timeout);
    if (after < INT64_MAX) {
      f.silent_after_us = after < INT64_MIN ? INT64_MIN : static_cast<int64_t>(after);
    }
  }
  if (a.version == rollout.version && a.since.has_value()) {
    f.alive_since = *a.since;
    if (a.boot_since.has_value() && *a.boot_since > *f.alive_since) {
      f.alive_since = *a.boot_since;
    }
  }
  f.last_seen = a.last_seen;
  return f;
}

ExposurePlan ExposureFor(const EvidenceByAgent& evidence, const HealthLedger& ledger,
                         const RolloutRecord& rollout, const RolloutPolicy& policy,
                         absl::string_view seed, absl::Time now) {
  const std::optional<Ring> ring = StageRing(rollout.position.state);
  if (!ring.has_value()) {
    return ExposurePlan{};
  }
  const RingGatePolicy& gate = policy.ForRing(*ring);
  std::vector<ExposureHost> hosts;
  for (const auto& [agent_id, e] : evidence) {
    if (e.agent.ring != *ring) {
      continue;
    }
    hosts.push_back(ExposureHostAt(
        WaveFactsOf(agent_id, e, ledger, rollout, WaveBucket(seed, agent_id), gate.silence_timeout),
        now));
  }
  const double cap = rollout.position.state == RolloutState::kBroad ? rollout.broad_fraction : 1.0;
  return PlanExposure(policy.slow_start, gate.baseline_failure_rate, std::move(hosts),
                      rollout.admitted_fraction, cap, now);
}

std::vector<RingProgressRecord> ProgressByRing(const EvidenceByAgent& evidence,
                                               const RolloutRecord& rollout,
                                               const RolloutPolicy& policy, absl::Time now) {
  const absl::Time window_start = rollout.created_at;
  HealthLedger ledger = BuildLedger(evidence, rollout, window_start, policy.health_events);
  std::vector<RingProgressRecord> out;
  for (Ring ring : kAllRings) {
    RingProgressRecord p;
    p.ring = ring;
    for (const auto& [id, e] : evidence) {
      if (e.agent.ring == ring) {
        ++p.targeted;
        p.applied += e.agent.version == rollout.version ? 1 : 0;
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
