// agent.h: one endpoint agent's logic, shared by ringwarden-agent and ringwarden-fleet.
//
//   ASSIGN_OR_RETURN(Root pinned, TrustInitialRoot(pinned_root_json, clock.Now()));
//   Agent agent(config, client, store, pinned, clock, backoff);
//   RETURN_IF_ERROR(agent.Start());                 // boot-loop breaker, crash report
//   while (running) { ASSIGN_OR_RETURN(absl::Duration wait, agent.RunOnce()); Sleep(wait); }
//   agent.Shutdown();                               // clean: clears the markers
//
// Agent never sleeps: RunOnce returns how long to wait and the caller (daemon loop
// or fleet scheduler) does the waiting. Thread-safety: not thread-safe; one
// thread at a time (the fleet scheduler hands an agent to one worker at a time).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent-client/agent_client.h"
#include "agent-client/backoff.h"
#include "agent-client/content_store.h"
#include "agent-client/load_check.h"
#include "agent-client/types.h"
#include "common/clock.h"
#include "common/trust/trust.h"

namespace ringwarden::agent {

struct AgentConfig {
  std::string agent_id;
  std::map<std::string, std::string> labels;
  // Channels to subscribe to; empty means every channel the server knows.
  std::vector<std::string> channels;
  // Enrolls this id once (ringctl enroll-token create); afterwards the agent
  // is known by the credential it keeps in its state.
  std::string enrollment_token;
  // What the server issues credentials for (--agent-credential-ttl); the
  // agent renews when a third of it is left.
  absl::Duration credential_lifetime = absl::Hours(24 * 7);
  std::string hostname;
  // Changes on every start of the agent (and boot of the host); the caller makes it.
  std::string boot_id;
  // Starts that find the boot marker with the same versions before the agent
  // reverts to last-known-good on its own.
  int boot_loop_threshold = 3;
  // Running this long after loading content clears the boot marker and makes
  // the versions in effect known good.
  absl::Duration healthy_interval = absl::Minutes(5);
  absl::Duration heartbeat_interval = absl::Minutes(1);
  // Poll delay when the server sends none, and bounds on what it sends.
  absl::Duration default_poll_interval = absl::Minutes(1);
  absl::Duration min_poll_interval = absl::Seconds(1);
  absl::Duration max_poll_interval = absl::Hours(1);
  // Unsent telemetry kept while the server is unreachable; the oldest is dropped beyond.
  size_t max_pending_events = 1024;
};

// TrustConfiguredRoot verifies a root the agent was configured with (--root)
// or had persisted: signed by a threshold of its own root keys. Its expiry is
// not checked here but at every poll (WalkRootChain), so an agent whose root
// expired keeps running what it has and accepts nothing until the server
// sends a newer root.
absl::StatusOr<Root> TrustConfiguredRoot(absl::string_view envelope_json);

// HostFate is what happens to a (simulated) host after it loads content.
enum class HostFate { kHealthy, kCrash, kSilence };

// AgentHooks lets a simulator inject faults; the real agent passes none. Every
// method has a harmless default.
class AgentHooks {
 public:
  virtual ~AgentHooks() = default;
  // ApplyDelay: extra time between verifying a version and applying it.
  virtual absl::Duration ApplyDelay(const std::string& /*channel*/, int64_t /*version*/) {
    return absl::ZeroDuration();
  }
  // BeforeApply: a non-OK status fails the apply (reported APPLY_FAILED).
  virtual absl::Status BeforeApply(const std::string& /*channel*/, int64_t /*version*/) {
    return absl::OkStatus();
  }
  // OnContentLoaded is called whenever content is loaded (at start, after an
  // apply or a revert) with the versions in effect. kCrash or kSilence takes
  // the host down at once: the agent does nothing more, unsent telemetry is lost.
  virtual HostFate OnContentLoaded(const std::vector<ChannelVersion>& /*versions*/) {
    return HostFate::kHealthy;
  }
  // OnApplyReport observes every apply report the agent queues.
  virtual void OnApplyReport(const ApplyReport& /*report*/) {}
};

// Agent polls its assignment, downloads, verifies and applies content with a
// last-known-good copy, runs the load check, breaks boot loops and reports.
//
// Trust (common/trust/trust.h): the agent starts from its pinned root, or from
// the newer root it accepted before (persisted in the store's AgentMeta). Each
// poll sends the root version, walks the root updates of the answer
// (WalkRootChain), verifies the signed assignment (VerifyAssignment: the root's
// server role, this agent id, expiry within kMaxClockSkew), verifies the floors
// (VerifyFloor) and applies the rules (AcceptAssignment: the ring recorded at
// the first enrollment, a growing sequence, floors, rollback directive,
// revocations, emergency stop). The trust state is persisted before anything
// is acted on. The answer's unsigned fields are never used for a decision.
// Content must pass VerifyContentEnvelope (release role, the assigned channel,
// version, manifest digest and size) on the first message of the download,
// before any payload byte is kept; the download is capped at the signed size.
//
// When the answer cannot be trusted (unsigned, another agent or ring, replayed,
// expired, bad root update) the agent keeps running what it has, applies
// nothing new, and reports a health event "assignment_refused" with the reason,
// once per distinct reason (numbers in the reason do not make it distinct).
//
// Reporting: APPLIED and failures carry the assigned version; REVERTED carries the
// version left (boot-loop breaker or rollback), the rollout it counts against.
// Refusing a directive (revoked, below the floor, lower without rollback) is a
// health event "assignment_refused", not an apply failure of a version that may be
// fine. Refused content (signature, manifest, digest) and refused downloads
// (size beyond the signed one, stalled, past the deadline) are apply reports
// SIGNATURE_REJECTED or DIGEST_MISMATCH, which the server counts as rejections,
// not as failures of the version. A failure is reported once per version and
// reason and retried after a backoff; transient download errors are retried quietly.
class Agent {
 public:
  // All references must outlive the Agent; `load_checker` and `hooks` may be
  // null. `pinned_root` is the verified root the agent was configured with.
  Agent(AgentConfig config, AgentClient& client, ContentStore& store, const Root& pinned_root,
        Clock& clock, BackoffPolicy& backoff, LoadChecker* load_checker = nullptr,
        AgentHooks* hooks = nullptr);
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Start loads the state and the newest trusted root, reports an unclean
  // shutdown of the previous run, runs the boot-loop breaker (reverting on its
  // own after boot_loop_threshold markers for the same versions), writes the
  // boot marker and loads content. No RPC is made. Errors are local (the store
  // cannot be read or written).
  absl::Status Start();

