// The signed poll answer: AgentServiceImpl served in process, on the fake
// store, answering a real gRPC GetAssignment. What it signs must verify with
// the agent's rules (VerifyAssignment) and bind what the issue asks for; the
// roots and floors it carries must be exactly the stored envelopes.
#include "server/agent_service.h"

#include <gmock/gmock.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/sha256.h"
#include "ringwarden/v1/content.pb.h"
#include "server/agent_credentials.h"
#include "server/assignment_statement.h"
#include "tests/server/trust_fixture.h"
#include "tests/support/maced_token.h"

namespace ringwarden::testing {
namespace {

constexpr char kChannel[] = "rules.behavioral";
constexpr char kAgent[] = "host-1";

class AgentServiceTest : public TrustFixture {
 protected:
  void SetUp() override {
    pinned_root_ = SignRoot(Plan(1), {&root_key});
    ASSERT_TRUE(trust_.Open(pinned_root_).ok());
    ASSERT_TRUE(trust_.UploadRoot(SignRoot(Plan(2), {&root_key}), "", admin_).ok());
    manifest_v1_ = ManifestBytes(kChannel, 1, "payload v1");
    ASSERT_TRUE(UploadSignedContent(store_, kChannel, 1, "payload v1", release_key).ok());
    ASSERT_TRUE(UploadSignedContent(store_, kChannel, 2, "payload v2", release_key).ok());
    ASSERT_TRUE(FinishRollout(store_, "ro-1", kChannel, 1, /*revoke=*/false).ok());
    ASSERT_TRUE(FinishRollout(store_, "ro-2", kChannel, 2, /*revoke=*/true).ok());
    ASSERT_TRUE(trust_.UploadFloor(SignFloor(kChannel, 1, release_key), "", releaser_).ok());
    ASSERT_TRUE(snapshots_.Refresh().ok());

    AgentServiceOptions options;
    options.assignment_ttl = absl::Hours(6);
    StartService(options);
  }

  // StartService (re)starts the service in process with `options`.
  void StartService(const AgentServiceOptions& options) {
    if (server_ != nullptr) {
      server_->Shutdown();
    }
    service_ = std::make_unique<AgentServiceImpl>(options, snapshots_, telemetry_, metrics_, trust_,
                                                  server_key, clock_, agents_, credentials_,
                                                  enroll_queue_);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::AgentService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    if (server_ != nullptr) {
      server_->Shutdown();
    }
  }

  absl::StatusOr<v1::GetAssignmentResponse> Poll(
      int64_t current, int64_t root_version = 0,
      const std::optional<v1::HeldAssignment>& held = std::nullopt,
      const std::string& agent_id = kAgent) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + TokenFor(agent_id));
    v1::GetAssignmentRequest req;
    req.set_agent_id(agent_id);
    req.set_root_version(root_version);
    if (held.has_value()) {
      *req.mutable_held() = *held;
    }
    v1::ChannelVersion* cv = req.add_current();
    cv->set_channel(kChannel);
    cv->set_version(current);
    v1::GetAssignmentResponse resp;
    const grpc::Status status = stub_->GetAssignment(&ctx, req, &resp);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return resp;
  }

  // Report sends one heartbeat batch as `agent_id`; `ctx` receives the trailers.
  grpc::Status Report(const std::string& agent_id, int64_t seq, bool* duplicate = nullptr,
                      grpc::ClientContext* ctx = nullptr) {
    grpc::ClientContext own;
    grpc::ClientContext& c = ctx != nullptr ? *ctx : own;
    c.AddMetadata("authorization", "Bearer " + TokenFor(agent_id));
    v1::ReportTelemetryRequest req;
    req.set_agent_id(agent_id);
    req.set_batch_seq(seq);
    req.add_events()->mutable_heartbeat()->set_boot_id("b");
    v1::ReportTelemetryResponse resp;
    grpc::Status status = stub_->ReportTelemetry(&c, req, &resp);
    if (duplicate != nullptr) {
      *duplicate = resp.duplicate();
    }
    return status;
  }

  // Fetch downloads `version` as kAgent: the final status and the payload received.
  std::pair<grpc::Status, std::string> Fetch(int64_t version) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + TokenFor(kAgent));
    v1::FetchContentRequest req;
    req.set_agent_id(kAgent);
    req.set_channel(kChannel);
    req.set_version(version);
    auto reader = stub_->FetchContent(&ctx, req);
    v1::ContentChunk chunk;
    std::string payload;
    while (reader->Read(&chunk)) {
      payload += chunk.data();
    }
    return {reader->Finish(), payload};
  }

  // Verified checks the signed statement the way an agent trusting root v2 does.
  absl::StatusOr<Assignment> Verified(const v1::GetAssignmentResponse& resp,
                                      const std::string& agent_id = kAgent) {
    absl::StatusOr<Root> root = TrustInitialRoot(pinned_root_, clock_.Now());
    if (!root.ok()) {
      return root.status();
    }
    std::vector<std::string> updates(resp.root_updates().begin(), resp.root_updates().end());
    absl::StatusOr<Root> newest = WalkRootChain(*root, updates, clock_.Now());
    if (!newest.ok()) {
      return newest.status();
    }
    return VerifyAssignment(*newest, resp.signed_assignment(), agent_id, clock_.Now());
  }

  // TokenFor is the bearer credential a --insecure server issues `agent_id`.
  std::string TokenFor(const std::string& agent_id) {
    absl::StatusOr<IssuedCredential> issued =
        credentials_.Issue(agent_id, "", *snapshots_.Current());
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? issued->token : "";
  }

  const Principal admin_{"root-admin", Role::kAdmin};
  const Principal releaser_{"alice", Role::kReleaser};
  std::string pinned_root_;
  std::string manifest_v1_;
  TrustKeeper trust_{store_, snapshots_, server_key.PublicKey(), clock_};
  TelemetryWriter telemetry_{store_, absl::Seconds(60), 1000};
  prometheus::Registry registry_;
  Metrics metrics_{registry_};
  AgentRegistry agents_{store_, snapshots_, clock_};
  AgentCredentials credentials_ = AgentCredentials::Insecure(absl::Hours(24), clock_);
  WorkQueue enroll_queue_{1, 16};
  std::unique_ptr<AgentServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
};

