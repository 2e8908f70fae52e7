// manifest.h: the signed content manifest, as the core reads it.
//
// The manifest travels as protobuf bytes inside a DSSE envelope; the core
// never sees protobuf. The transport hands it a ManifestDecoder that parses
// the exact bytes that were verified (server/manifest_codec.h), and a
// ReleaseKeysSource naming who must have signed them.
// Value types; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/dsse.h"

namespace ringwarden {

// ContentManifest is what a release key signed about one content version.
struct ContentManifest {
  std::string channel;
  int64_t version = 0;
  std::string sha256;  // lowercase hex of the payload
  int64_t size = 0;
  std::string description;
};

// ManifestDecoder parses verified envelope payload bytes; INVALID_ARGUMENT
// when they are not a manifest.
using ManifestDecoder = std::function<absl::StatusOr<ContentManifest>(absl::string_view)>;

// ReleaseKeysSource returns the keys (and threshold) a manifest must be signed
// by now: the release role of the root of trust the server trusts, which a
// root rotation changes while the server runs. The transport provides it.
using ReleaseKeysSource = std::function<TrustedKeys()>;

}  // namespace ringwarden
