#include "tests/support/test_env.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/ringctl.h"
#include "common/dsse.h"
#include "common/pki.h"
#include "common/trust/trust.h"
#include "ringwarden/v1/agent.grpc.pb.h"

namespace ringwarden::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "test environment: " << what << std::endl;
  std::abort();
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ringwarden-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    Die("mkdtemp failed");
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out.flush()) {
    Die("cannot write " + path);
  }
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Die("cannot read " + path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string RootJson(int64_t version, const Ed25519PrivateKey& root,
                     const Ed25519PrivateKey& release, const Ed25519PrivateKey& server,
                     const std::vector<const Ed25519PrivateKey*>& signers) {
  RootSpec spec;
  spec.version = version;
  spec.expires = absl::Now() + absl::Hours(24 * 365);
  spec.keys = {root.PublicKey(), release.PublicKey(), server.PublicKey()};
  spec.root = TrustRole{{root.PublicKey().KeyId()}, 1};
  spec.release = TrustRole{{release.PublicKey().KeyId()}, 1};
  spec.server = TrustRole{{server.PublicKey().KeyId()}, 1};
  absl::StatusOr<std::string> payload = EncodeRoot(spec);
  if (!payload.ok()) {
    Die(absl::StrCat("cannot encode a test root: ", payload.status().ToString()));
  }
  absl::StatusOr<DsseEnvelope> envelope = SignEnvelope(kRootPayloadType, *payload, signers);
  if (!envelope.ok()) {
    Die(absl::StrCat("cannot sign a test root: ", envelope.status().ToString()));
  }
  return EncodeEnvelopeJson(*envelope);
}

TestKeys::TestKeys()
    : root(*Ed25519PrivateKey::Generate()),
      release(*Ed25519PrivateKey::Generate()),
      server(*Ed25519PrivateKey::Generate()),
      untrusted(*Ed25519PrivateKey::Generate()) {
  root_path = dir.File("root.json");
  release_key_path = dir.File("release.pem");
  release_pub_path = dir.File("release.pub");
  server_key_path = dir.File("server.pem");
  untrusted_key_path = dir.File("untrusted.pem");
  WriteFile(root_path, RootJson(1, root, release, server, {&root}));
  WriteFile(server_key_path, server.ToPem());
  WriteFile(release_key_path, release.ToPem());
  WriteFile(release_pub_path, release.PublicKey().ToPem());
  WriteFile(untrusted_key_path, untrusted.ToPem());
}

const TestPki& Pki() {
  static const TestPki* pki = [] {
    auto* p = new TestPki;
    char dir_template[] = "/tmp/ringwarden-test-pki.XXXXXX";
    if (mkdtemp(dir_template) == nullptr) {
      Die("cannot make a directory for the test PKI");
    }
    p->dir = dir_template;
    const std::string command =
        absl::StrCat(RINGWARDEN_SOURCE_DIR, "/deploy/tls.sh ", p->dir, " >/dev/null");
    if (std::system(command.c_str()) != 0) {
      Die("deploy/tls.sh failed to make the test PKI");
    }
    p->server_ca = p->dir + "/server-ca.crt";
    p->server_cert = p->dir + "/server.crt";
    p->server_key = p->dir + "/server.key";
    p->agent_ca_cert = p->dir + "/agent-ca.crt";
    p->agent_ca_key = p->dir + "/agent-ca.key";
    return p;
  }();
  return *pki;
}

std::string TestPki::ServerCaPem() const { return ReadFileOrDie(server_ca); }

std::vector<std::string> TlsServerArgs() {
  const TestPki& pki = Pki();
  return {"--tls-cert",  pki.server_cert,   "--tls-key",      pki.server_key,
          "--client-ca", pki.agent_ca_cert, "--agent-ca-key", pki.agent_ca_key};
}

std::string CreateEnrollmentToken(const std::string& server, const std::string& admin_token,
                                  int max_uses, const std::vector<std::string>& labels) {
  std::vector<std::string> args = {"enroll-token", "create",     "--ttl",
                                   "1h",           "--max-uses", std::to_string(max_uses)};
  for (const std::string& label : labels) {
    args.push_back("--label");
    args.push_back(label);
  }
  CliResult r = Ringctl(server, admin_token, args);
  if (r.code != 0) {
    Die("ringctl enroll-token create failed: " + r.err);
  }
  return std::string(absl::StripAsciiWhitespace(r.out));
}

std::shared_ptr<grpc::Channel> ServerChannel(const std::string& address, const TestAgent* agent) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Pki().ServerCaPem();
  if (agent != nullptr) {
    ssl.pem_private_key = agent->key_pem;
    ssl.pem_cert_chain = agent->cert_pem;
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one identity per connection
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

absl::StatusOr<TestAgent> EnrollAgent(const std::string& address, const std::string& id,
                                      const std::string& token,
                                      const std::map<std::string, std::string>& labels,
                                      const TestAgent* current) {
  absl::StatusOr<AgentKeyRequest> key = MakeAgentKeyRequest(id);
  if (!key.ok()) {
    return key.status();
  }
  v1::EnrollRequest req;
  req.set_agent_id(id);
  req.set_enrollment_token(token);
  req.set_csr_pem(key->csr_pem);
  req.mutable_labels()->insert(labels.begin(), labels.end());
  v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status status =
      v1::AgentService::NewStub(ServerChannel(address, current))->Enroll(&ctx, req, &resp);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return TestAgent{id, resp.ring(), key->private_key_pem, resp.certificate_pem()};
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Die("bind failed");
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string ServerBinary() { return RINGWARDEN_SERVER_BIN; }

pid_t Spawn(std::vector<std::string> args, const std::string& stderr_path) {
  const pid_t pid = fork();
  if (pid == 0) {
    // The child dies with the test process, even if the test crashes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    FILE* f = freopen(stderr_path.c_str(), "w", stderr);
    FILE* o = freopen("/dev/null", "w", stdout);
    (void)f;
    (void)o;
    std::vector<char*> argv;
    for (std::string& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

ServerProcess::ServerProcess(const std::string& database, const TestKeys& keys, int port,
                             std::vector<std::string> extra_args) {
  metrics_port_ = FreePort();
  const std::string port_file = dir_.File("port");
  std::vector<std::string> args = {ServerBinary(),
                                   "--database",
                                   database,
                                   "--listen",
                                   absl::StrCat("127.0.0.1:", port),
                                   "--metrics-listen",
                                   absl::StrCat("127.0.0.1:", metrics_port_),
                                   "--root",
                                   keys.root_path,
                                   "--server-key",
                                   keys.server_key_path,
                                   "--port-file",
                                   port_file};
  if (std::find(extra_args.begin(), extra_args.end(), "--insecure") == extra_args.end()) {
    for (const std::string& arg : TlsServerArgs()) {
      args.push_back(arg);
    }
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = Spawn(std::move(args), dir_.File("server.log"));
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    if (in >> port_ && port_ > 0) {
      return;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      Die("ringwarden-server exited at start:\n" + Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Die("ringwarden-server did not start within 60s:\n" + Log());
}

ServerProcess::~ServerProcess() { Stop(); }

void ServerProcess::Wait() {
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void ServerProcess::Stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    Wait();
  }
}

void ServerProcess::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait();
  }
}

std::string ServerProcess::Log() const {
  std::ifstream in(dir_.path() + "/server.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CliResult RunShell(const std::string& command) {
  CliResult r;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    r.code = -1;
    return r;
  }
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) {
    r.out.append(buf, n);
  }
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::optional<double> ScrapeMetric(int port, const std::string& name) {
  CliResult page =
      RunShell(absl::StrCat("curl -sf http://127.0.0.1:", port, "/metrics 2>/dev/null"));
  if (page.code != 0) {
    return std::nullopt;
  }
  for (absl::string_view line : absl::StrSplit(page.out, '\n')) {
    double value = 0;
    if (absl::StartsWith(line, name + " ") &&
        absl::SimpleAtod(line.substr(name.size() + 1), &value)) {
      return value;
    }
  }
  return std::nullopt;
}

CliResult Ringctl(const std::string& server, const std::string& token,
                  std::vector<std::string> args) {
  std::vector<std::string> full = {"ringctl", "--server",  server, "--token",
                                   token,     "--timeout", "30"};
  if (std::find(args.begin(), args.end(), "--insecure") == args.end()) {
    full.push_back("--ca");
    full.push_back(Pki().server_ca);
  }
  full.insert(full.end(), args.begin(), args.end());
  std::ostringstream out, err;
  CliResult r;
  r.code = RunRingctl(full, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

CliResult PublishContent(const std::string& server, const TestKeys& keys,
                         const std::string& channel, int64_t version, const std::string& content) {
  const std::string file = keys.dir.File(absl::StrCat(channel, "-v", version, ".bin"));
  WriteFile(file, content);
  CliResult sign = Ringctl(server, keys.releaser_token,
                           {"content", "sign", "--key", keys.release_key_path, "--channel", channel,
                            "--version", std::to_string(version), file});
  if (sign.code != 0) {
    return sign;
  }
  return Ringctl(server, keys.releaser_token, {"content", "upload", file});
}

}  // namespace ringwarden::testing
