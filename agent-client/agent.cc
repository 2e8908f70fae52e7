#include "agent-client/agent.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/dsse.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "ringwarden/v1/content.pb.h"

namespace ringwarden::agent {

namespace {

// kMaxBatchEvents is the server's limit on events per ReportTelemetry.
constexpr size_t kMaxBatchEvents = 256;
// kMaxBatchBytes keeps a batch well below the server's 64 KiB request limit
// (EstimatedBytes errs high).
constexpr size_t kMaxBatchBytes = 40 * 1024;
// kMaxEventDetailBytes: the server keeps at most this much of a detail.
constexpr size_t kMaxEventDetailBytes = 1024;

// EstimatedBytes is an upper bound of an event's encoded size.
struct EstimatedBytes {
  static size_t Versions(const std::vector<ChannelVersion>& versions) {
    size_t n = 0;
    for (const ChannelVersion& cv : versions) {
      n += cv.channel.size() + 16;
    }
    return n;
  }
  size_t operator()(const Heartbeat& h) const { return Versions(h.versions) + h.boot_id.size(); }
  size_t operator()(const ApplyReport& a) const { return a.channel.size() + a.detail.size(); }
  size_t operator()(const CrashReport& c) const { return Versions(c.versions) + c.detail.size(); }
  size_t operator()(const HealthEvent& h) const {
    return Versions(h.versions) + h.kind.size() + h.detail.size();
  }
};

size_t EventBytes(const TelemetryEvent& e) { return 32 + std::visit(EstimatedBytes{}, e.event); }
// kMaxBlockedPerChannel bounds the locally refused versions kept per channel.
constexpr size_t kMaxBlockedPerChannel = 16;
// kMaxBatchesPerRun bounds how much backlog one RunOnce sends.
constexpr int kMaxBatchesPerRun = 4;

void AddBlocked(AgentMeta& meta, const std::string& channel, int64_t version) {
  std::vector<int64_t>& blocked = meta.blocked_versions[channel];
  if (std::find(blocked.begin(), blocked.end(), version) != blocked.end()) {
    return;
  }
  blocked.push_back(version);
  if (blocked.size() > kMaxBlockedPerChannel) {
    blocked.erase(blocked.begin());
  }
}

// ReasonKey is `reason` with every run of digits folded, so that a refusal
// repeated with other times or sequence numbers is reported once.
std::string ReasonKey(absl::string_view reason) {
  std::string key;
  for (char c : reason) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      key.push_back(c);
    } else if (key.empty() || key.back() != '#') {
      key.push_back('#');
    }
  }
  return key;
}

// RecordRunning notes every version in effect as run (the highest per channel).
void RecordRunning(AgentTrustState& trust, const std::vector<ChannelVersion>& versions) {
  for (const ChannelVersion& cv : versions) {
    RecordRun(trust, cv.channel, cv.version);
  }
}

}  // namespace

absl::StatusOr<Root> TrustConfiguredRoot(absl::string_view envelope_json) {
  // An expired root stays the newest trusted one until an update replaces it.
  return TrustRootSignatures(envelope_json);
}

Agent::Agent(AgentConfig config, AgentClient& client, ContentStore& store, const Root& pinned_root,
             Clock& clock, BackoffPolicy& backoff, LoadChecker* load_checker, AgentHooks* hooks)
    : config_(std::move(config)),
      client_(client),
      store_(store),
      pinned_root_(pinned_root),
      clock_(clock),
      backoff_(backoff),
      load_checker_(load_checker),
      hooks_(hooks) {}

