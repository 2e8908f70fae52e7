#include "common/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace ringwarden {
namespace {

using ::testing::HasSubstr;

class ReadFileAtMostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringwarden-files-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& data) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }

  std::string dir_;
};

TEST_F(ReadFileAtMostTest, ReadsAWholeFileUpToAndIncludingTheLimit) {
  // More than one read's worth, with bytes a text read would mangle.
  std::string data(200000, 'x');
  data[7] = '\0';
  data[100] = '\r';
  const std::string path = Write("f", data);
  absl::StatusOr<std::string> read = ReadFileAtMost(path, data.size());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, data);
  absl::StatusOr<std::string> empty = ReadFileAtMost(Write("empty", ""), 10);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, "");
}

TEST_F(ReadFileAtMostTest, ALargerFileIsRefusedNamingItAndTheLimit) {
  const std::string path = Write("f", std::string(101, 'x'));
  absl::StatusOr<std::string> read = ReadFileAtMost(path, 100);
  EXPECT_TRUE(absl::IsInvalidArgument(read.status())) << read.status();
  EXPECT_EQ(read.status().message(), absl::StrCat(path, " is larger than the limit of 100 bytes"));
}

TEST_F(ReadFileAtMostTest, AnEndlessSourceStopsAtTheLimit) {
  absl::StatusOr<std::string> read = ReadFileAtMost("/dev/zero", kMaxPemFileBytes);
  EXPECT_TRUE(absl::IsInvalidArgument(read.status())) << read.status();
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("larger than the limit"));
}

TEST_F(ReadFileAtMostTest, AMissingFileOrADirectoryIsRefusedNamingIt) {
  const std::string missing = dir_ + "/nope";
  absl::StatusOr<std::string> read = ReadFileAtMost(missing, 100);
  EXPECT_TRUE(absl::IsNotFound(read.status())) << read.status();
  EXPECT_EQ(read.status().message(),
            absl::StrCat("cannot read ", missing, ": No such file or directory"));

  read = ReadFileAtMost(dir_, 100);
  EXPECT_TRUE(absl::IsInvalidArgument(read.status())) << read.status();
  EXPECT_EQ(read.status().message(), absl::StrCat("cannot read ", dir_, ": Is a directory"));
}

TEST_F(ReadFileAtMostTest, APipeIsReadToItsEnd) {
  // As `--ca <(kubectl get secret ...)` hands a file to a flag.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string pem = "-----BEGIN CERTIFICATE-----\n";
  ASSERT_EQ(write(fds[1], pem.data(), pem.size()), static_cast<ssize_t>(pem.size()));
  close(fds[1]);
  absl::StatusOr<std::string> read = ReadFileAtMost(absl::StrCat("/dev/fd/", fds[0]), 100);
  close(fds[0]);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, pem);
}

TEST_F(ReadFileAtMostTest, APemFileMustHoldSomethingAndAtMostAMebibyte) {
  const std::string pem = "-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n";
  absl::StatusOr<std::string> ok = ReadPemFile(Write("ok.pem", pem));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, pem);

  const std::string empty = Write("empty.pem", "");
  absl::StatusOr<std::string> read = ReadPemFile(empty);
  EXPECT_TRUE(absl::IsInvalidArgument(read.status())) << read.status();
  EXPECT_EQ(read.status().message(), absl::StrCat(empty, " is empty"));

  EXPECT_TRUE(ReadPemFile(Write("max.pem", std::string(kMaxPemFileBytes, 'x'))).ok());
  read = ReadPemFile(Write("big.pem", std::string(kMaxPemFileBytes + 1, 'x')));
  EXPECT_TRUE(absl::IsInvalidArgument(read.status())) << read.status();
  EXPECT_TRUE(absl::IsNotFound(ReadPemFile(dir_ + "/nope.pem").status()));
}

}  // namespace
}  // namespace ringwarden
