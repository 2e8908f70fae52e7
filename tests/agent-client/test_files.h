// test_files.h: scratch directories and file reading for the agent-client tests.
//
//   TempDir dir;                                  // fresh, removed at scope exit
//   EXPECT_EQ(ReadAll(dir.path() + "/x"), "...");  // "" when unreadable
//
// Test helpers only. Thread-safety: a TempDir belongs to one test.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace ringwarden::agent {

// TempDir is a fresh directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/rw-store-XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ReadAll returns the bytes of `path` read with the standard library, not with
// the code under test.
inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ringwarden::agent
