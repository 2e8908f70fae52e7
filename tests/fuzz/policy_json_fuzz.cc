// Fuzzes PolicyFromJson (server/core/policy_json.h): policies come from
// `ringctl policy set --file`. Whatever parses must print (PolicyToJson) and
// parse back to the same stored form.
#include <cstddef>
#include <cstdint>

#include "server/core/policy_json.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringwarden;  // NOLINT
  absl::StatusOr<RolloutPolicy> policy =
      PolicyFromJson(std::string(reinterpret_cast<const char*>(data), size));
  if (!policy.ok()) {
    FUZZ_CHECK(policy.status().code() == absl::StatusCode::kInvalidArgument) << policy.status();
    return 0;
  }
  const std::string printed = PolicyToJson(*policy).dump();
  absl::StatusOr<RolloutPolicy> again = PolicyFromJson(printed);
  FUZZ_CHECK(again.ok()) << again.status() << " for " << printed;
  FUZZ_CHECK(PolicyToJson(*again).dump() == printed) << printed;
  return 0;
}
