#include "server/core/telemetry_writer.h"

#include <algorithm>
#include <iostream>
#include <iterator>

#include "absl/hash/hash.h"

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
  Append(to.health_events, from.health_events);
}

// ForEachAgentId calls `f` with the agent id of every row.
template <typename F>
void ForEachAgentId(const TelemetryRows& rows, F f) {
  for (const auto& r : rows.agents) f(r.agent_id);
  for (const auto& r : rows.fetches) f(r.agent_id);
  for (const auto& r : rows.heartbeats) f(r.agent_id);
  for (const auto& r : rows.applies) f(r.agent_id);
  for (const auto& r : rows.crashes) f(r.agent_id);
  for (const auto& r : rows.health_events) f(r.agent_id);
}

// CountByAgent counts rows per agent id.
absl::flat_hash_map<std::string, size_t> CountByAgent(const TelemetryRows& rows) {
  absl::flat_hash_map<std::string, size_t> counts;
  ForEachAgentId(rows, [&](const std::string& id) { ++counts[id]; });
  return counts;
}

// SliceRange copies the rows at positions [lo, hi) of `from`, `offset` being
// the position of its first element.
template <typename T>
void SliceRange(const std::vector<T>& from, size_t offset, size_t lo, size_t hi,
                std::vector<T>& to) {
  const size_t begin = std::clamp(lo, offset, offset + from.size()) - offset;
  const size_t end = std::clamp(hi, offset, offset + from.size()) - offset;
  to.insert(to.end(), from.begin() + static_cast<long>(begin),
            from.begin() + static_cast<long>(end));
}

// Slice copies rows [lo, hi) in the order agents, fetches, heartbeats,
// applies, crashes, health events: agent rows come first, so writing the slices in order
// never writes a row before its agent's upsert.
TelemetryRows Slice(const TelemetryRows& rows, size_t lo, size_t hi) {
  TelemetryRows out;
  size_t offset = 0;
  SliceRange(rows.agents, offset, lo, hi, out.agents);
  offset += rows.agents.size();
  SliceRange(rows.fetches, offset, lo, hi, out.fetches);
  offset += rows.fetches.size();
  SliceRange(rows.heartbeats, offset, lo, hi, out.heartbeats);
  offset += rows.heartbeats.size();
  SliceRange(rows.applies, offset, lo, hi, out.applies);
  offset += rows.applies.size();
  SliceRange(rows.crashes, offset, lo, hi, out.crashes);
  offset += rows.crashes.size();
  SliceRange(rows.health_events, offset, lo, hi, out.health_events);
  return out;
}

}  // namespace

TelemetryLane::TelemetryLane(TelemetrySink& sink, absl::Duration flush_interval,
                             TelemetryLimits limits)
    : sink_(sink), flush_interval_(flush_interval), limits_(limits), thread_([this] { Loop(); }) {}

TelemetryLane::~TelemetryLane() {
  stop_.Notify();
  thread_.join();
  Flush().IgnoreError();  // best effort; what fails here is lost with the process
}

TelemetryAdmission TelemetryLane::Admit(TelemetryRows rows) {
  absl::flat_hash_map<std::string, size_t> counts = CountByAgent(rows);
  absl::MutexLock lock(&mu_);
  if (pending_.size() + rows.size() > limits_.max_rows) {
    return TelemetryAdmission::kQueueFull;
  }
  for (const auto& [agent_id, n] : counts) {
    auto it = per_agent_.find(agent_id);
    const size_t queued = it == per_agent_.end() ? 0 : it->second;
    // An agent with nothing queued is always admitted (within max_rows), so
    // that a batch larger than the share still makes progress.
    if (queued > 0 && queued + n > limits_.max_rows_per_agent) {
      ++share_refusals_;
      return TelemetryAdmission::kAgentShare;
    }
  }
  for (const auto& [agent_id, n] : counts) {
    per_agent_[agent_id] += n;
  }
  AppendRows(pending_, rows);
  return TelemetryAdmission::kQueued;
}