TEST_F(AgentServiceTest, TheSignedStatementBindsWhatTheAgentMustCheck) {
  // The agent runs v2, which was rolled back: it is told to go back to v1.
  absl::StatusOr<v1::GetAssignmentResponse> resp = Poll(2);
  ASSERT_TRUE(resp.ok()) << resp.status();
  absl::StatusOr<Assignment> a = Verified(*resp);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->agent_id, kAgent);
  EXPECT_EQ(a->ring, resp->ring());
  EXPECT_GE(a->sequence, absl::ToUnixMicros(clock_.Now()));
  EXPECT_EQ(a->issued, clock_.Now());
  EXPECT_EQ(a->expires, clock_.Now() + absl::Hours(6));
  EXPECT_EQ(a->root_version, 2);
  EXPECT_FALSE(a->emergency_stop);
  ASSERT_EQ(a->channels.size(), 1u);
  const AssignedChannel& c = a->channels[0];
  EXPECT_EQ(c.channel, kChannel);
  EXPECT_EQ(c.version, 1);
  EXPECT_TRUE(c.rollback);
  EXPECT_EQ(c.manifest_sha256, Sha256Hex(manifest_v1_));
  EXPECT_EQ(c.size, 10);
  EXPECT_EQ(c.revoked_versions, std::vector<int64_t>{2});
  // The display fields say the same.
  ASSERT_EQ(resp->assignments_size(), 1);
  EXPECT_EQ(resp->assignments(0).version(), 1);
  EXPECT_TRUE(resp->assignments(0).rollback());
}

// HeldOf names a verified statement as an agent holding it does.
v1::HeldAssignment HeldOf(const Assignment& a) {
  v1::HeldAssignment held;
  held.set_sequence(a.sequence);
  held.set_issued_unix_ms(absl::ToUnixMillis(a.issued));
  held.set_expires_unix_ms(absl::ToUnixMillis(a.expires));
  held.set_payload_sha256(a.payload_sha256);
  return held;
}

TEST_F(AgentServiceTest, AHeldStatementOfTheSameAnswerIsAnsweredCurrentAndNothingIsSigned) {
  absl::StatusOr<v1::GetAssignmentResponse> first = Poll(1);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->held_assignment_current());
  absl::StatusOr<Assignment> a = Verified(*first);
  ASSERT_TRUE(a.ok()) << a.status();

  clock_.Advance(absl::Minutes(5));
  absl::StatusOr<v1::GetAssignmentResponse> again = Poll(1, 2, HeldOf(*a));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->held_assignment_current());
  EXPECT_TRUE(again->signed_assignment().empty());
  // The rest of the answer is as before.
  EXPECT_EQ(again->ring(), first->ring());
  ASSERT_EQ(again->assignments_size(), 1);
  EXPECT_EQ(again->assignments(0).version(), 1);
  EXPECT_EQ(again->floors_size(), 1);
  EXPECT_GT(again->next_poll_ms(), 0);
  EXPECT_EQ(metrics_.assignments(AssignmentAnswer::kHeldCurrent).Value(), 1);
  EXPECT_EQ(metrics_.assignments(AssignmentAnswer::kSigned).Value(), 1);

  // Until half of its lifetime (6 h) is left, and no longer.
  clock_.Advance(absl::Hours(3) - absl::Minutes(5));
  absl::StatusOr<v1::GetAssignmentResponse> half = Poll(1, 2, HeldOf(*a));
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_TRUE(half->held_assignment_current());
  clock_.Advance(absl::Milliseconds(1));
  absl::StatusOr<v1::GetAssignmentResponse> renewed = Poll(1, 2, HeldOf(*a));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_FALSE(renewed->held_assignment_current());
  absl::StatusOr<Assignment> b = Verified(*renewed);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_GT(b->sequence, a->sequence);
  EXPECT_EQ(b->expires, clock_.Now() + absl::Hours(6));
}

