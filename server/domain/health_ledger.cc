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

__int128 ElapsedMicros(int64_t from, int64_t to) {
  return to > from ? static_cast<__int128>(to) - from : 0;
}

// Threshold is the last sign of life below which an agent is silent at `now_us`: now - timeout,
// kept in range.
int64_t Threshold(int64_t now_us, int64_t timeout_us) {
  const __int128 t = static_cast<__int128>(now_us) - timeout_us;
  return t < INT64_MIN + 1 ? INT64_MIN + 1 : static_cast<int64_t>(t);
}

// MicrosDuration is `us` microseconds as a Duration. Summed agent-time can pass INT64_MAX
// microseconds (a million agents over 107 days); a Duration holds 2^63 seconds, as the scan's
// sum of Durations does.
absl::Duration MicrosDuration(__int128 us) {
  const __int128 seconds = us / 1'000'000;
  if (seconds > INT64_MAX) {
    return absl::InfiniteDuration();
  }
  if (seconds < INT64_MIN) {
    return -absl::InfiniteDuration();
  }
  return absl::Seconds(static_cast<int64_t>(seconds)) +
         absl::Microseconds(static_cast<int64_t>(us % 1'000'000));
}

}  // namespace

void HealthLedger::LiveSum::Add(const Live& live, int sign) {
  count += sign;
  healthy += live.healthy ? sign : 0;
  start_sum += static_cast<__int128>(sign) * live.start;
  key_sum += static_cast<__int128>(sign) * live.key;
}

