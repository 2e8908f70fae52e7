// Bad input against the real server and database: every refusal carries the
// right gRPC status and a message a person can act on, and stores nothing.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/admin_client.h"
#include "cli/signing.h"
#include "common/dsse.h"
#include "common/pki.h"
#include "common/sha256.h"
#include "ringwarden/v1/agent.grpc.pb.h"
#include "ringwarden/v1/content.pb.h"
#include "tests/support/admin_tokens_env.h"
#include "tests/support/test_env.h"

namespace ringwarden {
namespace {

using testing::ServerProcess;
using testing::TestDatabase;
using testing::TestKeys;

constexpr char kChannel[] = "rules.behavioral";

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::BootstrapTestTokens(db_.conninfo(), keys_);
    server_ = std::make_unique<ServerProcess>(db_.conninfo(), keys_);
    admin_ = std::make_unique<AdminClient>(server_->address(), keys_.releaser_token,
                                           absl::Seconds(30), testing::Pki().ServerCaPem());
  }

  std::string Envelope(const std::string& payload, int64_t version,
                       const std::string& key_path = "") {
    SignRequest req;
    req.key_pem = testing::ReadFileOrDie(key_path.empty() ? keys_.release_key_path : key_path);
    req.channel = kChannel;
    req.version = version;
    req.payload = payload;
    req.now = absl::Now();
    auto env = SignContent(req);
    EXPECT_TRUE(env.ok()) << env.status();
    return *env;
  }

  absl::Status Upload(const std::string& envelope, const std::string& payload,
                      AdminClient* client = nullptr) {
    v1::UploadContentRequest req;
    req.set_envelope(envelope);
    req.set_payload(payload);
    return (client ? client : admin_.get())
        ->Call(&v1::AdminService::Stub::UploadContent, req)
        .status();
  }

  // Rows is a fingerprint of everything the refusals must leave alone.
  std::string Rows() {
    return db_.Query(
        "SELECT (SELECT count(*) FROM content) || '/' || (SELECT count(*) FROM audit_log) || '/' "
        "|| (SELECT count(*) FROM rollouts) || '/' || (SELECT coalesce(sum(revision), 0) FROM "
        "rollouts) || '/' || (SELECT count(*) FROM channels)");
  }

  // ExpectRefused checks code, that the message contains `hint`, and no change.
  void ExpectRefused(const absl::Status& s, absl::StatusCode code, const std::string& hint,
                     const std::string& rows_before) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_NE(s.message().find(hint), absl::string_view::npos)
        << "message \"" << s.message() << "\" should mention \"" << hint << "\"";
    EXPECT_EQ(Rows(), rows_before) << "a refused call changed the database";
  }

  TestDatabase db_;
  TestKeys keys_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<AdminClient> admin_;
};

