#include "server/domain/wave_exposure.h"

#include <algorithm>
#include <functional>

#include "server/domain/ring.h"

namespace ringwarden {
namespace {

double PositionOf(int bucket) { return bucket / static_cast<double>(kBucketCount); }

bool FailedAt(const WaveFacts& facts, bool silent) { return facts.failed || silent; }

bool ProvenAt(const WaveFacts& facts, bool failed, absl::Duration probation) {
  return facts.loaded && !failed && facts.alive_since.has_value() && facts.last_seen.has_value() &&
         *facts.last_seen - *facts.alive_since >= probation;
}

}  // namespace

ExposureHost ExposureHostAt(const WaveFacts& facts, absl::Time now) {
  ExposureHost h;
  h.position = PositionOf(facts.bucket);
  h.loaded = facts.loaded;
  h.failed = FailedAt(
      facts, facts.silent_after_us.has_value() && absl::ToUnixMicros(now) > *facts.silent_after_us);
  h.alive_since = facts.alive_since;
  h.last_seen = facts.last_seen;
  return h;
}

WaveExposure::WaveExposure(absl::Duration probation)
    : probation_(probation), buckets_(kBucketCount) {}

void WaveExposure::Count(const Host& host, int sign) {
  const WaveFacts& f = host.facts;
  BucketTally& b = buckets_[f.bucket];
  const bool failed = FailedAt(f, host.silent);
  const bool proven = ProvenAt(f, failed, probation_);
  b.hosts += sign;
  b.loaded += f.loaded ? sign : 0;
  b.failed += f.loaded && failed ? sign : 0;
  b.proven += proven ? sign : 0;
  if (f.loaded && !failed && f.alive_since.has_value() && !proven) {
    const absl::Time at = *f.alive_since + probation_;
    if (sign > 0) {
      b.proofs.insert(at);
    } else {
      b.proofs.erase(b.proofs.find(at));
    }
  }
}

void WaveExposure::Watch(uint32_t slot) {
  Host& host = hosts_[slot];
  host.silent = false;
  if (!host.facts.silent_after_us.has_value() || host.facts.failed) {
    return;
  }
  if (now_us_ > *host.facts.silent_after_us) {
    host.silent = true;
    return;
  }
  heap_.push_back(IndexEntry{*host.facts.silent_after_us, slot, host.stamp});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<IndexEntry>());
}

void WaveExposure::Upsert(absl::string_view agent_id, const WaveFacts& facts) {
  uint32_t slot;
  if (auto it = slots_.find(agent_id); it != slots_.end()) {
    slot = it->second;
    Count(hosts_[slot], -1);
  } else {
    if (free_slots_.empty()) {
      slot = static_cast<uint32_t>(hosts_.size());
      hosts_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    slots_.emplace(std::string(agent_id), slot);
  }
  Host& host = hosts_[slot];
  host.facts = facts;
  host.in_use = true;
  ++host.stamp;
  Watch(slot);
  Count(host, +1);
}

void WaveExposure::Erase(absl::string_view agent_id) {
  auto it = slots_.find(agent_id);
  if (it == slots_.end()) {
    return;
  }
  Host& host = hosts_[it->second];
  Count(host, -1);
  host.in_use = false;
  ++host.stamp;
  free_slots_.push_back(it->second);
  slots_.erase(it);
}

std::optional<int> WaveExposure::Bucket(absl::string_view agent_id) const {
  auto it = slots_.find(agent_id);
  if (it == slots_.end()) {
    return std::nullopt;
  }
  return hosts_[it->second].facts.bucket;
}

void WaveExposure::Rebuild(int64_t now_us) {
  ++rebuilds_;
  now_us_ = now_us;
  heap_.clear();
  for (BucketTally& b : buckets_) {
    b = BucketTally{};
  }
  for (uint32_t slot = 0; slot < hosts_.size(); ++slot) {
    if (hosts_[slot].in_use) {
      Watch(slot);
      Count(hosts_[slot], +1);
    }
  }
}

void WaveExposure::AdvanceTo(int64_t now_us) {
  if (now_us < now_us_) {
    Rebuild(now_us);
    return;
  }
  now_us_ = now_us;
  while (!heap_.empty() && heap_.front().silent_after_us < now_us) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<IndexEntry>());
    const IndexEntry entry = heap_.back();
    heap_.pop_back();
    Host& host = hosts_[entry.slot];
    if (!host.in_use || host.stamp != entry.stamp || host.silent) {
      continue;  // changed since it was queued
    }
    Count(host, -1);
    host.silent = true;
    Count(host, +1);
  }
  // Every change queues a new entry and leaves the old one stale: compact when stale ones
  // outnumber the hosts.
  if (heap_.size() > 2 * slots_.size() + 4096) {
    Rebuild(now_us);
  }
}

ExposurePlan WaveExposure::Plan(const SlowStartPolicy& policy, double baseline_failure_rate,
                                double admitted_fraction, double cap_fraction, absl::Time now) {
  AdvanceTo(absl::ToUnixMicros(now));
  // Proof is judged under the probation the hosts were filed with (the caller keys on it).
  return PlanInWaveOrder(policy, baseline_failure_rate, *this, admitted_fraction, cap_fraction,
                         now);
}

int64_t WaveExposure::CountBelow(double bound) const {
  int64_t n = 0;
  for (int b = 0; b < kBucketCount && PositionOf(b) < bound; ++b) {
    n += buckets_[b].hosts;
  }
  return n;
}

double WaveExposure::PositionAt(int64_t index) const {
  for (int b = 0; b < kBucketCount; ++b) {
    if (index < buckets_[b].hosts) {
      return PositionOf(b);
    }
    index -= buckets_[b].hosts;
  }
  return 1.0;  // past the last host: PlanInWaveOrder never asks
}

WaveOrder::Tally WaveExposure::TallyBelow(double bound) const {
  Tally t;
  for (int b = 0; b < kBucketCount && PositionOf(b) < bound; ++b) {
    const BucketTally& bucket = buckets_[b];
    t.loaded += bucket.loaded;
    t.failed += bucket.failed;
    t.proven += bucket.proven;
    if (!bucket.proofs.empty() &&
        (!t.next_proof.has_value() || *bucket.proofs.begin() < *t.next_proof)) {
      t.next_proof = *bucket.proofs.begin();
    }
  }
  return t;
}

}  // namespace ringwarden
