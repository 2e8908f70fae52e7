// The load generator against an in-process echo AgentService: closed loop keeps
// its calls in flight over distinct agents, open loop keeps its schedule and
// counts a slow or refusing server as latency and misses, and bad options are
// refused.
#include "agent-client/sim/loadgen.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "agent-client/sim/echo_service.h"

namespace ringwarden::agent {
namespace {

class LoadGenTest : public ::testing::Test {
 protected:
  void Serve(EchoOptions echo) {
    echo.record = true;
    service_ = std::make_unique<EchoAgentService>(echo);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
  }

  void TearDown() override {
    if (server_ != nullptr) {
      server_->Shutdown();
    }
  }

  LoadOptions Options(int agents) {
    LoadOptions o;
    o.server = "127.0.0.1:" + std::to_string(port_);
    o.agents = agents;
    o.connections = 2;
    o.enrollment_token = "rwe_test_secret";
    return o;
  }

  int port_ = 0;
  std::unique_ptr<EchoAgentService> service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(LoadGenTest, ClosedLoopPollsEveryDistinctAgentWithItsCredential) {
  EchoOptions echo;
  echo.reply_bytes = 900;
  Serve(echo);
  LoadGenerator gen(Options(50));
  ASSERT_TRUE(gen.Enroll().ok());

  absl::StatusOr<LoadResult> r = gen.ClosedLoop(8, absl::Milliseconds(400));

  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->calls, 100);
  EXPECT_EQ(r->ok, r->calls);
  EXPECT_EQ(r->failed, 0);
  EXPECT_EQ(r->missed, 0);
  // A poll, then a heartbeat, per agent turn.
  EXPECT_NEAR(static_cast<double>(r->polls), r->calls / 2.0, 8);
  EXPECT_GT(r->mean_poll_reply_bytes, 900);
  EXPECT_GT(r->calls_per_second, 0);
  EXPECT_LE(r->p50_us, r->p99_us);
  EXPECT_EQ(service_->distinct_pollers(), 50u);
  EXPECT_EQ(service_->polls_with_credential(), r->polls);
}

TEST_F(LoadGenTest, WarmUpPollsEachAgentOnceAndOnlyAStatementThatParsesIsHeld) {
  EchoOptions echo;
  echo.reply_bytes = 300;  // not a DSSE envelope: nothing to hold
  Serve(echo);
  LoadGenerator gen(Options(50));
  ASSERT_TRUE(gen.Enroll().ok());

  absl::StatusOr<LoadResult> warm = gen.WarmUp(8);
  ASSERT_TRUE(warm.ok()) << warm.status();
  EXPECT_EQ(warm->calls, 50);  // polls only, heartbeats or not
  EXPECT_EQ(warm->polls, 50);
  EXPECT_EQ(warm->ok, 50);
  EXPECT_EQ(service_->distinct_pollers(), 50u);
  EXPECT_EQ(gen.WarmUp(64)->polls, 50);  // more in flight than agents: still one poll each

  // Heartbeats come back for the runs after; an answer that does not parse is never named.
  absl::StatusOr<LoadResult> r = gen.ClosedLoop(8, absl::Milliseconds(200));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->calls, r->polls);
  EXPECT_EQ(service_->polls_naming_held(), 0);
  EXPECT_EQ(r->held_current, 0);
  EXPECT_EQ(gen.WarmUp(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LoadGenTest, OpenLoopKeepsItsScheduleAgainstAFastServer) {
  Serve(EchoOptions{});
  LoadOptions o = Options(1000);
  o.heartbeats = false;
  LoadGenerator gen(o);
  gen.UseUnenrolledIds();

  absl::StatusOr<LoadResult> r = gen.OpenLoop(400, absl::Milliseconds(500));

  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 200);  // exactly the schedule: 400/s for 0.5 s
  EXPECT_EQ(r->polls, 200);
  EXPECT_EQ(r->missed, 0);
  EXPECT_EQ(service_->distinct_pollers(), 200u);
  EXPECT_EQ(service_->polls_with_credential(), 0);
}

TEST_F(LoadGenTest, OpenLoopCountsASlowServerAsLatencyAndMisses) {
  EchoOptions echo;
  echo.delay = absl::Milliseconds(150);
  Serve(echo);
  LoadOptions o = Options(100);
  o.max_in_flight = 5;
  o.late_after = absl::Milliseconds(100);
  LoadGenerator gen(o);
  gen.UseUnenrolledIds();

  absl::StatusOr<LoadResult> r = gen.OpenLoop(200, absl::Milliseconds(500));

  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 100);
  // Five in flight at a time, each 150 ms: most calls were never sent, and each sent one is
  // later than late_after. Latency counts from when the call was due.
  EXPECT_GT(r->not_sent, 50);
  EXPECT_EQ(r->missed, r->calls);
  EXPECT_GE(r->p50_us, 150000);
}

TEST_F(LoadGenTest, TheTimelineCountsEachAnsweredCallInTheSliceItWasDueIn) {
  EchoOptions echo;
  echo.delay = absl::Milliseconds(120);
  Serve(echo);
  LoadOptions o = Options(100);
  o.heartbeats = false;
  o.timeline_slice = absl::Milliseconds(100);
  LoadGenerator gen(o);
  gen.UseUnenrolledIds();

  absl::StatusOr<LoadResult> r = gen.OpenLoop(200, absl::Milliseconds(500));

  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->ok, 100);
  // 200/s for 0.5 s in slices of 0.1 s: 20 calls due in each, each answered after the delay.
  ASSERT_EQ(r->timeline.size(), 5u);
  for (const LoadResult::Slice& slice : r->timeline) {
    EXPECT_EQ(slice.calls, 20);
    EXPECT_GE(slice.p50_us, 120000);
    EXPECT_GE(slice.max_us, 120000);
    EXPECT_LT(slice.max_us, 10'000'000);
  }
  EXPECT_NE(r->ToJson().find("\"timeline\":[[20,"), std::string::npos) << r->ToJson();

