// The load generator (agent-client/sim/loadgen.h) against a real server and database: it
// enrolls distinct agents, polls and heartbeats in closed and open loop with nothing refused,
// every agent's heartbeat reaches PostgreSQL, and calls without a credential are refused.
// Over TLS each agent enrolls with its own key and polls over its own connection with the
// certificate it was issued, against the server and against the echo serving TLS alike.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent-client/sim/echo_service.h"
#include "agent-client/sim/loadgen.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using agent::EchoAgentService;
using agent::LoadGenerator;
using agent::LoadOptions;
using agent::LoadResult;

class LoadGeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    Start({"--insecure", "--agent-rate", "0"});
  }

  // Start runs the server with `args`. The closed loop runs as fast as the server answers
  // over few agents, beyond any per-agent rate a fleet needs, so the tests that want every
  // call answered turn the per-agent limit off; the limit's refusals have their own test.
  void Start(std::vector<std::string> args) {
    server_ = std::make_unique<testing::ServerProcess>(db_.conninfo(), keys_, 0, std::move(args));
    const testing::CliResult token =
        testing::Ringctl(server_->address(), keys_.admin_token,
                         {"--insecure", "enroll-token", "create", "--ttl", "1h", "--max-uses",
                          std::to_string(kAgents)});
    ASSERT_EQ(token.code, 0) << token.err;
    token_ = std::string(absl::StripAsciiWhitespace(token.out));
  }

  LoadOptions Options() {
    LoadOptions o;
    o.server = server_->address();
    o.agents = kAgents;
    o.enrollment_token = token_;
    return o;
  }

  static constexpr int kAgents = 120;
  testing::TestDatabase db_;
  testing::TestKeys keys_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string token_;
};

TEST_F(LoadGeneratorTest, DistinctAgentsPollAndHeartbeatARealServer) {
  LoadOptions o = Options();
  o.hold_statements = false;
  LoadGenerator gen(o);
  ASSERT_TRUE(gen.Enroll().ok());
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agents WHERE agent_id LIKE 'load-%'"),
            std::to_string(kAgents));

  absl::StatusOr<LoadResult> closed = gen.ClosedLoop(8, absl::Seconds(1));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_GT(closed->calls, kAgents) << closed->ToLine();
  EXPECT_EQ(closed->failed, 0) << closed->ToLine() << "\n" << server_->Log();
  // Every poll is answered with a signed assignment.
  EXPECT_GT(closed->mean_poll_reply_bytes, 200) << closed->ToLine();

  absl::StatusOr<LoadResult> open = gen.OpenLoop(100, absl::Seconds(1));
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ(open->calls, 100);
  EXPECT_EQ(open->missed, 0) << open->ToLine();

  // Each agent's heartbeats are written (the telemetry writer flushes every 0.5 s).
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  const std::string query = "SELECT count(*) FROM agents WHERE last_seen_at IS NOT NULL";
  while (absl::Now() < deadline && db_.Query(query) != std::to_string(kAgents)) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(db_.Query(query), std::to_string(kAgents));
}

