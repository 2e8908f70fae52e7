// fuzz_check.h: what a fuzz target asserts beyond "no crash".
//
//   FUZZ_CHECK(again.ok()) << again.status();
//
// A failed check prints the message and aborts, which libFuzzer reports as a
// crash and saves the input. Not for production code.
#pragma once

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "absl/strings/string_view.h"

namespace ringwarden::fuzzing {

// FuzzCheckFailure prints what failed when it goes out of scope, then aborts.
class FuzzCheckFailure {
 public:
  FuzzCheckFailure(const char* file, int line, const char* condition) {
    stream_ << file << ":" << line << ": FUZZ_CHECK(" << condition << ") failed: ";
  }
  [[noreturn]] ~FuzzCheckFailure() {
    std::cerr << stream_.str() << std::endl;
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// AsView is the fuzz input as bytes.
inline absl::string_view AsView(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace ringwarden::fuzzing

#define FUZZ_CHECK(condition) \
  if (condition) {            \
  } else /* NOLINT */         \
    ::ringwarden::fuzzing::FuzzCheckFailure(__FILE__, __LINE__, #condition).stream()