TEST_F(AgentServiceTest, AHeldStatementThatStatesAnythingElseIsSignedAnew) {
  absl::StatusOr<v1::GetAssignmentResponse> first = Poll(1);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Assignment> a = Verified(*first);
  ASSERT_TRUE(a.ok()) << a.status();
  auto signed_anew = [&](const v1::HeldAssignment& held, const std::string& agent = kAgent) {
    absl::StatusOr<v1::GetAssignmentResponse> resp = Poll(1, 2, held, agent);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() && !resp->held_assignment_current() && !resp->signed_assignment().empty();
  };
  // Any term or digest that is not the statement's own.
  v1::HeldAssignment held = HeldOf(*a);
  held.set_sequence(a->sequence + 1);
  EXPECT_TRUE(signed_anew(held));
  held = HeldOf(*a);
  held.set_issued_unix_ms(held.issued_unix_ms() - 1);
  EXPECT_TRUE(signed_anew(held));
  held = HeldOf(*a);
  held.set_expires_unix_ms(held.expires_unix_ms() + 1);
  EXPECT_TRUE(signed_anew(held));
  held = HeldOf(*a);
  held.set_payload_sha256(Sha256Hex("another statement"));
  EXPECT_TRUE(signed_anew(held));
  // Another agent's statement, named by that agent, states another agent id.
  EXPECT_TRUE(signed_anew(HeldOf(*a), "host-2"));
  // Issued in the future beyond the clock-skew allowance.
  held = HeldOf(*a);
  held.set_issued_unix_ms(absl::ToUnixMillis(clock_.Now() + absl::Minutes(6)));
  held.set_expires_unix_ms(absl::ToUnixMillis(clock_.Now() + absl::Hours(7)));
  EXPECT_TRUE(signed_anew(held));
  // A change of the answer: the emergency stop, then a newer root.
  ASSERT_TRUE(store_.SetEmergencyStop(true, AuditRecord{}).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  EXPECT_TRUE(signed_anew(HeldOf(*a)));
  ASSERT_TRUE(store_.SetEmergencyStop(false, AuditRecord{}).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  ASSERT_FALSE(signed_anew(HeldOf(*a)));  // the same answer again: current
  ASSERT_TRUE(trust_.UploadRoot(SignRoot(Plan(3), {&root_key}), "", admin_).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  EXPECT_TRUE(signed_anew(HeldOf(*a)));
}

TEST_F(AgentServiceTest, ANegativeCurrentVersionIsRefusedNamingTheEntry) {
  absl::StatusOr<v1::GetAssignmentResponse> resp = Poll(-1);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(resp.status().message()),
              ::testing::HasSubstr("current[0].version: channel versions must be >= 0"));
  EXPECT_TRUE(Poll(0).ok());
}

TEST_F(AgentServiceTest, AMalformedHeldStatementIsRefusedNamingTheField) {
  absl::StatusOr<v1::GetAssignmentResponse> first = Poll(1);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Assignment> a = Verified(*first);
  ASSERT_TRUE(a.ok()) << a.status();
  auto refusal = [&](const v1::HeldAssignment& held) {
    absl::StatusOr<v1::GetAssignmentResponse> resp = Poll(1, 2, held);
    EXPECT_EQ(resp.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(resp.status().message());
  };
  v1::HeldAssignment held = HeldOf(*a);
  held.set_sequence(0);
  EXPECT_THAT(refusal(held), ::testing::HasSubstr("held.sequence must be >= 1"));
  held = HeldOf(*a);
  held.set_expires_unix_ms(held.issued_unix_ms());
  EXPECT_THAT(refusal(held), ::testing::HasSubstr("held.expires_unix_ms must be after"));
  for (const std::string& digest :
       {std::string(), a->payload_sha256.substr(1), a->payload_sha256 + "0",
        absl::AsciiStrToUpper(a->payload_sha256), std::string(64, 'g'), std::string(4096, 'a')}) {
    held = HeldOf(*a);
    held.set_payload_sha256(digest);
    EXPECT_THAT(refusal(held), ::testing::HasSubstr("held.payload_sha256 must be 64 lowercase hex"))
        << digest.size();
  }
  // An empty `held` (every field zero) is malformed too, not "nothing held".
  EXPECT_THAT(refusal(v1::HeldAssignment()), ::testing::HasSubstr("held.sequence"));
  EXPECT_EQ(metrics_.assignments(AssignmentAnswer::kHeldCurrent).Value(), 0);
}

TEST_F(AgentServiceTest, TheSequenceGrowsWithEveryAnswerEvenWhenTheClockStands) {
  std::set<int64_t> seen;
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<v1::GetAssignmentResponse> resp = Poll(1);
    ASSERT_TRUE(resp.ok()) << resp.status();
    absl::StatusOr<Assignment> a = Verified(*resp);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_GT(a->sequence, last);
    last = a->sequence;
  }
}

TEST_F(AgentServiceTest, RootUpdatesAreTheStoredEnvelopesNewerThanTheAgents) {
  absl::StatusOr<v1::GetAssignmentResponse> from_zero = Poll(1, 0);
  ASSERT_TRUE(from_zero.ok()) << from_zero.status();
  ASSERT_EQ(from_zero->root_updates_size(), 2);
  EXPECT_EQ(from_zero->root_updates(0), pinned_root_);
  absl::StatusOr<v1::GetAssignmentResponse> from_one = Poll(1, 1);
  ASSERT_TRUE(from_one.ok());
  ASSERT_EQ(from_one->root_updates_size(), 1);
  EXPECT_EQ(from_one->root_updates(0), snapshots_.Current()->roots().back().envelope_json);
  absl::StatusOr<v1::GetAssignmentResponse> current = Poll(1, 2);
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->root_updates_size(), 0);
  EXPECT_EQ(Poll(1, -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AgentServiceTest, FloorsOfTheAnsweredChannelsAreCarried) {
  absl::StatusOr<v1::GetAssignmentResponse> resp = Poll(1);
  ASSERT_TRUE(resp.ok()) << resp.status();
  ASSERT_EQ(resp->floors_size(), 1);
  absl::StatusOr<Root> root = TrustInitialRoot(pinned_root_, clock_.Now());
  ASSERT_TRUE(root.ok());
  absl::StatusOr<Floor> floor = VerifyFloor(*root, resp->floors(0));
  ASSERT_TRUE(floor.ok()) << floor.status();
  EXPECT_EQ(floor->channel, kChannel);
  EXPECT_EQ(floor->min_version, 1);
}

TEST_F(AgentServiceTest, TheEmergencyStopIsSigned) {
  ASSERT_TRUE(store_.SetEmergencyStop(true, AuditRecord{}).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  absl::StatusOr<v1::GetAssignmentResponse> resp = Poll(1);
  ASSERT_TRUE(resp.ok()) << resp.status();
  absl::StatusOr<Assignment> a = Verified(*resp);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->emergency_stop);
}

TEST_F(AgentServiceTest, AnswersSignedWithAKeyTheRootDoesNotNameAreRefusedByAgents) {
  Ed25519PrivateKey stranger = NewKey();
  AgentServiceImpl rogue(AgentServiceOptions{}, snapshots_, telemetry_, metrics_, trust_, stranger,
                         clock_, agents_, credentials_, enroll_queue_);
  grpc::ServerBuilder builder;
  builder.RegisterService(&rogue);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  stub_ = v1::AgentService::NewStub(server->InProcessChannel(grpc::ChannelArguments()));
  absl::StatusOr<v1::GetAssignmentResponse> resp = Poll(1);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(Verified(*resp).status().code(), absl::StatusCode::kPermissionDenied);
  server->Shutdown();
}

// ---- Agent identity: enrollment tokens, credentials, refusals ----

class AgentIdentityTest : public AgentServiceTest {
 protected:
  std::string Token(int32_t max_uses, std::map<std::string, std::string> labels = {},
                    absl::Duration ttl = absl::Hours(1)) {
    absl::StatusOr<CreatedEnrollmentToken> created =
        agents_.CreateToken(NewEnrollmentToken{ttl, max_uses, std::move(labels), "test"}, admin_);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->text : "";
  }

  absl::StatusOr<v1::EnrollResponse> Enroll(const std::string& id, const std::string& token,
                                            std::map<std::string, std::string> labels = {},
                                            const std::string& credential = "") {
    grpc::ClientContext ctx;
    if (!credential.empty()) {
      ctx.AddMetadata("authorization", "Bearer " + credential);
    }
    v1::EnrollRequest req;
    req.set_agent_id(id);
    req.set_enrollment_token(token);
    req.mutable_labels()->insert(labels.begin(), labels.end());
    v1::EnrollResponse resp;
    const grpc::Status status = stub_->Enroll(&ctx, req, &resp);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return resp;
  }

  absl::StatusOr<v1::ReportTelemetryResponse> Report(const std::string& as_agent,
                                                     const std::string& credential, int64_t seq) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + credential);
    v1::ReportTelemetryRequest req;
    req.set_agent_id(as_agent);
    req.set_batch_seq(seq);
    req.add_events()->mutable_heartbeat()->set_boot_id("b");
    v1::ReportTelemetryResponse resp;
    const grpc::Status status = stub_->ReportTelemetry(&ctx, req, &resp);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return resp;
  }
};

TEST_F(AgentIdentityTest, TheTokenDecidesTheRingAndSelfAssertedLabelsDoNot) {
  absl::StatusOr<v1::EnrollResponse> self = Enroll("sybil-1", Token(5), {{"group", "dogfood"}});
  ASSERT_TRUE(self.ok()) << self.status();
  // Its ring is the one its id hashes to, as if it had said nothing; had its
  // own label counted, it would be canary.
  EXPECT_EQ(self->ring(), RingName(snapshots_.Current()->RingOf(AgentIdentity{"sybil-1", {}})));
  ASSERT_EQ(snapshots_.Current()->RingOf(AgentIdentity{"sybil-1", {{"group", "dogfood"}}}),
            Ring::kCanary);
  ASSERT_NE(snapshots_.Current()->RingOf(AgentIdentity{"sybil-1", {}}), Ring::kCanary);
  absl::StatusOr<v1::EnrollResponse> dogfood = Enroll("laptop-1", Token(1, {{"group", "dogfood"}}));
  ASSERT_TRUE(dogfood.ok()) << dogfood.status();
  EXPECT_EQ(dogfood->ring(), "canary");
  auto agents = store_.ListAgents(std::nullopt, 10);
  ASSERT_TRUE(agents.ok());
  for (const AgentRecord& a : agents->first) {
    if (a.agent_id == "sybil-1") {
      EXPECT_TRUE(a.labels.empty());
      EXPECT_EQ(a.reported_labels.at("group"), "dogfood");
    }
  }
}

TEST_F(AgentIdentityTest, APollIsAnsweredInTheRingTheTokensLabelsGive) {
  // The labels are read from the snapshot in place on every call (none is copied): the poll,
  // not only the enrollment, must see them.
  ASSERT_NE(snapshots_.Current()->RingOf(AgentIdentity{"laptop-7", {}}), Ring::kCanary);
  absl::StatusOr<v1::EnrollResponse> enrolled =
      Enroll("laptop-7", Token(1, {{"group", "dogfood"}}));
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  ASSERT_TRUE(snapshots_.Refresh().ok());
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + enrolled->agent_token());
    v1::GetAssignmentRequest req;
    req.set_agent_id("laptop-7");
    v1::GetAssignmentResponse resp;
    const grpc::Status status = stub_->GetAssignment(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.ring(), "canary") << i;
    absl::StatusOr<Assignment> statement = Verified(resp, "laptop-7");
    ASSERT_TRUE(statement.ok()) << statement.status();
    EXPECT_EQ(statement->ring, "canary");
  }
  // Another agent of the same fleet without labels is not carried along.
  absl::StatusOr<v1::EnrollResponse> plain = Enroll("laptop-8", Token(1));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->ring(), RingName(snapshots_.Current()->RingOf(AgentIdentity{"laptop-8", {}})));
}

