// Fuzzes DecodeContentManifest (server/manifest_codec.h): the signed payload
// of an uploaded content envelope, decoded before the release key's signature
// is trusted for anything else.
#include <cstddef>
#include <cstdint>

#include "server/manifest_codec.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ringwarden::fuzzing::AsView;
  absl::StatusOr<ringwarden::ContentManifest> manifest =
      ringwarden::DecodeContentManifest(AsView(data, size));
  if (!manifest.ok()) {
    FUZZ_CHECK(manifest.status().code() == absl::StatusCode::kInvalidArgument) << manifest.status();
  }
  return 0;
}