HealthLedger::AgentRecord& HealthLedger::Touch(absl::string_view agent_id, Ring ring, int64_t at) {
  latest_event_us_ = std::max(latest_event_us_, at);
  auto it = slots_.find(agent_id);
  uint32_t slot;
  if (it != slots_.end()) {
    slot = it->second;
    Retire(records_[slot]);
  } else {
    if (free_slots_.empty()) {
      slot = static_cast<uint32_t>(records_.size());
      records_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    slots_.emplace(std::string(agent_id), slot);
    records_[slot].in_use = true;
  }
  AgentRecord& record = records_[slot];
  // The latest report wins: ring membership only moves when the ring policy changes.
  record.ring = ring;
  return record;
}

void HealthLedger::Forget(absl::string_view agent_id) {
  auto it = slots_.find(agent_id);
  if (it == slots_.end()) {
    return;
  }
  const uint32_t slot = it->second;
  Retire(records_[slot]);
  const uint32_t stamp = records_[slot].stamp;  // entries still in an index stay stale
  records_[slot] = AgentRecord{};
  records_[slot].stamp = stamp;
  free_slots_.push_back(slot);
  slots_.erase(it);
}

bool HealthLedger::FailedOnNew(const AgentRecord& record) {
  return record.apply_failed || record.crashed_at != kNever || record.reverted_at != kNever ||
         record.unhealthy_at != kNever;
}

HealthLedger::Live HealthLedger::LiveOf(const AgentRecord& record) const {
  Live live;
  if (record.attempted) {
    if (FailedOnNew(record)) {
      return live;
    }
    live.kind = LiveKind::kTreated;
    live.start = record.applied_at;
    live.key = std::max(record.applied_at, record.last_heartbeat_at);
    live.healthy = record.last_heartbeat_at >= record.applied_at;
    return live;
  }
  const int64_t window = tally_window_us_;
  const bool seen_in_window =
      record.control_last_seen_at != kNever && record.control_last_seen_at >= window;
  const bool crashed =
      record.control_last_crash_at != kNever && record.control_last_crash_at >= window;
  const bool unhealthy =
      record.control_unhealthy_at != kNever && record.control_unhealthy_at >= window;
  if (!seen_in_window || crashed || unhealthy) {
    return live;
  }
  live.kind = LiveKind::kControl;
  live.start = std::max(record.control_first_seen_at, window);
  live.key = record.control_last_seen_at;
  return live;
}

// AddFixed adds (sign +1) or removes (-1) what `record` contributes regardless of the clock, on
// the premise Summarize checks: no recorded time is later than `now`, and `now` is after the
// window's start.
void HealthLedger::AddFixed(const AgentRecord& rec, int sign) {
  Tally& t = tallies_[static_cast<int>(rec.ring)];
  RingHealth& f = t.fixed;
  if (rec.rejected && !rec.attempted) {
    f.rejected += sign;
  }
  if (rec.attempted) {
    f.attempted += sign;
    f.crash_reports += sign * rec.crash_count;
    f.health_events += sign * rec.health_event_count;
    if (rec.apply_failed) {
      f.apply_failed += sign;
    } else {
      f.applied += sign;
      const int64_t failed_at =
          std::min({rec.crashed_at == kNever ? INT64_MAX : rec.crashed_at,
                    rec.reverted_at == kNever ? INT64_MAX : rec.reverted_at,
                    rec.unhealthy_at == kNever ? INT64_MAX : rec.unhealthy_at});
      if (rec.crashed_at != kNever) {
        f.crashed += sign;
        (rec.crash_kind == CrashKind::kUncleanShutdown ? f.unclean_shutdowns : f.process_crashed) +=
            sign;
      } else if (rec.reverted_at != kNever) {
        f.reverted += sign;
      } else if (rec.unhealthy_at != kNever) {
        f.unhealthy += sign;
      }
      if (failed_at != INT64_MAX) {
        t.fixed_exposure_us += sign * ElapsedMicros(rec.applied_at, failed_at);
      }
    }
  }

  // The control group: only agents settled regardless of the clock (live ones are in LiveSum).
  const int64_t window = tally_window_us_;
  if (rec.control_last_seen_at == kNever || rec.control_last_seen_at < window) {
    return;
  }
  const int64_t control_end = rec.attempted ? rec.applied_at : INT64_MAX;
  if (control_end <= window) {
    return;
  }
  const int64_t start = std::max(rec.control_first_seen_at, window);
  const bool crashed = rec.control_last_crash_at >= window && rec.control_last_crash_at != kNever &&
                       rec.control_last_crash_at <= control_end;
  const bool unhealthy = rec.control_unhealthy_at >= window && rec.control_unhealthy_at != kNever &&
                         rec.control_unhealthy_at <= control_end;
  int64_t end = control_end;
  if (crashed) {
    end = rec.control_first_crash_at >= window ? rec.control_first_crash_at
                                               : rec.control_last_crash_at;
  } else if (unhealthy) {
    end = rec.control_unhealthy_at;
  } else if (!rec.attempted) {
    return;  // live: counted by LiveSum
  }
  t.control_agents += sign;
  t.control_failed += (crashed || unhealthy) ? sign : 0;
  t.fixed_control_exposure_us += sign * ElapsedMicros(start, end);
}

void HealthLedger::Retire(AgentRecord& record) {
  ++record.stamp;
  if (!tallied_) {
    return;
  }
  AddFixed(record, -1);
  const Live live = LiveOf(record);
  const int ring = static_cast<int>(record.ring);
  if (live.kind != LiveKind::kNone) {
    TallyOf(live, ring).Add(live, -1);
  }
  for (int r = 0; r < kRingCount; ++r) {
    if ((record.silent_under >> r & 1) != 0) {
      SilentOf(indexes_[r], live, ring).Add(live, -1);
    }
  }
  record.silent_under = 0;
}

void HealthLedger::Admit(AgentRecord& record) {
  if (!tallied_) {
    return;
  }
  const auto slot = static_cast<uint32_t>(&record - records_.data());
  AddFixed(record, +1);
  const Live live = LiveOf(record);
  if (live.kind == LiveKind::kNone) {
    return;
  }
  TallyOf(live, static_cast<int>(record.ring)).Add(live, +1);
  for (int r = 0; r < kRingCount; ++r) {
    if (indexes_[r].valid) {
      PlaceInIndex(live, slot, r);
    }
  }
}

// PlaceInIndex files a live agent in the silence index of ring `r`: counted silent at once when
// its last sign of life is already past the threshold, queued by that time otherwise. A treated
// agent matters only to its own ring's index.
void HealthLedger::PlaceInIndex(const Live& live, uint32_t slot, int r) {
  AgentRecord& record = records_[slot];
  const int ring = static_cast<int>(record.ring);
  if (live.kind == LiveKind::kNone || (live.kind == LiveKind::kTreated && ring != r)) {
    return;
  }
  SilenceIndex& index = indexes_[r];
  if (live.key < index.threshold_us) {
    SilentOf(index, live, ring).Add(live, +1);
    record.silent_under |= static_cast<uint8_t>(1u << r);
    return;
  }
  index.heap.push_back(IndexEntry{live.key, slot, record.stamp});
  std::push_heap(index.heap.begin(), index.heap.end(), std::greater<IndexEntry>());
}

void HealthLedger::RebuildTallies(int64_t window_us) {
  ++work_.tally_rebuilds;
  tallied_ = true;
  tally_window_us_ = window_us;
  for (Tally& t : tallies_) {
    t = Tally{};
  }
  for (SilenceIndex& index : indexes_) {
    index = SilenceIndex{};
  }
  for (AgentRecord& record : records_) {
    record.silent_under = 0;
    if (!record.in_use) {
      continue;
    }
    AddFixed(record, +1);
    const Live live = LiveOf(record);
    if (live.kind != LiveKind::kNone) {
      TallyOf(live, static_cast<int>(record.ring)).Add(live, +1);
    }
  }
}

void HealthLedger::RebuildIndex(int r, int64_t now_us, int64_t timeout_us) {
  ++work_.index_rebuilds;
  SilenceIndex& index = indexes_[r];
  index = SilenceIndex{};
  index.valid = true;
  index.timeout_us = timeout_us;
  index.now_us = now_us;
  index.threshold_us = Threshold(now_us, timeout_us);
  const uint8_t bit = static_cast<uint8_t>(1u << r);
  for (uint32_t slot = 0; slot < records_.size(); ++slot) {
    AgentRecord& record = records_[slot];
    record.silent_under &= static_cast<uint8_t>(~bit);
    if (record.in_use) {
      PlaceInIndex(LiveOf(record), slot, r);
    }
  }
}

HealthLedger::SilenceIndex& HealthLedger::Index(Ring ring, int64_t now_us, int64_t timeout_us) {
  const int r = static_cast<int>(ring);
  SilenceIndex& index = indexes_[r];
  if (!index.valid || index.timeout_us != timeout_us || now_us < index.now_us) {
    RebuildIndex(r, now_us, timeout_us);
    return index;
  }
  const int64_t threshold = Threshold(now_us, timeout_us);
  const uint8_t bit = static_cast<uint8_t>(1u << r);
  while (!index.heap.empty() && index.heap.front().key < threshold) {
    std::pop_heap(index.heap.begin(), index.heap.end(), std::greater<IndexEntry>());
    const IndexEntry entry = index.heap.back();
    index.heap.pop_back();
    AgentRecord& record = records_[entry.slot];
    if (!record.in_use || record.stamp != entry.stamp || (record.silent_under & bit) != 0) {
      continue;  // changed since it was queued: its current entry is elsewhere in the heap
    }
    const Live live = LiveOf(record);
    SilentOf(index, live, static_cast<int>(record.ring)).Add(live, +1);
    record.silent_under |= bit;
  }
  index.now_us = now_us;
  index.threshold_us = threshold;
  // Every change queues a new entry and leaves the old one stale: compact when stale ones
  // outnumber the live agents.
  int64_t live = tallies_[r].treated.count;
  for (const Tally& t : tallies_) {
    live += t.control.count;
  }
  if (static_cast<int64_t>(index.heap.size()) > 2 * live + 4096) {
    RebuildIndex(r, now_us, timeout_us);
  }
  return index;
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
  const int64_t t = ToMicros(at);
  AgentRecord& record = Touch(agent_id, ring, t);
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
  Admit(record);
}

void HealthLedger::RecordHeartbeat(absl::string_view agent_id, Ring ring, bool has_new_version,
                                   absl::Time at) {
  const int64_t t = ToMicros(at);
  AgentRecord& record = Touch(agent_id, ring, t);
  if (has_new_version) {
    MarkAttempted(record, t);
    record.last_heartbeat_at = Latest(record.last_heartbeat_at, t);
  } else if (!record.attempted || t < record.applied_at) {
    SeenOnPrevious(record, t);
  } else if (!record.apply_failed && record.last_heartbeat_at != kNever &&
             t > record.last_heartbeat_at) {
    // Back on the previous version counts as a revert only after the agent was seen running the
    // new one: a heartbeat composed just before the apply and delivered after it must not halt a
    // rollout.
    record.reverted_at = Earliest(record.reverted_at, t, kNever);
  }
  Admit(record);
}

void HealthLedger::RecordCrash(absl::string_view agent_id, Ring ring, absl::Time at,
                               bool on_new_version, CrashKind kind) {
  const int64_t t = ToMicros(at);
  AgentRecord& record = Touch(agent_id, ring, t);
  if (on_new_version) {
    MarkAttempted(record, t);
    if (record.crashed_at == kNever || t < record.crashed_at) {
      record.crash_kind = kind;
    }
    record.crashed_at = Earliest(record.crashed_at, t, kNever);
    ++record.crash_count;
  } else {
    record.control_first_crash_at = Earliest(record.control_first_crash_at, t, kNever);
    record.control_last_crash_at = Latest(record.control_last_crash_at, t);
    SeenOnPrevious(record, t);
  }
  Admit(record);
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
  const int64_t t = ToMicros(at);
  AgentRecord& record = Touch(agent_id, ring, t);
  const double w = weight > 0 ? weight : 0;
  if (on_new_version) {
    // A health event proves the host ran the version, and that it was alive at `at`.
    MarkAttempted(record, t);
    record.last_heartbeat_at = Latest(record.last_heartbeat_at, t);
    ++record.health_event_count;
    AddSoftWeight(w, t, record.soft_score, record.unhealthy_at);
  } else {
    SeenOnPrevious(record, t);
    AddSoftWeight(w, t, record.control_soft_score, record.control_unhealthy_at);
  }
  Admit(record);
}

HealthLedger::Standing HealthLedger::StandingOf(absl::string_view agent_id) const {
  Standing standing;
  auto it = slots_.find(agent_id);
  if (it == slots_.end() || !records_[it->second].attempted) {
    return standing;
  }
  const AgentRecord& rec = records_[it->second];
  standing.attempted = true;
  standing.failed = FailedOnNew(rec);
  standing.last_sign_us = std::max(rec.applied_at, rec.last_heartbeat_at);
  if (!standing.failed) {
    standing.healthy = rec.last_heartbeat_at >= rec.applied_at;
  }
  return standing;
}

HealthLedger::AgentVerdict HealthLedger::Verdict(absl::string_view agent_id, absl::Time now,
                                                 absl::Duration silence_timeout) const {
  const Standing standing = StandingOf(agent_id);
  if (!standing.attempted) {
    return AgentVerdict::kUntried;
  }
  if (standing.failed ||
      ToMicros(now) - standing.last_sign_us > absl::ToInt64Microseconds(silence_timeout)) {
    return AgentVerdict::kFailed;
  }
  return standing.healthy ? AgentVerdict::kHealthy : AgentVerdict::kPending;
}

RingHealth HealthLedger::Summarize(Ring ring, absl::Time now, absl::Duration silence_timeout,
                                   absl::Time window_start, absl::Span<const Ring> control_rings) {
  const int64_t now_us = ToMicros(now);
  const int64_t window_us = ToMicros(window_start);
  const int64_t timeout_us = absl::ToInt64Microseconds(silence_timeout);
  // The tallies hold what does not move with the clock only while no event is later than `now`
  // and the window has begun; otherwise walk everything.
  if (timeout_us < 0 || now_us < latest_event_us_ || now_us <= window_us) {
    ++work_.scans;
    return SummarizeByScan(ring, now, silence_timeout, window_start, control_rings);
  }
  if (!tallied_ || tally_window_us_ != window_us) {
    RebuildTallies(window_us);
  }
  bool is_control_ring[kRingCount] = {false, false, false};
  if (control_rings.empty()) {
    is_control_ring[static_cast<int>(ring)] = true;
  }
  for (Ring r : control_rings) {
    is_control_ring[static_cast<int>(r)] = true;
  }
  const SilenceIndex& index = Index(ring, now_us, timeout_us);
  const Tally& own = tallies_[static_cast<int>(ring)];
  const LiveSum& silent = index.treated_silent;

  RingHealth health = own.fixed;
  const int64_t active = own.treated.count - silent.count;
  health.silent = silent.count;
  health.healthy = own.treated.healthy - silent.healthy;
  health.pending = active - health.healthy;
  // Exposure: the failed until they failed, the silent until their last sign, the rest until now.
  health.exposure = MicrosDuration(own.fixed_exposure_us + static_cast<__int128>(active) * now_us -
                                   (own.treated.start_sum - silent.start_sum) +
                                   (silent.key_sum - silent.start_sum));
  __int128 control_exposure_us = 0;
  for (int x = 0; x < kRingCount; ++x) {
    if (!is_control_ring[x]) {
      continue;
    }
    const Tally& t = tallies_[x];
    const LiveSum& quiet = index.control_silent[x];
    health.control_agents += t.control_agents + t.control.count;
    health.control_failed += t.control_failed + quiet.count;
    control_exposure_us += t.fixed_control_exposure_us +
                           static_cast<__int128>(t.control.count - quiet.count) * now_us -
                           (t.control.start_sum - quiet.start_sum) +
                           (quiet.key_sum - quiet.start_sum);
  }
  health.control_exposure = MicrosDuration(control_exposure_us);
  health.failed =
      health.crashed + health.reverted + health.unhealthy + health.silent + health.apply_failed;
  return health;
}

RingHealth HealthLedger::SummarizeByScan(Ring ring, absl::Time now, absl::Duration silence_timeout,
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
  for (const AgentRecord& rec : records_) {
    if (!rec.in_use) {
      continue;
    }
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
