// telemetry_writer.h: aggregates agent telemetry in memory and writes it in batches.
//
// Handlers Add() rows and return at once; a flush thread writes everything
// gathered in one transaction every flush interval. With several lanes
// (TelemetryLimits::lanes) each lane is such a queue and thread, and the lanes
// write in parallel on their own connections; an agent's rows all go to one lane. If the database
// is down (UNAVAILABLE), rows wait (up to a bound, after which the oldest heartbeats are dropped
// and counted) and are written when it returns. A batch refused with any other code is split in
// halves and each half written on its own, down to single rows: a row the database refuses for good
// (a "poison" row) is dropped alone and counted, and every other row of the flush is written. A
// budget of writes per flush keeps a database that refuses everything from costing a write per row.
// Add refuses when the buffer is full, or when the rows' agent already holds its
// share of it, so callers can answer RESOURCE_EXHAUSTED and the agent resends:
// one agent's flood fills only its own share.
// Thread-safety: all methods are safe from any thread; the destructor flushes
// once more and joins the flush threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/storage/store.h"

namespace ringwarden {

struct TelemetryLimits {
  // Rows queued at most, all agents together.
  size_t max_rows = 500'000;
  // Rows one agent may have queued at most (its share of max_rows); one batch
  // of an agent with nothing queued is admitted whatever its size.
  size_t max_rows_per_agent = 20'000;
  // Writes one flush may spend isolating refused rows before it drops what is left.
  int max_isolation_writes = 256;
  // Queues flushed in parallel, each by its own thread (and database connection); an
  // agent's rows always go to the same lane, so they stay in order. max_rows is split
  // evenly among the lanes.
  int lanes = 1;
};

// TelemetryAdmission is the answer of Add.
enum class TelemetryAdmission {
  kQueued,
  kQueueFull,   // all agents together hold max_rows
  kAgentShare,  // one of the rows' agents holds its max_rows_per_agent
};

// TelemetryLane is one queue and the thread that flushes it (see TelemetryWriter).
class TelemetryLane {
 public:
  // `sink` must outlive the lane.
  TelemetryLane(TelemetrySink& sink, absl::Duration flush_interval, TelemetryLimits limits);
  ~TelemetryLane();

  // Add queues rows, all or nothing; true when queued.
  bool Add(TelemetryRows rows) { return Admit(std::move(rows)) == TelemetryAdmission::kQueued; }
  // Admit queues rows, all or nothing, and says why it did not.
  TelemetryAdmission Admit(TelemetryRows rows);
  // Flush writes what is queued now; returns the first write's status.
  absl::Status Flush();

  size_t Pending() const;
  // PendingFor is how many rows of `agent_id` are queued.
  size_t PendingFor(const std::string& agent_id) const;
  // TrackedAgents is how many agents have rows queued (the share table's size).
  size_t TrackedAgents() const;
  int64_t RowsWritten() const { return rows_written_.load(); }
  int64_t WriteErrors() const { return write_errors_.load(); }
  // DroppedRows counts rows lost: rows the database refused for good, and
  // the oldest heartbeats dropped when re-queued rows exceeded max_rows.
  int64_t DroppedRows() const { return dropped_rows_.load(); }
  // PoisonRows counts the rows among DroppedRows that were refused alone.
  int64_t PoisonRows() const { return poison_rows_.load(); }
  // ShareRefusals counts Admit calls refused because of an agent's share.
  int64_t ShareRefusals() const { return share_refusals_.load(); }

 private:
  void Loop();
  // Isolate writes the halves of a refused batch apart; WriteOrDrop writes
  // `rows`, isolating again on a refusal while `budget` (writes) lasts, else
  // drops them. Both return OK or the first refusal of a dropped row.
  absl::Status Isolate(const TelemetryRows& rows, int& budget);
  absl::Status WriteOrDrop(const TelemetryRows& rows, int& budget);
  absl::Status Drop(size_t rows, const absl::Status& status);
  void Requeue(TelemetryRows batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TelemetrySink& sink_;
  const absl::Duration flush_interval_;
  const TelemetryLimits limits_;
  mutable absl::Mutex mu_;
  TelemetryRows pending_ ABSL_GUARDED_BY(mu_);
  // Rows queued per agent; only agents with rows queued have an entry, so the
  // table never holds more than max_rows entries.
  absl::flat_hash_map<std::string, size_t> per_agent_ ABSL_GUARDED_BY(mu_);
  absl::Mutex flush_mu_;  // one writer at a time keeps rows in order
  std::atomic<int64_t> rows_written_{0};
  std::atomic<int64_t> write_errors_{0};
  std::atomic<int64_t> dropped_rows_{0};
  std::atomic<int64_t> poison_rows_{0};
  std::atomic<int64_t> share_refusals_{0};
  absl::Notification stop_;
  std::thread thread_;
};

class TelemetryWriter {
 public:
  // `sink` must outlive the writer.
  TelemetryWriter(TelemetrySink& sink, absl::Duration flush_interval, TelemetryLimits limits);
  TelemetryWriter(TelemetrySink& sink, absl::Duration flush_interval, size_t max_rows)
      : TelemetryWriter(sink, flush_interval, TelemetryLimits{max_rows, max_rows}) {}

  // Add and Admit queue rows, all or nothing, in the lane of the rows' first agent: callers
  // admit one agent's rows per call (the agent service does).
  bool Add(TelemetryRows rows) { return Admit(std::move(rows)) == TelemetryAdmission::kQueued; }
  TelemetryAdmission Admit(TelemetryRows rows);
  // Flush writes what every lane holds now, the lanes in parallel; returns the first
  // failing lane's status.
  absl::Status Flush();

  size_t Pending() const;
  size_t PendingFor(const std::string& agent_id) const;
  size_t TrackedAgents() const;
  int64_t RowsWritten() const;
  int64_t WriteErrors() const;
  int64_t DroppedRows() const;
  int64_t PoisonRows() const;
  int64_t ShareRefusals() const;

 private:
  TelemetryLane& LaneOf(const std::string& agent_id) const;
  template <typename F>
  auto Sum(F f) const {
    decltype(f(*lanes_.front())) total{};
    for (const auto& lane : lanes_) total += f(*lane);
    return total;
  }

  std::vector<std::unique_ptr<TelemetryLane>> lanes_;
};

}  // namespace ringwarden
