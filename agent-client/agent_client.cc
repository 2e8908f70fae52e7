#include "agent-client/agent_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/dsse.h"
#include "common/retry_hint.h"
#include "common/status_macros.h"
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

// FillEnrollment reads an Enroll or RenewCredential answer into a credential.
absl::StatusOr<EnrollResult> ToEnrollResult(const v1::EnrollResponse& resp,
                                            const std::string& agent_id,
                                            const AgentKeyRequest* key) {
  EnrollResult result;
  result.ring = resp.ring();
  result.credential.agent_id = agent_id;
  result.credential.token = resp.agent_token();
  result.credential.cert_pem = resp.certificate_pem();
  // A server that states no expiry issued a credential that does not expire.
  result.credential.expires =
      resp.expires_unix() > 0 ? absl::FromUnixSeconds(resp.expires_unix()) : absl::InfiniteFuture();
  if (key != nullptr) {
    if (resp.certificate_pem().empty()) {
      return absl::InternalError("the server answered a CSR without a certificate");
    }
    result.credential.key_pem = key->private_key_pem;
  } else if (resp.agent_token().empty()) {
    return absl::InternalError("the server answered without a credential");
  }
  return result;
}

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

// StreamState is what the calling thread of FetchContent and the gRPC callbacks
// share; both hold it, so it outlives whichever finishes last.
struct StreamState {
  enum class Event { kChunk, kEnd, kTimeout };

  // Wait returns kChunk when `chunk` holds the next message, kEnd when the
  // stream has no more, kTimeout at `deadline`.
  Event Wait(absl::Time deadline) {
    absl::MutexLock lock(&mu);
    mu.AwaitWithDeadline(absl::Condition(
                             +[](StreamState* s) { return s->chunk_ready || s->ended; }, this),
                         deadline);
    if (chunk_ready) {
      chunk_ready = false;
      return Event::kChunk;
    }
    return ended ? Event::kEnd : Event::kTimeout;
  }
  grpc::Status WaitDone() {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&done));
    return status;
  }

  v1::FetchContentRequest request;
  v1::ContentChunk chunk;  // written by gRPC between StartRead and OnReadDone only
  absl::Mutex mu;
  bool chunk_ready = false;
  bool ended = false;
  bool done = false;
  grpc::Status status;
};

// StreamReader runs one FetchContent call with the callback API, so that the
// caller can wait for the next chunk with a timeout and check the rate. A hold
// keeps the call open until the caller calls RemoveHold; it then deletes
// itself when the call is done.
class StreamReader final : public grpc::ClientReadReactor<v1::ContentChunk> {
 public:
  explicit StreamReader(std::shared_ptr<StreamState> state) : state_(std::move(state)) {}

  void Begin(v1::AgentService::Stub& stub, grpc::ClientContext& ctx,
             const v1::FetchContentRequest& request) {
    state_->request = request;
    stub.async()->FetchContent(&ctx, &state_->request, this);
    AddHold();
    StartRead(&state_->chunk);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&state_->mu);
    (ok ? state_->chunk_ready : state_->ended) = true;
  }
  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->status = status;
      state_->done = true;
    }
    delete this;
  }

 private:
  const std::shared_ptr<StreamState> state_;
};

// DownloadRate measures the bytes received over a sliding window.
class DownloadRate {
 public:
  DownloadRate(absl::Time begin, const AgentClientOptions& options)
      : begin_(begin), options_(options) {
    samples_.push_back({begin, 0});
  }

  // CheckInterval is how often a silent stream is looked at.
  absl::Duration CheckInterval() const {
    return std::clamp(options_.fetch_rate_window / 4, absl::Milliseconds(5), absl::Seconds(1));
  }
  // Received notes that `total` bytes have arrived by `now`.
  void Received(absl::Time now, int64_t total) {
    samples_.push_back({now, total});
    // Keep one sample at or before the window's start.
    const absl::Time from = now - options_.fetch_rate_window;
    while (samples_.size() > 1 && samples_[1].at <= from) {
      samples_.pop_front();
    }
  }
  // TooSlow: after the grace period, fewer bytes than the minimum rate over the
  // last window (or since the beginning, when that is shorter), unless every
  // byte still owed at the window's start has come (`size`: the signed size,
  // -1 while unknown).
  bool TooSlow(absl::Time now, int64_t size) const {
    if (now - begin_ < options_.fetch_grace) {
      return false;
    }
    const absl::Time from = std::max(begin_, now - options_.fetch_rate_window);
    int64_t at_from = 0;
    for (const Sample& s : samples_) {
      if (s.at > from) {
        break;
      }
      at_from = s.total;
    }
    const double received = static_cast<double>(samples_.back().total - at_from);
    double wanted = static_cast<double>(options_.min_fetch_bytes_per_second) *
                    absl::ToDoubleSeconds(now - from);
    if (size >= 0) {
      wanted = std::min(wanted, static_cast<double>(size - at_from));
    }
    return received < wanted;
  }