size_t TelemetryLane::Pending() const {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

size_t TelemetryLane::PendingFor(const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = per_agent_.find(agent_id);
  return it == per_agent_.end() ? 0 : it->second;
}

size_t TelemetryLane::TrackedAgents() const {
  absl::MutexLock lock(&mu_);
  return per_agent_.size();
}

absl::Status TelemetryLane::Isolate(const TelemetryRows& rows, int& budget) {
  const size_t n = rows.size();
  absl::Status first = WriteOrDrop(Slice(rows, 0, n / 2), budget);
  absl::Status second = WriteOrDrop(Slice(rows, n / 2, n), budget);
  return first.ok() ? second : first;
}

absl::Status TelemetryLane::WriteOrDrop(const TelemetryRows& rows, int& budget) {
  if (rows.empty()) {
    return absl::OkStatus();
  }
  if (budget <= 0) {
    return Drop(rows.size(), absl::ResourceExhaustedError(
                                 "telemetry isolation budget spent; rows dropped unwritten"));
  }
  --budget;
  absl::Status status = sink_.WriteTelemetry(rows);
  if (status.ok()) {
    rows_written_ += static_cast<int64_t>(rows.size());
    return status;
  }
  const size_t n = rows.size();
  if (n > 1 && !absl::IsUnavailable(status)) {
    return Isolate(rows, budget);
  }
  // A part that meets an outage mid-isolation is dropped as well: requeueing
  // part of a batch would reorder rows.
  return Drop(n, status);
}

absl::Status TelemetryLane::Drop(size_t rows, const absl::Status& status) {
  // A single row refused for good, or no budget left: drop, count, and keep
  // the rest flowing.
  dropped_rows_ += static_cast<int64_t>(rows);
  if (rows == 1 && poison_rows_.fetch_add(1) < 10) {
    std::cerr << "telemetry row refused for good, dropped: " << status << std::endl;
  }
  return status;
}

absl::Status TelemetryLane::Flush() {
  absl::MutexLock flush_lock(&flush_mu_);
  TelemetryRows batch;
  {
    absl::MutexLock lock(&mu_);
    std::swap(batch, pending_);
    per_agent_.clear();
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
  // Only UNAVAILABLE is worth a later retry of the whole batch (the store
  // already retried the transaction; ABORTED means a stale rollout revision,
  // never telemetry).
  if (absl::IsUnavailable(status)) {
    absl::MutexLock lock(&mu_);
    Requeue(std::move(batch));
    return status;
  }
  // Refused for good: find the rows it refuses by writing halves apart.
  if (batch.size() == 1) {
    return Drop(batch.size(), status);
  }
  int budget = limits_.max_isolation_writes;
  return Isolate(batch, budget);
}

void TelemetryLane::Requeue(TelemetryRows batch) {
  // Put the batch back in front of anything that arrived meanwhile.
  AppendRows(batch, pending_);
  pending_ = std::move(batch);
  if (pending_.size() > limits_.max_rows && pending_.heartbeats.size() > 0) {
    // Heartbeats are superseded by newer ones; dropping the oldest loses least.
    const size_t excess = std::min(pending_.size() - limits_.max_rows, pending_.heartbeats.size());
    pending_.heartbeats.erase(pending_.heartbeats.begin(),
                              pending_.heartbeats.begin() + static_cast<long>(excess));
    dropped_rows_ += static_cast<int64_t>(excess);
  }
  per_agent_ = CountByAgent(pending_);
}

void TelemetryLane::Loop() {
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

TelemetryWriter::TelemetryWriter(TelemetrySink& sink, absl::Duration flush_interval,
                                 TelemetryLimits limits) {
  const int lanes = std::max(1, limits.lanes);
  TelemetryLimits lane_limits = limits;
  lane_limits.max_rows = (limits.max_rows + lanes - 1) / lanes;
  for (int i = 0; i < lanes; ++i) {
    lanes_.push_back(std::make_unique<TelemetryLane>(sink, flush_interval, lane_limits));
  }
}

TelemetryLane& TelemetryWriter::LaneOf(const std::string& agent_id) const {
  return *lanes_[absl::HashOf(agent_id) % lanes_.size()];
}

TelemetryAdmission TelemetryWriter::Admit(TelemetryRows rows) {
  const std::string* first = nullptr;
  ForEachAgentId(rows, [&](const std::string& id) {
    if (first == nullptr) first = &id;
  });
  TelemetryLane& lane = first == nullptr ? *lanes_.front() : LaneOf(*first);
  return lane.Admit(std::move(rows));
}

absl::Status TelemetryWriter::Flush() {
  std::vector<absl::Status> results(lanes_.size());
  std::vector<std::thread> others;
  for (size_t i = 1; i < lanes_.size(); ++i) {
    others.emplace_back([this, i, &results] { results[i] = lanes_[i]->Flush(); });
  }
  results[0] = lanes_[0]->Flush();
  for (std::thread& t : others) t.join();
  for (const absl::Status& status : results) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

size_t TelemetryWriter::Pending() const {
  return Sum([](const TelemetryLane& l) { return l.Pending(); });
}
size_t TelemetryWriter::PendingFor(const std::string& agent_id) const {
  return LaneOf(agent_id).PendingFor(agent_id);
}
size_t TelemetryWriter::TrackedAgents() const {
  return Sum([](const TelemetryLane& l) { return l.TrackedAgents(); });
}
int64_t TelemetryWriter::RowsWritten() const {
  return Sum([](const TelemetryLane& l) { return l.RowsWritten(); });
}
int64_t TelemetryWriter::WriteErrors() const {
  return Sum([](const TelemetryLane& l) { return l.WriteErrors(); });
}
int64_t TelemetryWriter::DroppedRows() const {
  return Sum([](const TelemetryLane& l) { return l.DroppedRows(); });
}
int64_t TelemetryWriter::PoisonRows() const {
  return Sum([](const TelemetryLane& l) { return l.PoisonRows(); });
}
int64_t TelemetryWriter::ShareRefusals() const {
  return Sum([](const TelemetryLane& l) { return l.ShareRefusals(); });
}

}  // namespace ringwarden
