// Agent identity and transport on the real server over TLS and mTLS on
// loopback, with a PKI made in the test by OpenSSL (deploy/tls.sh): every
// refusal the identity issue lists, with its code and message, and the Sybil
// scenario with a real fleet.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent-client/sim/fleet.h"
#include "common/pki.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::CliResult;
using testing::EnrollAgent;
using testing::Pki;
using testing::Ringctl;
using testing::ServerChannel;
using testing::ServerProcess;
using testing::TestAgent;
using testing::TestDatabase;
using testing::TestKeys;

constexpr char kChannel[] = "rules.behavioral";

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_);
  }

  CliResult Admin(std::vector<std::string> args) {
    return Ringctl(server_->address(), keys_.admin_token, std::move(args));
  }

  // Poll calls GetAssignment as `id` over `channel`.
  grpc::Status Poll(const std::shared_ptr<grpc::Channel>& channel, const std::string& id) {
    v1::GetAssignmentRequest req;
    req.set_agent_id(id);
    v1::GetAssignmentResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return v1::AgentService::NewStub(channel)->GetAssignment(&ctx, req, &resp);
  }

  static void ExpectRefused(const grpc::Status& status, grpc::StatusCode code,
                            const std::string& message) {
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_NE(status.error_message().find(message), std::string::npos) << status.error_message();
  }

  static void ExpectRefused(const absl::Status& status, absl::StatusCode code,
                            const std::string& message) {
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_NE(std::string(status.message()).find(message), std::string::npos) << status;
  }

  TestAgent Enrolled(const std::string& id, const std::vector<std::string>& labels = {}) {
    absl::StatusOr<TestAgent> agent = EnrollAgent(
        server_->address(), id,
        testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 1, labels));
    EXPECT_TRUE(agent.ok()) << agent.status();
    return agent.ok() ? *agent : TestAgent{};
  }

  TestDatabase db_;
  TestKeys keys_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(IdentityTest, AnEnrolledAgentPollsOverItsOwnCertificate) {
  TestAgent agent = Enrolled("host-1");
  absl::StatusOr<CertificateInfo> cert = InspectCertificate(agent.cert_pem);
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(cert->uri_san, "spiffe://ringwarden/agent/host-1");
  EXPECT_TRUE(Poll(ServerChannel(server_->address(), &agent), "host-1").ok());
}

TEST_F(IdentityTest, AnAgentWithoutACertificateIsRefused) {
  Enrolled("host-1");
  ExpectRefused(Poll(ServerChannel(server_->address()), "host-1"),
                grpc::StatusCode::UNAUTHENTICATED, "needs the agent's client certificate");
}

