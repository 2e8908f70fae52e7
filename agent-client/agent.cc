#include "agent-client/agent.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "ringwarden/v1/content.pb.h"

namespace ringwarden::agent {

namespace {

// kMaxBatchEvents is the server's limit on events per ReportTelemetry.
constexpr size_t kMaxBatchEvents = 256;
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

}  // namespace

Agent::Agent(AgentConfig config, AgentClient& client, ContentStore& store,
             const TrustedKeys& trusted, Clock& clock, BackoffPolicy& backoff,
             LoadChecker* load_checker, AgentHooks* hooks)
    : config_(std::move(config)),
      client_(client),
      store_(store),
      trusted_(trusted),
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
  RETURN_IF_ERROR(store_.SaveMeta(meta));
  marker_since_ = now;
  started_ = true;
  LoadContent();
  return absl::OkStatus();
}

absl::Status Agent::Enroll() {
  absl::StatusOr<EnrollResult> result =
      client_.Enroll(config_.agent_id, config_.labels, config_.enrollment_secret, config_.hostname);
  if (!result.ok()) {
    return result.status();
  }
  ring_ = result->ring;
  return absl::OkStatus();
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
  }
  absl::StatusOr<Assignment> assignment =
      client_.GetAssignment(VersionsInEffect(), config_.channels);
  if (!assignment.ok()) {
    return HandleRpcFailure(assignment.status());
  }
  failures_ = 0;
  last_error_ = absl::OkStatus();
  if (!assignment->ring.empty()) {
    ring_ = assignment->ring;
  }
  emergency_stop_ = assignment->emergency_stop;
  for (const ChannelAssignment& channel : assignment->channels) {
    ProcessChannel(channel, assignment->emergency_stop);
    if (host_down()) {
      return absl::InfiniteDuration();
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

  absl::Duration delay = BoundPoll(assignment->next_poll);
  for (const auto& [name, staged] : staged_) {
    delay = std::min(delay, std::max(staged.apply_at - now, absl::ZeroDuration()));
  }
  return delay;
}

absl::Duration Agent::ErrorDelay() { return backoff_.Delay(std::max(failures_, 1)); }

absl::StatusOr<absl::Duration> Agent::HandleRpcFailure(const absl::Status& status) {
  ++failures_;
  last_error_ = status;
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    // The server no longer knows our token (restarted, rotated): enroll again.
    client_.SetIdentity("", "");
    return backoff_.Delay(failures_);
  }
  if (IsRetryable(status)) {
    return backoff_.Delay(failures_);
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

void Agent::ProcessChannel(const ChannelAssignment& c, bool emergency_stop) {
  if (!IsValidChannelName(c.channel)) {
    Refuse(c, "invalid channel name");
    return;
  }
  const int64_t current = store_.state().CurrentVersion(c.channel);
  auto staged = staged_.find(c.channel);
  if (staged != staged_.end() && staged->second.assignment.version != c.version) {
    staged_.erase(staged);
    staged = staged_.end();
  }
  if (c.version <= 0 || c.version == current) {
    progress_.erase(c.channel);
    return;
  }
  if (emergency_stop) {
    return;
  }
  if (std::find(c.revoked_versions.begin(), c.revoked_versions.end(), c.version) !=
      c.revoked_versions.end()) {
    Refuse(c, "the assignment lists this version as revoked");
    return;
  }
  if (c.version < current && !c.rollback) {
    Refuse(c, absl::StrCat("refusing to go back from v", current, " without a rollback directive"));
    return;
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

  // Told to go back to the version kept as last-known-good: no download needed.
  auto slot = store_.state().channels.find(c.channel);
  if (c.rollback && c.version < current && slot != store_.state().channels.end() &&
      slot->second.last_known_good.version == c.version &&
      slot->second.last_known_good.sha256 == c.sha256) {
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

  absl::StatusOr<FetchedContent> fetched = client_.FetchContent(c.channel, c.version);
  if (!fetched.ok()) {
    const absl::Status& status = fetched.status();
    if (status.code() == absl::StatusCode::kUnauthenticated) {
      client_.SetIdentity("", "");
    }
    if (IsRetryable(status) || status.code() == absl::StatusCode::kUnauthenticated) {
      // Transient: retried quietly after a backoff.
      ChannelProgress& p = ProgressFor(c);
      p.failures++;
      p.not_before = now + backoff_.Delay(p.failures);
      return;
    }
    RecordFailure(c,
                  {status.code() == absl::StatusCode::kDataLoss ? ApplyOutcome::kDigestMismatch
                                                                : ApplyOutcome::kApplyFailed,
                   absl::StrCat("download failed: ", status.ToString())},
                  /*block=*/false);
    return;
  }
  ContentVersion verified;
  if (std::optional<Failure> failure = Verify(c, *fetched, &verified)) {
    RecordFailure(c, std::move(*failure), /*block=*/false);
    return;
  }
  const absl::Duration delay =
      hooks_ != nullptr ? hooks_->ApplyDelay(c.channel, c.version) : absl::ZeroDuration();
  if (delay > absl::ZeroDuration()) {
    staged_[c.channel] = Staged{c, verified, std::move(fetched->payload), now + delay};
    return;
  }
  CommitApply(c, verified, fetched->payload);
}

std::optional<Agent::Failure> Agent::Verify(const ChannelAssignment& c,
                                            const FetchedContent& content,
                                            ContentVersion* verified) const {
  absl::StatusOr<DsseEnvelope> envelope = ParseEnvelopeJson(content.envelope_json);
  if (!envelope.ok()) {
    return Failure{ApplyOutcome::kSignatureRejected,
                   absl::StrCat("bad envelope: ", envelope.status().message())};
  }
  absl::StatusOr<VerifiedEnvelope> checked = trusted_.Verify(*envelope, kManifestPayloadType);
  if (!checked.ok()) {
    return Failure{ApplyOutcome::kSignatureRejected,
                   absl::StrCat("signature rejected: ", checked.status().message())};
  }
  // Parsed from the verified bytes only, never from anything re-serialized.
  ::ringwarden::v1::ContentManifest manifest;
  if (!manifest.ParseFromString(checked->payload)) {
    return Failure{ApplyOutcome::kSignatureRejected, "signed payload is not a ContentManifest"};
  }
  if (manifest.channel() != c.channel || manifest.version() != c.version) {
    return Failure{
        ApplyOutcome::kSignatureRejected,
        absl::StrCat("signed manifest is for ", manifest.channel(), " v", manifest.version(),
                     ", not the assigned ", c.channel, " v", c.version)};
  }
  if (manifest.sha256() != c.sha256 || manifest.size() != c.size) {
    return Failure{ApplyOutcome::kDigestMismatch,
                   absl::StrCat("assignment says sha256 ", c.sha256, " size ", c.size,
                                ", signed manifest says sha256 ", manifest.sha256(), " size ",
                                manifest.size())};
  }
  if (static_cast<int64_t>(content.payload.size()) != manifest.size()) {
    return Failure{ApplyOutcome::kDigestMismatch,
                   absl::StrCat("payload is ", content.payload.size(),
                                " bytes, signed manifest says ", manifest.size())};
  }
  const std::string digest = Sha256Hex(content.payload);
  if (digest != manifest.sha256()) {
    return Failure{
        ApplyOutcome::kDigestMismatch,
        absl::StrCat("payload sha256 is ", digest, ", signed manifest says ", manifest.sha256())};
  }
  *verified = ContentVersion{manifest.version(), manifest.sha256(), manifest.size()};
  return std::nullopt;
}

void Agent::CommitApply(const ChannelAssignment& c, const ContentVersion& version,
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

void Agent::RevertToLastKnownGood(const ChannelAssignment& c) {
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

Agent::ChannelProgress& Agent::ProgressFor(const ChannelAssignment& c) {
  ChannelProgress& p = progress_[c.channel];
  if (p.version != c.version) {
    p = ChannelProgress{};
    p.version = c.version;
  }
  return p;
}

void Agent::Refuse(const ChannelAssignment& c, std::string reason) {
  ChannelProgress& p = ProgressFor(c);
  if (p.refused == reason) {
    return;
  }
  p.refused = reason;
  // A health event, not an apply report: the version itself did not fail.
  Queue({clock_.Now(),
         HealthEvent{"assignment_refused", absl::StrCat(c.channel, " v", c.version, ": ", reason),
                     VersionsInEffect()}});
}

void Agent::RecordFailure(const ChannelAssignment& c, Failure failure, bool block) {
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
  absl::Status status = store_.SaveMeta(meta);
  if (!status.ok()) {
    Queue({clock_.Now(), HealthEvent{"state_write_failed", status.ToString(), VersionsInEffect()}});
  }
}

void Agent::ContentChanged() {
  AgentMeta meta = store_.state().meta;
  meta.boot_marker = BootMarker{true, store_.state().Versions(), 0};
  absl::Status status = store_.SaveMeta(meta);
  if (!status.ok()) {
    Queue({clock_.Now(), HealthEvent{"state_write_failed", status.ToString(), VersionsInEffect()}});
  }
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
      const size_t n = std::min(pending_.size(), kMaxBatchEvents);
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
