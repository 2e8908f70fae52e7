#include "server/domain/health_ledger.h"

#include <algorithm>

namespace ringwarden {
namespace {

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

// Earliest and Latest treat HealthLedger's "no event" marker (INT64_MIN) as absent.
int64_t Earliest(int64_t current, int64_t at, int64_t never) {
  return current == never ? at : std::min(current, at);
}
int64_t Latest(int64_t current, int64_t at) { return std::max(current, at); }

absl::Duration Elapsed(int64_t from, int64_t to) {
  return to > from ? absl::Microseconds(to - from) : absl::ZeroDuration();
}

}  // namespace

HealthLedger::AgentRecord& HealthLedger::Touch(absl::string_view agent_id, Ring ring) {
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) {
    it = agents_.emplace(std::string(agent_id), AgentRecord{}).first;
  }
  // The latest report wins: ring membership only moves when the ring policy changes.
  it->second.ring = ring;
  return it->second;
}

void HealthLedger::MarkAttempted(AgentRecord& record, int64_t at) {
  record.attempted = true;
  record.applied_at = Earliest(record.applied_at, at, kNever);
}

void HealthLedger::SeenOnPrevious(AgentRecord& record, int64_t at) {
  record.control_first_seen_at = Earliest(record.control_first_seen_at, at, kNever);
  record.control_last_seen_at = Latest(record.control_last_seen_at, at);
}

void HealthLedger::RecordApply(absl::string_view agent_id, Ring ring, ApplyOutcome outcome,
                               absl::Time at) {
  AgentRecord& record = Touch(agent_id, ring);
  const int64_t t = ToMicros(at);
  switch (outcome) {
    case ApplyOutcome::kApplied:
      MarkAttempted(record, t);
      break;
    case ApplyOutcome::kApplyFailed:
    case ApplyOutcome::kLoadCheckFailed:
      MarkAttempted(record, t);
      record.apply_failed = true;
      break;
    case ApplyOutcome::kSignatureRejected:
    case ApplyOutcome::kDigestMismatch:
      record.rejected = true;
      break;
    case ApplyOutcome::kUnspecified:
      break;
    case ApplyOutcome::kReverted:
      MarkAttempted(record, t);
      record.reverted_at = Earliest(record.reverted_at, t, kNever);
      break;
  }
}

void HealthLedger::RecordHeartbeat(absl::string_view agent_id, Ring ring, bool has_new_version,
                                   absl::Time at) {
  AgentRecord& record = Touch(agent_id, ring);
  const int64_t t = ToMicros(at);
  if (has_new_version) {
    MarkAttempted(record, t);
    record.last_heartbeat_at = Latest(record.last_heartbeat_at, t);
    return;
  }
  if (!record.attempted || t < record.applied_at) {
    SeenOnPrevious(record, t);
    return;
  }
  // Back on the previous version counts as a revert only after the agent was seen running the new
  // one: a heartbeat composed just before the apply and delivered after it must not halt a rollout.
  if (!record.apply_failed && record.last_heartbeat_at != kNever && t > record.last_heartbeat_at) {
    record.reverted_at = Earliest(record.reverted_at, t, kNever);
  }
}

void HealthLedger::RecordCrash(absl::string_view agent_id, Ring ring, absl::Time at,
                               bool on_new_version, CrashKind kind) {
  AgentRecord& record = Touch(agent_id, ring);
  const int64_t t = ToMicros(at);
  if (on_new_version) {
    MarkAttempted(record, t);
    if (record.crashed_at == kNever || t < record.crashed_at) {
      record.crash_kind = kind;
    }
    record.crashed_at = Earliest(record.crashed_at, t, kNever);
    ++record.crash_count;
    return;
  }
  record.control_first_crash_at = Earliest(record.control_first_crash_at, t, kNever);
  record.control_last_crash_at = Latest(record.control_last_crash_at, t);
  SeenOnPrevious(record, t);
}

void HealthLedger::AddSoftWeight(double weight, int64_t at, double& score,
                                 int64_t& crossed_at) const {
  score += weight;
  if (crossed_at == kNever && weight > 0 && score >= soft_failure_threshold_) {
    crossed_at = at;
  }
}

void HealthLedger::RecordHealthEvent(absl::string_view agent_id, Ring ring, double weight,
                                     absl::Time at, bool on_new_version) {
  AgentRecord& record = Touch(agent_id, ring);
  const int64_t t = ToMicros(at);
  const double w = weight > 0 ? weight : 0;
  if (on_new_version) {
    // A health event proves the host ran the version, and that it was alive at `at`.
    MarkAttempted(record, t);
    record.last_heartbeat_at = Latest(record.last_heartbeat_at, t);
    ++record.health_event_count;
    AddSoftWeight(w, t, record.soft_score, record.unhealthy_at);
    return;
  }
  SeenOnPrevious(record, t);
  AddSoftWeight(w, t, record.control_soft_score, record.control_unhealthy_at);
}

