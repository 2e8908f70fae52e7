#include "cli/signing.h"

#include "absl/strings/str_cat.h"
#include "common/dsse.h"
#include "common/ed25519.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "ringwarden/v1/content.pb.h"

namespace ringwarden {

absl::StatusOr<std::string> SignContent(const SignRequest& request) {
  RETURN_IF_ERROR(ValidateChannelName(request.channel));
  if (request.version < 1) {
    return absl::InvalidArgumentError("--version must be >= 1");
  }
  if (request.payload.empty()) {
    return absl::InvalidArgumentError("content file is empty; nothing to sign");
  }
  ASSIGN_OR_RETURN(Ed25519PrivateKey key, Ed25519PrivateKey::FromPem(request.key_pem));
  v1::ContentManifest manifest;
  manifest.set_channel(request.channel);
  manifest.set_version(request.version);
  manifest.set_sha256(Sha256Hex(request.payload));
  manifest.set_size(static_cast<int64_t>(request.payload.size()));
  manifest.set_created_unix(absl::ToUnixSeconds(request.now));
  manifest.set_description(request.description);
  std::string payload;
  if (!manifest.SerializeToString(&payload)) {
    return absl::InternalError("cannot serialize the manifest");
  }
  ASSIGN_OR_RETURN(DsseEnvelope envelope, SignEnvelope(kManifestPayloadType, payload, {&key}));
  return EncodeEnvelopeJson(envelope);
}

}  // namespace ringwarden