 private:
  struct Sample {
    absl::Time at;
    int64_t total;
  };
  const absl::Time begin_;
  const AgentClientOptions& options_;
  std::deque<Sample> samples_;
};

// AcceptFirstChunk checks the first message of a download: announced size
// within the limit, envelope within its limit and accepted by `check`, the
// announced size equal to the signed one. Sets `signed_size`.
absl::Status AcceptFirstChunk(absl::string_view what, const v1::ContentChunk& chunk,
                              const AgentClientOptions& options, const EnvelopeCheck& check,
                              int64_t* signed_size) {
  const int64_t announced = chunk.total_size();
  if (announced < 0) {
    return absl::DataLossError(absl::StrCat(what, ": negative total_size ", announced));
  }
  if (announced > options.max_content_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": content of ", announced,
                                                      " bytes exceeds the limit of ",
                                                      options.max_content_bytes, " bytes"));
  }
  if (chunk.envelope().size() > kMaxEnvelopeJsonBytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": envelope of ", chunk.envelope().size(),
                     " bytes exceeds the limit of ", kMaxEnvelopeJsonBytes, " bytes"));
  }
  absl::StatusOr<int64_t> size = check(chunk.envelope());
  if (!size.ok()) {
    return size.status();
  }
  if (*size < 0 || *size > options.max_content_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": signed content of ", *size,
                                                      " bytes exceeds the limit of ",
                                                      options.max_content_bytes, " bytes"));
  }
  if (announced != *size) {
    return absl::DataLossError(absl::StrCat(what, ": the server announces ", announced,
                                            " bytes, the signed manifest says ", *size));
  }
  *signed_size = *size;
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateAgentClientOptions(const AgentClientOptions& options) {
  if (options.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the call timeout must be positive");
  }
  if (options.fetch_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the download deadline must be positive");
  }
  if (options.max_content_bytes < 1) {
    return absl::InvalidArgumentError("the content size limit must be at least 1 byte");
  }
  if (options.min_fetch_bytes_per_second < 1) {
    return absl::InvalidArgumentError("the minimum download rate must be at least 1 byte/s");
  }
  if (options.fetch_rate_window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the download rate window must be positive");
  }
  if (options.fetch_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the download grace period must not be negative");
  }
  return absl::OkStatus();
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) {
    return absl::OkStatus();
  }
  // gRPC and absl share the canonical code numbering.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

namespace {

constexpr char kRetryAfterPayload[] = "type.googleapis.com/ringwarden.RetryAfterMs";
// A hint beyond this is not believed: a confused server must not park agents.
constexpr absl::Duration kMaxRetryAfter = absl::Minutes(15);

// FromCall maps a finished call's status, keeping the server's retry hint
// (trailing "retry-after-ms") as a payload that RetryAfter reads.
absl::Status FromCall(const grpc::Status& grpc_status, const grpc::ClientContext& ctx) {
  absl::Status status = FromGrpcStatus(grpc_status);
  if (status.ok()) {
    return status;
  }
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find(kRetryAfterMetadataKey);
  int64_t ms = 0;
  if (it != trailers.end() &&
      absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms) && ms > 0) {
    status.SetPayload(kRetryAfterPayload, absl::Cord(std::to_string(ms)));
  }
  return status;
}

}  // namespace

absl::Duration RetryAfter(const absl::Status& status) {
  const auto payload = status.GetPayload(kRetryAfterPayload);
  int64_t ms = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &ms) || ms <= 0) {
    return absl::ZeroDuration();
  }
  return std::min(absl::Milliseconds(ms), kMaxRetryAfter);
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
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.server_ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.server_ca_pem;
    ssl.pem_private_key = options.client_key_pem;
    ssl.pem_cert_chain = options.client_cert_pem;
    credentials = grpc::SslCredentials(ssl);
  }
  return FromChannel(grpc::CreateCustomChannel(address, credentials, args));
}

std::shared_ptr<AgentConnection> AgentConnection::FromChannel(
    std::shared_ptr<grpc::Channel> channel) {
  auto impl = std::make_unique<Impl>();
  impl->stub = v1::AgentService::NewStub(channel);
  impl->channel = std::move(channel);
  return std::shared_ptr<AgentConnection>(new AgentConnection(std::move(impl)));
}

AgentClient::AgentClient(std::shared_ptr<AgentConnection> connection, AgentClientOptions options)
    : base_connection_(std::move(connection)), options_(options) {}