TEST_F(LoadGeneratorTest, AgentsNamingTheirHeldStatementAreAnsweredWithNothingSigned) {
  auto answers = [&](const std::string& answer) {
    return testing::ScrapeMetric(
               server_->metrics_port(),
               absl::StrCat("ringwarden_assignment_answers_total{answer=\"", answer, "\"}"))
        .value_or(-1);
  };
  LoadOptions o = Options();
  o.heartbeats = false;
  LoadGenerator gen(o);
  ASSERT_TRUE(gen.Enroll().ok());
  // The first poll of each agent is signed, and the agent keeps the statement.
  absl::StatusOr<LoadResult> warm = gen.WarmUp(8);
  ASSERT_TRUE(warm.ok()) << warm.status();
  EXPECT_EQ(warm->polls, kAgents);
  EXPECT_EQ(warm->failed, 0) << warm->ToLine();
  EXPECT_EQ(warm->held_current, 0) << warm->ToLine();
  EXPECT_GT(warm->mean_poll_reply_bytes, 200) << warm->ToLine();
  EXPECT_EQ(answers("signed"), kAgents);
  EXPECT_EQ(answers("held_current"), 0);

  // Every later poll names it and is answered that it is current: nothing more is signed.
  absl::StatusOr<LoadResult> steady = gen.ClosedLoop(8, absl::Seconds(1));
  ASSERT_TRUE(steady.ok()) << steady.status();
  EXPECT_GT(steady->polls, kAgents) << steady->ToLine();
  EXPECT_EQ(steady->failed, 0) << steady->ToLine();
  EXPECT_EQ(steady->held_current, steady->polls) << steady->ToLine();
  EXPECT_LT(steady->mean_poll_reply_bytes, warm->mean_poll_reply_bytes - 200) << steady->ToLine();
  EXPECT_EQ(answers("signed"), kAgents);
  EXPECT_EQ(answers("held_current"), steady->polls);

  // An emergency stop changes every agent's answer: each is signed exactly once more (at its
  // first poll after this replica's snapshot takes the stop), then answered current again.
  const testing::CliResult stop =
      testing::Ringctl(server_->address(), keys_.admin_token,
                       {"--insecure", "emergency-stop", "--reason", "load generator test"});
  ASSERT_EQ(stop.code, 0) << stop.err;
  for (int i = 0; i < 50 && answers("signed") < 2 * kAgents; ++i) {
    absl::StatusOr<LoadResult> round = gen.WarmUp(8);
    ASSERT_TRUE(round.ok()) << round.status();
    ASSERT_EQ(round->failed, 0) << round->ToLine();
  }
  EXPECT_EQ(answers("signed"), 2 * kAgents);
  absl::StatusOr<LoadResult> again = gen.WarmUp(8);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->held_current, kAgents) << again->ToLine();
  EXPECT_EQ(answers("signed"), 2 * kAgents);
}

TEST_F(LoadGeneratorTest, AComparedRunSendsTheAnchorWhatTheServerGetsAndKeepsTheServersAnswers) {
  agent::EchoOptions echo;
  echo.record = true;
  echo.reply_bytes = 200;  // an answer that is not a statement
  agent::LocalEcho local(echo);
  ASSERT_NE(local.server, nullptr);
  const EchoAgentService& anchor = local.service;
  LoadOptions o = Options();
  o.heartbeats = false;
  o.anchor = local.address();
  o.alternate_every = absl::Milliseconds(100);
  LoadGenerator gen(o);
  ASSERT_TRUE(gen.Enroll().ok());
  absl::StatusOr<LoadResult> warm = gen.WarmUp(8);
  ASSERT_TRUE(warm.ok()) << warm.status();
  ASSERT_EQ(warm->failed, 0) << warm->ToLine();

  // 400/s for 1.2 s in turns of 0.1 s: 240 polls each, so each agent polls both sides.
  absl::StatusOr<agent::ComparedResult> r = gen.OpenLoopCompared(400, absl::Milliseconds(1200));

  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->server.polls, 240) << r->server.ToLine();
  EXPECT_EQ(r->anchor.polls, 240) << r->anchor.ToLine();
  EXPECT_EQ(r->server.missed, 0) << r->server.ToLine() << "\n" << server_->Log();
  EXPECT_EQ(r->anchor.missed, 0) << r->anchor.ToLine();
  // The anchor got the server's requests: each poll with its agent's credential and the
  // statement the server signed it.
  EXPECT_EQ(anchor.polls_with_bearer(), 240);
  EXPECT_EQ(anchor.polls_naming_held(), 240);
  // The anchor's answers (not statements) replaced none: the server signed nothing new.
  EXPECT_EQ(r->server.held_current, 240) << r->server.ToLine();
}

TEST_F(LoadGeneratorTest, CallsWithoutACredentialAreRefused) {
  LoadGenerator gen(Options());
  gen.UseUnenrolledIds();
  absl::StatusOr<LoadResult> r = gen.OpenLoop(50, absl::Milliseconds(400));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 20);
  EXPECT_EQ(r->ok, 0) << r->ToLine();
  EXPECT_EQ(r->missed, 20);
  EXPECT_EQ(r->errors.count("UNAUTHENTICATED"), 1u) << r->ToLine();
}

