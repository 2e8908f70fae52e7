#include "server/core/telemetry_writer.h"

#include <algorithm>
#include <iostream>
#include <iterator>

namespace ringwarden {
namespace {

template <typename T>
void Append(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  from.clear();
}

void AppendRows(TelemetryRows& to, TelemetryRows& from) {
  Append(to.fetches, from.fetches);
  Append(to.agents, from.agents);
  Append(to.heartbeats, from.heartbeats);
  Append(to.applies, from.applies);
  Append(to.crashes, from.crashes);
}

}  // namespace

TelemetryWriter::TelemetryWriter(TelemetrySink& sink, absl::Duration flush_interval,
                                 size_t max_rows)
    : sink_(sink),
      flush_interval_(flush_interval),
      max_rows_(max_rows),
      thread_([this] { Loop(); }) {}

TelemetryWriter::~TelemetryWriter() {
  stop_.Notify();
  thread_.join();
  Flush().IgnoreError();  // best effort; what fails here is lost with the process
}

bool TelemetryWriter::Add(TelemetryRows rows) {
  absl::MutexLock lock(&mu_);
  if (pending_.size() + rows.size() > max_rows_) {
    return false;
  }
  AppendRows(pending_, rows);
  return true;
}

size_t TelemetryWriter::Pending() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

absl::Status TelemetryWriter::Flush() {
  absl::MutexLock flush_lock(&flush_mu_);
  TelemetryRows batch;
  {
    absl::MutexLock lock(&mu_);
    std::swap(batch, pending_);
  }
  if (batch.empty()) {
    return absl::OkStatus();
  }
  absl::Status status = sink_.WriteTelemetry(batch);
  if (status.ok()) {
    rows_written_ += static_cast<int64_t>(batch.size());
    return status;
  }
  ++write_errors_;
  // Only UNAVAILABLE is worth a later retry (the store already retried the
  // transaction; ABORTED means a stale rollout revision, never telemetry).
  if (!absl::IsUnavailable(status)) {
    // Retrying a batch the database refuses would block every later batch
    // behind it: drop it, count it, and keep the rest flowing.
    dropped_rows_ += static_cast<int64_t>(batch.size());
    return status;
  }
  // Put the batch back in front of anything that arrived meanwhile.
  absl::MutexLock lock(&mu_);
  AppendRows(batch, pending_);
  pending_ = std::move(batch);
  if (pending_.size() > max_rows_ && pending_.heartbeats.size() > 0) {
    // Heartbeats are superseded by newer ones; dropping the oldest loses least.
    const size_t excess = std::min(pending_.size() - max_rows_, pending_.heartbeats.size());
    pending_.heartbeats.erase(pending_.heartbeats.begin(),
                              pending_.heartbeats.begin() + static_cast<long>(excess));
    dropped_rows_ += static_cast<int64_t>(excess);
  }
  return status;
}

void TelemetryWriter::Loop() {
  bool logged = false;
  while (!stop_.WaitForNotificationWithTimeout(flush_interval_)) {
    absl::Status status = Flush();
    if (!status.ok() && !logged) {
      std::cerr << "telemetry write failed, will retry: " << status << std::endl;
      logged = true;
    } else if (status.ok()) {
      logged = false;
    }
  }
}

}  // namespace ringwarden
