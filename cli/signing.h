// signing.h: building signed content envelopes, as `ringctl content sign` does.
//
// The manifest is serialized once and those bytes become the DSSE payload;
// nothing downstream re-serializes it.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ringwarden {

struct SignRequest {
  std::string key_pem;  // Ed25519 private key (PKCS#8 PEM)
  std::string channel;
  int64_t version = 0;
  std::string payload;
  std::string description;
  absl::Time now;
};

// SignContent returns the DSSE envelope JSON over the content's manifest.
absl::StatusOr<std::string> SignContent(const SignRequest& request);

}  // namespace ringwarden