absl::Status Agent::Start() {
  if (started_) {
    return absl::FailedPreconditionError("agent already started");
  }
  RETURN_IF_ERROR(store_.Load());
  const absl::Time now = clock_.Now();
  started_at_ = now;
  std::vector<ChannelVersion> versions = store_.state().Versions();
  for (const std::string& repair : store_.state().repairs) {
    Queue({now, HealthEvent{"state_repaired", repair, versions}});
  }

  AgentMeta meta = store_.state().meta;
  LoadTrustedRoot(meta, now);
  if (meta.credential.agent_id == config_.agent_id) {
    client_.SetCredential(meta.credential);
    ring_ = meta.trust.ring;
  }
  if (meta.running) {
    Queue({now, CrashReport{CrashKind::kUncleanShutdown, versions,
                            "previous agent run did not shut down cleanly"}});
  }

  BootMarker& marker = meta.boot_marker;
  if (!marker.present) {
    marker.hits = 0;
  } else {
    marker.hits = marker.versions == versions ? marker.hits + 1 : 1;
    if (marker.hits >= config_.boot_loop_threshold) {
      // Only versions that never ran through a healthy interval are suspects.
      bool reverted = false;
      const std::map<std::string, ChannelSlot> channels = store_.state().channels;
      for (const auto& [name, slot] : channels) {
        if (slot.current_known_good) {
          continue;
        }
        const int64_t from = slot.current.version;
        const int64_t to = slot.last_known_good.version;
        absl::Status status = store_.Revert(name);
        if (!status.ok()) {
          Queue({now, HealthEvent{"revert_failed",
                                  absl::StrCat("boot-loop breaker could not revert ", name, " v",
                                               from, ": ", status.ToString()),
                                  versions}});
          continue;
        }
        AddBlocked(meta, name, from);
        reverted = true;
        // Reported under the version left: that is the rollout the failure belongs to.
        QueueApplyReport({name, from, ApplyOutcome::kReverted,
                          to == 0 ? absl::StrCat("boot-loop breaker: boot marker found ",
                                                 marker.hits, " times at start with v", from,
                                                 " in effect; removed it (no last-known-good)")
                                  : absl::StrCat("boot-loop breaker: boot marker found ",
                                                 marker.hits, " times at start with v", from,
                                                 " in effect; reverted to last-known-good v", to)});
      }
      if (reverted) {
        marker.hits = 0;
        versions = store_.state().Versions();
      } else {
        Queue({now, HealthEvent{"boot_loop",
                                absl::StrCat("boot marker found ", marker.hits,
                                             " times, but every version in effect is known "
                                             "good; nothing to revert"),
                                versions}});
      }
    }
  }
  // The marker goes to disk before content is loaded; a healthy interval clears it.
  marker.present = true;
  marker.versions = versions;
  meta.running = true;
  RecordRunning(meta.trust, versions);
  RETURN_IF_ERROR(store_.SaveMeta(meta));
  marker_since_ = now;
  started_ = true;
  LoadContent();
  return absl::OkStatus();
}

void Agent::LoadTrustedRoot(AgentMeta& meta, absl::Time now) {
  accepted_root_.reset();
  if (meta.trusted_root.empty()) {
    return;
  }
  absl::StatusOr<Root> stored = TrustConfiguredRoot(meta.trusted_root);
  if (!stored.ok()) {
    Queue({now, HealthEvent{"state_repaired",
                            absl::StrCat("dropped the stored root, which does not verify (",
                                         stored.status().message(), "); back to pinned root v",
                                         pinned_root_.version),
                            store_.state().Versions()}});
    meta.trusted_root.clear();
  } else if (stored->version <= pinned_root_.version) {
    meta.trusted_root.clear();  // the pinned root is as new or newer
  } else {
    accepted_root_ = *std::move(stored);
  }
}

const std::string& Agent::ring() const {
  const std::string& recorded = store_.state().meta.trust.ring;
  return recorded.empty() ? ring_ : recorded;
}

absl::Status Agent::Enroll() {
  std::optional<AgentKeyRequest> key;
  if (client_.tls()) {
    // A fresh key for every enrollment; it never leaves this host.
    ASSIGN_OR_RETURN(key, MakeAgentKeyRequest(config_.agent_id));
  }
  absl::StatusOr<EnrollResult> result =
      client_.Enroll(config_.agent_id, config_.labels, config_.enrollment_token, config_.hostname,
                     key.has_value() ? &*key : nullptr);
  if (!result.ok()) {
    return result.status();
  }
  return KeepCredential(*result);
}