TEST_F(BadInputTest, ContentUploadRefusals) {
  const std::string payload = "rules: block everything suspicious";
  ASSERT_TRUE(Upload(Envelope(payload, 5), payload).ok());
  const std::string rows = Rows();
  const std::string next = "rules v6";

  // Unsigned: an envelope without signatures.
  DsseEnvelope unsigned_env = *ParseEnvelopeJson(Envelope(next, 6));
  unsigned_env.signatures.clear();
  std::string unsigned_json = EncodeEnvelopeJson(unsigned_env);
  ExpectRefused(Upload(unsigned_json, next), absl::StatusCode::kInvalidArgument, "signature", rows);

  // Wrongly signed: the signed manifest swapped for another one.
  DsseEnvelope forged = *ParseEnvelopeJson(Envelope(next, 6));
  DsseEnvelope other = *ParseEnvelopeJson(Envelope(next, 7));
  forged.payload = other.payload;
  ExpectRefused(Upload(EncodeEnvelopeJson(forged), next), absl::StatusCode::kPermissionDenied,
                "signature", rows);

  // Untrusted key.
  ExpectRefused(Upload(Envelope(next, 6, keys_.untrusted_key_path), next),
                absl::StatusCode::kPermissionDenied, keys_.untrusted.PublicKey().KeyId(), rows);

  // Truncated envelope.
  const std::string good = Envelope(next, 6);
  ExpectRefused(Upload(good.substr(0, good.size() / 2), next), absl::StatusCode::kInvalidArgument,
                "envelope", rows);
  ExpectRefused(Upload("", next), absl::StatusCode::kInvalidArgument, "envelope", rows);

  // Digest mismatch: same size, different bytes.
  std::string tampered = next;
  tampered[0] ^= 1;
  ExpectRefused(Upload(good, tampered), absl::StatusCode::kInvalidArgument, "SHA-256", rows);
  // Size mismatch.
  ExpectRefused(Upload(good, next + "x"), absl::StatusCode::kInvalidArgument, "bytes", rows);

  // Version not above the channel's newest.
  ExpectRefused(Upload(Envelope("older", 4), "older"), absl::StatusCode::kFailedPrecondition,
                "must be above", rows);
  ExpectRefused(Upload(Envelope(payload, 5), payload), absl::StatusCode::kFailedPrecondition,
                "must be above", rows);

  // Empty and oversized payloads.
  ExpectRefused(Upload(good, ""), absl::StatusCode::kInvalidArgument, "empty", rows);
  const std::string big(16 * 1024 * 1024 + 1, 'x');
  ExpectRefused(Upload(good, big), absl::StatusCode::kInvalidArgument, "limit", rows);
  // Beyond the transport limit gRPC itself refuses the message.
  const std::string huge(24 * 1024 * 1024, 'x');
  EXPECT_EQ(Upload(good, huge).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Rows(), rows);

  // Wrong payload type and a manifest that is not a manifest.
  DsseEnvelope wrong_type = *ParseEnvelopeJson(good);
  wrong_type.payload_type = "application/json";
  ExpectRefused(Upload(EncodeEnvelopeJson(wrong_type), next), absl::StatusCode::kInvalidArgument,
                "payload", rows);
  Ed25519PrivateKey key =
      *Ed25519PrivateKey::FromPem(testing::ReadFileOrDie(keys_.release_key_path));
  DsseEnvelope garbage = *SignEnvelope(kManifestPayloadType, "\xff\xff\xff not a manifest", {&key});
  ExpectRefused(Upload(EncodeEnvelopeJson(garbage), next), absl::StatusCode::kInvalidArgument,
                "ContentManifest", rows);

  // A bad channel name inside a validly signed manifest.
  v1::ContentManifest m;
  m.set_channel("Rules Behavioral!");
  m.set_version(9);
  m.set_sha256(Sha256Hex(next));
  m.set_size(static_cast<int64_t>(next.size()));
  DsseEnvelope bad_channel = *SignEnvelope(kManifestPayloadType, m.SerializeAsString(), {&key});
  ExpectRefused(Upload(EncodeEnvelopeJson(bad_channel), next), absl::StatusCode::kInvalidArgument,
                "channel", rows);
}

TEST_F(BadInputTest, CredentialsAndRoles) {
  const std::string payload = "rules v1";
  const std::string rows = Rows();
  AdminClient viewer(server_->address(), keys_.viewer_token, absl::Seconds(10),
                     testing::Pki().ServerCaPem());
  ExpectRefused(Upload(Envelope(payload, 1), payload, &viewer), absl::StatusCode::kPermissionDenied,
                "releaser", rows);
  AdminClient nobody(server_->address(), "", absl::Seconds(10), testing::Pki().ServerCaPem());
  ExpectRefused(Upload(Envelope(payload, 1), payload, &nobody), absl::StatusCode::kUnauthenticated,
                "authorization", rows);
  AdminClient wrong(server_->address(), "not-a-real-token-at-all", absl::Seconds(10),
                    testing::Pki().ServerCaPem());
  ExpectRefused(Upload(Envelope(payload, 1), payload, &wrong), absl::StatusCode::kUnauthenticated,
                "token", rows);
  // Emergency stop needs the admin role.
  v1::EmergencyStopRequest stop;
  stop.set_reason("test");
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::EmergencyStop, stop).status(),
                absl::StatusCode::kPermissionDenied, "admin", rows);
}

