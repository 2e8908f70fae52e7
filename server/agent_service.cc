#include "server/agent_service.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <functional>

#include "absl/container/inlined_vector.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/names.h"
#include "common/outcomes.h"
#include "common/retry_hint.h"
#include "common/status_macros.h"
#include "server/grpc_metadata.h"
#include "server/request_limits.h"

namespace ringwarden {
namespace {

constexpr int kMaxEventsPerBatch = 256;
constexpr int kMaxChannelsPerPoll = 64;
constexpr size_t kMaxDetailBytes = 1024;

// InField prefixes an error with the request field it is about.
absl::Status InField(const absl::Status& status, absl::string_view field) {
  if (status.ok()) {
    return status;
  }
  return absl::Status(status.code(), absl::StrCat(field, ": ", status.message()));
}

// ValidateChannelVersion checks entry `index` of the repeated field `field`. Every poll checks
// its versions, so the entry's name is spelled out only when it is refused.
absl::Status ValidateChannelVersion(const v1::ChannelVersion& cv, absl::string_view field,
                                    int index) {
  if (cv.version() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "[", index, "].version: channel versions must be >= 0"));
  }
  if (absl::Status name = ValidateChannelName(cv.channel()); !name.ok()) {
    return InField(name, absl::StrCat(field, "[", index, "].channel"));
  }
  return absl::OkStatus();
}

// ValidateVersions checks a repeated ChannelVersion field: at most
// kMaxVersionsPerEvent entries, each valid.
absl::Status ValidateVersions(
    const google::protobuf::RepeatedPtrField<v1::ChannelVersion>& versions,
    absl::string_view field) {
  if (versions.size() > kMaxVersionsPerEvent) {
    return absl::InvalidArgumentError(absl::StrCat(field, " holds ", versions.size(),
                                                   " entries; at most ", kMaxVersionsPerEvent));
  }
  for (int i = 0; i < versions.size(); ++i) {
    RETURN_IF_ERROR(ValidateChannelVersion(versions[i], field, i));
  }
  return absl::OkStatus();
}

void SetRetryAfter(grpc::CallbackServerContext& ctx, absl::Duration wait) {
  ctx.AddTrailingMetadata(kRetryAfterMetadataKey,
                          std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(wait))));
}

void FillEnrollResponse(Ring ring, const IssuedCredential& credential, v1::EnrollResponse& resp) {
  resp.set_ring(std::string(RingName(ring)));
  resp.set_agent_token(credential.token);
  resp.set_certificate_pem(credential.certificate_pem);
  resp.set_expires_unix(absl::ToUnixSeconds(credential.expires));
}

// FetchReactor streams one payload from memory in chunks and calls
// `on_complete` once the last chunk is written. A stream still running after
// `max_duration` ends with DEADLINE_EXCEEDED (the agent resumes from its offset);
// one whose reader stops reading is ended by the connection's maximum age.
class FetchReactor final : public grpc::ServerWriteReactor<v1::ContentChunk> {
 public:
  FetchReactor(std::shared_ptr<const AssignmentSnapshot> snapshot, const ContentBlob* blob,
               int64_t offset, size_t chunk_bytes, const Clock& clock, absl::Duration max_duration,
               std::function<void()> on_complete)
      : clock_(&clock),
        deadline_(clock.Now() + max_duration),
        snapshot_(std::move(snapshot)),
        blob_(blob),
        offset_(offset),
        chunk_bytes_(chunk_bytes),
        on_complete_(std::move(on_complete)) {
    first_ = true;
    Next();
  }
  explicit FetchReactor(const absl::Status& error) { Finish(ToGrpcStatus(error)); }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (clock_->Now() > deadline_) {
      Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat("FetchContent: the download ran past the server's limit "
                                       "at offset ",
                                       offset_, "; resume from there")));
      return;
    }
    const std::string& payload = *blob_->payload;
    if (!first_ && offset_ >= static_cast<int64_t>(payload.size())) {
      on_complete_();
      Finish(grpc::Status::OK);
      return;
    }
    chunk_.Clear();
    if (first_) {
      chunk_.set_envelope(blob_->meta.envelope_json);
      chunk_.set_total_size(static_cast<int64_t>(payload.size()));
      first_ = false;
    }
    const size_t n = std::min(chunk_bytes_, payload.size() - static_cast<size_t>(offset_));
    chunk_.set_offset(offset_);
    chunk_.set_data(payload.data() + offset_, n);
    offset_ += static_cast<int64_t>(n);
    StartWrite(&chunk_);
  }

  const Clock* clock_ = nullptr;
  absl::Time deadline_;
  std::shared_ptr<const AssignmentSnapshot> snapshot_;  // keeps blob_ alive
  const ContentBlob* blob_ = nullptr;
  int64_t offset_ = 0;
  size_t chunk_bytes_ = 0;
  bool first_ = false;
  std::function<void()> on_complete_;
  v1::ContentChunk chunk_;
};

}  // namespace

