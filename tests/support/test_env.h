// test_env.h: real components for integration tests.
//
// TestDatabase creates a fresh database in the PostgreSQL cluster that
// ./tests/run.sh provides (RINGWARDEN_TEST_PG) and drops it afterwards; a
// missing cluster fails the test, it never skips. ServerProcess runs the real
// ringwarden-server binary on loopback. TestKeys writes a release key pair
// into a temporary directory; BootstrapTestTokens (admin_tokens_env.h) gives a
// database its admin tokens.
#pragma once

#include <grpcpp/channel.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ed25519.h"
#include "tests/support/test_db.h"

namespace ringwarden::testing {

// TempDir is a directory removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// WriteFile writes `data` to `path`, aborting the test binary on failure.
void WriteFile(const std::string& path, const std::string& data);
std::string ReadFileOrDie(const std::string& path);

// TestDatabase is a fresh database of the test cluster, dropped afterwards.
using TestDatabase = ScratchDatabase;

// TestKeys: a root of trust (version 1: one root key, the release key, the
// server key), an untrusted key, and the admin tokens BootstrapTestTokens made.
struct TestKeys {
  TestKeys();
  TempDir dir;
  Ed25519PrivateKey root;
  Ed25519PrivateKey release;
  Ed25519PrivateKey server;
  Ed25519PrivateKey untrusted;
  std::string root_path;           // root.json, version 1, signed by `root`
  std::string release_key_path;    // private PEM
  std::string release_pub_path;    // public PEM
  std::string server_key_path;     // private PEM the server signs assignments with
  std::string untrusted_key_path;  // private PEM
  std::string admin_token;         // alice
  std::string releaser_token;      // bob
  std::string viewer_token;        // carol
};

// TestPki is a throwaway PKI made once per test process by deploy/tls.sh with
// OpenSSL: the server's CA and certificate (localhost, 127.0.0.1) and the
// agent CA that issues agents' client certificates.
struct TestPki {
  std::string dir;
  std::string server_ca;  // verifies the server: ringctl and agents take it as --ca
  std::string server_cert, server_key;
  std::string agent_ca_cert, agent_ca_key;
  std::string ServerCaPem() const;
};
const TestPki& Pki();

// TlsServerArgs are the flags that make the server serve TLS with Pki().
std::vector<std::string> TlsServerArgs();

// CreateEnrollmentToken makes an enrollment token through ringctl with
// `admin_token` (TestKeys::admin_token after BootstrapTestTokens) and returns
// its text; aborts the test binary when that fails.
std::string CreateEnrollmentToken(const std::string& server, const std::string& admin_token,
                                  int max_uses, const std::vector<std::string>& labels = {});

// TestAgent is an agent identity enrolled over TLS: its key and certificate.
struct TestAgent {
  std::string id;
  std::string ring;
  std::string key_pem;
  std::string cert_pem;
};

// ServerChannel is a TLS channel to `address` verifying the server with
// Pki(), presenting `agent`'s client certificate when given.
std::shared_ptr<grpc::Channel> ServerChannel(const std::string& address,
                                             const TestAgent* agent = nullptr);

// EnrollAgent enrolls `id` over TLS with `token` and a fresh key (over
// `current`'s certificate when given); returns the refusal otherwise.
absl::StatusOr<TestAgent> EnrollAgent(const std::string& address, const std::string& id,
                                      const std::string& token,
                                      const std::map<std::string, std::string>& labels = {},
                                      const TestAgent* current = nullptr);

// FreePort returns a loopback port that was free a moment ago.
// RootJson returns root metadata `version` naming `root` as root key, `release`
// as release key and `server` as server key, signed by every key of `signers`.
std::string RootJson(int64_t version, const Ed25519PrivateKey& root,
                     const Ed25519PrivateKey& release, const Ed25519PrivateKey& server,
                     const std::vector<const Ed25519PrivateKey*>& signers);

int FreePort();

class ServerProcess {
 public:
  // Starts ringwarden-server on 127.0.0.1:port (0 picks one) and waits until it
  // serves: over TLS with Pki(), unless extra_args hold --insecure.
  ServerProcess(const std::string& database, const TestKeys& keys, int port = 0,
                std::vector<std::string> extra_args = {});
  ~ServerProcess();

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Stop sends SIGTERM and waits; Kill sends SIGKILL (a crash) and waits.
  void Stop();
  void Kill();
  std::string Log() const;

 private:
  void Wait();
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  TempDir dir_;
};

// CliResult is one ringctl run.
struct CliResult {
  int code = 0;
  std::string out;
  std::string err;
};

// Ringctl runs ringctl in-process against `server` with `token`, verifying the
// server with Pki() unless args hold --insecure.
CliResult Ringctl(const std::string& server, const std::string& token,
                  std::vector<std::string> args);

// PublishContent writes `content` to a file, signs it with the release key
// (`ringctl content sign`) and uploads it (`ringctl content upload`); returns
// the first failing ringctl run, or the upload's.
CliResult PublishContent(const std::string& server, const TestKeys& keys,
                         const std::string& channel, int64_t version, const std::string& content);

// RunShell runs `command` with /bin/sh; `out` holds its stdout, `code` its
// exit status (-1 when it did not exit normally).
CliResult RunShell(const std::string& command);

// ScrapeMetric reads the value of series `name` (with its labels, as printed)
// from http://127.0.0.1:<port>/metrics; nullopt when the page or the series
// is missing.
std::optional<double> ScrapeMetric(int port, const std::string& name);

// Spawn starts `args` (args[0] is the binary) with stderr written to
// `stderr_path` and stdout discarded; the child is killed if the test dies.
pid_t Spawn(std::vector<std::string> args, const std::string& stderr_path);

// ServerBinary returns the path of the built ringwarden-server.
std::string ServerBinary();

}  // namespace ringwarden::testing
