#include "tests/agent-client/fake_agent_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/dsse.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace ringwarden::agent::testing {

namespace {

// ChunkWriter streams precomputed chunks, then finishes with `final`; with
// `hold_after` >= 0 it stops after that many chunks and keeps the stream open
// until the client cancels. gRPC methods are called without mu_ held.
class ChunkWriter final : public grpc::ServerWriteReactor<v1::ContentChunk> {
 public:
  ChunkWriter(std::vector<v1::ContentChunk> chunks, grpc::Status final, int hold_after = -1)
      : chunks_(std::move(chunks)), final_(std::move(final)), hold_after_(hold_after) {
    Next();
  }
  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
    }
    if (!ok) {
      FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    Next();
  }
  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (writing_) {
        return;  // OnWriteDone finishes
      }
    }
    FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    const v1::ContentChunk* chunk = nullptr;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) {
        return;
      }
      if (cancelled_) {
        status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
      } else if (hold_after_ >= 0 && next_ >= static_cast<size_t>(hold_after_)) {
        return;  // stalled: OnCancel finishes
      } else if (next_ < chunks_.size()) {
        writing_ = true;
        chunk = &chunks_[next_++];
      } else {
        status = final_;
      }
    }
    if (chunk != nullptr) {
      StartWrite(chunk);
    } else {
      FinishOnce(status);
    }
  }
  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) {
        return;
      }
      finished_ = true;
    }
    Finish(status);
  }

  const std::vector<v1::ContentChunk> chunks_;
  const grpc::Status final_;
  const int hold_after_;
  absl::Mutex mu_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace

SignedContent SignContent(const Ed25519PrivateKey& key, const std::string& channel, int64_t version,
                          const std::string& payload,
                          const std::function<void(v1::ContentManifest&)>& edit) {
  v1::ContentManifest manifest;
  manifest.set_channel(channel);
  manifest.set_version(version);
  manifest.set_sha256(Sha256Hex(payload));
  manifest.set_size(static_cast<int64_t>(payload.size()));
  manifest.set_created_unix(1'700'000'000);
  manifest.set_description("test content");
  if (edit) {
    edit(manifest);
  }
  absl::StatusOr<DsseEnvelope> envelope =
      SignEnvelope(kManifestPayloadType, manifest.SerializeAsString(), {&key});
  EXPECT_TRUE(envelope.ok()) << envelope.status();
  SignedContent out;
  out.served.envelope_json = EncodeEnvelopeJson(*envelope);
  out.served.payload = payload;
  out.assignment.set_channel(channel);
  out.assignment.set_version(version);
  out.assignment.set_sha256(Sha256Hex(payload));
  out.assignment.set_size(static_cast<int64_t>(payload.size()));
  out.assignment.set_rollout_id(absl::StrCat("rollout-", channel, "-", version));
  return out;
}

RootSpec TestRootSpec(const Ed25519PrivateKey& root_key, const Ed25519PrivateKey& release_key,
                      const Ed25519PrivateKey& server_key, int64_t version) {
  RootSpec spec;
  spec.version = version;
  spec.expires = absl::Now() + absl::Hours(24 * 3650);
  for (const Ed25519PrivateKey* key : {&root_key, &release_key, &server_key}) {
    spec.keys.push_back(key->PublicKey());
  }
  spec.root = TrustRole{{root_key.PublicKey().KeyId()}, 1};
  spec.release = TrustRole{{release_key.PublicKey().KeyId()}, 1};
  spec.server = TrustRole{{server_key.PublicKey().KeyId()}, 1};
  return spec;
}

std::string SignRoot(const RootSpec& spec, const std::vector<const Ed25519PrivateKey*>& signers) {
  absl::StatusOr<std::string> payload = EncodeRoot(spec);
  EXPECT_TRUE(payload.ok()) << payload.status();
  absl::StatusOr<DsseEnvelope> envelope = SignEnvelope(kRootPayloadType, *payload, signers);
  EXPECT_TRUE(envelope.ok()) << envelope.status();
  return EncodeEnvelopeJson(*envelope);
}

TestTrust MakeTestTrust(const Ed25519PrivateKey& release_key) {
  TestTrust trust{Ed25519PrivateKey::Generate().value(), release_key,
                  Ed25519PrivateKey::Generate().value(), "", Root{}};
  trust.root_json = SignRoot(TestRootSpec(trust.root_key, trust.release_key, trust.server_key, 1),
                             {&trust.root_key});
  absl::StatusOr<Root> root = TrustInitialRoot(trust.root_json, absl::Now());
  EXPECT_TRUE(root.ok()) << root.status();
  trust.root = *std::move(root);
  return trust;
}

std::string SignFloor(const Ed25519PrivateKey& key, const std::string& channel,
                      int64_t min_version) {
  absl::StatusOr<std::string> payload =
      EncodeFloor(channel, min_version, absl::FromUnixSeconds(1'700'000'000));
  EXPECT_TRUE(payload.ok()) << payload.status();
  absl::StatusOr<DsseEnvelope> envelope = SignEnvelope(kFloorPayloadType, *payload, {&key});
  EXPECT_TRUE(envelope.ok()) << envelope.status();
  return EncodeEnvelopeJson(*envelope);
}

void FakeAgentService::SetTrust(const Ed25519PrivateKey& server_key, int64_t root_version) {
  absl::MutexLock lock(&mu_);
  server_key_ = server_key;
  root_version_ = root_version;
}

void FakeAgentService::SetClock(const Clock* clock) {
  absl::MutexLock lock(&mu_);
  clock_ = clock;
}

void FakeAgentService::SetAssignmentTtl(absl::Duration ttl) {
  absl::MutexLock lock(&mu_);
  ttl_ = ttl;
}

void FakeAgentService::SetRootUpdates(std::vector<std::string> root_updates) {
  absl::MutexLock lock(&mu_);
  root_updates_ = std::move(root_updates);
}

void FakeAgentService::SetFloors(std::vector<std::string> floors) {
  absl::MutexLock lock(&mu_);
  floors_ = std::move(floors);
}

void FakeAgentService::SetMisbehavior(Misbehavior misbehavior, const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  misbehavior_[agent_id] = std::move(misbehavior);
}

void FakeAgentService::SetHonourHeld(bool honour) {
  absl::MutexLock lock(&mu_);
  honour_held_ = honour;
}

std::vector<std::optional<v1::HeldAssignment>> FakeAgentService::HeldNamed(
    const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = held_named_.find(agent_id);
  return it == held_named_.end() ? std::vector<std::optional<v1::HeldAssignment>>{} : it->second;
}

void FakeAgentService::ClearMisbehavior() {
  absl::MutexLock lock(&mu_);
  misbehavior_.clear();
}

std::string FakeAgentService::SignNow(const std::string& agent_id) {
  absl::MutexLock lock(&mu_);
  const std::string ring = rings_[agent_id];
  return Sign(agent_id, ring, AssignmentsOf(ring), Misbehavior{});
}

std::vector<std::string> FakeAgentService::SignedAssignments(const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = signed_.find(agent_id);
  return it == signed_.end() ? std::vector<std::string>{} : it->second;
}

int64_t FakeAgentService::LastRootVersion(const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = root_versions_.find(agent_id);
  return it == root_versions_.end() ? -1 : it->second;
}

std::vector<v1::ChannelAssignment> FakeAgentService::AssignmentsOf(const std::string& ring) const {
  auto it = assignments_.find(ring);
  if (it == assignments_.end()) {
    it = assignments_.find("*");
  }
  return it == assignments_.end() ? std::vector<v1::ChannelAssignment>{} : it->second;
}

Misbehavior FakeAgentService::MisbehaviorOf(const std::string& agent_id) const {
  auto it = misbehavior_.find(agent_id);
  if (it == misbehavior_.end()) {
    it = misbehavior_.find("*");
  }
  return it == misbehavior_.end() ? Misbehavior{} : it->second;
}

Assignment FakeAgentService::Statement(const std::string& agent_id, const std::string& ring,
                                       const std::vector<v1::ChannelAssignment>& assignments,
                                       const Misbehavior& m) {
  Assignment a;
  a.agent_id = m.agent_id.empty() ? agent_id : m.agent_id;
  a.ring = m.ring.empty() ? ring : m.ring;
  a.issued = clock_->Now() + m.issued_offset;
  a.expires = a.issued + m.ttl.value_or(ttl_);
  for (const v1::ChannelAssignment& c : assignments) {
    AssignedChannel out;
    out.channel = c.channel();
    out.version = c.version();
    out.size = c.size();
    out.revoked_versions.assign(c.revoked_versions().begin(), c.revoked_versions().end());
    out.rollback = c.rollback();
    // The digest of the manifest served for this version, as the server keeps it.
    auto content = content_.find({c.channel(), c.version()});
    const std::string envelope_json =
        content == content_.end() ? "" : content->second.envelope_json;
    absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(envelope_json);
    out.manifest_sha256 = Sha256Hex(envelope.ok() ? envelope->payload : envelope_json);
    a.channels.push_back(std::move(out));
  }
  a.emergency_stop = emergency_stop_;
  a.root_version = root_version_;
  return a;
}

std::string FakeAgentService::Sign(const std::string& agent_id, const std::string& ring,
                                   const std::vector<v1::ChannelAssignment>& assignments,
                                   const Misbehavior& m) {
  Assignment a = Statement(agent_id, ring, assignments, m);
  a.sequence = ++sequence_;
  absl::StatusOr<std::string> json =
      SignAssignment(a, m.signing_key.has_value() ? *m.signing_key : *server_key_);
  EXPECT_TRUE(json.ok()) << json.status();
  return json.ok() ? *json : "";
}

void FakeAgentService::SetAssignments(const std::string& ring,
                                      std::vector<v1::ChannelAssignment> assignments) {
  absl::MutexLock lock(&mu_);
  assignments_[ring] = std::move(assignments);
}

void FakeAgentService::SetEmergencyStop(bool stop) {
  absl::MutexLock lock(&mu_);
  emergency_stop_ = stop;
}

void FakeAgentService::SetAnswerDelay(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  answer_delay_ = delay;
}

void FakeAgentService::SetNextPollMs(int64_t ms) {
  absl::MutexLock lock(&mu_);
  next_poll_ms_ = ms;
}

void FakeAgentService::AddContent(const std::string& channel, int64_t version,
                                  ServedContent content) {
  absl::MutexLock lock(&mu_);
  content_[{channel, version}] = std::move(content);
}

void FakeAgentService::Serve(const std::string& ring, const SignedContent& content) {
  AddContent(content.assignment.channel(), content.assignment.version(), content.served);
  SetAssignments(ring, {content.assignment});
}

void FakeAgentService::FailNext(const std::string& method, int n, grpc::StatusCode code) {
  absl::MutexLock lock(&mu_);
  failures_[method] = {n, code};
}

void FakeAgentService::ForgetTokens() {
  absl::MutexLock lock(&mu_);
  tokens_.clear();
  ++token_epoch_;
}

std::vector<FakeAgentService::TelemetryCall> FakeAgentService::telemetry() const {
  absl::MutexLock lock(&mu_);
  return telemetry_;
}

int FakeAgentService::calls(const std::string& method) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

std::string FakeAgentService::RingOf(const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = rings_.find(agent_id);
  return it == rings_.end() ? "" : it->second;
}

std::vector<v1::TelemetryEvent> FakeAgentService::AcceptedEvents(
    const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::TelemetryEvent> out;
  for (const TelemetryCall& call : telemetry_) {
    if (call.failed || call.duplicate || call.request.agent_id() != agent_id) {
      continue;
    }
    out.insert(out.end(), call.request.events().begin(), call.request.events().end());
  }
  return out;
}

std::vector<v1::ApplyReport> FakeAgentService::ApplyReports(const std::string& agent_id) const {
  std::vector<v1::ApplyReport> out;
  for (const v1::TelemetryEvent& e : AcceptedEvents(agent_id)) {
    if (e.has_apply()) {
      out.push_back(e.apply());
    }
  }
  return out;
}

std::vector<v1::CrashReport> FakeAgentService::CrashReports(const std::string& agent_id) const {
  std::vector<v1::CrashReport> out;
  for (const v1::TelemetryEvent& e : AcceptedEvents(agent_id)) {
    if (e.has_crash()) {
      out.push_back(e.crash());
    }
  }
  return out;
}

std::vector<v1::Heartbeat> FakeAgentService::Heartbeats(const std::string& agent_id) const {
  std::vector<v1::Heartbeat> out;
  for (const v1::TelemetryEvent& e : AcceptedEvents(agent_id)) {
    if (e.has_heartbeat()) {
      out.push_back(e.heartbeat());
    }
  }
  return out;
}

std::vector<v1::HealthEvent> FakeAgentService::HealthEvents(const std::string& agent_id) const {
  std::vector<v1::HealthEvent> out;
  for (const v1::TelemetryEvent& e : AcceptedEvents(agent_id)) {
    if (e.has_health()) {
      out.push_back(e.health());
    }
  }
  return out;
}

void FakeAgentService::SetRetryAfterMs(int64_t ms) {
  absl::MutexLock lock(&mu_);
  retry_after_ms_ = ms;
}

bool FakeAgentService::Injected(const std::string& method, grpc::CallbackServerContext* ctx,
                                grpc::Status* status) {
  ++calls_[method];
  auto it = failures_.find(method);
  if (it == failures_.end() || it->second.first <= 0) {
    return false;
  }
  --it->second.first;
  *status = grpc::Status(it->second.second, absl::StrCat("injected ", method, " failure"));
  if (retry_after_ms_ > 0) {
    ctx->AddTrailingMetadata("retry-after-ms", std::to_string(retry_after_ms_));
  }
  return true;
}

grpc::Status FakeAgentService::Authenticate(grpc::CallbackServerContext& ctx,
                                            const std::string& agent_id) const {
  auto it = ctx.client_metadata().find("authorization");
  auto token = tokens_.find(agent_id);
  if (it == ctx.client_metadata().end() || token == tokens_.end() ||
      std::string(it->second.data(), it->second.size()) != "Bearer " + token->second) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown agent token");
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* FakeAgentService::Enroll(grpc::CallbackServerContext* ctx,
                                                   const v1::EnrollRequest* req,
                                                   v1::EnrollResponse* resp) {
  absl::MutexLock lock(&mu_);
  grpc::Status injected;
  if (Injected("Enroll", ctx, &injected)) {
    return Reply(ctx, injected);
  }
  if (req->enrollment_token() != kSecret) {
    return Reply(ctx, grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                   "enrollment token refused: unknown token"));
  }
  if (req->agent_id().empty()) {
    return Reply(ctx, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "agent_id is required"));
  }
  auto group = req->labels().find("group");
  const std::string ring =
      group != req->labels().end() && group->second == "dogfood" ? "canary" : "broad";
  const std::string token = absl::StrCat("tok-", req->agent_id(), "-", token_epoch_);
  tokens_[req->agent_id()] = token;
  rings_[req->agent_id()] = ring;
  resp->set_agent_token(token);
  resp->set_ring(ring);
  return Reply(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FakeAgentService::GetAssignment(grpc::CallbackServerContext* ctx,
                                                          const v1::GetAssignmentRequest* req,
                                                          v1::GetAssignmentResponse* resp) {
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    delay = answer_delay_;
  }
  absl::SleepFor(delay);
  absl::MutexLock lock(&mu_);
  grpc::Status status;
  if (Injected("GetAssignment", ctx, &status)) {
    return Reply(ctx, status);
  }
  status = Authenticate(*ctx, req->agent_id());
  if (!status.ok()) {
    return Reply(ctx, status);
  }
  const std::string& agent_id = req->agent_id();
  root_versions_[agent_id] = req->root_version();
  const std::string ring = rings_[agent_id];
  const std::vector<v1::ChannelAssignment> assignments = AssignmentsOf(ring);
  const Misbehavior m = MisbehaviorOf(agent_id);
  for (const v1::ChannelAssignment& a : m.unsigned_assignments.value_or(assignments)) {
    *resp->add_assignments() = a;
  }
  resp->set_ring(ring);
  resp->set_next_poll_ms(next_poll_ms_);
  resp->set_emergency_stop(emergency_stop_);
  held_named_[agent_id].push_back(req->has_held() ? std::optional(req->held()) : std::nullopt);
  const bool honest = misbehavior_.count(agent_id) == 0 && misbehavior_.count("*") == 0;
  bool held_current = m.claim_held_current;
  if (honour_held_ && honest && req->has_held() && server_key_.has_value()) {
    Assignment named = Statement(agent_id, ring, assignments, m);
    named.sequence = req->held().sequence();
    named.issued = absl::FromUnixMillis(req->held().issued_unix_ms());
    named.expires = absl::FromUnixMillis(req->held().expires_unix_ms());
    held_current = named.expires - clock_->Now() >= ttl_ / 2 &&
                   Sha256Hex(AssignmentPayload(named)) == req->held().payload_sha256();
  }
  if (held_current) {
    resp->set_held_assignment_current(true);
  } else if (server_key_.has_value() && !m.unsigned_answer) {
    std::string signed_assignment =
        m.replay.empty() ? Sign(agent_id, ring, assignments, m) : m.replay;
    resp->set_signed_assignment(signed_assignment);
    signed_[agent_id].push_back(std::move(signed_assignment));
  }
  for (const std::string& root : root_updates_) {
    resp->add_root_updates(root);
  }
  for (const std::string& floor : floors_) {
    resp->add_floors(floor);
  }
  return Reply(ctx, grpc::Status::OK);
}

grpc::ServerWriteReactor<v1::ContentChunk>* FakeAgentService::FetchContent(
    grpc::CallbackServerContext* ctx, const v1::FetchContentRequest* req) {
  absl::MutexLock lock(&mu_);
  grpc::Status status;
  if (Injected("FetchContent", ctx, &status)) {
    return new ChunkWriter({}, status);
  }
  status = Authenticate(*ctx, req->agent_id());
  if (!status.ok()) {
    return new ChunkWriter({}, status);
  }
  auto it = content_.find({req->channel(), req->version()});
  if (it == content_.end()) {
    return new ChunkWriter(
        {}, grpc::Status(grpc::StatusCode::NOT_FOUND,
                         absl::StrCat("no content ", req->channel(), " v", req->version())));
  }
  const ServedContent& c = it->second;
  std::vector<v1::ContentChunk> chunks;
  size_t offset = 0;
  do {
    const size_t n = std::min(c.chunk_bytes, c.payload.size() - offset);
    v1::ContentChunk chunk;
    if (chunks.empty()) {
      chunk.set_envelope(c.envelope_json);
      chunk.set_total_size(c.total_size_override >= 0 ? c.total_size_override
                                                      : static_cast<int64_t>(c.payload.size()));
    } else if (c.gap && chunks.size() == 1) {
      offset += 1;
    }
    chunk.set_offset(static_cast<int64_t>(offset));
    chunk.set_data(c.payload.substr(offset, n));
    chunks.push_back(std::move(chunk));
    offset += n;
  } while (offset < c.payload.size());
  if (c.truncate && chunks.size() > 1) {
    chunks.pop_back();
  }
  return new ChunkWriter(std::move(chunks), grpc::Status::OK, c.hold_after_chunks);
}

grpc::ServerUnaryReactor* FakeAgentService::ReportTelemetry(grpc::CallbackServerContext* ctx,
                                                            const v1::ReportTelemetryRequest* req,
                                                            v1::ReportTelemetryResponse* resp) {
  absl::MutexLock lock(&mu_);
  grpc::Status status;
  TelemetryCall call;
  call.request = *req;
  if (Injected("ReportTelemetry", ctx, &status)) {
    call.failed = true;
    telemetry_.push_back(std::move(call));
    return Reply(ctx, status);
  }
  status = Authenticate(*ctx, req->agent_id());
  if (!status.ok()) {
    call.failed = true;
    telemetry_.push_back(std::move(call));
    return Reply(ctx, status);
  }
  int64_t& last = last_seq_[req->agent_id()];
  if (req->batch_seq() <= last) {
    call.duplicate = true;
    resp->set_duplicate(true);
  } else {
    last = req->batch_seq();
    resp->set_accepted(req->events_size());
  }
  telemetry_.push_back(std::move(call));
  return Reply(ctx, grpc::Status::OK);
}

FakeServer::FakeServer() {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port);
}

FakeServer::~FakeServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_->Wait();
}

}  // namespace ringwarden::agent::testing