AgentServiceImpl::AgentServiceImpl(AgentServiceOptions options, SnapshotHolder& snapshots,
                                   TelemetryWriter& telemetry, Metrics& metrics,
                                   const TrustKeeper& trust, const Ed25519PrivateKey& server_key,
                                   const Clock& clock, AgentRegistry& registry,
                                   const AgentCredentials& credentials, WorkQueue& enroll_queue)
    : options_(std::move(options)),
      snapshots_(snapshots),
      telemetry_(telemetry),
      metrics_(metrics),
      trust_(trust),
      server_key_(server_key),
      clock_(clock),
      registry_(registry),
      credentials_(credentials),
      enroll_queue_(enroll_queue),
      limiter_(options_.rate_limit, clock),
      enroll_limiter_(options_.rate_limit, clock),
      last_batch_(options_.max_tracked_agents) {
  SetMessageAllocatorFor_GetAssignment(&poll_messages_);
}

absl::Status AgentServiceImpl::Throttle(grpc::CallbackServerContext& ctx, AgentRateLimiter& limiter,
                                        absl::string_view key, absl::string_view method) {
  const RateDecision d = limiter.Admit(key);
  if (d.allowed) {
    return absl::OkStatus();
  }
  metrics_.requests_refused(RefusalReason::kRateLimit).Increment();
  SetRetryAfter(ctx, d.retry_after);
  return absl::ResourceExhaustedError(absl::StrCat(
      method, ": agent ", key, " is over its rate of ", options_.rate_limit.rate_per_second,
      " calls/s (burst ", options_.rate_limit.burst, "); retry after ",
      absl::ToInt64Milliseconds(d.retry_after), " ms"));
}

