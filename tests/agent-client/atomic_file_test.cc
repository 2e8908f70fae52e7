#include "agent-client/atomic_file.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "tests/agent-client/test_files.h"

namespace ringwarden::agent {
namespace {

// ReadOnlyDir makes `dir` read-only for the test's scope.
class ReadOnlyDir {
 public:
  explicit ReadOnlyDir(std::string dir) : dir_(std::move(dir)) { ::chmod(dir_.c_str(), 0500); }
  ~ReadOnlyDir() { ::chmod(dir_.c_str(), 0700); }

  // Enforced is false for a privileged user, whom permissions do not stop.
  bool Enforced() const { return ::access(dir_.c_str(), W_OK) != 0; }

 private:
  std::string dir_;
};

TEST(AtomicFileTest, WriteFileAtomicallyReplacesAndLeavesNoTempFile) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.path(), "state", "first").ok());
  EXPECT_EQ(ReadAll(dir.path() + "/state"), "first");
  ASSERT_TRUE(WriteFileAtomically(dir.path(), "state", "second, longer").ok());
  EXPECT_EQ(ReadAll(dir.path() + "/state"), "second, longer");
  ASSERT_TRUE(WriteFileAtomically(dir.path(), "state", "").ok());
  EXPECT_EQ(ReadAll(dir.path() + "/state"), "");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state.tmp"));

  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AtomicFileTest, ReadFileReturnsBinaryAndLargeContentWhole) {
  TempDir dir;
  std::string data(200 * 1024 + 7, '\0');  // more than one read buffer
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>(i * 31);
  }
  const std::string path = dir.path() + "/blob";
  ASSERT_TRUE(WriteFileSynced(path, data).ok());
  absl::StatusOr<std::string> read = ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, data);
  EXPECT_EQ(ReadAll(path), data);
}

TEST(AtomicFileTest, WriteFileSyncedTruncates) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  ASSERT_TRUE(WriteFileSynced(path, "a long first version").ok());
  ASSERT_TRUE(WriteFileSynced(path, "short").ok());
  EXPECT_EQ(ReadAll(path), "short");
}

TEST(AtomicFileTest, MissingFilesAndDirectoriesAreNotFound) {
  TempDir dir;
  const std::string missing = dir.path() + "/missing";
  absl::StatusOr<std::string> read = ReadFile(missing);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find(missing), std::string::npos) << read.status();

  absl::Status write = WriteFileAtomically(missing, "state", "x");
  EXPECT_EQ(write.code(), absl::StatusCode::kNotFound) << write;
  EXPECT_EQ(FsyncDir(missing).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MakeDir(missing + "/child").code(), absl::StatusCode::kNotFound);

  absl::Status rename = RenameFile(missing, dir.path() + "/to");
  EXPECT_EQ(rename.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(rename.message().find("rename"), std::string::npos) << rename;
  EXPECT_FALSE(FileExists(missing));
}

TEST(AtomicFileTest, FileWhereADirectoryIsExpectedFails) {
  TempDir dir;
  const std::string file = dir.path() + "/file";
  ASSERT_TRUE(WriteFileSynced(file, "x").ok());
  EXPECT_FALSE(WriteFileAtomically(file, "state", "y").ok());
  EXPECT_FALSE(FsyncDir(file).ok());
  EXPECT_FALSE(MakeDir(file + "/child").ok());
  EXPECT_EQ(ReadAll(file), "x");
}

TEST(AtomicFileTest, UnwritableDirectoryIsPermissionDeniedAndKeepsOldFile) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.path(), "state", "old").ok());
  ReadOnlyDir read_only(dir.path());
  auto refused_and_kept = [&dir]() {
    absl::Status status = WriteFileAtomically(dir.path(), "state", "new");
    return status.code() == absl::StatusCode::kPermissionDenied &&
           status.message().find("state.tmp") != absl::string_view::npos &&
           ReadAll(dir.path() + "/state") == "old" &&
           MakeDir(dir.path() + "/child").code() == absl::StatusCode::kPermissionDenied;
  };
  if (read_only.Enforced()) {
    EXPECT_TRUE(refused_and_kept());
    return;
  }
  // Root ignores directory permissions (CI runs as root): check as an
  // unprivileged user in a child process that owns the read-only directory.
  constexpr uid_t kNobody = 65534;
  ASSERT_EQ(::chown(dir.path().c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(::chown((dir.path() + "/state").c_str(), kNobody, kNobody), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
      ::_exit(2);
    }
    ::_exit(refused_and_kept() ? 0 : 1);
  }
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFEXITED(wait_status));
  EXPECT_EQ(WEXITSTATUS(wait_status), 0) << "1: not refused or old file lost; 2: setuid failed";
  ASSERT_EQ(::chown(dir.path().c_str(), 0, 0), 0);
}

TEST(AtomicFileTest, MakeDirCreatesOnceAndAcceptsExisting) {
  TempDir dir;
  const std::string sub = dir.path() + "/sub";
  EXPECT_FALSE(FileExists(sub));
  ASSERT_TRUE(MakeDir(sub).ok());
  EXPECT_TRUE(FileExists(sub));
  EXPECT_TRUE(std::filesystem::is_directory(sub));
  EXPECT_TRUE(MakeDir(sub).ok());
  EXPECT_TRUE(FsyncDir(sub).ok());
}

TEST(AtomicFileTest, ErrnoStatusMapsCodesAndNamesTheOperation) {
  absl::Status s = ErrnoStatus("open", "/x/y", ENOENT);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("open /x/y: "), std::string::npos) << s;
  EXPECT_EQ(ErrnoStatus("open", "/x", EACCES).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus("open", "/x", EPERM).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus("write", "/x", ENOSPC).code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ringwarden::agent