AgentClient::AgentClient(std::string address, ConnectionOptions connection_options,
                         AgentClientOptions options)
    : address_(std::move(address)),
      connection_options_(std::move(connection_options)),
      base_connection_(AgentConnection::Create(address_, connection_options_)),
      options_(options) {}

bool AgentClient::tls() const { return !connection_options_.server_ca_pem.empty(); }

void AgentClient::SetCredential(AgentCredential credential) {
  std::shared_ptr<AgentConnection> connection = base_connection_;
  if (!credential.cert_pem.empty() && !address_.empty()) {
    // The client certificate is the identity: it needs its own connection.
    ConnectionOptions with_identity = connection_options_;
    with_identity.client_key_pem = credential.key_pem;
    with_identity.client_cert_pem = credential.cert_pem;
    with_identity.own_connection = true;
    connection = AgentConnection::Create(address_, with_identity);
  }
  absl::MutexLock lock(&mu_);
  credential_ = std::move(credential);
  connection_ = std::move(connection);
}

void AgentClient::ClearCredential() {
  absl::MutexLock lock(&mu_);
  credential_ = AgentCredential{};
  connection_ = nullptr;
}

void AgentClient::SetIdentity(std::string agent_id, std::string token) {
  AgentCredential credential;
  credential.agent_id = std::move(agent_id);
  credential.token = std::move(token);
  if (credential.token.empty()) {
    ClearCredential();
    return;
  }
  SetCredential(std::move(credential));
}

bool AgentClient::enrolled() const {
  absl::MutexLock lock(&mu_);
  return !credential_.agent_id.empty() &&
         (!credential_.token.empty() || !credential_.cert_pem.empty());
}

AgentCredential AgentClient::credential() const {
  absl::MutexLock lock(&mu_);
  return credential_;
}

absl::StatusOr<AgentClient::Identity> AgentClient::GetIdentity() const {
  absl::MutexLock lock(&mu_);
  if (credential_.agent_id.empty() || (credential_.token.empty() && credential_.cert_pem.empty())) {
    return absl::FailedPreconditionError("agent is not enrolled: call Enroll first");
  }
  return Identity{credential_.agent_id, credential_.token,
                  connection_ != nullptr ? connection_ : base_connection_};
}

void AgentClient::AddCredential(grpc::ClientContext& ctx, const Identity& id) {
  if (!id.token.empty()) {
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", id.token));
  }
}

absl::StatusOr<EnrollResult> AgentClient::Enroll(const std::string& agent_id,
                                                 const std::map<std::string, std::string>& labels,
                                                 const std::string& enrollment_token,
                                                 const std::string& hostname,
                                                 const AgentKeyRequest* key) {
  v1::EnrollRequest req;
  req.set_agent_id(agent_id);
  req.mutable_labels()->insert(labels.begin(), labels.end());
  req.set_enrollment_token(enrollment_token);
  req.set_hostname(hostname);
  if (key != nullptr) {
    req.set_csr_pem(key->csr_pem);
  }
  v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.call_timeout);
  // Over the current credential's connection when there is one: re-enrolling
  // an enrolled id needs it.
  std::shared_ptr<AgentConnection> connection = base_connection_;
  if (absl::StatusOr<Identity> id = GetIdentity(); id.ok() && id->agent_id == agent_id) {
    connection = id->connection;
    AddCredential(ctx, *id);
  }
  absl::Status status = FromCall(connection->impl_->stub->Enroll(&ctx, req, &resp), ctx);
  if (!status.ok()) {
    return status;
  }
  ASSIGN_OR_RETURN(EnrollResult result, ToEnrollResult(resp, agent_id, key));
  SetCredential(result.credential);
  return result;
}

absl::StatusOr<EnrollResult> AgentClient::RenewCredential(const AgentKeyRequest* key) {
  ASSIGN_OR_RETURN(Identity id, GetIdentity());
  v1::RenewCredentialRequest req;
  req.set_agent_id(id.agent_id);
  if (key != nullptr) {
    req.set_csr_pem(key->csr_pem);
  }
  v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.call_timeout);
  AddCredential(ctx, id);
  absl::Status status =
      FromCall(id.connection->impl_->stub->RenewCredential(&ctx, req, &resp), ctx);
  if (!status.ok()) {
    return status;
  }
  ASSIGN_OR_RETURN(EnrollResult result, ToEnrollResult(resp, id.agent_id, key));
  SetCredential(result.credential);
  return result;
}