HealthLedger::AgentVerdict HealthLedger::Verdict(absl::string_view agent_id, absl::Time now,
                                                 absl::Duration silence_timeout) const {
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || !it->second.attempted) {
    return AgentVerdict::kUntried;
  }
  const AgentRecord& rec = it->second;
  if (rec.apply_failed || rec.crashed_at != kNever || rec.reverted_at != kNever ||
      rec.unhealthy_at != kNever) {
    return AgentVerdict::kFailed;
  }
  const int64_t last_sign = std::max(rec.applied_at, rec.last_heartbeat_at);
  if (ToMicros(now) - last_sign > absl::ToInt64Microseconds(silence_timeout)) {
    return AgentVerdict::kFailed;
  }
  return rec.last_heartbeat_at >= rec.applied_at ? AgentVerdict::kHealthy : AgentVerdict::kPending;
}

RingHealth HealthLedger::Summarize(Ring ring, absl::Time now, absl::Duration silence_timeout,
                                   absl::Time window_start,
                                   absl::Span<const Ring> control_rings) const {
  bool is_control_ring[kRingCount] = {false, false, false};
  if (control_rings.empty()) {
    is_control_ring[static_cast<int>(ring)] = true;
  }
  for (Ring r : control_rings) {
    is_control_ring[static_cast<int>(r)] = true;
  }
  const int64_t now_us = ToMicros(now);
  const int64_t window_us = ToMicros(window_start);
  const int64_t timeout_us = absl::ToInt64Microseconds(silence_timeout);

  RingHealth health;
  for (const auto& [id, rec] : agents_) {
    if (rec.rejected && !rec.attempted && rec.ring == ring) {
      ++health.rejected;
    }
    if (rec.attempted && rec.ring == ring) {
      ++health.attempted;
      health.crash_reports += rec.crash_count;
      health.health_events += rec.health_event_count;
      if (rec.apply_failed) {
        ++health.apply_failed;  // never ran, so no exposure
      } else {
        ++health.applied;
        // Exposure ends at the first sign of failure, whichever category counts the host.
        const int64_t failed_at =
            std::min({rec.crashed_at == kNever ? INT64_MAX : rec.crashed_at,
                      rec.reverted_at == kNever ? INT64_MAX : rec.reverted_at,
                      rec.unhealthy_at == kNever ? INT64_MAX : rec.unhealthy_at});
        int64_t end = std::min(now_us, failed_at);
        if (rec.crashed_at != kNever) {
          ++health.crashed;
          ++(rec.crash_kind == CrashKind::kUncleanShutdown ? health.unclean_shutdowns
                                                           : health.process_crashed);
        } else if (rec.reverted_at != kNever) {
          ++health.reverted;
        } else if (rec.unhealthy_at != kNever) {
          ++health.unhealthy;
        } else {
          const int64_t last_sign = std::max(rec.applied_at, rec.last_heartbeat_at);
          if (now_us - last_sign > timeout_us) {
            ++health.silent;
            end = last_sign;
          } else if (rec.last_heartbeat_at >= rec.applied_at) {
            ++health.healthy;
          } else {
            ++health.pending;
          }
        }
        health.exposure += Elapsed(rec.applied_at, std::min(end, now_us));
      }
    }

    if (!is_control_ring[static_cast<int>(rec.ring)]) {
      continue;
    }
    // On the previous version from first sight until it applied (if it did), inside the window.
    const bool seen_in_window =
        rec.control_last_seen_at >= window_us && rec.control_last_seen_at != kNever;
    if (!seen_in_window) {
      continue;
    }
    const int64_t control_end = rec.attempted ? std::min(rec.applied_at, now_us) : now_us;
    const int64_t start = std::max(rec.control_first_seen_at, window_us);
    if (control_end <= window_us) {
      continue;
    }
    ++health.control_agents;
    const bool crashed = rec.control_last_crash_at >= window_us &&
                         rec.control_last_crash_at != kNever &&
                         rec.control_last_crash_at <= control_end;
    const bool unhealthy = rec.control_unhealthy_at >= window_us &&
                           rec.control_unhealthy_at != kNever &&
                           rec.control_unhealthy_at <= control_end;
    int64_t end = control_end;
    if (crashed) {
      ++health.control_failed;
      end = rec.control_first_crash_at >= window_us ? rec.control_first_crash_at
                                                    : rec.control_last_crash_at;
    } else if (unhealthy) {
      ++health.control_failed;
      end = rec.control_unhealthy_at;
    } else if (!rec.attempted && now_us - rec.control_last_seen_at > timeout_us) {
      ++health.control_failed;  // silent on the previous version: the same yardstick as treated
      end = rec.control_last_seen_at;
    }
    health.control_exposure += Elapsed(start, end);
  }
  health.failed =
      health.crashed + health.reverted + health.unhealthy + health.silent + health.apply_failed;
  return health;
}

}  // namespace ringwarden