absl::Status Agent::RenewCredential() {
  std::optional<AgentKeyRequest> key;
  if (client_.tls()) {
    ASSIGN_OR_RETURN(key, MakeAgentKeyRequest(config_.agent_id));
  }
  ASSIGN_OR_RETURN(EnrollResult result, client_.RenewCredential(key.has_value() ? &*key : nullptr));
  return KeepCredential(result);
}

absl::Status Agent::KeepCredential(const EnrollResult& result) {
  ring_ = result.ring;
  AgentMeta meta = store_.state().meta;
  meta.credential = result.credential;
  // The ring assignments must name is the one the server stated last; an
  // unknown ring leaves the recorded one, and assignments naming another are refused.
  if (IsRingName(ring_)) {
    meta.trust.ring = ring_;
  }
  // A failed write only costs a renewal (or, with no credential on disk, an
  // enrollment) at the next start.
  SaveMetaOrReport(meta).IgnoreError();
  return absl::OkStatus();
}

bool Agent::RenewalDue(absl::Time now) const {
  const AgentCredential credential = client_.credential();
  if (credential.expires == absl::InfinitePast() || credential.expires == absl::InfiniteFuture()) {
    return false;
  }
  // Renew once two thirds of the lifetime are gone: with a 7-day credential
  // that leaves more than two days of polls to get through.
  return now >= credential.expires - config_.credential_lifetime / 3;
}

absl::StatusOr<absl::Duration> Agent::RunOnce() {
  if (host_down()) {
    return absl::InfiniteDuration();
  }
  if (!started_) {
    return absl::FailedPreconditionError("Agent::Start must succeed before RunOnce");
  }
  MaybeMarkHealthy(clock_.Now());
  if (!client_.enrolled()) {
    absl::Status status = Enroll();
    if (!status.ok()) {
      return HandleRpcFailure(status);
    }
  } else if (RenewalDue(clock_.Now())) {
    absl::Status renewed = RenewCredential();
    if (!renewed.ok() && clock_.Now() >= client_.credential().expires) {
      // Expired and not renewed: nothing but a new enrollment will do.
      client_.ClearCredential();
      return HandleRpcFailure(renewed);
    }
  }
  absl::StatusOr<PollAnswer> answer =
      client_.GetAssignment(VersionsInEffect(), config_.channels, root().version,
                            held_envelope_.empty() ? nullptr : &held_);
  if (!answer.ok()) {
    return HandleRpcFailure(answer.status());
  }
  failures_ = 0;
  last_error_ = absl::OkStatus();
  absl::StatusOr<std::vector<ChannelDecision>> decisions = Trust(*answer);
  if (!decisions.ok()) {
    // Keep running what runs; nothing new, not even what was staged.
    staged_.clear();
    RefuseAssignment(decisions.status());
  } else {
    refusal_.clear();
    refusal_key_.clear();
    for (const ChannelDecision& decision : *decisions) {
      ProcessChannel(decision);
      if (host_down()) {
        return absl::InfiniteDuration();
      }
    }
  }

  const absl::Time now = clock_.Now();
  const bool news = VersionsInEffect() != last_heartbeat_versions_ ||
                    std::any_of(pending_.begin(), pending_.end(), [](const TelemetryEvent& e) {
                      return !std::holds_alternative<Heartbeat>(e.event);
                    });
  MaybeQueueHeartbeat(now, news);
  // A failed send keeps its batch for the next run; it does not delay the poll.
  SendTelemetry().IgnoreError();

  absl::Duration delay = BoundPoll(answer->next_poll);
  for (const auto& [name, staged] : staged_) {
    delay = std::min(delay, std::max(staged.apply_at - now, absl::ZeroDuration()));
  }
  return delay;
}