absl::StatusOr<PollAnswer> AgentClient::GetAssignment(const std::vector<ChannelVersion>& current,
                                                      const std::vector<std::string>& channels,
                                                      int64_t root_version,
                                                      const HeldStatement* held) {
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
  req.set_root_version(root_version);
  if (held != nullptr) {
    v1::HeldAssignment* named = req.mutable_held();
    named->set_sequence(held->sequence);
    named->set_issued_unix_ms(absl::ToUnixMillis(held->issued));
    named->set_expires_unix_ms(absl::ToUnixMillis(held->expires));
    named->set_payload_sha256(held->payload_sha256);
  }
  v1::GetAssignmentResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(ctx, options_.call_timeout);
  AddCredential(ctx, *id);
  absl::Status status = FromCall(id->connection->impl_->stub->GetAssignment(&ctx, req, &resp), ctx);
  if (!status.ok()) {
    return status;
  }
  PollAnswer out;
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
  out.signed_assignment = resp.signed_assignment();
  out.held_current = resp.held_assignment_current();
  out.root_updates.assign(resp.root_updates().begin(), resp.root_updates().end());
  out.floors.assign(resp.floors().begin(), resp.floors().end());
  return out;
}

absl::StatusOr<FetchedContent> AgentClient::FetchContent(const std::string& channel,
                                                         int64_t version,
                                                         const EnvelopeCheck& check) {
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
  AddCredential(ctx, *id);

  // Network time: the waits below are real, so is the rate they measure.
  const absl::Time begin = absl::Now();
  DownloadRate rate(begin, options_);
  auto stream = std::make_shared<StreamState>();
  auto* reader = new StreamReader(stream);
  reader->Begin(*id->connection->impl_->stub, ctx, req);

  const std::string what = absl::StrCat(channel, " v", version);
  FetchedContent out;
  bool first = true;
  int64_t signed_size = 0;
  absl::Status violation;
  while (violation.ok()) {
    const StreamState::Event event = stream->Wait(absl::Now() + rate.CheckInterval());
    const absl::Time now = absl::Now();
    if (event == StreamState::Event::kEnd) {
      break;
    }
    if (event == StreamState::Event::kChunk) {
      const v1::ContentChunk& chunk = stream->chunk;
      if (first) {
        first = false;
        violation = AcceptFirstChunk(what, chunk, options_, check, &signed_size);
        if (!violation.ok()) {
          break;
        }
        out.envelope_json = chunk.envelope();
        out.payload.reserve(static_cast<size_t>(signed_size));
      } else if (chunk.total_size() != 0 && chunk.total_size() != signed_size) {
        violation =
            absl::DataLossError(absl::StrCat(what, ": total_size changed from ", signed_size,
                                             " to ", chunk.total_size(), " mid-stream"));
        break;
      }
      const int64_t have = static_cast<int64_t>(out.payload.size());
      if (chunk.offset() != have) {
        violation = absl::DataLossError(
            absl::StrCat(what, ": chunk at offset ", chunk.offset(), ", expected offset ", have));
        break;
      }
      if (have + static_cast<int64_t>(chunk.data().size()) > signed_size) {
        // Refused at the first byte beyond the signed size; nothing past it is kept.
        violation = absl::DataLossError(absl::StrCat(
            what, ": stream carries more than the signed and announced ", signed_size, " bytes"));
        break;
      }
      out.payload.append(chunk.data());
      rate.Received(now, static_cast<int64_t>(out.payload.size()));
    }
    if (rate.TooSlow(now, first ? -1 : signed_size)) {
      violation =
          absl::DataLossError(absl::StrCat(what, ": download stalled: below the minimum rate of ",
                                           options_.min_fetch_bytes_per_second, " bytes/s over ",
                                           absl::FormatDuration(options_.fetch_rate_window)));
      break;
    }
    if (event == StreamState::Event::kChunk) {
      reader->StartRead(&stream->chunk);
    }
  }
  if (!violation.ok()) {
    ctx.TryCancel();
  }
  reader->RemoveHold();  // the reader deletes itself once the call is done
  const grpc::Status finished = stream->WaitDone();
  if (!violation.ok()) {
    // The cancelled call's status (CANCELLED) says less than the violation.
    return violation;
  }
  if (finished.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DataLossError(absl::StrCat(what, ": download unfinished after ",
                                            absl::FormatDuration(options_.fetch_timeout), " (",
                                            out.payload.size(), " bytes received)"));
  }
  absl::Status status = FromCall(finished, ctx);
  if (!status.ok()) {
    return status;
  }
  if (first) {
    return absl::DataLossError(absl::StrCat(what, ": empty content stream"));
  }
  if (static_cast<int64_t>(out.payload.size()) != signed_size) {
    return absl::DataLossError(absl::StrCat(what, ": stream ended after ", out.payload.size(),
                                            " of ", signed_size, " bytes"));
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
  AddCredential(ctx, *id);
  absl::Status status =
      FromCall(id->connection->impl_->stub->ReportTelemetry(&ctx, req, &resp), ctx);
  if (!status.ok()) {
    return status;
  }
  return TelemetryAck{resp.accepted(), resp.duplicate()};
}

}  // namespace ringwarden::agent