  LoadOptions without = Options(100);
  without.heartbeats = false;
  LoadGenerator plain(without);
  plain.UseUnenrolledIds();
  absl::StatusOr<LoadResult> untimed = plain.OpenLoop(200, absl::Milliseconds(100));
  ASSERT_TRUE(untimed.ok()) << untimed.status();
  EXPECT_TRUE(untimed->timeline.empty());
  EXPECT_EQ(untimed->ToJson().find("timeline"), std::string::npos);
}

// CallsPerTurn: the calls of each of the first `turns` slices of a run's timeline.
std::vector<int64_t> CallsPerTurn(const LoadResult& r, size_t turns) {
  std::vector<int64_t> calls(turns, 0);
  for (size_t i = 0; i < std::min(turns, r.timeline.size()); ++i) {
    calls[i] = r.timeline[i].calls;
  }
  return calls;
}

TEST_F(LoadGenTest, AComparedRunGivesTheServerAndTheAnchorTurnsOfTheSameRequests) {
  // The server answers after 60 ms, the anchor at once: each call's latency shows whose it was.
  EchoOptions slow;
  slow.delay = absl::Milliseconds(60);
  Serve(slow);
  EchoOptions fast;
  fast.record = true;
  LocalEcho local(fast);
  ASSERT_NE(local.server, nullptr);
  const EchoAgentService& anchor = local.service;
  LoadOptions o = Options(1000);
  o.heartbeats = false;
  o.anchor = local.address();
  o.alternate_every = absl::Milliseconds(100);
  o.timeline_slice = o.alternate_every;  // a slice per turn
  LoadGenerator gen(o);
  ASSERT_TRUE(gen.Enroll().ok());

  // 400/s for 0.8 s in turns of 0.1 s (server, anchor, anchor, server, twice): four turns
  // each, 40 calls a turn.
  absl::StatusOr<ComparedResult> r = gen.OpenLoopCompared(400, absl::Milliseconds(800));

  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(CallsPerTurn(r->server, 8), (std::vector<int64_t>{40, 0, 0, 40, 40, 0, 0, 40}));
  EXPECT_EQ(CallsPerTurn(r->anchor, 8), (std::vector<int64_t>{0, 40, 40, 0, 0, 40, 40, 0}));
  EXPECT_EQ(r->server.calls, 160);
  EXPECT_EQ(r->anchor.calls, 160);
  EXPECT_EQ(r->server.ok, 160);
  EXPECT_EQ(r->anchor.ok, 160);
  EXPECT_GE(r->server.p50_us, 60000);
  EXPECT_LT(r->anchor.p99_us, 60000);
  // The anchor's polls carry the agents' credentials, as the server's do.
  EXPECT_EQ(anchor.polls_with_credential(), 160);
  EXPECT_EQ(anchor.polls_with_bearer(), 160);
  EXPECT_EQ(anchor.distinct_pollers(), 160u);

  // The other way round, the anchor starts.
  LoadOptions swapped = o;
  swapped.anchor_first = true;
  LoadGenerator other(swapped);
  ASSERT_TRUE(other.Enroll().ok());
  r = other.OpenLoopCompared(400, absl::Milliseconds(800));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(CallsPerTurn(r->server, 8), (std::vector<int64_t>{0, 40, 40, 0, 0, 40, 40, 0}));
  EXPECT_EQ(CallsPerTurn(r->anchor, 8), (std::vector<int64_t>{40, 0, 0, 40, 40, 0, 0, 40}));
}