TEST_F(AgentIdentityTest, ASpentTokenIsRefused) {
  const std::string token = Token(2);
  ASSERT_TRUE(Enroll("h-1", token).ok());
  ASSERT_TRUE(Enroll("h-2", token).ok());
  absl::StatusOr<v1::EnrollResponse> third = Enroll("h-3", token);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(third.status().message()), ::testing::HasSubstr("is spent: 2 of 2"));
}

TEST_F(AgentIdentityTest, AnExpiredOrRevokedTokenIsRefused) {
  const std::string token = Token(10, {}, absl::Minutes(5));
  clock_.Advance(absl::Minutes(6));
  absl::StatusOr<v1::EnrollResponse> late = Enroll("h-1", token);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(late.status().message()), ::testing::HasSubstr("expired at"));

  const std::string other = Token(10);
  const std::string id = other.substr(4, 16);
  ASSERT_TRUE(agents_.RevokeToken(id, "leaked", admin_).ok());
  absl::StatusOr<v1::EnrollResponse> revoked = Enroll("h-2", other);
  EXPECT_EQ(revoked.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(revoked.status().message()), ::testing::HasSubstr("was revoked"));
}

TEST_F(AgentIdentityTest, MalformedAndUnknownTokensAreRefusedWithoutEchoingThem) {
  for (const std::string& bad :
       {std::string(), std::string("rwe_"), std::string(5000, 'x'), std::string("rwe_zz_zz"),
        std::string("rwe_0123456789abcdef_") + std::string(43, '*')}) {
    absl::StatusOr<v1::EnrollResponse> r = Enroll("h-1", bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << bad.substr(0, 40);
    EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("malformed token"));
  }
  std::string wrong_secret = Token(1);
  wrong_secret.back() = wrong_secret.back() == 'A' ? 'B' : 'A';
  absl::StatusOr<v1::EnrollResponse> r = Enroll("h-1", wrong_secret);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("not known"));
}

TEST_F(AgentIdentityTest, ReEnrollingAnIdNeedsItsCredentialOrAReset) {
  absl::StatusOr<v1::EnrollResponse> first = Enroll("h-1", Token(5));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<v1::EnrollResponse> thief = Enroll("h-1", Token(5), {{"group", "dogfood"}});
  EXPECT_EQ(thief.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(thief.status().message()), ::testing::HasSubstr("already enrolled"));
  // The agent itself, over its current credential, may.
  EXPECT_TRUE(Enroll("h-1", Token(5), {}, first->agent_token()).ok());
  // After an admin reset anyone with a token may, once, and the old credential is dead.
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(agents_.Reset("h-1", "reinstalled", admin_).ok());
  absl::StatusOr<v1::ReportTelemetryResponse> stale = Report("h-1", first->agent_token(), 1);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(stale.status().message()), ::testing::HasSubstr("predates the reset"));
  EXPECT_TRUE(Enroll("h-1", Token(5)).ok());
  EXPECT_EQ(Enroll("h-1", Token(5)).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AgentIdentityTest, AnAgentCannotActAsAnother) {
  absl::StatusOr<v1::EnrollResponse> a = Enroll("agent-a", Token(2));
  ASSERT_TRUE(Enroll("agent-b", Token(2)).ok());
  ASSERT_TRUE(a.ok());
  absl::StatusOr<v1::ReportTelemetryResponse> as_b = Report("agent-b", a->agent_token(), 1);
  EXPECT_EQ(as_b.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(as_b.status().message()),
              ::testing::HasSubstr("belongs to agent agent-a; it cannot act as agent agent-b"));
  // Not even a huge sequence number reaches B's state: B's own batch 1 still counts.
  EXPECT_FALSE(Report("agent-b", a->agent_token(), INT64_MAX).ok());
  EXPECT_TRUE(Report("agent-a", a->agent_token(), 1).ok());
}

TEST_F(AgentIdentityTest, ARevokedAgentIsShutOutAtItsNextCall) {
  absl::StatusOr<v1::EnrollResponse> a = Enroll("h-1", Token(1));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(Report("h-1", a->agent_token(), 1).ok());
  ASSERT_TRUE(agents_.Revoke("h-1", "stolen laptop", admin_).ok());
  absl::StatusOr<v1::ReportTelemetryResponse> after = Report("h-1", a->agent_token(), 2);
  EXPECT_EQ(after.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(after.status().message()), ::testing::HasSubstr("h-1 was revoked"));
  absl::StatusOr<v1::EnrollResponse> again = Enroll("h-1", Token(1), {}, a->agent_token());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AgentIdentityTest, AnExpiredCredentialIsRefused) {
  absl::StatusOr<v1::EnrollResponse> a = Enroll("h-1", Token(1));
  ASSERT_TRUE(a.ok());
  clock_.Advance(absl::Hours(25));
  absl::StatusOr<v1::ReportTelemetryResponse> late = Report("h-1", a->agent_token(), 1);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(late.status().message()), ::testing::HasSubstr("expired at"));
}

