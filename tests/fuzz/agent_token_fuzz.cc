// Fuzzes VerifyAgentToken (server/agent_credentials.h), the --insecure agent
// bearer token. The first input byte picks the mode, by its value modulo 3:
// 0, the rest is a presented token (almost never MACed right, so this fuzzes
// the framing and the MAC check); 1, the rest is an rwa2 token's JSON body and
// 2, an rwa3 token's fields ("<iat>.<exp>.<agent id>"), which the target MACs
// with the server's secret as an issuer would, so that the claims behind the
// MAC are fuzzed too.
#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "server/agent_credentials.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/support/maced_token.h"

namespace {

constexpr absl::string_view kSecret = "fuzz-fleet-secret-0123456789abcdef";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringwarden;  // NOLINT
  if (size == 0) {
    return 0;
  }
  const absl::string_view rest = fuzzing::AsView(data + 1, size - 1);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const std::string token = data[0] % 3 == 0   ? std::string(rest)
                            : data[0] % 3 == 1 ? ringwarden::testing::MacedJsonToken(rest, kSecret)
                                               : ringwarden::testing::MacedToken(rest, kSecret);
  absl::StatusOr<PresentedCredential> presented = VerifyAgentToken(token, kSecret, now);
  if (!presented.ok()) {
    FUZZ_CHECK(presented.status().code() == absl::StatusCode::kUnauthenticated)
        << presented.status();
    return 0;
  }
  // A token that verifies was MACed with the secret: by this target, or by the issuer.
  absl::StatusOr<PresentedCredential> other = VerifyAgentToken(token, "another secret", now);
  FUZZ_CHECK(!other.ok()) << "a token verified under two secrets";
  const std::string reissued =
      IssueAgentToken(presented->agent_id, presented->issued_at, now + absl::Hours(1), kSecret);
  absl::StatusOr<PresentedCredential> again = VerifyAgentToken(reissued, kSecret, now);
  FUZZ_CHECK(again.ok() && again->agent_id == presented->agent_id &&
             again->issued_at == presented->issued_at)
      << again.status();
  return 0;
}
