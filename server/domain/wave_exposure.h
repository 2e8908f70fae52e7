// wave_exposure.h: the exposure budget's view of a stage ring, kept as hosts change.
//
// PlanExposure sorts every host of the stage ring at each look, which at a million hosts is most
// of the leader's period. Wave positions take kBucketCount values (ring.h), so hosts with the same
// bucket share one position: WaveExposure keeps, per bucket, how many hosts are loaded, failed and
// proven, and the earliest moment one in probation can prove itself. A host's change moves its
// own bucket; the clock fails hosts whose silence timeout runs out through a time-ordered index,
// as in HealthLedger. A plan then reads kBucketCount buckets, whatever the ring's size, and equals
// PlanExposure over the same hosts.
//
//   WaveExposure wave(policy.slow_start.probation);
//   wave.Upsert("host-1", facts);
//   ExposurePlan plan = wave.Plan(policy.slow_start, baseline, admitted_fraction, cap, now);
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/domain/exposure.h"

namespace ringwarden {

// WaveFacts is what one host of the stage ring brings to the budget, apart from the clock.
struct WaveFacts {
  int bucket = 0;  // WaveBucket(seed, agent id): the host's position is bucket / kBucketCount
  bool loaded = false;
  bool failed = false;  // failed whatever the clock says
  // A host that tried the version and has not failed fails once the clock, in microseconds since
  // the epoch, is past this (its last sign of life plus the silence timeout). Unset: never.
  std::optional<int64_t> silent_after_us;
  std::optional<absl::Time> alive_since;
  std::optional<absl::Time> last_seen;
};

// ExposureHostAt is the host PlanExposure reads for `facts` at `now`.
ExposureHost ExposureHostAt(const WaveFacts& facts, absl::Time now);

class WaveExposure : public WaveOrder {
 public:
  explicit WaveExposure(absl::Duration probation);

  // Upsert files (or refiles) a host of the ring; Erase drops one that left it.
  void Upsert(absl::string_view agent_id, const WaveFacts& facts);
  void Erase(absl::string_view agent_id);
  // Bucket returns the bucket a host was filed with, so its hash need not be computed again.
  std::optional<int> Bucket(absl::string_view agent_id) const;

  // Plan is PlanExposure over the hosts filed, at `now`. A clock earlier than the last look's
  // rebuilds the silence of every host.
  ExposurePlan Plan(const SlowStartPolicy& policy, double baseline_failure_rate,
                    double admitted_fraction, double cap_fraction, absl::Time now);

  absl::Duration probation() const { return probation_; }
  // rebuilds counts walks over every host (a clock moved back, or the index compacted).
  int64_t rebuilds() const { return rebuilds_; }

  // WaveOrder, as of the last Plan.
  int64_t size() const override { return static_cast<int64_t>(slots_.size()); }
  int64_t CountBelow(double bound) const override;
  double PositionAt(int64_t index) const override;
  Tally TallyBelow(double bound) const override;

 private:
  struct Host {
    WaveFacts facts;
    bool in_use = false;
    bool silent = false;  // the clock ran past silent_after_us
    uint32_t stamp = 0;   // moves on every change, so stale index entries are skipped
  };
  struct BucketTally {
    int64_t hosts = 0;
    int64_t loaded = 0;
    int64_t failed = 0;
    int64_t proven = 0;
    std::multiset<absl::Time> proofs;  // alive_since + probation of the hosts in probation
  };
  struct IndexEntry {
    int64_t silent_after_us;
    uint32_t slot;
    uint32_t stamp;
    bool operator>(const IndexEntry& o) const { return silent_after_us > o.silent_after_us; }
  };

  // Count adds (sign +1) or removes (-1) a host's contribution to its bucket.
  void Count(const Host& host, int sign);
  // Watch queues a host for the clock to fail it, or marks it silent already.
  void Watch(uint32_t slot);
  void AdvanceTo(int64_t now_us);
  void Rebuild(int64_t now_us);

  absl::Duration probation_;
  int64_t now_us_ = INT64_MIN;
  absl::flat_hash_map<std::string, uint32_t> slots_;
  std::vector<Host> hosts_;
  std::vector<uint32_t> free_slots_;
  std::vector<BucketTally> buckets_;
  std::vector<IndexEntry> heap_;  // min-heap by silent_after_us
  int64_t rebuilds_ = 0;
};

}  // namespace ringwarden