  // Enroll registers with the server; RunOnce calls it when needed.
  absl::Status Enroll();
  // RenewCredential trades the credential for a fresh one (and a fresh key);
  // RunOnce calls it when a third of its lifetime is left.
  absl::Status RenewCredential();

  // RunOnce polls once, applies what changed and sends telemetry, then returns
  // how long to wait before the next call: the server's next_poll (bounded by
  // the config), or a jittered backoff after UNAVAILABLE, RESOURCE_EXHAUSTED,
  // DEADLINE_EXCEEDED, ABORTED or UNAUTHENTICATED (which also re-enrolls). Other
  // failures are returned; wait ErrorDelay() before trying again. When the host
  // is down (a hook said so) it returns InfiniteDuration and does nothing.
  absl::StatusOr<absl::Duration> RunOnce();

  // ErrorDelay is the backoff to wait after RunOnce returned an error.
  absl::Duration ErrorDelay();

  // Shutdown is the clean stop: one last telemetry attempt, then the
  // unclean-shutdown flag and the boot marker are cleared.
  absl::Status Shutdown();

  // ReportHealth queues a health event (`kind`: ValidateHealthEventKind, e.g. "cpu_high") with
  // the versions in effect; the rollout policy weighs it as a soft failure of those versions.
  // A kind the server would refuse is refused here (INVALID_ARGUMENT), so it never costs the
  // batch it would travel in.
  absl::Status ReportHealth(std::string kind, std::string detail);

  // VersionsInEffect returns the current version of every channel held.
  std::vector<ChannelVersion> VersionsInEffect() const;
  // ring is the ring the server stated at the last enrollment or renewal.
  const std::string& ring() const;
  // root is the newest root the agent trusts.
  const Root& root() const { return accepted_root_ ? *accepted_root_ : pinned_root_; }
  // assignment_refusal says why the last poll's answer was not trusted (empty
  // when it was); assignment_refusals counts distinct reasons reported so far.
  const std::string& assignment_refusal() const { return refusal_; }
  int64_t assignment_refusals() const { return refusals_; }
  bool enrolled() const { return client_.enrolled(); }
  bool emergency_stop() const { return emergency_stop_; }
  // host_down: a hook took the host down; kHealthy otherwise.
  HostFate host_fate() const { return host_fate_; }
  bool host_down() const { return host_fate_ != HostFate::kHealthy; }
  size_t pending_events() const { return pending_.size(); }
  // inflight_batch_seq: seq of the batch awaiting a successful send, 0 if none.
  int64_t inflight_batch_seq() const { return inflight_ ? inflight_->seq : 0; }
  int64_t dropped_events() const { return dropped_events_; }
  // last_error: why the last RunOnce poll failed (OK when it succeeded).
  const absl::Status& last_error() const { return last_error_; }
  // telemetry_failures counts failed ReportTelemetry calls; last_telemetry_error is the latest.
  int64_t telemetry_failures() const { return telemetry_failures_; }
  const absl::Status& last_telemetry_error() const { return last_telemetry_error_; }

