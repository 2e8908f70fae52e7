// lru_map.h: a map with a fixed capacity that forgets its least recently used entry.
//
// Per-agent state kept by a server replica (rate-limit buckets, the last telemetry batch
// number) must not grow with the number of agents that ever called: an LruMap holds at most
// `capacity` entries and evicts the one touched longest ago to make room.
//
//   LruMap<int64_t> last_batch(/*capacity=*/100'000);
//   int64_t& seq = last_batch.GetOrInsert("host-1", 0);  // now the most recent entry
//
// Not thread-safe: the owner serializes calls. Memory: the key twice (list and index) plus
// the value and ~64 bytes of bookkeeping per entry.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace ringwarden {

template <typename V>
class LruMap {
 public:
  // LruMap holds at most `capacity` entries (at least 1).
  explicit LruMap(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // GetOrInsert returns the value of `key`, inserting `initial` when absent (evicting the
  // least recently used entry when full), and marks the entry most recently used. The
  // reference stays valid until the next call that inserts.
  V& GetOrInsert(absl::string_view key, V initial) {
    if (V* present = Get(key); present != nullptr) {
      return *present;
    }
    if (order_.size() >= capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
      ++evictions_;
    }
    order_.emplace_front(std::string(key), std::move(initial));
    index_.emplace(order_.front().first, order_.begin());
    return order_.front().second;
  }

  // Get returns the value of `key` and marks it most recently used, or nullptr when absent
  // (nothing is inserted). The pointer stays valid until the next call that inserts.
  V* Get(absl::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) {
      return nullptr;
    }
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
  }

  // Find returns the value of `key` without changing its recency, or nullptr.
  const V* Find(absl::string_view key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }

  size_t size() const { return order_.size(); }
  size_t capacity() const { return capacity_; }
  // evictions counts entries forgotten to make room.
  int64_t evictions() const { return evictions_; }

 private:
  using Entry = std::pair<std::string, V>;
  const size_t capacity_;
  std::list<Entry> order_;  // most recently used first
  // Keys are views of the strings in `order_`, whose nodes never move.
  absl::flat_hash_map<absl::string_view, typename std::list<Entry>::iterator> index_;
  int64_t evictions_ = 0;
};

}  // namespace ringwarden