absl::StatusOr<std::vector<ChannelDecision>> Agent::Trust(const PollAnswer& answer) {
  const absl::Time now = clock_.Now();
  AgentMeta meta = store_.state().meta;
  bool meta_changed = false;

  // Roots first: the answer may be signed by a key only a newer root names.
  absl::StatusOr<Root> walked = WalkRootChain(root(), answer.root_updates, now);
  if (!walked.ok()) {
    return absl::Status(walked.status().code(),
                        absl::StrCat("root update refused: ", walked.status().message()));
  }
  if (walked->version != root().version) {
    meta.trusted_root = walked->envelope_json;
    accepted_root_ = *std::move(walked);
    meta_changed = true;
  }
  // Keeps the newer root even when the assignment is refused.
  auto refuse = [&](const absl::Status& why) -> absl::Status {
    if (meta_changed) {
      SaveMetaOrReport(meta).IgnoreError();
    }
    return why;
  };

  // An answer that the held statement is current is acted on like the same bytes sent again.
  const bool held_current = answer.held_current && answer.signed_assignment.empty();
  if (held_current && held_envelope_.empty()) {
    return refuse(absl::FailedPreconditionError(
        "the server answered that the held assignment is current, but this agent holds none"));
  }
  const std::string& envelope = held_current ? held_envelope_ : answer.signed_assignment;
  absl::StatusOr<Assignment> assignment = VerifyAssignment(root(), envelope, config_.agent_id, now);
  if (!assignment.ok()) {
    return refuse(assignment.status());
  }
  if (meta.trust.ring.empty()) {
    return refuse(absl::FailedPreconditionError(
        "the ring from enrollment is not recorded; no assignment can be checked against it"));
  }
  std::vector<Floor> floors;
  for (const std::string& envelope : answer.floors) {
    absl::StatusOr<Floor> floor = VerifyFloor(root(), envelope);
    if (floor.ok()) {
      floors.push_back(*std::move(floor));
      continue;
    }
    // A floor that does not verify only fails to raise the known one.
    const std::string reason = absl::StrCat("floor refused: ", floor.status().message());
    if (ReasonKey(reason) != floor_refusal_key_) {
      floor_refusal_key_ = ReasonKey(reason);
      Queue({now, HealthEvent{"floor_refused", reason, VersionsInEffect()}});
    }
  }
  std::map<std::string, int64_t> current;
  for (const ChannelVersion& cv : VersionsInEffect()) {
    current[cv.channel] = cv.version;
  }
  absl::StatusOr<std::vector<ChannelDecision>> decisions =
      AcceptAssignment(meta.trust, *assignment, floors, current);
  if (!decisions.ok()) {
    return refuse(decisions.status());
  }
  // Durable before anything is acted on, so a restart cannot accept a replay.
  absl::Status saved = SaveMetaOrReport(meta);
  if (!saved.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot persist the trust state: ", saved.message()));
  }
  emergency_stop_ = assignment->emergency_stop;
  if (!held_current) {
    held_envelope_ = answer.signed_assignment;
    held_ = HeldStatement{assignment->sequence, assignment->issued, assignment->expires,
                          assignment->payload_sha256};
  }
  return decisions;
}

void Agent::RefuseAssignment(const absl::Status& why) {
  std::string reason(why.message());
  std::string key = ReasonKey(reason);
  if (key == refusal_key_) {
    return;
  }
  refusal_key_ = std::move(key);
  refusal_ = reason;
  ++refusals_;
  Queue({clock_.Now(), HealthEvent{"assignment_refused", std::move(reason), VersionsInEffect()}});
}

absl::Status Agent::SaveMetaOrReport(const AgentMeta& meta) {
  absl::Status status = store_.SaveMeta(meta);
  if (!status.ok()) {
    Queue({clock_.Now(), HealthEvent{"state_write_failed", status.ToString(), VersionsInEffect()}});
  }
  return status;
}

absl::Duration Agent::ErrorDelay() {
  return std::max(backoff_.Delay(std::max(failures_, 1)), RetryAfter(last_error_));
}

absl::StatusOr<absl::Duration> Agent::HandleRpcFailure(const absl::Status& status) {
  ++failures_;
  last_error_ = status;
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    // The server no longer knows our credential (a new database): enroll again.
    client_.ClearCredential();
    return backoff_.Delay(failures_);
  }
  if (IsRetryable(status)) {
    // Never sooner than the server asked (its rate limit's hint).
    return std::max(backoff_.Delay(failures_), RetryAfter(status));
  }
  return status;
}