TEST_F(IdentityTest, ACertificateFromAnotherCaIsRefused) {
  // A CA of the attacker's own, issuing a certificate that names host-1.
  testing::TempDir rogue;
  ASSERT_EQ(std::system(
                absl::StrCat(RINGWARDEN_SOURCE_DIR, "/deploy/tls.sh ", rogue.path(), " >/dev/null")
                    .c_str()),
            0);
  absl::StatusOr<CertificateAuthority> ca =
      CertificateAuthority::FromPem(testing::ReadFileOrDie(rogue.File("agent-ca.crt")),
                                    testing::ReadFileOrDie(rogue.File("agent-ca.key")));
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<AgentKeyRequest> key = MakeAgentKeyRequest("host-1");
  ASSERT_TRUE(key.ok());
  absl::StatusOr<std::string> cert =
      ca->IssueAgentCertificate(key->csr_pem, "host-1", absl::Now(), absl::Now() + absl::Hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();
  Enrolled("host-1");
  TestAgent forged{"host-1", "", key->private_key_pem, *cert};
  const grpc::Status refused = Poll(ServerChannel(server_->address(), &forged), "host-1");
  // The handshake fails: the call never reaches a handler.
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
}

TEST_F(IdentityTest, AnExpiredCertificateIsRefused) {
  // Issued by the real agent CA, but expired an hour ago.
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::FromPem(
      testing::ReadFileOrDie(Pki().agent_ca_cert), testing::ReadFileOrDie(Pki().agent_ca_key));
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<AgentKeyRequest> key = MakeAgentKeyRequest("host-1");
  ASSERT_TRUE(key.ok());
  absl::StatusOr<std::string> cert = ca->IssueAgentCertificate(
      key->csr_pem, "host-1", absl::Now() - absl::Hours(2), absl::Now() - absl::Hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();
  Enrolled("host-1");
  TestAgent expired{"host-1", "", key->private_key_pem, *cert};
  EXPECT_EQ(Poll(ServerChannel(server_->address(), &expired), "host-1").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The same key with a current certificate from the same CA gets through:
  // only the expiry was refused.
  absl::StatusOr<std::string> current = ca->IssueAgentCertificate(
      key->csr_pem, "host-1", absl::Now() - absl::Minutes(1), absl::Now() + absl::Hours(1));
  ASSERT_TRUE(current.ok());
  TestAgent fresh{"host-1", "", key->private_key_pem, *current};
  EXPECT_TRUE(Poll(ServerChannel(server_->address(), &fresh), "host-1").ok());
}

TEST_F(IdentityTest, ARevokedAgentIsShutOutAtItsNextCall) {
  TestAgent agent = Enrolled("host-1");
  auto channel = ServerChannel(server_->address(), &agent);
  ASSERT_TRUE(Poll(channel, "host-1").ok());
  CliResult revoke = Admin({"agents", "revoke", "host-1", "--reason", "laptop stolen"});
  ASSERT_EQ(revoke.code, 0) << revoke.err;
  ExpectRefused(Poll(channel, "host-1"), grpc::StatusCode::PERMISSION_DENIED,
                "agent host-1 was revoked");
  // A reset lets the host enroll again with a fresh token; the old certificate stays dead.
  absl::SleepFor(absl::Seconds(1));
  ASSERT_EQ(Admin({"agents", "reset", "host-1", "--reason", "reinstalled"}).code, 0);
  ExpectRefused(Poll(channel, "host-1"), grpc::StatusCode::PERMISSION_DENIED, "predates the reset");
  TestAgent again = Enrolled("host-1");
  EXPECT_TRUE(Poll(ServerChannel(server_->address(), &again), "host-1").ok());
}

TEST_F(IdentityTest, AgentAReportingAsBIsRefused) {
  TestAgent a = Enrolled("agent-a");
  Enrolled("agent-b");
  v1::ReportTelemetryRequest req;
  req.set_agent_id("agent-b");
  req.set_batch_seq(1);
  req.add_events()->mutable_heartbeat()->set_boot_id("b");
  v1::ReportTelemetryResponse resp;
  grpc::ClientContext ctx;
  ExpectRefused(v1::AgentService::NewStub(ServerChannel(server_->address(), &a))
                    ->ReportTelemetry(&ctx, req, &resp),
                grpc::StatusCode::PERMISSION_DENIED,
                "belongs to agent agent-a; it cannot act as agent agent-b");
  ExpectRefused(Poll(ServerChannel(server_->address(), &a), "agent-b"),
                grpc::StatusCode::PERMISSION_DENIED, "cannot act as agent agent-b");
}

TEST_F(IdentityTest, ReEnrollingAnExistingIdNeedsItsCredential) {
  TestAgent original = Enrolled("host-1");
  const std::string token =
      testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 5);
  ExpectRefused(EnrollAgent(server_->address(), "host-1", token).status(),
                absl::StatusCode::kPermissionDenied, "already enrolled");
  // The agent itself, over its certificate, may (a new key, the same id).
  absl::StatusOr<TestAgent> renewed =
      EnrollAgent(server_->address(), "host-1", token, {}, &original);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_TRUE(Poll(ServerChannel(server_->address(), &*renewed), "host-1").ok());
}

TEST_F(IdentityTest, SpentAndExpiredTokensAreRefused) {
  const std::string token =
      testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 1);
  ASSERT_TRUE(EnrollAgent(server_->address(), "host-1", token).ok());
  ExpectRefused(EnrollAgent(server_->address(), "host-2", token).status(),
                absl::StatusCode::kPermissionDenied, "is spent: 1 of 1 uses taken");
  CliResult created = Admin({"enroll-token", "create", "--ttl", "1m", "--max-uses", "5"});
  ASSERT_EQ(created.code, 0) << created.err;
  const std::string short_lived(absl::StripAsciiWhitespace(created.out));
  db_.Query("UPDATE enrollment_tokens SET expires_at = now() - interval '1 second' WHERE uses = 0");
  ExpectRefused(EnrollAgent(server_->address(), "host-3", short_lived).status(),
                absl::StatusCode::kPermissionDenied, "expired at");
  // The list shows uses and never a secret.
  CliResult list = Admin({"enroll-token", "list", "-o", "json"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out.find(token.substr(22)), std::string::npos);
  EXPECT_EQ(db_.Query("SELECT count(*) FROM enrollment_tokens WHERE position('" + token.substr(22) +
                      "' in encode(secret_sha256, 'escape')) > 0"),
            "0");
}

TEST_F(IdentityTest, ASelfAssertedDogfoodLabelDoesNotLandInCanary) {
  // Ids whose hash is not canary: only a label could put them there.
  const std::string token =
      testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 20);
  int checked = 0;
  for (int i = 0; i < 20; ++i) {
    const std::string id = absl::StrCat("self-", i);
    absl::StatusOr<TestAgent> agent =
        EnrollAgent(server_->address(), id, token, {{"group", "dogfood"}});
    ASSERT_TRUE(agent.ok()) << agent.status();
    EXPECT_NE(agent->ring, "canary") << id << " hashed into canary or its own label counted";
    ++checked;
  }
  EXPECT_EQ(checked, 20);
  // An admin's label does.
  CliResult label =
      Admin({"agents", "label", "self-0", "--label", "group=dogfood", "--reason", "dogfood"});
  ASSERT_EQ(label.code, 0) << label.err;
  EXPECT_NE(label.out.find("ring canary"), std::string::npos) << label.out;
}

TEST_F(IdentityTest, OnlyAdminsManageIdentity) {
  Enrolled("host-1");
  CliResult releaser = Ringctl(server_->address(), keys_.releaser_token,
                               {"agents", "revoke", "host-1", "--reason", "x"});
  EXPECT_EQ(releaser.code, 2);
  EXPECT_NE(releaser.err.find("PERMISSION_DENIED"), std::string::npos) << releaser.err;
  CliResult viewer = Ringctl(server_->address(), keys_.viewer_token,
                             {"enroll-token", "create", "--max-uses", "1"});
  EXPECT_EQ(viewer.code, 2);
  EXPECT_NE(viewer.err.find("PERMISSION_DENIED"), std::string::npos) << viewer.err;
  CliResult unknown = Admin({"agents", "revoke", "nobody", "--reason", "x"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("NOT_FOUND"), std::string::npos) << unknown.err;
}

TEST(TransportTest, PlaintextIsRefusedUnlessAskedForOnLoopback) {
  TestDatabase db;
  TestKeys keys;
  testing::TempDir dir;
  auto start = [&](std::vector<std::string> args) {
    std::vector<std::string> full = {
        testing::ServerBinary(), "--database",         db.conninfo(),      "--root", keys.root_path,
        "--server-key",          keys.server_key_path, "--metrics-listen", ""};
    full.insert(full.end(), args.begin(), args.end());
    const pid_t pid = testing::Spawn(full, dir.File("server.log"));
    int status = 0;
    waitpid(pid, &status, 0);
    return std::make_pair(WEXITSTATUS(status), testing::ReadFileOrDie(dir.File("server.log")));
  };
  auto no_tls = start({"--listen", "127.0.0.1:0"});
  EXPECT_EQ(no_tls.first, 1);
  EXPECT_NE(no_tls.second.find("TLS is required"), std::string::npos) << no_tls.second;
  auto remote = start({"--listen", "0.0.0.0:0", "--insecure"});
  EXPECT_EQ(remote.first, 1);
  EXPECT_NE(remote.second.find("refusing to serve plaintext on 0.0.0.0:0"), std::string::npos)
      << remote.second;
  auto mixed = start({"--listen", "127.0.0.1:0", "--insecure", "--tls-cert", Pki().server_cert});
  EXPECT_EQ(mixed.first, 1);
  EXPECT_NE(mixed.second.find("cannot be combined"), std::string::npos) << mixed.second;
}

// The TLS files are read bounded: an endless one (a device), an empty one or one that is not PEM
// stops the server at start, naming the flag and the file.
TEST(TransportTest, TlsFilesThatAreEndlessEmptyOrNotPemStopTheServerNamingTheFlag) {
  TestDatabase db;
  TestKeys keys;
  testing::TempDir dir;
  testing::WriteFile(dir.File("empty.pem"), "");
  testing::WriteFile(dir.File("text.pem"), "not a certificate\n");
  struct Case {
    std::string flag, file, says;
  };
  const Case cases[] = {
      {"--tls-cert", "/dev/zero",
       "--tls-cert: /dev/zero is larger than the limit of 1048576 bytes"},
      {"--tls-key", dir.File("empty.pem"),
       absl::StrCat("--tls-key: ", dir.File("empty.pem"), " is empty")},
      {"--client-ca", dir.File("text.pem"),
       absl::StrCat("--client-ca ", dir.File("text.pem"), " is not a PEM file")},
  };
  int n = 0;
  for (const Case& c : cases) {
    std::vector<std::string> args = {testing::ServerBinary(),
                                     "--database",
                                     db.conninfo(),
                                     "--root",
                                     keys.root_path,
                                     "--server-key",
                                     keys.server_key_path,
                                     "--metrics-listen",
                                     "",
                                     "--listen",
                                     "127.0.0.1:0"};
    std::vector<std::string> tls = testing::TlsServerArgs();
    for (size_t i = 0; i + 1 < tls.size(); ++i) {
      if (tls[i] == c.flag) {
        tls[i + 1] = c.file;
      }
    }
    args.insert(args.end(), tls.begin(), tls.end());
    const std::string log = dir.File(absl::StrCat("server-", ++n, ".log"));
    const pid_t pid = testing::Spawn(args, log);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_EQ(WEXITSTATUS(status), 1) << c.flag;
    const std::string said = testing::ReadFileOrDie(log);
    EXPECT_NE(said.find(c.says), std::string::npos) << said;
  }
}

// Fifty hosts enroll with a stolen token and report healthy on a bad
// version: their labels do not make them canary, and the token's use cap
// stops the flood at its limit.
TEST_F(IdentityTest, SybilHostsWithAStolenTokenNeitherReachCanaryNorOutnumberTheCap) {
  const std::string stolen =
      testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 10);
  agent::FleetOptions o;
  o.agents = 50;
  o.server = server_->address();
  o.server_ca_pem = Pki().ServerCaPem();
  o.threads = 4;
  o.id_prefix = "sybil-";
  o.label_fractions.push_back({"group", "dogfood", 1.0});  // every one claims dogfood
  o.start_spread = absl::Milliseconds(200);
  o.agent.enrollment_token = stolen;
  o.agent.min_poll_interval = absl::Milliseconds(100);
  o.backoff.initial = absl::Milliseconds(200);
  o.backoff.max = absl::Seconds(1);
  absl::StatusOr<Root> root =
      TrustInitialRoot(testing::ReadFileOrDie(keys_.root_path), absl::Now());
  ASSERT_TRUE(root.ok()) << root.status();
  agent::Fleet fleet(o, *root);
  ASSERT_TRUE(fleet.Start().ok());
  ASSERT_TRUE(fleet.WaitFor([](const agent::FleetSummary& s) { return s.enrolled >= 10; },
                            absl::Seconds(60)));
  absl::SleepFor(absl::Seconds(3));  // the other forty keep trying
  const agent::FleetSummary summary = fleet.Summary();
  fleet.Stop();
  EXPECT_EQ(summary.enrolled, 10);
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agents WHERE agent_id LIKE 'sybil-%'"), "10");
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agents WHERE agent_id LIKE 'sybil-%' AND labels <> "
                      "'{}'"),
            "0");
  // None of them is canary unless its id hashes there (1% of ids): the
  // dogfood label they all claim counts for nothing.
  const std::string canary =
      db_.Query("SELECT count(*) FROM agents WHERE agent_id LIKE 'sybil-%' AND ring = 'canary'");
  EXPECT_LE(std::stoi(canary), 1);
  EXPECT_EQ(db_.Query("SELECT uses FROM enrollment_tokens"), "10");
}

}  // namespace
}  // namespace ringwarden
