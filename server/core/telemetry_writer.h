// telemetry_writer.h: aggregates agent telemetry in memory and writes it in batches.
//
// Handlers Add() rows and return at once; a flush thread writes everything
// gathered in one transaction every flush interval. If the database is down
// (UNAVAILABLE), rows wait (up to a bound, after which the oldest heartbeats are
// dropped and counted) and are written when it returns; a batch refused with any
// other code is dropped and counted. Add refuses when the buffer is full so
// callers can answer RESOURCE_EXHAUSTED and the agent resends.
// Thread-safety: all methods are safe from any thread; the destructor flushes
// once more and joins the flush thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/storage/store.h"

namespace ringwarden {

class TelemetryWriter {
 public:
  // `sink` must outlive the writer.
  TelemetryWriter(TelemetrySink& sink, absl::Duration flush_interval, size_t max_rows);
  ~TelemetryWriter();

  // Add queues rows; false (nothing queued) when that would exceed max_rows.
  bool Add(TelemetryRows rows);
  // Flush writes what is queued now; returns the write's status.
  absl::Status Flush();

  size_t Pending() const;
  int64_t RowsWritten() const { return rows_written_.load(); }
  int64_t WriteErrors() const { return write_errors_.load(); }
  // DroppedRows counts rows lost: batches the database refused for good, and
  // the oldest heartbeats dropped when re-queued rows exceeded max_rows.
  int64_t DroppedRows() const { return dropped_rows_.load(); }

 private:
  void Loop();

  TelemetrySink& sink_;
  const absl::Duration flush_interval_;
  const size_t max_rows_;
  mutable absl::Mutex mu_;
  TelemetryRows pending_ ABSL_GUARDED_BY(mu_);
  absl::Mutex flush_mu_;  // one writer at a time keeps rows in order
  std::atomic<int64_t> rows_written_{0};
  std::atomic<int64_t> write_errors_{0};
  std::atomic<int64_t> dropped_rows_{0};
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace ringwarden