absl::Status Agent::Shutdown() {
  if (!started_ || host_down()) {
    return absl::OkStatus();
  }
  if (client_.enrolled()) {
    SendTelemetry().IgnoreError();
  }
  AgentMeta meta = store_.state().meta;
  meta.running = false;
  // A clean stop is not a boot loop; the next start writes a fresh marker.
  meta.boot_marker = BootMarker{};
  RETURN_IF_ERROR(store_.SaveMeta(meta));
  started_ = false;
  return absl::OkStatus();
}

std::vector<ChannelVersion> Agent::VersionsInEffect() const { return store_.state().Versions(); }

absl::Status Agent::ReportHealth(std::string kind, std::string detail) {
  RETURN_IF_ERROR(ValidateHealthEventKind(kind));
  Queue({clock_.Now(), HealthEvent{std::move(kind), std::move(detail), VersionsInEffect()}});
  return absl::OkStatus();
}

void Agent::ProcessChannel(const ChannelDecision& decision) {
  const AssignedChannel& c = decision.channel;
  auto staged = staged_.find(c.channel);
  if (staged != staged_.end() &&
      (!decision.apply || staged->second.assignment.version != c.version)) {
    staged_.erase(staged);
    staged = staged_.end();
  }
  if (decision.refused) {
    Refuse(c, decision.reason);
    return;
  }
  const int64_t current = store_.state().CurrentVersion(c.channel);
  if (!decision.apply) {
    if (c.version <= 0 || c.version == current) {
      progress_.erase(c.channel);
    }
    return;  // nothing to do, or an emergency stop
  }
  if (store_.state().IsBlocked(c.channel, c.version)) {
    return;  // refused locally before (boot loop, load check); reported then
  }
  const absl::Time now = clock_.Now();
  auto progress = progress_.find(c.channel);
  if (progress != progress_.end() && progress->second.version == c.version &&
      now < progress->second.not_before) {
    return;
  }

  // Told to go back to the version kept as last-known-good: no download needed
  // when it is the very manifest the assignment names.
  auto slot = store_.state().channels.find(c.channel);
  if (c.rollback && c.version < current && slot != store_.state().channels.end() &&
      slot->second.last_known_good.version == c.version &&
      !slot->second.last_known_good.manifest_sha256.empty() &&
      slot->second.last_known_good.manifest_sha256 == c.manifest_sha256) {
    RevertToLastKnownGood(c);
    return;
  }

  if (staged != staged_.end()) {
    if (now >= staged->second.apply_at) {
      Staged ready = std::move(staged->second);
      staged_.erase(staged);
      CommitApply(c, ready.version, ready.payload);
    }
    return;
  }
  Download(c, now);
}

