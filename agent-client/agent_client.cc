#include "agent-client/agent_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/dsse.h"
#include "ringwarden/v1/agent.grpc.pb.h"

namespace ringwarden::agent {

namespace v1 = ::ringwarden::v1;

struct AgentConnection::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::AgentService::Stub> stub;
};

namespace {

// ApplyOutcome and CrashKind (common/outcomes.h) share the wire numbering, so
// converting is a static_cast; a renumbering on either side fails to compile here.
static_assert(static_cast<int>(ApplyOutcome::kUnspecified) == v1::APPLY_OUTCOME_UNSPECIFIED);
static_assert(static_cast<int>(ApplyOutcome::kApplied) == v1::APPLY_OUTCOME_APPLIED);
static_assert(static_cast<int>(ApplyOutcome::kSignatureRejected) ==
              v1::APPLY_OUTCOME_SIGNATURE_REJECTED);
static_assert(static_cast<int>(ApplyOutcome::kDigestMismatch) == v1::APPLY_OUTCOME_DIGEST_MISMATCH);
static_assert(static_cast<int>(ApplyOutcome::kApplyFailed) == v1::APPLY_OUTCOME_APPLY_FAILED);
static_assert(static_cast<int>(ApplyOutcome::kLoadCheckFailed) ==
              v1::APPLY_OUTCOME_LOAD_CHECK_FAILED);
static_assert(static_cast<int>(ApplyOutcome::kReverted) == v1::APPLY_OUTCOME_REVERTED);
static_assert(static_cast<int>(CrashKind::kUnspecified) == v1::CRASH_KIND_UNSPECIFIED);
static_assert(static_cast<int>(CrashKind::kProcessCrash) == v1::CRASH_KIND_PROCESS_CRASH);
static_assert(static_cast<int>(CrashKind::kUncleanShutdown) == v1::CRASH_KIND_UNCLEAN_SHUTDOWN);

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
}

void FillVersions(const std::vector<ChannelVersion>& in,
                  google::protobuf::RepeatedPtrField<v1::ChannelVersion>* out) {
  for (const ChannelVersion& cv : in) {
    v1::ChannelVersion* p = out->Add();
    p->set_channel(cv.channel);
    p->set_version(cv.version);
  }
}

// EventToProto converts one of our telemetry events to its wire form.
struct EventToProto {
  v1::TelemetryEvent* out;

  void operator()(const Heartbeat& h) const {
    v1::Heartbeat* p = out->mutable_heartbeat();
    FillVersions(h.versions, p->mutable_versions());
    p->set_uptime_seconds(h.uptime_seconds);
    p->set_boot_id(h.boot_id);
  }
  void operator()(const ApplyReport& a) const {
    v1::ApplyReport* p = out->mutable_apply();
    p->set_channel(a.channel);
    p->set_version(a.version);
    p->set_outcome(static_cast<v1::ApplyOutcome>(a.outcome));
    p->set_detail(a.detail);
  }
  void operator()(const CrashReport& c) const {
    v1::CrashReport* p = out->mutable_crash();
    p->set_kind(static_cast<v1::CrashKind>(c.kind));
    FillVersions(c.versions, p->mutable_versions());
    p->set_detail(c.detail);
  }
  void operator()(const HealthEvent& h) const {
    v1::HealthEvent* p = out->mutable_health();
    p->set_kind(h.kind);
    p->set_detail(h.detail);
    FillVersions(h.versions, p->mutable_versions());
  }
};

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) {
    return absl::OkStatus();
  }
  // gRPC and absl share the canonical code numbering.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

AgentConnection::AgentConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AgentConnection::~AgentConnection() = default;