grpc::ServerUnaryReactor* AgentServiceImpl::Finish(grpc::CallbackServerContext* ctx,
                                                   absl::string_view method, absl::Time start,
                                                   const absl::Status& status) {
  metrics_.ObserveRpc(method, status.code(), absl::ToDoubleSeconds(clock_.Now() - start));
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* AgentServiceImpl::Enroll(grpc::CallbackServerContext* ctx,
                                                   const v1::EnrollRequest* req,
                                                   v1::EnrollResponse* resp) {
  const absl::Time start = clock_.Now();
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto finish = [this, reactor, start](const absl::Status& status) {
    metrics_.ObserveRpc("Enroll", status.code(), absl::ToDoubleSeconds(clock_.Now() - start));
    reactor->Finish(ToGrpcStatus(status));
  };
  if (absl::Status size = CheckRequestSize("Enroll", *req); !size.ok()) {
    metrics_.requests_refused(RefusalReason::kOversized).Increment();
    finish(size);
    return reactor;
  }
  if (!IsValidAgentId(req->agent_id())) {
    finish(InField(ValidateAgentId(req->agent_id()), "agent_id"));
    return reactor;
  }
  if (absl::Status rate = Throttle(*ctx, enroll_limiter_, req->agent_id(), "Enroll"); !rate.ok()) {
    finish(rate);
    return reactor;
  }
  // An enrolled agent re-enrolling over its own credential needs no reset.
  bool holds_credential = false;
  if (std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current()) {
    absl::StatusOr<std::optional<PresentedCredential>> presented =
        credentials_.Presented(*ctx, *snapshot);
    holds_credential =
        presented.ok() && presented->has_value() && (*presented)->agent_id == req->agent_id() &&
        AdmitCredential(snapshot->Gate(req->agent_id()), req->agent_id(), (*presented)->issued_at)
            .ok();
  }
  // Enrollment writes to the database: off the gRPC thread.
  const bool queued = enroll_queue_.Submit(
      [this, req, resp, holds_credential, finish] {
        finish(DoEnroll(*req, holds_credential, *resp));
      },
      [this, finish] {
        metrics_.requests_refused(RefusalReason::kQueueWait).Increment();
        finish(absl::UnavailableError("Enroll waited too long for a database worker; retry"));
      });
  if (!queued) {
    finish(absl::ResourceExhaustedError("server is busy enrolling; retry with backoff"));
  }
  return reactor;
}

absl::Status AgentServiceImpl::DoEnroll(const v1::EnrollRequest& req, bool holds_credential,
                                        v1::EnrollResponse& resp) {
  if (credentials_.tls() && req.csr_pem().empty()) {
    return absl::InvalidArgumentError(
        "csr_pem is required: send a PKCS#10 request over the agent's own P-256 key");
  }
  if (req.csr_pem().size() > kMaxCsrPemBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("csr_pem is larger than ", kMaxCsrPemBytes, " bytes"));
  }
  Enrollment enrollment;
  enrollment.token_text = req.enrollment_token();
  enrollment.agent_id = req.agent_id();
  enrollment.reported_labels.insert(req.labels().begin(), req.labels().end());
  enrollment.hostname = req.hostname();
  enrollment.holds_credential = holds_credential;
  // The CSR is checked before a token use is taken.
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  if (snapshot == nullptr) {
    return absl::UnavailableError("server is starting; retry shortly");
  }
  RETURN_IF_ERROR(ValidateAgentId(req.agent_id()));
  ASSIGN_OR_RETURN(IssuedCredential credential,
                   credentials_.Issue(req.agent_id(), req.csr_pem(), *snapshot));
  ASSIGN_OR_RETURN(EnrolledAgent enrolled, registry_.Enroll(enrollment));
  FillEnrollResponse(enrolled.ring, credential, resp);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AgentServiceImpl::RenewCredential(grpc::CallbackServerContext* ctx,
                                                            const v1::RenewCredentialRequest* req,
                                                            v1::EnrollResponse* resp) {
  const absl::Time start = clock_.Now();
  absl::Status size = CheckRequestSize("RenewCredential", *req);
  if (!size.ok()) {
    metrics_.requests_refused(RefusalReason::kOversized).Increment();
  }
  return Finish(ctx, "RenewCredential", start, size.ok() ? DoRenew(*ctx, *req, *resp) : size);
}

absl::Status AgentServiceImpl::DoRenew(grpc::CallbackServerContext& ctx,
                                       const v1::RenewCredentialRequest& req,
                                       v1::EnrollResponse& resp) {
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  if (snapshot == nullptr) {
    return absl::UnavailableError("server is starting; retry shortly");
  }
  ASSIGN_OR_RETURN(AgentIdentity identity,
                   credentials_.Authenticate(ctx, req.agent_id(), *snapshot));
  RETURN_IF_ERROR(Throttle(ctx, limiter_, identity.agent_id, "RenewCredential"));
  if (req.csr_pem().size() > kMaxCsrPemBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("csr_pem is larger than ", kMaxCsrPemBytes, " bytes"));
  }
  ASSIGN_OR_RETURN(IssuedCredential credential,
                   credentials_.Issue(identity.agent_id, req.csr_pem(), *snapshot));
  FillEnrollResponse(snapshot->RingOf(identity), credential, resp);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AgentServiceImpl::GetAssignment(grpc::CallbackServerContext* ctx,
                                                          const v1::GetAssignmentRequest* req,
                                                          v1::GetAssignmentResponse* resp) {
  const absl::Time start = clock_.Now();
  absl::Status size = CheckRequestSize("GetAssignment", *req);
  if (!size.ok()) {
    metrics_.requests_refused(RefusalReason::kOversized).Increment();
  }
  return Finish(ctx, "GetAssignment", start, size.ok() ? DoGetAssignment(*ctx, *req, *resp) : size);
}

absl::Status AgentServiceImpl::DoGetAssignment(grpc::CallbackServerContext& ctx,
                                               const v1::GetAssignmentRequest& req,
                                               v1::GetAssignmentResponse& resp) {
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  if (snapshot == nullptr) {
    return absl::UnavailableError("server is starting; retry shortly");
  }
  ASSIGN_OR_RETURN(AgentIdentity identity,
                   credentials_.Authenticate(ctx, req.agent_id(), *snapshot));
  RETURN_IF_ERROR(Throttle(ctx, limiter_, identity.agent_id, "GetAssignment"));
  if (req.current_size() > kMaxChannelsPerPoll || req.channels_size() > kMaxChannelsPerPoll) {
    return absl::InvalidArgumentError(
        absl::StrCat("current and channels: at most ", kMaxChannelsPerPoll, " channels per poll"));
  }
  if (req.root_version() < 0) {
    return absl::InvalidArgumentError("root_version must be >= 0");
  }
  RETURN_IF_ERROR(ValidateVersions(req.current(), "current"));
  if (req.has_held()) {
    RETURN_IF_ERROR(ValidateHeld(req.held()));
  }
  // Views of the request, kept inline: a poll names a few channels (kMaxChannelsPerPoll).
  absl::InlinedVector<AssignmentSnapshot::CurrentVersion, 4> current;
  for (const v1::ChannelVersion& cv : req.current()) {
    current.push_back({cv.channel(), cv.version()});
  }
  absl::InlinedVector<absl::string_view, 4> channels;
  for (int i = 0; i < req.channels_size(); ++i) {
    if (absl::Status name = ValidateChannelName(req.channels(i)); !name.ok()) {
      return InField(name, absl::StrCat("channels[", i, "]"));
    }
    channels.push_back(req.channels(i));
  }
  const Ring ring = snapshot->RingOf(identity);
  const std::vector<ChannelAnswer> answers = snapshot->Resolve(identity, ring, current, channels);
  // The signed statement is what agents act on; the fields below it are for display. A
  // statement the agent holds that states the same answer, and is not past half its lifetime,
  // is answered as current: nothing is signed, so most polls of a fleet at rest sign nothing.
  const absl::Time now = clock_.Now();
  Assignment statement =
      BuildAssignment(identity.agent_id, ring, answers, snapshot->emergency_stop(),
                      AssignmentTerms{0, now, options_.assignment_ttl, trust_.RootVersion()});
  if (req.has_held() && HeldIsCurrent(req.held(), statement, now, options_.assignment_ttl / 2)) {
    resp.set_held_assignment_current(true);
    metrics_.assignments(AssignmentAnswer::kHeldCurrent).Increment();
  } else {
    statement.sequence = sequence_.Next(now);
    ASSIGN_OR_RETURN(std::string signed_assignment, SignAssignment(statement, server_key_));
    resp.set_signed_assignment(std::move(signed_assignment));
    metrics_.assignments(AssignmentAnswer::kSigned).Increment();
  }
  for (const RootRecord* root : snapshot->RootsAfter(req.root_version(), kMaxRootChain)) {
    resp.add_root_updates(root->envelope_json);
  }
  for (const ChannelAnswer& a : answers) {
    if (const FloorRecord* floor = snapshot->Floor(a.channel); floor != nullptr) {
      resp.add_floors(floor->envelope_json);
    }
  }
  for (const ChannelAnswer& a : answers) {
    v1::ChannelAssignment* out = resp.add_assignments();
    out->set_channel(a.channel);
    out->set_version(a.assignment.version);
    out->set_rollback(a.assignment.rollback);
    out->set_rollout_id(a.assignment.rollout_id);
    if (a.blob != nullptr) {
      out->set_sha256(a.blob->meta.sha256);
      out->set_size(a.blob->meta.size);
    }
    for (int64_t v : a.revoked) {
      out->add_revoked_versions(v);
    }
  }
  resp.set_ring(std::string(RingName(ring)));
  resp.set_emergency_stop(snapshot->emergency_stop());
  thread_local absl::BitGen rng;
  // The most urgent channel sets the pace (PollPace): an agent waiting for the exposure budget
  // or running a version on trial polls sooner, so growth, a halt or a rollback reaches it in a
  // fraction of the poll interval.
  double factor = 1.0;
  for (const ChannelAnswer& a : answers) {
    factor = std::min(factor, PollPaceFactor(a.assignment.pace));
  }
  resp.set_next_poll_ms(absl::ToInt64Milliseconds(
      NextPollDelay(options_.poll_interval * factor, options_.poll_jitter, rng)));
  return absl::OkStatus();
}

grpc::ServerWriteReactor<v1::ContentChunk>* AgentServiceImpl::FetchContent(
    grpc::CallbackServerContext* ctx, const v1::FetchContentRequest* req) {
  const absl::Time start = clock_.Now();
  auto respond = [&]() -> absl::StatusOr<grpc::ServerWriteReactor<v1::ContentChunk>*> {
    if (absl::Status size = CheckRequestSize("FetchContent", *req); !size.ok()) {
      metrics_.requests_refused(RefusalReason::kOversized).Increment();
      return size;
    }
    std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
    if (snapshot == nullptr) {
      return absl::UnavailableError("server is starting; retry shortly");
    }
    ASSIGN_OR_RETURN(AgentIdentity identity,
                     credentials_.Authenticate(*ctx, req->agent_id(), *snapshot));
    RETURN_IF_ERROR(Throttle(*ctx, limiter_, identity.agent_id, "FetchContent"));
    RETURN_IF_ERROR(InField(ValidateChannelName(req->channel()), "channel"));
    if (snapshot->IsRevoked(req->channel(), req->version())) {
      return absl::FailedPreconditionError(absl::StrCat(
          req->channel(), " v", req->version(), " was revoked by a rollback; do not apply it"));
    }
    // A version reaches a host for the first time only while the host's assignment names it
    // now: after a halt or an emergency stop, or before the exposure budget admits the host, the
    // download is refused, whatever signed assignment the host still holds. Retryable: with
    // several replicas the assignment may come from one whose snapshot is newer than this one.
    const std::vector<ChannelAnswer> now_assigned = snapshot->Resolve(
        identity, snapshot->RingOf(identity), /*current=*/{}, {absl::string_view(req->channel())});
    const ContentBlob* blob = now_assigned.empty() ? nullptr : now_assigned.front().blob;
    if (blob == nullptr || now_assigned.front().assignment.version != req->version()) {
      metrics_.requests_refused(RefusalReason::kNotAssigned).Increment();
      return absl::UnavailableError(absl::StrCat(
          req->channel(), " v", req->version(),
          " is not assigned to this agent in this replica's snapshot (halted, stopped or not yet "
          "admitted); poll again"));
    }
    if (req->offset() < 0 || req->offset() > blob->meta.size) {
      return absl::OutOfRangeError(
          absl::StrCat("offset ", req->offset(), " is outside 0..", blob->meta.size));
    }
    // A completed download is evidence the agent is about to apply: if it
    // then falls silent, the controller counts it as a suspected crash.
    auto on_complete = [this, row = FetchRow{req->agent_id(), req->channel(), req->version(),
                                             clock_.Now()}]() mutable {
      TelemetryRows rows;
      row.at = clock_.Now();
      rows.fetches.push_back(row);
      if (!telemetry_.Add(std::move(rows))) {
        metrics_.telemetry_dropped().Increment();
      }
    };
    return new FetchReactor(std::move(snapshot), blob, req->offset(), options_.chunk_bytes, clock_,
                            options_.max_fetch_duration, std::move(on_complete));
  };
  auto reactor = respond();
  metrics_.ObserveRpc("FetchContent", reactor.status().code(),
                      absl::ToDoubleSeconds(clock_.Now() - start));
  if (!reactor.ok()) {
    return new FetchReactor(reactor.status());
  }
  return *reactor;
}

grpc::ServerUnaryReactor* AgentServiceImpl::ReportTelemetry(grpc::CallbackServerContext* ctx,
                                                            const v1::ReportTelemetryRequest* req,
                                                            v1::ReportTelemetryResponse* resp) {
  const absl::Time start = clock_.Now();
  absl::Status size = CheckRequestSize("ReportTelemetry", *req);
  if (!size.ok()) {
    metrics_.requests_refused(RefusalReason::kOversized).Increment();
  }
  return Finish(ctx, "ReportTelemetry", start,
                size.ok() ? DoReportTelemetry(*ctx, *req, *resp) : size);
}

absl::Status AgentServiceImpl::DoReportTelemetry(grpc::CallbackServerContext& ctx,
                                                 const v1::ReportTelemetryRequest& req,
                                                 v1::ReportTelemetryResponse& resp) {
  std::shared_ptr<const AssignmentSnapshot> snapshot = snapshots_.Current();
  if (snapshot == nullptr) {
    return absl::UnavailableError("server is starting; retry shortly");
  }
  ASSIGN_OR_RETURN(AgentIdentity identity,
                   credentials_.Authenticate(ctx, req.agent_id(), *snapshot));
  RETURN_IF_ERROR(Throttle(ctx, limiter_, identity.agent_id, "ReportTelemetry"));
  if (req.events_size() > kMaxEventsPerBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("a batch holds at most ", kMaxEventsPerBatch, " events; split it"));
  }
  if (req.batch_seq() < 1) {
    return absl::InvalidArgumentError("batch_seq must be >= 1 and increase with every batch");
  }
  const absl::Time now = clock_.Now();
  TelemetryRows rows;
  for (int i = 0; i < req.events_size(); ++i) {
    const v1::TelemetryEvent& e = req.events(i);
    const std::string field = absl::StrCat("events[", i, "]");
    // Agents' clocks are not trusted beyond "not in the future".
    absl::Time at = absl::FromUnixMillis(e.observed_unix_ms());
    if (e.observed_unix_ms() <= 0 || at > now) {
      at = now;
    }
    switch (e.event_case()) {
      case v1::TelemetryEvent::kHeartbeat: {
        HeartbeatRow h{identity.agent_id, {}, SanitizeText(e.heartbeat().boot_id(), 64), at};
        RETURN_IF_ERROR(
            ValidateVersions(e.heartbeat().versions(), absl::StrCat(field, ".heartbeat.versions")));
        for (const v1::ChannelVersion& cv : e.heartbeat().versions()) {
          h.versions[cv.channel()] = cv.version();
        }
        rows.heartbeats.push_back(std::move(h));
        break;
      }
      case v1::TelemetryEvent::kApply: {
        const v1::ApplyReport& a = e.apply();
        absl::StatusOr<ApplyOutcome> outcome = ApplyOutcomeFromWire(a.outcome());
        if (!outcome.ok() || a.version() < 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              field,
              ".apply: an apply report needs a channel, a version >= 1 and a known outcome"));
        }
        RETURN_IF_ERROR(
            InField(ValidateChannelName(a.channel()), absl::StrCat(field, ".apply.channel")));
        rows.applies.push_back(ApplyRow{identity.agent_id, a.channel(), a.version(), *outcome,
                                        SanitizeText(a.detail(), kMaxDetailBytes), at});
        break;
      }
      case v1::TelemetryEvent::kCrash: {
        const v1::CrashReport& c = e.crash();
        absl::StatusOr<CrashKind> kind = CrashKindFromWire(c.kind());
        if (!kind.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat(field, ".crash.kind: a crash report needs a kind"));
        }
        RETURN_IF_ERROR(ValidateVersions(c.versions(), absl::StrCat(field, ".crash.versions")));
        for (const v1::ChannelVersion& cv : c.versions()) {
          rows.crashes.push_back(CrashRow{identity.agent_id, *kind, cv.channel(), cv.version(),
                                          SanitizeText(c.detail(), kMaxDetailBytes), at});
        }
        break;
      }
      case v1::TelemetryEvent::kHealth: {
        // Stored per version in effect; the rollout policy weighs them as soft failures.
        const v1::HealthEvent& h = e.health();
        RETURN_IF_ERROR(
            InField(ValidateHealthEventKind(h.kind()), absl::StrCat(field, ".health.kind")));
        RETURN_IF_ERROR(ValidateVersions(h.versions(), absl::StrCat(field, ".health.versions")));
        for (const v1::ChannelVersion& cv : h.versions()) {
          rows.health_events.push_back(
              HealthEventRow{identity.agent_id, h.kind(), cv.channel(), cv.version(),
                             SanitizeText(h.detail(), kMaxDetailBytes), at});
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat(field, ": telemetry event has no payload"));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    int64_t& last = last_batch_.GetOrInsert(identity.agent_id, 0);
    if (req.batch_seq() <= last) {
      resp.set_duplicate(true);
      resp.set_accepted(0);
      return absl::OkStatus();
    }
    // The first batch this replica sees from an agent sets its base.
    if (last > 0 && req.batch_seq() - last > kMaxBatchSeqJump) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch_seq ", req.batch_seq(), " jumps more than ", kMaxBatchSeqJump,
                       " past the last accepted batch ", last, "; number batches consecutively"));
    }
    const size_t n = rows.size();
    switch (telemetry_.Admit(std::move(rows))) {
      case TelemetryAdmission::kQueued:
        break;
      case TelemetryAdmission::kAgentShare:
        metrics_.requests_refused(RefusalReason::kTelemetryShare).Increment();
        SetRetryAfter(ctx, options_.telemetry_retry_after);
        return absl::ResourceExhaustedError(absl::StrCat(
            "ReportTelemetry: agent ", identity.agent_id,
            " holds its share of the telemetry queue; resend the batch (", n, " rows) after ",
            absl::ToInt64Milliseconds(options_.telemetry_retry_after), " ms"));
      case TelemetryAdmission::kQueueFull:
        metrics_.requests_refused(RefusalReason::kTelemetryQueue).Increment();
        SetRetryAfter(ctx, options_.telemetry_retry_after);
        return absl::ResourceExhaustedError(absl::StrCat(
            "ReportTelemetry: server is busy writing telemetry; resend the batch after ",
            absl::ToInt64Milliseconds(options_.telemetry_retry_after), " ms"));
    }
    last = req.batch_seq();
  }
  resp.set_accepted(req.events_size());
  return absl::OkStatus();
}

}  // namespace ringwarden