void Agent::Download(const AssignedChannel& c, absl::Time now) {
  // The envelope is checked on the first message, before any payload byte is
  // kept; the client then caps the download at the signed size.
  std::optional<VerifiedContent> verified;
  std::optional<Failure> refused;
  const EnvelopeCheck check = [&](absl::string_view envelope_json) -> absl::StatusOr<int64_t> {
    absl::StatusOr<VerifiedContent> content = VerifyContentEnvelope(root(), envelope_json, c);
    if (!content.ok()) {
      refused = ContentRefusal(envelope_json, c, content.status());
      return content.status();
    }
    verified = *std::move(content);
    return verified->size;
  };
  absl::StatusOr<FetchedContent> fetched = client_.FetchContent(c.channel, c.version, check);
  if (!fetched.ok()) {
    if (refused.has_value()) {
      RecordFailure(c, *std::move(refused), /*block=*/false);
      return;
    }
    const absl::Status& status = fetched.status();
    if (status.code() == absl::StatusCode::kUnauthenticated) {
      client_.SetIdentity("", "");
    }
    if (IsRetryable(status) || status.code() == absl::StatusCode::kUnauthenticated) {
      // Transient: retried quietly after a backoff.
      ChannelProgress& p = ProgressFor(c);
      p.failures++;
      p.not_before = now + std::max(backoff_.Delay(p.failures), RetryAfter(status));
      return;
    }
    // DATA_LOSS: the stream broke the discipline (beyond the signed size,
    // stalled, past the deadline, short): a rejection the server counts.
    RecordFailure(c,
                  {status.code() == absl::StatusCode::kDataLoss ? ApplyOutcome::kDigestMismatch
                                                                : ApplyOutcome::kApplyFailed,
                   absl::StrCat("download failed: ", status.ToString())},
                  /*block=*/false);
    return;
  }
  const std::string digest = Sha256Hex(fetched->payload);
  if (digest != verified->sha256) {
    RecordFailure(
        c,
        {ApplyOutcome::kDigestMismatch,
         absl::StrCat("payload sha256 is ", digest, ", signed manifest says ", verified->sha256)},
        /*block=*/false);
    return;
  }
  const ContentVersion version{verified->version, verified->sha256, verified->size,
                               verified->manifest_sha256};
  const absl::Duration delay =
      hooks_ != nullptr ? hooks_->ApplyDelay(c.channel, c.version) : absl::ZeroDuration();
  if (delay > absl::ZeroDuration()) {
    staged_[c.channel] = Staged{c, version, std::move(fetched->payload), now + delay};
    return;
  }
  CommitApply(c, version, fetched->payload);
}

Agent::Failure Agent::ContentRefusal(absl::string_view envelope_json, const AssignedChannel& c,
                                     const absl::Status& refusal) const {
  absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(envelope_json);
  if (!envelope.ok()) {
    return {ApplyOutcome::kSignatureRejected,
            absl::StrCat("bad envelope: ", envelope.status().message())};
  }
  absl::StatusOr<VerifiedEnvelope> signed_by_release =
      root().release_keys.Verify(*envelope, kManifestPayloadType);
  if (!signed_by_release.ok()) {
    return {ApplyOutcome::kSignatureRejected,
            absl::StrCat("signature rejected: ", refusal.message())};
  }
  ::ringwarden::v1::ContentManifest manifest;
  if (!manifest.ParseFromString(signed_by_release->payload)) {
    return {ApplyOutcome::kSignatureRejected, "signed payload is not a ContentManifest"};
  }
  if (manifest.channel() != c.channel || manifest.version() != c.version) {
    return {ApplyOutcome::kSignatureRejected,
            absl::StrCat("signed manifest is for ", manifest.channel(), " v", manifest.version(),
                         ", not the assigned ", c.channel, " v", c.version)};
  }
  // Release-signed for this version, but not the manifest the assignment names.
  return {ApplyOutcome::kDigestMismatch,
          absl::StrCat("assignment says manifest sha256 ", c.manifest_sha256, " size ", c.size,
                       ", signed manifest has sha256 ", Sha256Hex(signed_by_release->payload),
                       " size ", manifest.size(), ": ", refusal.message())};
}

void Agent::CommitApply(const AssignedChannel& c, const ContentVersion& version,
                        const std::string& payload) {
  if (hooks_ != nullptr) {
    absl::Status status = hooks_->BeforeApply(c.channel, c.version);
    if (!status.ok()) {
      RecordFailure(c, {ApplyOutcome::kApplyFailed, std::string(status.message())},
                    /*block=*/false);
      return;
    }
  }
  const int64_t from = store_.state().CurrentVersion(c.channel);
  absl::Status status = store_.Apply(c.channel, version, payload);
  if (!status.ok()) {
    RecordFailure(c,
                  {ApplyOutcome::kApplyFailed, absl::StrCat("apply failed: ", status.ToString())},
                  /*block=*/false);
    return;
  }
  if (load_checker_ != nullptr) {
    status = load_checker_->Check({c.channel, c.version, store_.ContentPath(c.channel), payload});
    if (!status.ok()) {
      absl::Status reverted = store_.Revert(c.channel);
      std::string detail = absl::StrCat("load check failed: ", status.message());
      if (reverted.ok()) {
        absl::StrAppend(&detail, "; back on v", store_.state().CurrentVersion(c.channel));
      } else {
        absl::StrAppend(&detail, "; revert failed: ", reverted.ToString());
      }
      // A failed load check is deterministic: never try this version again.
      RecordFailure(c, {ApplyOutcome::kLoadCheckFailed, std::move(detail)}, /*block=*/true);
      return;
    }
  }
  progress_.erase(c.channel);
  if (c.version < from) {
    // Reported under the version left, as the boot-loop breaker does.
    QueueApplyReport({c.channel, from, ApplyOutcome::kReverted,
                      absl::StrCat("rolled back to v", c.version, " as directed")});
  } else {
    QueueApplyReport({c.channel, c.version, ApplyOutcome::kApplied, ""});
  }
  ContentChanged();
}

