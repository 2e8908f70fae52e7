// Fuzzes ParseSecretToken (common/secret_token.h): enrollment tokens ("rwe_")
// come from unauthenticated agents. A refusal must be UNAUTHENTICATED and must
// not echo the presented secret.
#include <cstddef>
#include <cstdint>

#include "absl/strings/match.h"
#include "common/secret_token.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringwarden;  // NOLINT
  const absl::string_view text = fuzzing::AsView(data, size);
  absl::StatusOr<ParsedToken> parsed = ParseSecretToken("rwe", text);
  if (!parsed.ok()) {
    // Refusals say the expected form or name the public id; never the secret.
    const absl::string_view m = parsed.status().message();
    constexpr absl::string_view kBadSecret = "malformed token: the secret of rwe_";
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kUnauthenticated) << parsed.status();
    FUZZ_CHECK(m == "malformed token: expected \"rwe_<id>_<secret>\" as ringctl printed it" ||
               (absl::StartsWith(m, kBadSecret) && absl::EndsWith(m, " is not base64url") &&
                m.size() == kBadSecret.size() + 16 + 17 &&
                m.substr(kBadSecret.size(), 16) == text.substr(4, 16)))
        << parsed.status();
    return 0;
  }
  FUZZ_CHECK(parsed->id.size() == 16) << parsed->id;
  FUZZ_CHECK(parsed->secret_sha256.size() == 32);
  FUZZ_CHECK(!SecretMatches(*parsed, std::string(32, '\0')));
  FUZZ_CHECK(SecretMatches(*parsed, parsed->secret_sha256));
  return 0;
}
