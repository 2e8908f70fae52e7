#include "tests/agent-client/fake_agent_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/dsse.h"
#include "common/sha256.h"
#include "gtest/gtest.h"

namespace ringwarden::agent::testing {

namespace {

// ChunkWriter streams precomputed chunks, then finishes with `final`.
class ChunkWriter final : public grpc::ServerWriteReactor<v1::ContentChunk> {
 public:
  ChunkWriter(std::vector<v1::ContentChunk> chunks, grpc::Status final)
      : chunks_(std::move(chunks)), final_(std::move(final)) {
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ < chunks_.size()) {
      StartWrite(&chunks_[next_++]);
    } else {
      Finish(final_);
    }
  }
  std::vector<v1::ContentChunk> chunks_;
  size_t next_ = 0;
  grpc::Status final_;
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

void FakeAgentService::SetAssignments(const std::string& ring,
                                      std::vector<v1::ChannelAssignment> assignments) {
  absl::MutexLock lock(&mu_);
  assignments_[ring] = std::move(assignments);
}

void FakeAgentService::SetEmergencyStop(bool stop) {
  absl::MutexLock lock(&mu_);
  emergency_stop_ = stop;
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

bool FakeAgentService::Injected(const std::string& method, grpc::Status* status) {
  ++calls_[method];
  auto it = failures_.find(method);
  if (it == failures_.end() || it->second.first <= 0) {
    return false;
  }
  --it->second.first;
  *status = grpc::Status(it->second.second, absl::StrCat("injected ", method, " failure"));
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
  if (Injected("Enroll", &injected)) {
    return Reply(ctx, injected);
  }
  if (req->enrollment_secret() != kSecret) {
    return Reply(ctx, grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                   "wrong enrollment secret; check --enrollment-secret"));
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
  absl::MutexLock lock(&mu_);
  grpc::Status status;
  if (Injected("GetAssignment", &status)) {
    return Reply(ctx, status);
  }
  status = Authenticate(*ctx, req->agent_id());
  if (!status.ok()) {
    return Reply(ctx, status);
  }
  const std::string& ring = rings_[req->agent_id()];
  auto it = assignments_.find(ring);
  if (it == assignments_.end()) {
    it = assignments_.find("*");
  }
  if (it != assignments_.end()) {
    for (const v1::ChannelAssignment& a : it->second) {
      *resp->add_assignments() = a;
    }
  }
  resp->set_ring(ring);
  resp->set_next_poll_ms(next_poll_ms_);
  resp->set_emergency_stop(emergency_stop_);
  return Reply(ctx, grpc::Status::OK);
}

grpc::ServerWriteReactor<v1::ContentChunk>* FakeAgentService::FetchContent(
    grpc::CallbackServerContext* ctx, const v1::FetchContentRequest* req) {
  absl::MutexLock lock(&mu_);
  grpc::Status status;
  if (Injected("FetchContent", &status)) {
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
  return new ChunkWriter(std::move(chunks), grpc::Status::OK);
}

grpc::ServerUnaryReactor* FakeAgentService::ReportTelemetry(grpc::CallbackServerContext* ctx,
                                                            const v1::ReportTelemetryRequest* req,
                                                            v1::ReportTelemetryResponse* resp) {
  absl::MutexLock lock(&mu_);
  grpc::Status status;
  TelemetryCall call;
  call.request = *req;
  if (Injected("ReportTelemetry", &status)) {
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