TEST_F(BadInputTest, RolloutRefusals) {
  const std::string payload = "rules v1";
  ASSERT_TRUE(Upload(Envelope(payload, 1), payload).ok());
  const std::string rows = Rows();

  v1::GetRolloutRequest get;
  get.set_id("ro-doesnotexist");
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::GetRollout, get).status(),
                absl::StatusCode::kNotFound, "ro-doesnotexist", rows);
  v1::RolloutActionRequest act;
  act.set_id("ro-doesnotexist");
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::PromoteRollout, act).status(),
                absl::StatusCode::kNotFound, "no rollout", rows);
  act.set_id(std::string(500, 'x'));
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::PromoteRollout, act).status(),
                absl::StatusCode::kInvalidArgument, "rollout id", rows);

  v1::StartRolloutRequest start;
  start.set_channel(kChannel);
  start.set_version(2);
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::StartRollout, start).status(),
                absl::StatusCode::kNotFound, "upload it first", rows);
  start.set_channel("../etc/passwd");
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::StartRollout, start).status(),
                absl::StatusCode::kInvalidArgument, "channel", rows);

  start.set_channel(kChannel);
  start.set_version(1);
  auto rollout = admin_->Call(&v1::AdminService::Stub::StartRollout, start);
  ASSERT_TRUE(rollout.ok()) << rollout.status();
  const std::string after_start = Rows();
  // A second unfinished rollout of the channel needs --supersede.
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::StartRollout, start).status(),
                absl::StatusCode::kFailedPrecondition, "supersede", after_start);

  act.set_id(rollout->id());
  // Promotion before the gate passed needs --force and a reason.
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::PromoteRollout, act).status(),
                absl::StatusCode::kFailedPrecondition, "gate has not passed", after_start);
  act.set_force(true);
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::PromoteRollout, act).status(),
                absl::StatusCode::kInvalidArgument, "reason", after_start);
  act.set_force(false);
  // Halting needs a reason.
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::HaltRollout, act).status(),
                absl::StatusCode::kInvalidArgument, "reason", after_start);
  act.set_reason("investigating");
  ASSERT_TRUE(admin_->Call(&v1::AdminService::Stub::HaltRollout, act).ok());
  const std::string halted = Rows();
  // Promote of a halted rollout.
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::PromoteRollout, act).status(),
                absl::StatusCode::kFailedPrecondition, "resume", halted);
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::HaltRollout, act).status(),
                absl::StatusCode::kFailedPrecondition, "already halted", halted);
  act.set_reason(std::string(5000, 'r'));
  ExpectRefused(admin_->Call(&v1::AdminService::Stub::ResumeRollout, act).status(),
                absl::StatusCode::kInvalidArgument, "reason", halted);
}