std::shared_ptr<AgentConnection> AgentConnection::Create(const std::string& address,
                                                         const ConnectionOptions& options) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
  // Pings only while calls are in flight: an idle agent between polls must not
  // trip the server's too-many-pings protection.
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (options.own_connection) {
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  return FromChannel(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

std::shared_ptr<AgentConnection> AgentConnection::FromChannel(
    std::shared_ptr<grpc::Channel> channel) {
  auto impl = std::make_unique<Impl>();
  impl->stub = v1::AgentService::NewStub(channel);
  impl->channel = std::move(channel);
  return std::shared_ptr<AgentConnection>(new AgentConnection(std::move(impl)));
}

AgentClient::AgentClient(std::shared_ptr<AgentConnection> connection, AgentClientOptions options)
    : connection_(std::move(connection)), options_(options) {}

void AgentClient::SetIdentity(std::string agent_id, std::string token) {
  absl::MutexLock lock(&mu_);
  agent_id_ = std::move(agent_id);
  token_ = std::move(token);
}

bool AgentClient::enrolled() const {
  absl::MutexLock lock(&mu_);
  return !token_.empty();
}

absl::StatusOr<AgentClient::Identity> AgentClient::GetIdentity() const {
  absl::MutexLock lock(&mu_);
  if (token_.empty()) {
    return absl::FailedPreconditionError("agent is not enrolled: call Enroll first");
  }
  return Identity{agent_id_, token_};
}

absl::StatusOr<EnrollResult> AgentClient::Enroll(const std::string& agent_id,
                                                 const std::map<std::string, std::string>& labels,
                                                 const std::string& enrollment_secret,
                                                 const std::string& hostname) {
  v1::EnrollRequest req;
  req.set_agent_id(agent_id);
  req.mutable_labels()->insert(labels.begin(), labels.end());
  req.set_enrollment_secret(enrollment_secret);
  req.set_hostname(hostname);
  v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.call_timeout);
  absl::Status status = FromGrpcStatus(connection_->impl_->stub->Enroll(&ctx, req, &resp));
  if (!status.ok()) {
    return status;
  }
  if (resp.agent_token().empty()) {
    return absl::InternalError("Enroll answered without an agent_token");
  }
  SetIdentity(agent_id, resp.agent_token());
  return EnrollResult{resp.agent_token(), resp.ring()};
}

absl::StatusOr<Assignment> AgentClient::GetAssignment(const std::vector<ChannelVersion>& current,
                                                      const std::vector<std::string>& channels) {
  absl::StatusOr<Identity> id = GetIdentity();
  if (!id.ok()) {
    return id.status();
  }
  v1::GetAssignmentRequest req;
  req.set_agent_id(id->agent_id);
  FillVersions(current, req.mutable_current());
  for (const std::string& c : channels) {
    req.add_channels(c);
  }
  v1::GetAssignmentResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.call_timeout);
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", id->token));
  absl::Status status = FromGrpcStatus(connection_->impl_->stub->GetAssignment(&ctx, req, &resp));
  if (!status.ok()) {
    return status;
  }
  Assignment out;
  out.ring = resp.ring();
  out.next_poll = absl::Milliseconds(resp.next_poll_ms());
  out.emergency_stop = resp.emergency_stop();
  out.channels.reserve(resp.assignments_size());
  for (const v1::ChannelAssignment& a : resp.assignments()) {
    ChannelAssignment c;
    c.channel = a.channel();
    c.version = a.version();
    c.sha256 = a.sha256();
    c.size = a.size();
    c.rollback = a.rollback();
    c.revoked_versions.assign(a.revoked_versions().begin(), a.revoked_versions().end());
    c.rollout_id = a.rollout_id();
    out.channels.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<FetchedContent> AgentClient::FetchContent(const std::string& channel,
                                                         int64_t version) {
  absl::StatusOr<Identity> id = GetIdentity();
  if (!id.ok()) {
    return id.status();
  }
  v1::FetchContentRequest req;
  req.set_agent_id(id->agent_id);
  req.set_channel(channel);
  req.set_version(version);
  req.set_offset(0);
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.fetch_timeout);
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", id->token));
  std::unique_ptr<grpc::ClientReader<v1::ContentChunk>> reader =
      connection_->impl_->stub->FetchContent(&ctx, req);

  const std::string what = absl::StrCat(channel, " v", version);
  FetchedContent out;
  v1::ContentChunk chunk;
  bool first = true;
  int64_t total = 0;
  absl::Status violation;
  while (violation.ok() && reader->Read(&chunk)) {
    if (first) {
      first = false;
      total = chunk.total_size();
      if (total < 0) {
        violation = absl::DataLossError(absl::StrCat(what, ": negative total_size ", total));
      } else if (total > options_.max_content_bytes) {
        violation = absl::FailedPreconditionError(
            absl::StrCat(what, ": content of ", total, " bytes exceeds the limit of ",
                         options_.max_content_bytes, " bytes"));
      } else if (chunk.envelope().size() > kMaxEnvelopeJsonBytes) {
        violation = absl::FailedPreconditionError(
            absl::StrCat(what, ": envelope of ", chunk.envelope().size(),
                         " bytes exceeds the limit of ", kMaxEnvelopeJsonBytes, " bytes"));
      } else {
        out.envelope_json = chunk.envelope();
        out.payload.reserve(static_cast<size_t>(total));
      }
      if (!violation.ok()) {
        break;
      }
    } else if (chunk.total_size() != 0 && chunk.total_size() != total) {
      violation = absl::DataLossError(absl::StrCat(what, ": total_size changed from ", total,
                                                   " to ", chunk.total_size(), " mid-stream"));
      break;
    }
    const int64_t have = static_cast<int64_t>(out.payload.size());
    if (chunk.offset() != have) {
      violation = absl::DataLossError(
          absl::StrCat(what, ": chunk at offset ", chunk.offset(), ", expected offset ", have));
    } else if (have + static_cast<int64_t>(chunk.data().size()) > total) {
      violation = absl::DataLossError(
          absl::StrCat(what, ": stream carries more than the announced ", total, " bytes"));
    } else {
      out.payload.append(chunk.data());
    }
  }
  if (!violation.ok()) {
    ctx.TryCancel();
    // The cancelled call's status (CANCELLED) says less than the violation.
    static_cast<void>(reader->Finish());
    return violation;
  }
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (!status.ok()) {
    return status;
  }
  if (first) {
    return absl::DataLossError(absl::StrCat(what, ": empty content stream"));
  }
  if (static_cast<int64_t>(out.payload.size()) != total) {
    return absl::DataLossError(
        absl::StrCat(what, ": stream ended after ", out.payload.size(), " of ", total, " bytes"));
  }
  return out;
}

absl::StatusOr<TelemetryAck> AgentClient::ReportTelemetry(
    int64_t batch_seq, const std::vector<TelemetryEvent>& events) {
  absl::StatusOr<Identity> id = GetIdentity();
  if (!id.ok()) {
    return id.status();
  }
  v1::ReportTelemetryRequest req;
  req.set_agent_id(id->agent_id);
  req.set_batch_seq(batch_seq);
  for (const TelemetryEvent& e : events) {
    v1::TelemetryEvent* p = req.add_events();
    p->set_observed_unix_ms(absl::ToUnixMillis(e.observed));
    std::visit(EventToProto{p}, e.event);
  }
  v1::ReportTelemetryResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.call_timeout);
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", id->token));
  absl::Status status = FromGrpcStatus(connection_->impl_->stub->ReportTelemetry(&ctx, req, &resp));
  if (!status.ok()) {
    return status;
  }
  return TelemetryAck{resp.accepted(), resp.duplicate()};
}

}  // namespace ringwarden::agent
