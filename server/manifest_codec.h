// manifest_codec.h: decodes ringwarden.v1.ContentManifest bytes for the core.
//
// The core's RolloutManager takes DecodeContentManifest as its ManifestDecoder,
// so the protobuf dependency stays in the transport library.
// Pure function; thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/manifest.h"

namespace ringwarden {

// DecodeContentManifest parses `signed_payload` (never re-serialized).
absl::StatusOr<ContentManifest> DecodeContentManifest(absl::string_view signed_payload);

}  // namespace ringwarden