TEST_F(AgentIdentityTest, ABatchSequenceJumpBeyondTheWindowIsRefused) {
  absl::StatusOr<v1::EnrollResponse> a = Enroll("h-1", Token(1));
  ASSERT_TRUE(a.ok());
  absl::StatusOr<v1::ReportTelemetryResponse> first = Report("h-1", a->agent_token(), 5);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::ReportTelemetryResponse> jump =
      Report("h-1", a->agent_token(), 5 + kMaxBatchSeqJump + 1);
  EXPECT_EQ(jump.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(jump.status().message()), ::testing::HasSubstr("jumps more than"));
  absl::StatusOr<v1::ReportTelemetryResponse> next = Report("h-1", a->agent_token(), 6);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE(next->duplicate());
}

TEST_F(AgentIdentityTest, TokenTermsAreBounded) {
  EXPECT_EQ(
      agents_.CreateToken(NewEnrollmentToken{absl::Seconds(5), 1, {}, ""}, admin_).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      agents_.CreateToken(NewEnrollmentToken{absl::Hours(1), 0, {}, ""}, admin_).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      agents_.CreateToken(NewEnrollmentToken{absl::Hours(1), 1, {{"bad key!", "v"}}, ""}, admin_)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

// ---- BuildAssignment and AssignmentSequence ----

TEST(AgentTokenTest, ATokenVerifiesOnlyUnderItsSecretWhicheverSecretAThreadLastUsed) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const std::string a = IssueAgentToken("host-a", now, now + absl::Hours(1), "secret-a");
  const std::string b = IssueAgentToken("host-b", now, now + absl::Hours(1), "secret-b");
  auto verify = [&](const std::string& token, const std::string& secret) {
    absl::StatusOr<PresentedCredential> p = VerifyAgentToken(token, secret, now);
    return p.ok() ? p->agent_id : std::string(absl::StatusCodeToString(p.status().code()));
  };
  // Alternating secrets on one thread, then on others: each token only under its own.
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(verify(a, "secret-a"), "host-a");
    EXPECT_EQ(verify(a, "secret-b"), "UNAUTHENTICATED");
    EXPECT_EQ(verify(b, "secret-b"), "host-b");
    EXPECT_EQ(verify(b, "secret-a"), "UNAUTHENTICATED");
    EXPECT_EQ(verify(a, "secret-a2"), "UNAUTHENTICATED");  // a secret that extends another
    EXPECT_EQ(verify(a, ""), "UNAUTHENTICATED");
  }
  std::thread([&] {
    EXPECT_EQ(verify(b, "secret-a"), "UNAUTHENTICATED");
    EXPECT_EQ(verify(a, "secret-a"), "host-a");
  }).join();
  // The same token is issued whichever secret a thread used last.
  EXPECT_EQ(IssueAgentToken("host-a", now, now + absl::Hours(1), "secret-a"), a);
  // A MAC cut off, emptied or with one bit flipped is refused.
  const size_t dot = a.rfind('.');
  EXPECT_EQ(verify(a.substr(0, dot + 1), "secret-a"), "UNAUTHENTICATED");
  EXPECT_EQ(verify(a.substr(0, a.size() - 4), "secret-a"), "UNAUTHENTICATED");
  std::string flipped = a;
  flipped[dot + 1] = flipped[dot + 1] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify(flipped, "secret-a"), "UNAUTHENTICATED");
}

TEST(AgentTokenTest, ATokenIsIssuedAsPlainFieldsUnderAnIndependentlyComputedMac) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const std::string token =
      IssueAgentToken("host-1", now - absl::Seconds(5), now + absl::Hours(1), "secret");
  // The MAC is OpenSSL's HMAC of everything before it, prefix included.
  EXPECT_EQ(token, testing::MacedToken("1799999995.1800003600.host-1", "secret"));
  // Ids may hold dots and colons: the id is the last field before the MAC.
  for (const std::string& id :
       std::vector<std::string>{"host-1", "h", "db01.prod.example.com", "a:b.c_d-e",
                                std::string(kMaxAgentIdLength, 'x')}) {
    absl::StatusOr<PresentedCredential> p = VerifyAgentToken(
        IssueAgentToken(id, now - absl::Seconds(5), now + absl::Hours(1), "secret"), "secret", now);
    ASSERT_TRUE(p.ok()) << id << ": " << p.status();
    EXPECT_EQ(p->agent_id, id);
    EXPECT_EQ(p->issued_at, now - absl::Seconds(5));
  }
}

TEST(AgentTokenTest, TheFieldsBehindAValidMacAreReadStrictly) {
  using testing::MacedToken;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const std::string secret = "secret";
  absl::StatusOr<PresentedCredential> good =
      VerifyAgentToken(MacedToken("0001799999000.1800003600.h", secret), secret, now);
  EXPECT_FALSE(good.ok());  // 13 digits
  good = VerifyAgentToken(MacedToken("001799999000.1800003600.h", secret), secret, now);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->issued_at, absl::FromUnixSeconds(1799999000));
  for (const std::string& fields : {
           std::string("1799999000.1800003600"),            // no id
           std::string("1799999000.1800003600."),           // an empty id
           std::string("1799999000"), std::string(""),      // too few fields
           std::string(".1800003600.h"),                    // no iat
           std::string("1799999000..h"),                    // no exp
           std::string("+1799999000.1800003600.h"),         // a sign
           std::string("1799999000.-1800003600.h"),         // a negative time
           std::string(" 1799999000.1800003600.h"),         // a space
           std::string("1799999000.1800003600 .h"),         // a space
           std::string("1799999000.0x1800003600.h"),        // hex
           std::string("1799999000.1.8e9.h"),               // a float, read as exp "1"
           std::string("1799999000.1800003600.h/1"),        // an id that is not an agent id
           std::string("1799999000.1800003600.h 1"),        // an id that is not an agent id
           std::string("1799999000.1800003600.h\xc3\xa9"),  // an id that is not an agent id
           std::string("1799999000.1800003600.") + std::string(kMaxAgentIdLength + 1, 'x'),
           std::string("1799999000.1700000000.h"),  // expired
           std::string("1799999000.1800000000.h"),  // expires this second
       }) {
    absl::StatusOr<PresentedCredential> p =
        VerifyAgentToken(MacedToken(fields, secret), secret, now);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated) << fields;
  }
}

