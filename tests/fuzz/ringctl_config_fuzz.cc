// Fuzzes ParseConfig (cli/config.h), ringctl's TOML settings file (toml++).
// Refusals are INVALID_ARGUMENT naming the file; accepted files hold only
// the values ParseConfig promises.
#include <cstddef>
#include <cstdint>

#include "absl/strings/match.h"
#include "cli/config.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void CheckValues(const ringwarden::ConfigValues& v) {
  FUZZ_CHECK(!v.server.has_value() || !v.server->empty());
  FUZZ_CHECK(!v.token.has_value() || !v.token->empty());
  FUZZ_CHECK(!(v.token.has_value() && v.token_file.has_value()));
  FUZZ_CHECK(!v.timeout_seconds.has_value() ||
             (*v.timeout_seconds >= 0.1 && *v.timeout_seconds <= 3600))
      << *v.timeout_seconds;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringwarden;  // NOLINT
  absl::StatusOr<ConfigFile> file = ParseConfig(fuzzing::AsView(data, size), "fuzz.toml");
  if (!file.ok()) {
    FUZZ_CHECK(file.status().code() == absl::StatusCode::kInvalidArgument) << file.status();
    FUZZ_CHECK(absl::StartsWith(file.status().message(), "fuzz.toml")) << file.status();
    return 0;
  }
  CheckValues(file->top);
  for (const auto& [name, values] : file->profiles) {
    FUZZ_CHECK(!name.empty());
    CheckValues(values);
  }
  return 0;
}