TEST_F(LoadGenTest, AComparedRunNeedsAnAnchorItCanReach) {
  Serve(EchoOptions{});
  LoadOptions none = Options(10);
  LoadGenerator without(none);
  without.UseUnenrolledIds();
  absl::Status refused = without.OpenLoopCompared(100, absl::Milliseconds(100)).status();
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_NE(refused.message().find("--compare-with"), std::string::npos) << refused;

  LoadOptions gone = Options(10);
  gone.anchor = "127.0.0.1:1";  // nothing listens there
  gone.call_timeout = absl::Seconds(1);
  LoadGenerator unreachable(gone);
  unreachable.UseUnenrolledIds();
  absl::Status down = unreachable.OpenLoopCompared(100, absl::Milliseconds(100)).status();
  EXPECT_TRUE(absl::IsUnavailable(down)) << down;
  EXPECT_NE(down.message().find("the anchor at 127.0.0.1:1"), std::string::npos) << down;

  LoadOptions server_gone = Options(10);
  server_gone.server = "127.0.0.1:1";
  server_gone.anchor = Options(10).server;
  server_gone.call_timeout = absl::Seconds(1);
  LoadGenerator no_server(server_gone);
  no_server.UseUnenrolledIds();
  absl::Status no_connection = no_server.OpenLoopCompared(100, absl::Milliseconds(100)).status();
  EXPECT_TRUE(absl::IsUnavailable(no_connection)) << no_connection;
  EXPECT_NE(no_connection.message().find("the server at 127.0.0.1:1"), std::string::npos)
      << no_connection;

  // An anchor belongs to compared runs, and those need enrolled (or unenrolled) agents too.
  LoadOptions anchored = Options(10);
  anchored.anchor = Options(10).server;
  LoadGenerator compared(anchored);
  EXPECT_TRUE(
      absl::IsFailedPrecondition(compared.OpenLoopCompared(100, absl::Milliseconds(100)).status()));
  compared.UseUnenrolledIds();
  EXPECT_TRUE(absl::IsInvalidArgument(compared.OpenLoop(100, absl::Milliseconds(100)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(compared.ClosedLoop(1, absl::Milliseconds(100)).status()));
  EXPECT_TRUE(compared.WarmUp(4).ok());  // the server's agents poll once, as before any run

  LoadOptions turns = Options(10);
  turns.anchor = "127.0.0.1:1";
  turns.alternate_every = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateLoadOptions(turns)));
  turns.alternate_every = absl::Hours(2);
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateLoadOptions(turns)));
  turns.anchor = "";  // turns mean nothing without an anchor
  EXPECT_TRUE(ValidateLoadOptions(turns).ok());
  LoadOptions tls = Options(10);
  tls.anchor = "127.0.0.1:1";
  tls.tls_ca_pem = "a CA";
  absl::Status plaintext = ValidateLoadOptions(tls);
  EXPECT_TRUE(absl::IsInvalidArgument(plaintext));
  EXPECT_NE(plaintext.message().find("plaintext only"), std::string::npos) << plaintext;
}

TEST_F(LoadGenTest, AnEchoThatWorksPerCallAnswersNoSoonerThanItsWork) {
  EchoOptions echo;
  echo.busy = absl::Milliseconds(3);
  Serve(echo);
  LoadOptions o = Options(10);
  o.heartbeats = false;
  LoadGenerator gen(o);
  gen.UseUnenrolledIds();

  absl::StatusOr<LoadResult> r = gen.ClosedLoop(1, absl::Milliseconds(100));

  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->ok, 0);
  // One call at a time, each spending 3 ms of its thread's CPU before answering.
  EXPECT_GE(r->p50_us, 3000);
  EXPECT_LE(r->ok, 34);
}

