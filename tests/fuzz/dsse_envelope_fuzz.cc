// Fuzzes ParseEnvelopeJson (common/dsse.h): DSSE envelopes arrive from
// ringctl uploads and are stored and served to agents. Whatever parses must
// encode and parse back to the same envelope, and verifying it must fail
// cleanly (it is never signed by the fuzzer's key).
#include <cstddef>
#include <cstdint>

#include "common/dsse.h"
#include "tests/fuzz/fuzz_check.h"

namespace ringwarden::fuzzing {
namespace {

bool SameEnvelope(const DsseEnvelope& a, const DsseEnvelope& b) {
  if (a.payload_type != b.payload_type || a.payload != b.payload ||
      a.signatures.size() != b.signatures.size()) {
    return false;
  }
  for (size_t i = 0; i < a.signatures.size(); ++i) {
    if (a.signatures[i].keyid != b.signatures[i].keyid ||
        a.signatures[i].sig != b.signatures[i].sig) {
      return false;
    }
  }
  return true;
}

const TrustedKeys& Keys() {
  static const TrustedKeys* const keys = [] {
    absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::FromSeed(std::string(32, '\x07'));
    FUZZ_CHECK(key.ok()) << key.status();
    return new TrustedKeys({key->PublicKey()}, 1);
  }();
  return *keys;
}

}  // namespace
}  // namespace ringwarden::fuzzing

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ringwarden;           // NOLINT
  using namespace ringwarden::fuzzing;  // NOLINT
  absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(AsView(data, size));
  if (!envelope.ok()) {
    FUZZ_CHECK(envelope.status().code() == absl::StatusCode::kInvalidArgument) << envelope.status();
    return 0;
  }
  const std::string encoded = EncodeEnvelopeJson(*envelope);
  if (encoded.size() <= kMaxEnvelopeJsonBytes) {
    absl::StatusOr<DsseEnvelope> again = ParseEnvelopeJson(encoded);
    FUZZ_CHECK(again.ok()) << again.status() << " for " << encoded;
    FUZZ_CHECK(SameEnvelope(*envelope, *again)) << encoded;
  }
  absl::StatusOr<VerifiedEnvelope> verified = Keys().Verify(*envelope, envelope->payload_type);
  FUZZ_CHECK(!verified.ok()) << "an envelope the fuzzer made verified";
  return 0;
}
