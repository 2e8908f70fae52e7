#include "server/core/policy_cache.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/core/policy_json.h"

namespace ringwarden {

absl::StatusOr<RolloutPolicy> PolicyCache::Get(const std::string& name, int64_t version) {
  if (version != 0) {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find({name, version});
    if (it != cache_.end()) {
      return it->second;
    }
  }
  ASSIGN_OR_RETURN(PolicyRecord record, store_.GetPolicy(name, version));
  auto policy = StoredPolicyFromJson(record.body_json);
  if (!policy.ok()) {
    return absl::InternalError(absl::StrCat("stored policy ", name, " v", record.version,
                                            " does not parse: ", policy.status().message()));
  }
  policy->name = record.name;
  policy->version = record.version;
  absl::MutexLock lock(&mu_);
  cache_[{name, record.version}] = *policy;
  return *policy;
}

}  // namespace ringwarden