TEST_F(LoadGenTest, RefusalsAreCountedByCodeAndAsMisses) {
  EchoOptions echo;
  echo.refuse = grpc::StatusCode::UNAVAILABLE;
  Serve(echo);
  LoadGenerator gen(Options(10));
  gen.UseUnenrolledIds();

  absl::StatusOr<LoadResult> r = gen.OpenLoop(200, absl::Milliseconds(200));

  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 40);
  EXPECT_EQ(r->ok, 0);
  EXPECT_EQ(r->failed, 40);
  EXPECT_EQ(r->missed, 40);
  ASSERT_EQ(r->errors.count("UNAVAILABLE"), 1u);
  EXPECT_EQ(r->errors.at("UNAVAILABLE"), 40);
  EXPECT_NE(r->ToLine().find("UNAVAILABLE x40"), std::string::npos) << r->ToLine();
}

TEST_F(LoadGenTest, AnEnrollmentTheServerRefusesFailsNamingAnAgent) {
  EchoOptions echo;
  echo.refuse = grpc::StatusCode::PERMISSION_DENIED;
  Serve(echo);
  LoadGenerator gen(Options(20));

  absl::Status enrolled = gen.Enroll();

  EXPECT_TRUE(absl::IsUnavailable(enrolled)) << enrolled;
  EXPECT_NE(enrolled.message().find("20 agents could not enroll (load-"), std::string::npos)
      << enrolled;
  EXPECT_TRUE(absl::IsFailedPrecondition(gen.ClosedLoop(1, absl::Milliseconds(10)).status()));
}

