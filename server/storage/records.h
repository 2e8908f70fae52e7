// records.h: plain rows the storage layer reads and writes.
//
// Independent of protobuf and of the database driver so that the core and
// the transport can both speak them; domain words are the domain's enums. Value types; no
// synchronization.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/outcomes.h"
#include "server/domain/approval.h"
#include "server/domain/assignment.h"
#include "server/domain/enrollment.h"
#include "server/domain/ring.h"
#include "server/domain/rollout.h"

namespace ringwarden {

struct ContentRecord {
  std::string channel;
  int64_t version = 0;
  std::string sha256;
  int64_t size = 0;
  std::string envelope_json;
  std::string payload;  // empty unless asked for
  std::vector<std::string> key_ids;
  std::string description;
  absl::Time uploaded_at;
  std::string uploaded_by;
  bool completed = false;
  bool revoked = false;
};

struct RolloutRecord {
  std::string id;
  std::string channel;
  int64_t version = 0;
  RolloutPosition position;
  int64_t previous_version = 0;
  int64_t revision = 0;
  std::string created_by;
  absl::Time created_at;
  absl::Time updated_at;
  absl::Time stage_started_at;
  std::string policy_name = "default";
  int64_t policy_version = 0;
  int broad_wave = 0;           // index into the policy's broad_waves while BROAD
  double broad_fraction = 1.0;  // share of the broad ring offered the version
  // The exposure budget of the stage (exposure.h): agents of the stage ring whose wave position
  // is below admitted_fraction are offered the version; admitted_hosts counts them.
  double admitted_fraction = 1.0;
  int64_t admitted_hosts = 0;
};

struct PolicyRecord {
  std::string name;
  int64_t version = 0;
  std::string body_json;
  std::string created_by;
  absl::Time created_at;
};

// DecisionRecord is the latest automatic decision for one rollout and ring.
struct DecisionRecord {
  std::string rollout_id;
  Ring ring = Ring::kCanary;
  std::string kind;    // "promote", "wait", "halt", "rollback"
  std::string reason;  // "catastrophic", "regression", "gate_passed", "gate_pending"
  bool gate_passed = false;
  std::string summary;
  std::string evidence_json = "{}";
  absl::Time evaluated_at;
  int64_t revision = 0;  // the rollout revision that was judged
};

// ApprovalClaim marks a change as the execution of an approved request
// (approval.h): the store decides the request in the change's transaction, or
// refuses the change when the request is no longer pending.
struct ApprovalClaim {
  std::string request_id;
  std::string requested_by;
  std::string approved_by;
  std::string reason;                // the approver's
  absl::Time at;                     // the decision time; the request must not have expired by then
  std::string evidence_json = "{}";  // of the approver's audit entry
};

// ApprovalRecord is one request for a second person's approval.
struct ApprovalRecord {
  std::string id;  // "ap-" and 8 hex digits
  ApprovalKind kind = ApprovalKind::kRolloutAction;
  std::vector<GatedStep> steps;
  std::string summary;       // what would happen, for people
  std::string request_json;  // the exact request to replay
  std::string rollout_id;    // "" unless about a rollout
  std::string policy;        // the governing policy, e.g. "default v3"
  std::string requested_by;
  std::string needed_role;  // the least role an approver needs, e.g. "releaser"
  std::string reason;       // the requester's
  // Requests with the same key (who, what, the exact request) are one request while pending.
  std::string dedupe_key;
  ApprovalState state = ApprovalState::kPending;  // as stored; see EffectiveApprovalState
  absl::Time requested_at;
  absl::Time expires_at;
  std::string decided_by;
  std::optional<absl::Time> decided_at;
  std::string decision_reason;
};

struct AuditRecord {
  int64_t id = 0;
  absl::Time at;
  std::string actor;
  std::string action;
  std::string rollout_id;
  std::string from_state;
  std::string to_state;
  std::string reason;
  std::string evidence_json = "{}";
  // The hash chain (common/audit_chain.h), assigned by the store on append:
  // position 1, 2, 3... without gaps, the previous entry's hash and this one's.
  int64_t seq = 0;
  std::string prev_hash;
  std::string entry_hash;
  // Set when the change executes an approved request; not read back.
  std::optional<ApprovalClaim> approval;
};

// AdminTokenRecord is one admin credential. Only the SHA-256 of its secret is
// kept; the token text is shown once, when it is created.
struct AdminTokenRecord {
  std::string id;    // public: 12 lowercase hex characters
  std::string name;  // the person or service
  std::string role;  // RoleName(): "viewer", "releaser" or "admin"
  std::string secret_sha256;
  absl::Time created_at;
  std::string created_by;
  absl::Time expires_at;
  std::optional<absl::Time> revoked_at;
  std::string revoked_by;
};

struct RingProgressRecord {
  Ring ring = Ring::kCanary;
  int64_t targeted = 0;
  int64_t applied = 0;
  int64_t healthy = 0;
  int64_t failed = 0;
};

// PinRecord is a stored pin; the domain's LabelPin.
using PinRecord = LabelPin;

struct AgentRecord {
  std::string agent_id;
  Ring ring = Ring::kBroad;
  std::map<std::string, std::string> labels;
  std::string hostname;
  absl::Time enrolled_at;
  std::optional<absl::Time> last_seen_at;
  std::map<std::string, int64_t> versions;  // channel -> version in effect
  // What the agent says about itself; display only.
  std::map<std::string, std::string> reported_labels;
  std::optional<absl::Time> revoked_at;
  std::string enrolled_with;  // enrollment token id
};

// EnrollmentTokenRecord is a stored enrollment token; the secret is kept only
// as its SHA-256.
struct EnrollmentTokenRecord {
  std::string id;
  std::string secret_sha256;  // raw 32 bytes
  std::map<std::string, std::string> labels;
  int32_t max_uses = 0;
  int32_t uses = 0;
  absl::Time created_at;
  std::string created_by;
  absl::Time expires_at;
  std::optional<absl::Time> revoked_at;
  std::string description;
};

// EnrollmentRequest is one agent enrolling with a token.
struct EnrollmentRequest {
  std::string token_id;
  std::string presented_sha256;  // SHA-256 of the secret presented
  std::string agent_id;
  std::map<std::string, std::string> reported_labels;
  std::string hostname;
  bool holds_credential = false;  // the call carried this agent's current credential
  absl::Time now;
  // The ring an agent with these labels belongs to (the token gives the labels).
  std::function<Ring(const std::map<std::string, std::string>& labels)> ring_of;
};

// EnrolledAgent is what an admitted enrollment stored.
struct EnrolledAgent {
  Ring ring = Ring::kBroad;
  std::map<std::string, std::string> labels;
};

// RootRecord is one stored version of the root of trust, as it was signed.
struct RootRecord {
  int64_t version = 0;
  std::string envelope_json;  // DSSE JSON, byte for byte as signed
  absl::Time expires;
  std::vector<std::string> key_ids;  // root keys whose signatures verified
  absl::Time uploaded_at;
  std::string uploaded_by;
};

// FloorRecord is a channel's release-signed floor: no agent may run below
// min_version.
struct FloorRecord {
  std::string channel;
  int64_t min_version = 0;
  std::string envelope_json;         // DSSE JSON, byte for byte as signed
  std::vector<std::string> key_ids;  // release keys whose signatures verified
  absl::Time uploaded_at;
  std::string uploaded_by;
};

// AgentGateCursor is where a read of the agent gates ended: the next read asks for the gates
// changed since. A cursor of another database server (after a failover, a restart or a restore)
// reads every gate.
struct AgentGateCursor {
  std::string server;     // which database server answered (its postmaster's start time)
  uint64_t position = 0;  // on that server (the oldest transaction id still running)
};

// CatalogData is everything the assignment snapshot is built from.
struct CatalogData {
  std::vector<ContentRecord> content;  // metadata only
  std::vector<RolloutRecord> unfinished_rollouts;
  std::vector<PinRecord> pins;
  RingPolicy ring_policy;
  bool emergency_stop = false;
  std::string agent_token_secret;
  std::vector<RootRecord> roots;    // every stored root, ascending version
  std::vector<FloorRecord> floors;  // by channel
  // Agents with assigned labels, revoked, or reset; every other agent has none.
  // When LoadCatalog was given a cursor and agent_gates_complete is false: the
  // agents whose gate may have changed since that read (at least every one that
  // did, with its gate now; an empty gate for one that has none).
  absl::flat_hash_map<std::string, AgentGate> agent_gates;
  bool agent_gates_complete = true;
  // Give it to the next LoadCatalog to read only the gates changed since this read.
  AgentGateCursor agent_gates_cursor;
};

// Telemetry rows, written in batches.
struct AgentUpsert {
  std::string agent_id;
  Ring ring = Ring::kBroad;
  std::map<std::string, std::string> labels;
  std::string hostname;
  absl::Time at;
};

struct HeartbeatRow {
  std::string agent_id;
  std::map<std::string, int64_t> versions;
  std::string boot_id;
  absl::Time at;
};

struct ApplyRow {
  std::string agent_id;
  std::string channel;
  int64_t version = 0;
  ApplyOutcome outcome = ApplyOutcome::kUnspecified;  // stored by ApplyOutcomeName
  std::string detail;
  absl::Time at;
};

struct CrashRow {
  std::string agent_id;
  CrashKind kind = CrashKind::kUnspecified;  // stored by CrashKindName
  std::string channel;
  int64_t version = 0;
  std::string detail;
  absl::Time at;
};

// HealthEventRow: an agent reported a health event ("cpu_high") with a version in effect.
struct HealthEventRow {
  std::string agent_id;
  std::string kind;  // ValidateHealthEventKind
  std::string channel;
  int64_t version = 0;
  std::string detail;
  absl::Time at;
};

// FetchRow: an agent downloaded a version completely.
struct FetchRow {
  std::string agent_id;
  std::string channel;
  int64_t version = 0;
  absl::Time at;
};

struct TelemetryRows {
  std::vector<FetchRow> fetches;
  std::vector<AgentUpsert> agents;
  std::vector<HeartbeatRow> heartbeats;
  std::vector<ApplyRow> applies;
  std::vector<CrashRow> crashes;
  std::vector<HealthEventRow> health_events;

  size_t size() const {
    return fetches.size() + agents.size() + heartbeats.size() + applies.size() + crashes.size() +
           health_events.size();
  }
  bool empty() const { return size() == 0; }
};

// AgentHealthRow is one agent as the controller sees it for a channel.
struct AgentHealthRow {
  std::string agent_id;
  Ring ring = Ring::kBroad;
  int64_t version = 0;              // in effect (0: none reported)
  std::optional<absl::Time> since;  // when that version was first reported
  std::optional<absl::Time> last_seen;
  std::optional<absl::Time> boot_since;  // first heartbeat of its current boot id
};

// RolloutHealthRows is the telemetry a rollout is judged on.
struct RolloutHealthRows {
  std::vector<AgentHealthRow> agents;  // pinned agents excluded
  std::vector<ApplyRow> applies;       // of the rollout's version
  std::vector<FetchRow> fetches;       // of the rollout's version
  std::vector<CrashRow> crashes;       // on the rollout's or the previous version, since the window
  std::vector<HealthEventRow> health_events;  // the same versions and window; no detail
};

}  // namespace ringwarden