TEST_F(BadInputTest, AgentRefusals) {
  const std::string token =
      testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 5);
  // Calls without a client certificate: only Enroll is answered.
  auto anonymous = v1::AgentService::NewStub(testing::ServerChannel(server_->address()));
  auto call = [&](v1::AgentService::Stub* stub, auto method, const auto& req, auto* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub->*method)(&ctx, req, resp);
  };
  v1::EnrollRequest enroll;
  v1::EnrollResponse enrolled;
  absl::StatusOr<AgentKeyRequest> key = MakeAgentKeyRequest("host-1");
  ASSERT_TRUE(key.ok());
  enroll.set_agent_id("host-1");
  enroll.set_csr_pem(key->csr_pem);
  enroll.set_enrollment_token("rwe_0123456789abcdef_" + std::string(43, 'A'));
  EXPECT_EQ(call(anonymous.get(), &v1::AgentService::Stub::Enroll, enroll, &enrolled).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  enroll.set_enrollment_token(token);
  enroll.set_agent_id("bad id; DROP TABLE agents");
  EXPECT_EQ(call(anonymous.get(), &v1::AgentService::Stub::Enroll, enroll, &enrolled).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  enroll.set_agent_id(std::string(200, 'a'));
  EXPECT_EQ(call(anonymous.get(), &v1::AgentService::Stub::Enroll, enroll, &enrolled).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  enroll.set_agent_id("host-1");
  for (int i = 0; i < 40; ++i) {
    (*enroll.mutable_labels())[absl::StrCat("k", i)] = "v";
  }
  EXPECT_EQ(call(anonymous.get(), &v1::AgentService::Stub::Enroll, enroll, &enrolled).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  enroll.clear_labels();
  enroll.set_csr_pem("-----BEGIN CERTIFICATE REQUEST-----\nnot a csr\n");
  EXPECT_EQ(call(anonymous.get(), &v1::AgentService::Stub::Enroll, enroll, &enrolled).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  enroll.set_csr_pem(std::string(9000, 'c'));
  EXPECT_EQ(call(anonymous.get(), &v1::AgentService::Stub::Enroll, enroll, &enrolled).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  enroll.clear_csr_pem();
  EXPECT_EQ(call(anonymous.get(), &v1::AgentService::Stub::Enroll, enroll, &enrolled).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // None of the refused attempts took a use of the token: five hosts still can.
  absl::StatusOr<testing::TestAgent> host1 =
      testing::EnrollAgent(server_->address(), "host-1", token);
  ASSERT_TRUE(host1.ok()) << host1.status();
  absl::StatusOr<testing::TestAgent> host2 =
      testing::EnrollAgent(server_->address(), "host-2", token);
  ASSERT_TRUE(host2.ok()) << host2.status();
  auto as_host1 = v1::AgentService::NewStub(testing::ServerChannel(server_->address(), &*host1));
  auto as_host2 = v1::AgentService::NewStub(testing::ServerChannel(server_->address(), &*host2));
  auto stub = as_host1.get();

  v1::GetAssignmentRequest poll;
  v1::GetAssignmentResponse assignment;
  poll.set_agent_id("host-1");
  EXPECT_EQ(
      call(anonymous.get(), &v1::AgentService::Stub::GetAssignment, poll, &assignment).error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  // Another agent's certificate does not work for host-1.
  grpc::Status as_other =
      call(as_host2.get(), &v1::AgentService::Stub::GetAssignment, poll, &assignment);
  EXPECT_EQ(as_other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(as_other.error_message().find("cannot act as agent host-1"), std::string::npos)
      << as_other.error_message();
  ASSERT_TRUE(call(stub, &v1::AgentService::Stub::GetAssignment, poll, &assignment).ok());

  v1::ReportTelemetryRequest batch;
  v1::ReportTelemetryResponse ack;
  batch.set_agent_id("host-1");
  batch.set_batch_seq(1);
  for (int i = 0; i < 300; ++i) {
    batch.add_events()->mutable_heartbeat()->set_boot_id("b");
  }
  auto too_many = call(stub, &v1::AgentService::Stub::ReportTelemetry, batch, &ack);
  EXPECT_EQ(too_many.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(too_many.error_message().find("256"), std::string::npos);
  batch.clear_events();
  batch.add_events();  // no payload
  EXPECT_EQ(call(stub, &v1::AgentService::Stub::ReportTelemetry, batch, &ack).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  batch.clear_events();
  batch.add_events()->mutable_heartbeat()->set_boot_id("b");
  ASSERT_TRUE(call(stub, &v1::AgentService::Stub::ReportTelemetry, batch, &ack).ok());
  EXPECT_EQ(ack.accepted(), 1);
  // The same batch again is acknowledged as a duplicate and not counted.
  ASSERT_TRUE(call(stub, &v1::AgentService::Stub::ReportTelemetry, batch, &ack).ok());
  EXPECT_TRUE(ack.duplicate());
  EXPECT_EQ(ack.accepted(), 0);

  v1::FetchContentRequest fetch;
  fetch.set_agent_id("host-1");
  fetch.set_channel(kChannel);
  fetch.set_version(99);
  grpc::ClientContext ctx;
  auto reader = stub->FetchContent(&ctx, fetch);
  v1::ContentChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  // Retryable, not NOT_FOUND: another replica may already assign it (FailoverTest).
  const grpc::Status fetched = reader->Finish();
  EXPECT_EQ(fetched.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(fetched.error_message(),
            "rules.behavioral v99 is not assigned to this agent in this replica's snapshot "
            "(halted, stopped or not yet admitted); poll again");
}

}  // namespace
}  // namespace ringwarden

namespace ringwarden {
namespace {

// Hostile free text in telemetry (NUL bytes, oversized multi-byte details) is
// stored safely and never blocks the batches behind it. Broken UTF-8 never
// arrives: proto3 strings refuse it at the transport.
TEST_F(BadInputTest, HostileTelemetryTextIsStoredAndDoesNotBlockLaterBatches) {
  absl::StatusOr<testing::TestAgent> host = testing::EnrollAgent(
      server_->address(), "host-x",
      testing::CreateEnrollmentToken(server_->address(), keys_.admin_token, 1));
  ASSERT_TRUE(host.ok()) << host.status();
  auto stub = v1::AgentService::NewStub(testing::ServerChannel(server_->address(), &*host));
  auto send = [&](const v1::ReportTelemetryRequest& req) {
    grpc::ClientContext ctx;
    v1::ReportTelemetryResponse ack;
    return stub->ReportTelemetry(&ctx, req, &ack);
  };
  v1::ReportTelemetryRequest bad_channel;
  bad_channel.set_agent_id("host-x");
  bad_channel.set_batch_seq(1);
  v1::ChannelVersion* cv = bad_channel.add_events()->mutable_heartbeat()->add_versions();
  cv->set_channel(std::string("rules\0x", 7));
  cv->set_version(1);
  EXPECT_EQ(send(bad_channel).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::ReportTelemetryRequest hostile;
  hostile.set_agent_id("host-x");
  hostile.set_batch_seq(2);
  v1::TelemetryEvent* hb = hostile.add_events();
  hb->mutable_heartbeat()->set_boot_id(std::string("\0boot", 5));
  v1::ChannelVersion* v = hb->mutable_heartbeat()->add_versions();
  v->set_channel(kChannel);
  v->set_version(3);
  v1::ApplyReport* apply = hostile.add_events()->mutable_apply();
  apply->set_channel(kChannel);
  apply->set_version(3);
  apply->set_outcome(v1::APPLY_OUTCOME_APPLY_FAILED);
  std::string detail = std::string("\0\0", 2);
  for (int i = 0; i < 2000; ++i) {
    detail += "\xC3\xA9";  // é, so a byte cut would split a character
  }
  apply->set_detail(detail);
  ASSERT_TRUE(send(hostile).ok());

  v1::ReportTelemetryRequest later;
  later.set_agent_id("host-x");
  later.set_batch_seq(3);
  v1::ChannelVersion* v4 = later.add_events()->mutable_heartbeat()->add_versions();
  v4->set_channel(kChannel);
  v4->set_version(4);
  ASSERT_TRUE(send(later).ok());

  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline &&
         db_.Query("SELECT version FROM agent_versions WHERE agent_id = 'host-x'") != "4") {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(db_.Query("SELECT version FROM agent_versions WHERE agent_id = 'host-x'"), "4");
  EXPECT_EQ(db_.Query("SELECT octet_length(detail) <= 1024 FROM apply_results WHERE agent_id = "
                      "'host-x'"),
            "t");
}

}  // namespace
}  // namespace ringwarden
