// Fuzzes the parsers of the bearer secrets people and hosts present: the first
// byte picks the kind, the rest is the token text. Even: an enrollment token
// "rwe_<id>_<secret>" (ParseSecretToken, common/secret_token.h), which comes
// from unauthenticated agents. Odd: an admin token "rwt_<id>_<secret>"
// (ParseAdminToken, common/admin_token.h). A refusal is UNAUTHENTICATED and
// never echoes the secret; what parses has the promised shape.
#include <cstddef>
#include <cstdint>

#include "absl/strings/match.h"
#include "common/admin_token.h"
#include "common/secret_token.h"
#include "tests/fuzz/fuzz_check.h"

namespace ringwarden::fuzzing {
namespace {

void EnrollmentToken(absl::string_view text) {
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
    return;
  }
  FUZZ_CHECK(parsed->id.size() == 16) << parsed->id;
  FUZZ_CHECK(parsed->secret_sha256.size() == 32);
  FUZZ_CHECK(!SecretMatches(*parsed, std::string(32, '\0')));
  FUZZ_CHECK(SecretMatches(*parsed, parsed->secret_sha256));
}

void AdminToken(absl::string_view text) {
  absl::StatusOr<AdminTokenParts> parsed = ParseAdminToken(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kUnauthenticated) << parsed.status();
    // Refusals say what is wrong with the shape in fixed words; nothing of the input.
    const absl::string_view m = parsed.status().message();
    constexpr absl::string_view kHead = "malformed admin token: ";
    constexpr absl::string_view kTail =
        "; expected rwt_<id>_<secret> as `ringctl token create` prints it";
    FUZZ_CHECK(absl::StartsWith(m, kHead) && absl::EndsWith(m, kTail)) << parsed.status();
    const absl::string_view why = m.substr(kHead.size(), m.size() - kHead.size() - kTail.size());
    FUZZ_CHECK(why == "longer than 256 characters" || why == "it does not start with rwt_" ||
               why == "the id after rwt_ must be 12 lowercase hex characters" ||
               why == "the secret is not base64url" ||
               why == "the secret is not canonical base64url" ||
               why == "the secret must be 43 base64url characters")
        << parsed.status();
    return;
  }
  FUZZ_CHECK(IsAdminTokenId(parsed->id)) << parsed->id;
  FUZZ_CHECK(parsed->secret.size() == kAdminTokenSecretBytes);
  FUZZ_CHECK(FormatAdminToken(*parsed) == text) << "does not print back as presented";
  FUZZ_CHECK(AdminTokenSecretMatches(parsed->secret, AdminTokenSecretSha256(parsed->secret)));
}

}  // namespace
}  // namespace ringwarden::fuzzing

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const absl::string_view text = ringwarden::fuzzing::AsView(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    ringwarden::fuzzing::EnrollmentToken(text);
  } else {
    ringwarden::fuzzing::AdminToken(text);
  }
  return 0;
}