void Agent::RevertToLastKnownGood(const AssignedChannel& c) {
  const int64_t from = store_.state().CurrentVersion(c.channel);
  absl::Status status = store_.Revert(c.channel);
  if (!status.ok()) {
    RecordFailure(c,
                  {ApplyOutcome::kApplyFailed, absl::StrCat("revert failed: ", status.ToString())},
                  /*block=*/false);
    return;
  }
  progress_.erase(c.channel);
  QueueApplyReport({c.channel, from, ApplyOutcome::kReverted,
                    absl::StrCat("rolled back to last-known-good v", c.version, " as directed")});
  ContentChanged();
}

Agent::ChannelProgress& Agent::ProgressFor(const AssignedChannel& c) {
  ChannelProgress& p = progress_[c.channel];
  if (p.version != c.version) {
    p = ChannelProgress{};
    p.version = c.version;
  }
  return p;
}

void Agent::Refuse(const AssignedChannel& c, std::string reason) {
  ChannelProgress& p = ProgressFor(c);
  if (p.refused == reason) {
    return;
  }
  p.refused = reason;
  // A health event, not an apply report: the version itself did not fail.
  Queue({clock_.Now(), HealthEvent{"assignment_refused", std::move(reason), VersionsInEffect()}});
}

void Agent::RecordFailure(const AssignedChannel& c, Failure failure, bool block) {
  ChannelProgress& p = ProgressFor(c);
  p.failures++;
  p.not_before = clock_.Now() + backoff_.Delay(p.failures);
  // Reported once per version and reason, so a persistently bad version is not
  // counted again on every retry.
  if (p.reported != failure.outcome || p.reported_detail != failure.detail) {
    p.reported = failure.outcome;
    p.reported_detail = failure.detail;
    QueueApplyReport({c.channel, c.version, failure.outcome, std::move(failure.detail)});
  }
  if (block) {
    Block(c.channel, c.version);
  }
}

void Agent::Block(const std::string& channel, int64_t version) {
  AgentMeta meta = store_.state().meta;
  AddBlocked(meta, channel, version);
  SaveMetaOrReport(meta).IgnoreError();
}

void Agent::ContentChanged() {
  AgentMeta meta = store_.state().meta;
  meta.boot_marker = BootMarker{true, store_.state().Versions(), 0};
  RecordRunning(meta.trust, meta.boot_marker.versions);
  SaveMetaOrReport(meta).IgnoreError();
  marker_since_ = clock_.Now();
  LoadContent();
}

void Agent::LoadContent() {
  if (hooks_ != nullptr) {
    host_fate_ = hooks_->OnContentLoaded(store_.state().Versions());
  }
}

void Agent::MaybeMarkHealthy(absl::Time now) {
  if (!store_.state().meta.boot_marker.present || now - marker_since_ < config_.healthy_interval) {
    return;
  }
  absl::Status status = store_.MarkAllKnownGood();
  if (status.ok()) {
    AgentMeta meta = store_.state().meta;
    meta.boot_marker = BootMarker{};
    status = store_.SaveMeta(meta);
  }
  if (!status.ok()) {
    Queue({now, HealthEvent{"state_write_failed", status.ToString(), VersionsInEffect()}});
  }
}