 private:
  // ChannelProgress remembers failed attempts at one assigned version.
  struct ChannelProgress {
    int64_t version = 0;
    int failures = 0;
    absl::Time not_before = absl::InfinitePast();
    ApplyOutcome reported = ApplyOutcome::kUnspecified;
    std::string reported_detail;
    std::string refused;  // reason last reported for refusing this version
  };
  // Staged is verified content waiting for its injected apply delay.
  struct Staged {
    AssignedChannel assignment;
    ContentVersion version;
    std::string payload;
    absl::Time apply_at;
  };
  struct Batch {
    int64_t seq = 0;
    std::vector<TelemetryEvent> events;
  };
  struct Failure {
    ApplyOutcome outcome;
    std::string detail;
  };

  absl::StatusOr<absl::Duration> HandleRpcFailure(const absl::Status& status);
  // LoadTrustedRoot picks the newer of the pinned root and the persisted one.
  void LoadTrustedRoot(AgentMeta& meta, absl::Time now);
  // Trust verifies a poll's answer (roots, signed assignment, floors), applies
  // the trust rules and persists the trust state; the decisions are what may
  // be done per channel. An error is the reason the answer is refused.
  absl::StatusOr<std::vector<ChannelDecision>> Trust(const PollAnswer& answer);
  // RefuseAssignment reports a refused answer once per distinct reason.
  void RefuseAssignment(const absl::Status& why);
  void ProcessChannel(const ChannelDecision& decision);
  // Download fetches and verifies the assigned content; a failure is reported.
  void Download(const AssignedChannel& assignment, absl::Time now);
  // ContentRefusal turns a refusal of VerifyContentEnvelope into the outcome
  // the server counts and a detail a person can act on.
  Failure ContentRefusal(absl::string_view envelope_json, const AssignedChannel& assignment,
                         const absl::Status& refusal) const;
  void CommitApply(const AssignedChannel& assignment, const ContentVersion& version,
                   const std::string& payload);
  void RevertToLastKnownGood(const AssignedChannel& assignment);
  ChannelProgress& ProgressFor(const AssignedChannel& assignment);
  // Refuse reports (once per version and reason) that a directive is not followed.
  void Refuse(const AssignedChannel& assignment, std::string reason);
  // RecordFailure reports `failure` (once per version and outcome) and backs
  // off retries of that version; `block` refuses the version for good.
  void RecordFailure(const AssignedChannel& assignment, Failure failure, bool block);
  // SaveMetaOrReport persists `meta`; a failure is reported as a health event.
  absl::Status SaveMetaOrReport(const AgentMeta& meta);
  void Block(const std::string& channel, int64_t version);
  // ContentChanged rewrites the boot marker for the new versions and loads them.
  void ContentChanged();
  void LoadContent();
  void MaybeMarkHealthy(absl::Time now);
  void MaybeQueueHeartbeat(absl::Time now, bool force);
  void Queue(TelemetryEvent event);
  void QueueApplyReport(ApplyReport report);
  absl::Status SendTelemetry();
  absl::Duration BoundPoll(absl::Duration server_delay) const;

  const AgentConfig config_;
  absl::Status KeepCredential(const EnrollResult& result);
  bool RenewalDue(absl::Time now) const;

  AgentClient& client_;
  ContentStore& store_;
  const Root& pinned_root_;
  // The newest root accepted through root updates, when newer than the pinned one.
  std::optional<Root> accepted_root_;
  Clock& clock_;
  BackoffPolicy& backoff_;
  LoadChecker* const load_checker_;
  AgentHooks* const hooks_;

  bool started_ = false;
  absl::Time started_at_;
  absl::Time marker_since_;
  absl::Time last_heartbeat_ = absl::InfinitePast();
  std::vector<ChannelVersion> last_heartbeat_versions_;
  std::string ring_;             // from the last enrollment
  bool emergency_stop_ = false;  // from the last accepted assignment
  // The last accepted statement, named in each poll; an answer that it is current is acted on by
  // verifying it again. Kept in memory only: after a restart the first answer is signed anew.
  std::string held_envelope_;
  HeldStatement held_;
  std::string refusal_;
  std::string refusal_key_;
  std::string floor_refusal_key_;
  int64_t refusals_ = 0;
  HostFate host_fate_ = HostFate::kHealthy;
  int failures_ = 0;
  absl::Status last_error_;
  std::map<std::string, ChannelProgress> progress_;
  std::map<std::string, Staged> staged_;
  std::vector<TelemetryEvent> pending_;
  std::optional<Batch> inflight_;
  int64_t dropped_events_ = 0;
  int64_t telemetry_failures_ = 0;
  absl::Status last_telemetry_error_;
  // No telemetry is sent before this (the server's retry hint).
  absl::Time telemetry_not_before_ = absl::InfinitePast();
};

}  // namespace ringwarden::agent
