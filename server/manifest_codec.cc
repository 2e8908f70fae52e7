#include "server/manifest_codec.h"

#include "ringwarden/v1/content.pb.h"

namespace ringwarden {

absl::StatusOr<ContentManifest> DecodeContentManifest(absl::string_view signed_payload) {
  v1::ContentManifest proto;
  if (!proto.ParseFromArray(signed_payload.data(), static_cast<int>(signed_payload.size()))) {
    return absl::InvalidArgumentError("signed payload is not a ContentManifest");
  }
  ContentManifest manifest;
  manifest.channel = proto.channel();
  manifest.version = proto.version();
  manifest.sha256 = proto.sha256();
  manifest.size = proto.size();
  manifest.description = proto.description();
  return manifest;
}

}  // namespace ringwarden