void Agent::MaybeQueueHeartbeat(absl::Time now, bool force) {
  if (!force && now - last_heartbeat_ < config_.heartbeat_interval) {
    return;
  }
  // A newer heartbeat supersedes unsent ones.
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                [](const TelemetryEvent& e) {
                                  return std::holds_alternative<Heartbeat>(e.event);
                                }),
                 pending_.end());
  std::vector<ChannelVersion> versions = VersionsInEffect();
  Queue({now, Heartbeat{versions, absl::ToInt64Seconds(now - started_at_), config_.boot_id}});
  last_heartbeat_ = now;
  last_heartbeat_versions_ = std::move(versions);
}

void Agent::Queue(TelemetryEvent event) {
  // The server keeps kMaxEventDetailBytes of a detail: send no more.
  if (auto* a = std::get_if<ApplyReport>(&event.event)) {
    a->detail = SanitizeText(a->detail, kMaxEventDetailBytes);
  } else if (auto* c = std::get_if<CrashReport>(&event.event)) {
    c->detail = SanitizeText(c->detail, kMaxEventDetailBytes);
  } else if (auto* h = std::get_if<HealthEvent>(&event.event)) {
    h->detail = SanitizeText(h->detail, kMaxEventDetailBytes);
  }
  if (pending_.size() >= config_.max_pending_events) {
    pending_.erase(pending_.begin());
    ++dropped_events_;
  }
  pending_.push_back(std::move(event));
}

void Agent::QueueApplyReport(ApplyReport report) {
  if (hooks_ != nullptr) {
    hooks_->OnApplyReport(report);
  }
  Queue({clock_.Now(), std::move(report)});
}

absl::Status Agent::SendTelemetry() {
  if (clock_.Now() < telemetry_not_before_) {
    return absl::OkStatus();  // the server asked us to wait
  }
  for (int round = 0; round < kMaxBatchesPerRun; ++round) {
    if (!inflight_.has_value()) {
      if (pending_.empty()) {
        return absl::OkStatus();
      }
      // Numbers follow the clock (Unix microseconds) so that they stay above what the
      // server has seen even when the state was wiped (reinstall); the persisted
      // counter keeps them increasing if the clock steps back. Durable before use.
      AgentMeta meta = store_.state().meta;
      Batch batch;
      batch.seq = std::max(meta.next_batch_seq, absl::ToUnixMicros(clock_.Now()));
      meta.next_batch_seq = batch.seq + 1;
      RETURN_IF_ERROR(store_.SaveMeta(meta));
      // At most kMaxBatchEvents, and as many as fit kMaxBatchBytes (at least one).
      size_t n = 0;
      for (size_t bytes = 0; n < std::min(pending_.size(), kMaxBatchEvents); ++n) {
        bytes += EventBytes(pending_[n]);
        if (n > 0 && bytes > kMaxBatchBytes) {
          break;
        }
      }
      batch.events.assign(std::make_move_iterator(pending_.begin()),
                          std::make_move_iterator(pending_.begin() + n));
      pending_.erase(pending_.begin(), pending_.begin() + n);
      inflight_ = std::move(batch);
    }
    absl::StatusOr<TelemetryAck> ack = client_.ReportTelemetry(inflight_->seq, inflight_->events);
    if (!ack.ok()) {
      const absl::Status& status = ack.status();
      ++telemetry_failures_;
      last_telemetry_error_ = status;
      telemetry_not_before_ = clock_.Now() + RetryAfter(status);
      if (status.code() == absl::StatusCode::kUnauthenticated) {
        client_.SetIdentity("", "");
      } else if (!IsRetryable(status)) {
        // The server refuses this batch as such; resending it cannot succeed.
        dropped_events_ += static_cast<int64_t>(inflight_->events.size());
        inflight_.reset();
      }
      return status;
    }
    inflight_.reset();
  }
  return absl::OkStatus();
}

absl::Duration Agent::BoundPoll(absl::Duration server_delay) const {
  if (server_delay <= absl::ZeroDuration()) {
    return config_.default_poll_interval;
  }
  return std::clamp(server_delay, config_.min_poll_interval, config_.max_poll_interval);
}

}  // namespace ringwarden::agent
