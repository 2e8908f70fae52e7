// Fuzzes SanitizeText (common/names.h), which makes agent-supplied free text
// (telemetry details, boot ids, enrollment descriptions) safe to store in
// PostgreSQL text columns and to print as JSON. The first two bytes are the
// byte limit. The output must be valid UTF-8 as PostgreSQL and JSON define it
// (no overlong forms, no surrogates, nothing above U+10FFFF, no NUL), within
// the limit, and unchanged by a second pass.
#include <cstddef>
#include <cstdint>

#include "common/names.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// StrictUtf8 is RFC 3629 UTF-8 without U+0000.
bool StrictUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) {
      return false;
    }
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) {
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  const size_t max_bytes = (size_t{data[0]} << 8) | data[1];
  const absl::string_view text = ringwarden::fuzzing::AsView(data + 2, size - 2);
  const std::string out = ringwarden::SanitizeText(text, max_bytes);
  FUZZ_CHECK(out.size() <= max_bytes) << out.size() << " > " << max_bytes;
  FUZZ_CHECK(StrictUtf8(out)) << "not valid UTF-8: " << out;
  FUZZ_CHECK(ringwarden::SanitizeText(out, max_bytes) == out) << "not idempotent";
  if (StrictUtf8(text) && text.size() <= max_bytes) {
    FUZZ_CHECK(out == text) << "changed valid text";
  }
  return 0;
}