TEST(AgentTokenTest, AnRwa2TokenStillVerifiesAndNeitherFormatsMacStandsForTheOthers) {
  using testing::MacedJsonToken;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const std::string secret = "secret";
  const std::string rwa2 =
      MacedJsonToken(R"({"id":"host-1","iat":1799999000,"exp":1800003600})", secret);
  absl::StatusOr<PresentedCredential> p = VerifyAgentToken(rwa2, secret, now);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->agent_id, "host-1");
  EXPECT_EQ(p->issued_at, absl::FromUnixSeconds(1799999000));
  // The same MAC under the other prefix is refused (by the framing: neither body reads as the
  // other format).
  std::string relabelled = rwa2;
  relabelled[3] = '3';
  EXPECT_EQ(VerifyAgentToken(relabelled, secret, now).status().code(),
            absl::StatusCode::kUnauthenticated);
  const std::string rwa3 = IssueAgentToken("host-1", now, now + absl::Hours(1), secret);
  relabelled = rwa3;
  relabelled[3] = '2';
  EXPECT_EQ(VerifyAgentToken(relabelled, secret, now).status().code(),
            absl::StatusCode::kUnauthenticated);
  // A whole rwa3 token after an rwa2 prefix: the rwa2 MAC input ends at the first dot.
  EXPECT_EQ(VerifyAgentToken(absl::StrCat("rwa2.", rwa3), secret, now).status().code(),
            absl::StatusCode::kUnauthenticated);
  // rwa3 fields MACed without the prefix, as an rwa2 issuer MACs its body.
  const std::string fields = "1800000000.1800003600.host-1";
  EXPECT_EQ(
      VerifyAgentToken(absl::StrCat("rwa3.", fields, ".", testing::Base64urlHmac(fields, secret)),
                       secret, now)
          .status()
          .code(),
      absl::StatusCode::kUnauthenticated);
  // An rwa2 id that is not an agent id.
  EXPECT_EQ(
      VerifyAgentToken(MacedJsonToken(R"({"id":"h/1","iat":1799999000,"exp":1800003600})", secret),
                       secret, now)
          .status()
          .code(),
      absl::StatusCode::kUnauthenticated);
  // Framing: no MAC, no dot after the prefix, another version, an oversized token.
  for (const std::string& token :
       {std::string("rwa3."), std::string("rwa3.x"), std::string("rwa2."), std::string("rwa2.x"),
        std::string("rwa3"), std::string("rwa4.") + rwa3.substr(5), std::string(""),
        std::string("."), std::string("rwa3.") + std::string(1100, '1') + ".h." + "AAAA",
        absl::StrCat("rwa3.1800000000.1800003600.", std::string(1000, 'x'))}) {
    EXPECT_EQ(VerifyAgentToken(token, secret, now).status().code(),
              absl::StatusCode::kUnauthenticated)
        << token.substr(0, 40);
  }
}

TEST(AgentTokenTest, AMacedBodyIsReadOnlyAsAnObjectOfAStringIdAndIntegerTimes) {
  using testing::MacedJsonToken;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const std::string secret = "secret";
  absl::StatusOr<PresentedCredential> good = VerifyAgentToken(
      MacedJsonToken(R"({"exp":1800003600,"iat":1799999000,"id":"host-1","v":[1,2]})", secret),
      secret, now);
  EXPECT_FALSE(good.ok());  // an array anywhere is refused
  good = VerifyAgentToken(
      MacedJsonToken(R"({"exp":1800003600,"note":"x","iat":1799999000,"id":"host-1","n":null})",
                     secret),
      secret, now);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->agent_id, "host-1");
  EXPECT_EQ(good->issued_at, absl::FromUnixSeconds(1799999000));
  for (const std::string& claims : {
           std::string(R"({"exp":1800003600,"iat":1799999000})"),             // no id
           std::string(R"({"exp":1800003600,"iat":1799999000,"id":7})"),      // id not a string
           std::string(R"({"exp":"1800003600","iat":1799999000,"id":"h"})"),  // exp a string
           std::string(R"({"exp":1800003600.5,"iat":1799999000,"id":"h"})"),  // exp a float
           std::string(R"({"exp":1800003600,"iat":true,"id":"h"})"),          // iat a bool
           std::string(R"({"exp":1800003600,"iat":1799999000,"id":{"a":"h"}})"),
           std::string(R"(["h",1799999000,1800003600])"), std::string(R"("h")"), std::string("17"),
           std::string(R"({"exp":1800003600,"iat":1799999000,"id":"h")"),
           std::string(R"({"exp":1800003600,"iat":1799999000,"id":"h"} {})"), std::string(""),
           std::string(R"({"exp":1700000000,"iat":1699999000,"id":"h"})"),     // expired
           std::string(R"({"exp":1800003600,"iat":-1,"id":"h"})"),             // before 1970
           std::string(R"({"exp":1000000000000,"iat":1799999000,"id":"h"})"),  // 13 digits
       }) {
    absl::StatusOr<PresentedCredential> p =
        VerifyAgentToken(MacedJsonToken(claims, secret), secret, now);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated) << claims;
  }
}

TEST(CertificateIdentitiesTest, EachCertificateIsReadOnceWhileRememberedAndFailuresEveryTime) {
  std::atomic<int> reads{0};
  CertificateIdentities known(2, [&](absl::string_view pem) -> absl::StatusOr<PresentedCredential> {
    ++reads;
    if (pem == "bad") {
      return absl::UnauthenticatedError("the client certificate cannot be read");
    }
    return PresentedCredential{absl::StrCat("agent-", pem), absl::FromUnixSeconds(pem.size())};
  });
  auto id = [&](const std::string& pem) {
    absl::StatusOr<PresentedCredential> p = known.Identify(pem);
    return p.ok() ? p->agent_id : std::string(p.status().message());
  };
  EXPECT_EQ(id("a"), "agent-a");
  EXPECT_EQ(id("a"), "agent-a");
  EXPECT_EQ(reads.load(), 1);
  EXPECT_EQ(known.Identify("a")->issued_at, absl::FromUnixSeconds(1));
  EXPECT_EQ(id("a\n"), "agent-a\n");  // any other byte is another certificate
  EXPECT_EQ(reads.load(), 2);
  // Failures are read again, and not remembered.
  EXPECT_EQ(id("bad"), "the client certificate cannot be read");
  EXPECT_EQ(id("bad"), "the client certificate cannot be read");
  EXPECT_EQ(reads.load(), 4);
  EXPECT_EQ(known.size(), 2u);
  // At most 2: the least recently presented goes first ("a\n"; "a" was presented since).
  EXPECT_EQ(id("a"), "agent-a");
  EXPECT_EQ(id("b"), "agent-b");
  EXPECT_EQ(reads.load(), 5);
  EXPECT_EQ(id("a"), "agent-a");
  EXPECT_EQ(reads.load(), 5);
  EXPECT_EQ(id("a\n"), "agent-a\n");
  EXPECT_EQ(reads.load(), 6);
  EXPECT_EQ(known.size(), 2u);

  // Many threads, many certificates: every answer is its own certificate's.
  CertificateIdentities many(
      1000, [&](absl::string_view pem) -> absl::StatusOr<PresentedCredential> {
        return PresentedCredential{absl::StrCat("agent-", pem), absl::InfinitePast()};
      });
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string pem = absl::StrCat((i * 7 + t) % 300);
        absl::StatusOr<PresentedCredential> p = many.Identify(pem);
        if (!p.ok() || p->agent_id != "agent-" + pem) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(many.size(), 300u);
}

