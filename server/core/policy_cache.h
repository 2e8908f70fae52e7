// policy_cache.h: parsed rollout policies by name and version.
//
// Policy versions never change once stored, so a parsed version is cached for
// the life of the process. Thread-safety: safe to call from any thread.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/domain/decision_policy.h"
#include "server/storage/store.h"

namespace ringwarden {

class PolicyCache {
 public:
  explicit PolicyCache(PolicyStore& store) : store_(store) {}

  // Get returns version `version` of `name` (0: the newest, not cached).
  absl::StatusOr<RolloutPolicy> Get(const std::string& name, int64_t version);

 private:
  PolicyStore& store_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, int64_t>, RolloutPolicy> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ringwarden