TEST_F(LoadGeneratorTest, TheServersPerAgentLimitIsCountedAsRefusals) {
  server_.reset();
  Start({"--insecure", "--agent-rate", "1", "--agent-burst", "2"});
  LoadOptions o = Options();
  o.agents = 5;
  LoadGenerator gen(o);
  ASSERT_TRUE(gen.Enroll().ok());
  absl::StatusOr<LoadResult> r = gen.ClosedLoop(4, absl::Seconds(1));
  ASSERT_TRUE(r.ok()) << r.status();
  // 5 agents may make about 2 + 1 calls each in a second; the rest is refused and counted.
  EXPECT_LE(r->ok, 5 * 4) << r->ToLine();
  EXPECT_GT(r->failed, 0) << r->ToLine();
  ASSERT_EQ(r->errors.count("RESOURCE_EXHAUSTED"), 1u) << r->ToLine();
  EXPECT_EQ(r->errors.at("RESOURCE_EXHAUSTED"), r->failed);
}

TEST_F(LoadGeneratorTest, ATokenForTooFewAgentsFailsTheEnrollmentNamingTheRest) {
  LoadOptions o = Options();
  o.agents = kAgents + 5;
  LoadGenerator gen(o);
  absl::Status enrolled = gen.Enroll();
  EXPECT_TRUE(absl::IsUnavailable(enrolled)) << enrolled;
  EXPECT_NE(enrolled.message().find("5 agents could not enroll"), std::string::npos) << enrolled;
}

class LoadGeneratorTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<testing::ServerProcess>(
        db_.conninfo(), keys_, 0, std::vector<std::string>{"--agent-rate", "0"});
    token_ = testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, kAgents);
  }

  LoadOptions Options() {
    LoadOptions o;
    o.server = server_->address();
    o.agents = kAgents;
    o.enrollment_token = token_;
    o.tls_ca_pem = testing::Pki().ServerCaPem();
    return o;
  }

  static constexpr int kAgents = 24;
  testing::TestDatabase db_;
  testing::TestKeys keys_;
  std::unique_ptr<testing::ServerProcess> server_;
  std::string token_;
};

TEST_F(LoadGeneratorTlsTest, EachAgentPollsWithItsOwnCertificateAndNoToken) {
  LoadGenerator gen(Options());
  ASSERT_TRUE(gen.Enroll().ok());
  // The server issued a certificate to each agent, and names each caller by it.
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agents WHERE agent_id LIKE 'load-%'"),
            std::to_string(kAgents));
  absl::StatusOr<LoadResult> warm = gen.WarmUp(8);
  ASSERT_TRUE(warm.ok()) << warm.status();
  EXPECT_EQ(warm->ok, kAgents) << warm->ToLine() << "\n" << server_->Log();
  absl::StatusOr<LoadResult> closed = gen.ClosedLoop(8, absl::Seconds(1));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_GT(closed->calls, kAgents) << closed->ToLine();
  EXPECT_EQ(closed->failed, 0) << closed->ToLine() << "\n" << server_->Log();
  EXPECT_EQ(closed->held_current, closed->polls) << closed->ToLine();

  // Saved and loaded by another generator, the keys and certificates serve as they did.
  const std::string path = ::testing::TempDir() + "/tls-credentials";
  ASSERT_TRUE(gen.SaveCredentials(path).ok());
  LoadGenerator again(Options());
  ASSERT_TRUE(again.LoadCredentials(path).ok());
  absl::StatusOr<LoadResult> open = again.OpenLoop(100, absl::Milliseconds(500));
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ(open->calls, 50);
  EXPECT_EQ(open->missed, 0) << open->ToLine();

  // The echo serving TLS the server's way sees each poll over a connection whose verified
  // certificate names the polling agent, and no bearer token.
  agent::EchoOptions echo_options;
  echo_options.record = true;
  EchoAgentService echo(echo_options);
  const testing::TestPki& pki = testing::Pki();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> echo_tls = agent::EchoServerCredentials(
      {testing::ReadFileOrDie(pki.server_cert), testing::ReadFileOrDie(pki.server_key),
       testing::ReadFileOrDie(pki.agent_ca_cert)});
  ASSERT_TRUE(echo_tls.ok()) << echo_tls.status();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", *echo_tls, &port);
  builder.RegisterService(&echo);
  std::unique_ptr<grpc::Server> echo_server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  LoadOptions to_echo = Options();
  to_echo.server = absl::StrCat("127.0.0.1:", port);
  to_echo.heartbeats = false;
  LoadGenerator echo_gen(to_echo);
  ASSERT_TRUE(echo_gen.LoadCredentials(path).ok());
  absl::StatusOr<LoadResult> echoed = echo_gen.ClosedLoop(4, absl::Milliseconds(500));
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(echoed->failed, 0) << echoed->ToLine();
  EXPECT_EQ(echo.distinct_pollers(), static_cast<size_t>(kAgents));
  EXPECT_EQ(echo.polls_with_own_certificate(), echoed->polls);
  EXPECT_EQ(echo.polls_with_credential(), 0);
  echo_server->Shutdown();
  std::remove(path.c_str());
}