TEST_F(LoadGenTest, SavedCredentialsServeAnotherGenerator) {
  Serve(EchoOptions{});
  const std::string path = ::testing::TempDir() + "/loadgen-credentials";
  // A file that exists readable by others is narrowed to its owner when written.
  std::ofstream(path) << "old\n";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  LoadGenerator first(Options(30));
  EXPECT_TRUE(absl::IsFailedPrecondition(first.SaveCredentials(path)));
  ASSERT_TRUE(first.Enroll().ok());
  ASSERT_TRUE(first.SaveCredentials(path).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  LoadGenerator second(Options(30));
  ASSERT_TRUE(second.LoadCredentials(path).ok());
  absl::StatusOr<LoadResult> r = second.ClosedLoop(4, absl::Milliseconds(200));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(service_->polls_with_credential(), r->polls);

  // A file of other agents, of another count, or malformed is refused; a missing one too.
  EXPECT_TRUE(absl::IsInvalidArgument(LoadGenerator(Options(31)).LoadCredentials(path)));
  LoadOptions other = Options(30);
  other.id_prefix = "other-";
  EXPECT_TRUE(absl::IsInvalidArgument(LoadGenerator(other).LoadCredentials(path)));
  for (const char* bad : {"load-0\n", "load-0 a b\n", "load-0 \n", "\n", "load-1 t\n"}) {
    std::ofstream(path) << bad;
    absl::Status loaded = LoadGenerator(Options(1)).LoadCredentials(path);
    EXPECT_TRUE(absl::IsInvalidArgument(loaded)) << bad << ": " << loaded;
  }
  EXPECT_TRUE(absl::IsNotFound(LoadGenerator(Options(1)).LoadCredentials(path + ".absent")));
  // An endless file, or one longer than its agents' lines can be, is refused unread.
  absl::Status endless = LoadGenerator(Options(1)).LoadCredentials("/dev/zero");
  EXPECT_TRUE(absl::IsInvalidArgument(endless)) << endless;
  EXPECT_NE(endless.message().find("larger than the limit"), std::string::npos) << endless;
  std::ofstream(path) << "load-0 " << std::string(8192, 't') << "\n";
  absl::Status oversized = LoadGenerator(Options(1)).LoadCredentials(path);
  EXPECT_NE(oversized.message().find("larger than the limit"), std::string::npos) << oversized;
}

TEST_F(LoadGenTest, TlsCredentialFilesMustHoldAKeyAndACertificatePerAgent) {
  LoadOptions tls = Options(1);
  tls.tls_ca_pem = "a CA";
  const std::string path = ::testing::TempDir() + "/loadgen-tls-credentials";
  const std::string pem = absl::Base64Escape("-----BEGIN PRIVATE KEY-----\n");
  const std::string big(16388, 'A');  // valid base64, one block over the bound
  // A bearer token file, bad base64, an empty or oversized PEM, another agent, a fourth field.
  for (const std::string& bad :
       {std::string("load-0 token\n"), "load-0 !!! " + pem + "\n", "load-0 " + pem + " !!!\n",
        "load-0 " + pem + " =\n", "load-0 " + big + " " + pem + "\n",
        "load-0 " + pem + " " + big + "\n", "load-1 " + pem + " " + pem + "\n",
        "load-0 " + pem + " " + pem + " more\n"}) {
    std::ofstream(path) << bad;
    absl::Status loaded = LoadGenerator(tls).LoadCredentials(path);
    EXPECT_TRUE(absl::IsInvalidArgument(loaded)) << bad.substr(0, 80) << ": " << loaded;
  }
  // A TLS file is no bearer token file either, and too many agents are refused before reading.
  // Well-formed base64 of a PEM that is no certificate is refused as one.
  std::ofstream(path) << "load-0 " << pem << " " << pem << "\n";
  absl::Status not_a_certificate = LoadGenerator(tls).LoadCredentials(path);
  EXPECT_TRUE(absl::IsInvalidArgument(not_a_certificate));
  EXPECT_NE(not_a_certificate.message().find("the certificate is not load-0's"), std::string::npos)
      << not_a_certificate;
  EXPECT_TRUE(absl::IsInvalidArgument(LoadGenerator(Options(1)).LoadCredentials(path)));
  tls.agents = kMaxTlsAgents + 1;
  EXPECT_TRUE(absl::IsInvalidArgument(LoadGenerator(tls).LoadCredentials(path)));
  std::remove(path.c_str());
}

TEST(EchoTlsTest, EveryPemIsRequired) {
  for (const EchoTls& tls :
       {EchoTls{"", "key", "ca"}, EchoTls{"cert", "", "ca"}, EchoTls{"cert", "key", ""}}) {
    EXPECT_TRUE(absl::IsInvalidArgument(EchoServerCredentials(tls).status()));
  }
}

TEST_F(LoadGenTest, BadOptionsAndRunsAreRefused) {
  Serve(EchoOptions{});
  LoadOptions none = Options(0);
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateLoadOptions(none)));
  LoadOptions no_prefix = Options(10);
  no_prefix.id_prefix = "";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateLoadOptions(no_prefix)));
  LoadOptions no_timeout = Options(10);
  no_timeout.call_timeout = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateLoadOptions(no_timeout)));
  LoadOptions backwards = Options(10);
  backwards.timeline_slice = absl::Milliseconds(-1);
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateLoadOptions(backwards)));

  // Over TLS each agent holds a connection: their number is bounded, and a server name to
  // check means nothing without TLS.
  LoadOptions tls = Options(kMaxTlsAgents);
  tls.tls_ca_pem = "a CA";
  EXPECT_TRUE(ValidateLoadOptions(tls).ok());
  tls.agents = kMaxTlsAgents + 1;
  absl::Status too_many = ValidateLoadOptions(tls);
  EXPECT_TRUE(absl::IsInvalidArgument(too_many));
  EXPECT_NE(too_many.message().find("its own connection"), std::string::npos) << too_many;
  EXPECT_TRUE(absl::IsInvalidArgument(LoadGenerator(tls).Enroll()));
  LoadOptions name_only = Options(10);
  name_only.tls_server_name = "localhost";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateLoadOptions(name_only)));

  LoadGenerator gen(Options(10));
  EXPECT_TRUE(absl::IsFailedPrecondition(gen.OpenLoop(10, absl::Seconds(1)).status()));
  gen.UseUnenrolledIds();
  EXPECT_TRUE(absl::IsInvalidArgument(gen.OpenLoop(0, absl::Seconds(1)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(gen.OpenLoop(-5, absl::Seconds(1)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(gen.OpenLoop(10, absl::ZeroDuration()).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(gen.ClosedLoop(0, absl::Seconds(1)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(gen.ClosedLoop(1'000'000, absl::Seconds(1)).status()));
}

}  // namespace
}  // namespace ringwarden::agent