TEST(MetricsTest, TheHealthTrackersCountsAdvanceTheCountersByTheirGrowth) {
  prometheus::Registry registry;
  Metrics metrics(registry);
  auto value = [&](const std::string& name) {
    for (const prometheus::MetricFamily& family : registry.Collect()) {
      if (family.name == name && !family.metric.empty()) {
        const prometheus::ClientMetric& m = family.metric.front();
        return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
    return -1.0;
  };
  metrics.OnLeadership(true);
  metrics.OnHealthTracker(
      TrackerReport{1, 10, 100, 2, absl::Milliseconds(250), absl::ZeroDuration()});
  metrics.OnHealthTracker(TrackerReport{1, 15, 180, 2, absl::Milliseconds(40), absl::Seconds(90)});
  EXPECT_EQ(value("ringwarden_health_tracker_full_loads_total"), 1);
  EXPECT_EQ(value("ringwarden_health_tracker_agents_reread_total"), 15);
  EXPECT_EQ(value("ringwarden_health_tracker_heartbeats_applied_total"), 180);
  EXPECT_EQ(value("ringwarden_health_tracker_rollouts"), 2);
  EXPECT_DOUBLE_EQ(value("ringwarden_health_tracker_sync_seconds"), 0.04);
  EXPECT_EQ(value("ringwarden_health_feed_held_back_seconds"), 90);
  // A new tracker (counts from zero) keeps the counters growing.
  metrics.OnHealthTracker(TrackerReport{0, 3, 7, 1, absl::Milliseconds(5), absl::Seconds(30)});
  EXPECT_EQ(value("ringwarden_health_feed_held_back_seconds"), 30);
  EXPECT_EQ(value("ringwarden_health_tracker_full_loads_total"), 1);
  EXPECT_EQ(value("ringwarden_health_tracker_agents_reread_total"), 18);
  EXPECT_EQ(value("ringwarden_health_tracker_heartbeats_applied_total"), 187);
  // A follower holds no evidence.
  metrics.OnLeadership(false);
  EXPECT_EQ(value("ringwarden_health_tracker_rollouts"), 0);
  EXPECT_EQ(value("ringwarden_health_feed_held_back_seconds"), 0);
}

TEST(BuildAssignmentTest, AVersionWithoutADigestIsStatedAsNothing) {
  const ManifestDigest digest{std::string(64, 'a'), "sha", 42};
  ChannelAnswer named;
  named.channel = "rules.a";
  named.assignment = ResolvedAssignment{3, true, ""};
  named.manifest = &digest;
  named.revoked = {4};
  ChannelAnswer unknown;
  unknown.channel = "rules.b";
  unknown.assignment = ResolvedAssignment{7, true, "ro-1"};
  unknown.revoked = {5, 6};
  ChannelAnswer unparsed = named;
  const ManifestDigest empty{"", "sha", 42};
  unparsed.channel = "rules.c";
  unparsed.manifest = &empty;
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  const Assignment a = BuildAssignment("agent-9", Ring::kEarly, {named, unknown, unparsed}, true,
                                       AssignmentTerms{77, now, absl::Minutes(30), 5});
  EXPECT_EQ(a.agent_id, "agent-9");
  EXPECT_EQ(a.ring, "early");
  EXPECT_EQ(a.sequence, 77);
  EXPECT_EQ(a.issued, now);
  EXPECT_EQ(a.expires, now + absl::Minutes(30));
  EXPECT_TRUE(a.emergency_stop);
  EXPECT_EQ(a.root_version, 5);
  ASSERT_EQ(a.channels.size(), 3u);
  EXPECT_EQ(a.channels[0].version, 3);
  EXPECT_EQ(a.channels[0].manifest_sha256, digest.manifest_sha256);
  EXPECT_EQ(a.channels[0].size, 42);
  EXPECT_TRUE(a.channels[0].rollback);
  EXPECT_EQ(a.channels[0].revoked_versions, std::vector<int64_t>{4});
  for (size_t i : {1u, 2u}) {
    EXPECT_EQ(a.channels[i].version, 0) << i;
    EXPECT_FALSE(a.channels[i].rollback) << i;
    EXPECT_EQ(a.channels[i].manifest_sha256, "") << i;
  }
  EXPECT_EQ(a.channels[1].revoked_versions, (std::vector<int64_t>{5, 6}));
}

TEST(AssignmentSequenceTest, StrictlyIncreasesWhenTheClockStandsOrGoesBack) {
  AssignmentSequence sequence;
  const absl::Time t = absl::FromUnixMicros(1'000'000);
  EXPECT_EQ(sequence.Next(t), 1'000'000);
  EXPECT_EQ(sequence.Next(t), 1'000'001);
  EXPECT_EQ(sequence.Next(t - absl::Seconds(1)), 1'000'002);
  EXPECT_EQ(sequence.Next(t + absl::Seconds(1)), 2'000'000);
}

TEST(AssignmentSequenceTest, ConcurrentCallersNeverShareANumber) {
  AssignmentSequence sequence;
  const absl::Time t = absl::FromUnixMicros(5);
  std::vector<std::vector<int64_t>> got(8);
  std::vector<std::thread> threads;
  for (auto& mine : got) {
    threads.emplace_back([&sequence, &mine, t] {
      for (int i = 0; i < 1000; ++i) {
        mine.push_back(sequence.Next(t));
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  std::set<int64_t> all;
  for (const auto& mine : got) {
    for (size_t i = 1; i < mine.size(); ++i) {
      EXPECT_GT(mine[i], mine[i - 1]);
    }
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(all.size(), 8000u);
}

// The per-agent token bucket on the service's injected clock: a burst, then
// RESOURCE_EXHAUSTED with the time until the next token as "retry-after-ms".
TEST_F(AgentServiceTest, AnAgentOverItsRateIsRefusedWithARetryHintUntilItsBucketRefills) {
  AgentServiceOptions options;
  options.rate_limit = {/*rate_per_second=*/2, /*burst=*/3, /*max_agents=*/100};
  StartService(options);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Poll(1).ok()) << i;
  }
  grpc::ClientContext ctx;
  grpc::Status refused = Report(kAgent, 1, nullptr, &ctx);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "ReportTelemetry: agent host-1 is over its rate of 2 calls/s (burst 3); retry after "
            "500 ms");
  auto hint = ctx.GetServerTrailingMetadata().find("retry-after-ms");
  ASSERT_NE(hint, ctx.GetServerTrailingMetadata().end());
  EXPECT_EQ(std::string(hint->second.data(), hint->second.size()), "500");
  // Another agent has a bucket of its own.
  EXPECT_TRUE(Report("host-2", 1).ok());
  clock_.Advance(absl::Milliseconds(500));
  EXPECT_TRUE(Poll(1).ok());
  EXPECT_EQ(Poll(1).status().code(), absl::StatusCode::kResourceExhausted);
}

// The batch-number table holds max_tracked_agents agents: the least recently
// seen is forgotten, and its next batch sets a new base.
TEST_F(AgentServiceTest, BatchNumbersAreRememberedForABoundedNumberOfAgents) {
  AgentServiceOptions options;
  options.max_tracked_agents = 2;
  StartService(options);
  bool duplicate = false;
  ASSERT_TRUE(Report("host-1", 5).ok());
  ASSERT_TRUE(Report("host-2", 5).ok());
  ASSERT_TRUE(Report("host-2", 5, &duplicate).ok());
  EXPECT_TRUE(duplicate);
  ASSERT_TRUE(Report("host-3", 5).ok());  // forgets host-1
  ASSERT_TRUE(Report("host-3", 5, &duplicate).ok());
  EXPECT_TRUE(duplicate);
  ASSERT_TRUE(Report("host-1", 5, &duplicate).ok());
  EXPECT_FALSE(duplicate) << "host-1 was forgotten: its batch sets a new base";
  ASSERT_TRUE(Report("host-1", 5, &duplicate).ok());
  EXPECT_TRUE(duplicate);
}

// A download is bounded by the server too: past max_fetch_duration the stream
// ends with DEADLINE_EXCEEDED naming the offset to resume from.
TEST_F(AgentServiceTest, ADownloadPastTheServersLimitEndsWithDeadlineExceeded) {
  auto fetch = [&] { return Fetch(1); };
  auto [ok, payload] = fetch();
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(payload, "payload v1");

  AgentServiceOptions options;
  options.max_fetch_duration = -absl::Seconds(1);  // already over at the first chunk
  StartService(options);
  auto [late, nothing] = fetch();
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(late.error_message(),
            "FetchContent: the download ran past the server's limit at offset 0; resume from "
            "there");
  EXPECT_EQ(nothing, "");
}

// Health events are kept once per channel version in effect; a kind outside the shared
// validator refuses the batch with the field named.
TEST_F(AgentServiceTest, HealthEventsAreStoredPerVersionAndABadKindIsRefusedNamingTheField) {
  auto send = [&](const std::string& kind, const std::string& detail, int64_t seq) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + TokenFor(kAgent));
    v1::ReportTelemetryRequest req;
    req.set_agent_id(kAgent);
    req.set_batch_seq(seq);
    req.add_events()->mutable_heartbeat()->set_boot_id("b");
    v1::HealthEvent* h = req.add_events()->mutable_health();
    h->set_kind(kind);
    h->set_detail(detail);
    for (const char* channel : {kChannel, "rules.other"}) {
      v1::ChannelVersion* cv = h->add_versions();
      cv->set_channel(channel);
      cv->set_version(2);
    }
    v1::ReportTelemetryResponse resp;
    return stub_->ReportTelemetry(&ctx, req, &resp);
  };
  const grpc::Status ok = send("cpu_high", std::string(10'000, 'x'), 1);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  ASSERT_TRUE(telemetry_.Flush().ok());
  const TelemetryRows written = store_.Written();
  ASSERT_EQ(written.health_events.size(), 2u);  // one row per channel version in effect
  EXPECT_EQ(written.health_events[0].agent_id, kAgent);
  EXPECT_EQ(written.health_events[0].kind, "cpu_high");
  EXPECT_EQ(written.health_events[0].channel, kChannel);
  EXPECT_EQ(written.health_events[0].version, 2);
  EXPECT_LE(written.health_events[0].detail.size(), 1024u);  // free text is cut, not refused

  for (const std::string& bad : {std::string(), std::string("CPU High"), std::string(65, 'a'),
                                 std::string("cpu\x00high", 8), std::string("1st")}) {
    const grpc::Status refused = send(bad, "", 2);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("events[1].health.kind"));
    EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("health event kind"));
  }
  ASSERT_TRUE(telemetry_.Flush().ok());
  EXPECT_EQ(store_.Written().health_events.size(), 2u);  // nothing of a refused batch is kept
}

// A halt stops first loads at the next snapshot: the agent may still hold a signed assignment
// naming the version, but the download is refused until its next poll tells it otherwise.
TEST_F(AgentServiceTest, AHaltedVersionIsNotServedToAHostThatDoesNotRunIt) {
  ASSERT_TRUE(UploadSignedContent(store_, kChannel, 3, "payload v3", release_key).ok());
  NewRollout create;
  create.rollout.id = "ro-3";
  create.rollout.channel = kChannel;
  create.rollout.version = 3;
  create.rollout.previous_version = 1;
  create.rollout.position.state = RolloutState::kBroad;  // every ring, every host admitted
  create.rollout.broad_fraction = 1.0;
  create.rollout.admitted_fraction = 1.0;
  ASSERT_TRUE(store_.CreateRollout(create).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  auto fetch = [&](int64_t version) { return Fetch(version); };
  auto [admitted, v3] = fetch(3);
  ASSERT_TRUE(admitted.ok()) << admitted.error_message();
  EXPECT_EQ(v3, "payload v3");

  RolloutChange halt;
  halt.rollout_id = "ro-3";
  halt.expected_revision = 1;
  halt.plan.to.state = RolloutState::kHalted;
  halt.plan.to.halted_from = RolloutState::kBroad;
  ASSERT_TRUE(store_.ApplyRolloutChange(halt).ok());
  ASSERT_TRUE(snapshots_.Refresh().ok());
  auto [refused, nothing] = fetch(3);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(refused.error_message(),
            "rules.behavioral v3 is not assigned to this agent in this replica's snapshot "
            "(halted, stopped or not yet admitted); poll again");
  EXPECT_EQ(nothing, "");
  // The last good version stays available, and the poll says to keep what the host runs.
  auto [previous, v1] = fetch(1);
  EXPECT_TRUE(previous.ok()) << previous.error_message();
  EXPECT_EQ(v1, "payload v1");
  absl::StatusOr<v1::GetAssignmentResponse> poll = Poll(/*current=*/1);
  ASSERT_TRUE(poll.ok()) << poll.status();
  EXPECT_EQ(poll->assignments(0).version(), 1);
  // A version nobody published is refused the same way.
  EXPECT_EQ(fetch(99).first.error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace ringwarden::testing