TEST_F(LoadGeneratorTlsTest, AServerItCannotVerifyOrThatIsNotTlsFailsTheEnrollment) {
  // The agent CA did not sign the server's certificate: the handshake fails, nothing enrolls.
  LoadOptions wrong_ca = Options();
  wrong_ca.tls_ca_pem = testing::ReadFileOrDie(testing::Pki().agent_ca_cert);
  wrong_ca.call_timeout = absl::Seconds(2);
  absl::Status refused = LoadGenerator(wrong_ca).Enroll();
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  EXPECT_NE(refused.message().find(absl::StrCat(kAgents, " agents could not enroll")),
            std::string::npos)
      << refused;
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agents WHERE agent_id LIKE 'load-%'"), "0");

  // A name the server's certificate does not carry is refused the same way.
  LoadOptions wrong_name = Options();
  wrong_name.tls_server_name = "elsewhere.example";
  wrong_name.call_timeout = absl::Seconds(2);
  EXPECT_TRUE(absl::IsUnavailable(LoadGenerator(wrong_name).Enroll()));

  // A plaintext server fails the TLS handshake.
  testing::ServerProcess plain(db_.conninfo(), keys_, 0, {"--insecure"});
  LoadOptions to_plain = Options();
  to_plain.server = plain.address();
  to_plain.call_timeout = absl::Seconds(2);
  EXPECT_TRUE(absl::IsUnavailable(LoadGenerator(to_plain).Enroll()));
  EXPECT_EQ(db_.Query("SELECT count(*) FROM agents WHERE agent_id LIKE 'load-%'"), "0");
}

TEST_F(LoadGeneratorTlsTest, ACertificateOfAnotherAgentIsRefusedWhenLoaded) {
  LoadGenerator enrolled(Options());
  ASSERT_TRUE(enrolled.Enroll().ok());
  const std::string path = ::testing::TempDir() + "/tls-credentials-swapped";
  ASSERT_TRUE(enrolled.SaveCredentials(path).ok());
  // load-0's line carries load-1's certificate (with its own key): refused by name, before any
  // call is made with it.
  std::vector<std::string> lines =
      absl::StrSplit(testing::ReadFileOrDie(path), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kAgents));
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  std::vector<std::string> second = absl::StrSplit(lines[1], ' ');
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(second.size(), 3u);
  lines[0] = absl::StrCat(first[0], " ", first[1], " ", second[2]);
  std::ofstream(path) << absl::StrJoin(lines, "\n") << "\n";
  absl::Status refused = LoadGenerator(Options()).LoadCredentials(path);
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_NE(refused.message().find("the certificate is not load-0's (it names "), std::string::npos)
      << refused;
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ringwarden
