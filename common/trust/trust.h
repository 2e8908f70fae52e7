// trust.h: the root of trust, floors and signed assignments (TUF/Uptane roles
// on a staged-rollout controller).
//
// A root names three roles: root keys (sign roots), release keys (sign content
// manifests and floors, offline) and server keys (sign assignments, online).
// Root N+1 is trusted only when a threshold of root N's root keys AND of its
// own root keys signed it. Every object is a DSSE envelope with its own
// payloadType, so one can never pass for another. Verification is pure: the
// caller passes the time; nothing here does I/O.
//
//   ASSIGN_OR_RETURN(Root root, TrustInitialRoot(pinned_json, now));
//   ASSIGN_OR_RETURN(root, WalkRootChain(root, updates_json, now));
//   ASSIGN_OR_RETURN(Assignment a, VerifyAssignment(root, envelope_json, "host-1", now));
//
// Value types and pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/dsse.h"
#include "common/ed25519.h"

namespace ringwarden {

inline constexpr absl::string_view kRootPayloadType = "application/vnd.ringwarden.root+protobuf";
inline constexpr absl::string_view kFloorPayloadType = "application/vnd.ringwarden.floor+protobuf";
inline constexpr absl::string_view kAssignmentPayloadType =
    "application/vnd.ringwarden.assignment+protobuf";

// kMaxRootChain caps how many root versions one update may walk.
inline constexpr int kMaxRootChain = 16;
// kMaxClockSkew is how far issue and expiry times may be off the verifier's clock.
inline constexpr absl::Duration kMaxClockSkew = absl::Minutes(5);

// TrustRole is the key ids of one role and how many distinct ones must sign.
struct TrustRole {
  std::vector<std::string> keyids;
  int threshold = 1;
};

// RootSpec is the content of a root before it is signed.
struct RootSpec {
  int64_t version = 1;
  absl::Time expires;
  std::vector<Ed25519PublicKey> keys;  // every key any role names
  TrustRole root;
  TrustRole release;
  TrustRole server;
};

// Root is a verified root: its roles as key sets ready to verify with.
struct Root {
  int64_t version = 0;
  absl::Time expires;
  TrustedKeys root_keys;
  TrustedKeys release_keys;
  TrustedKeys server_keys;
  std::string envelope_json;  // exactly as signed
  std::string payload_sha256;
};

// EncodeRoot serializes `spec` into RootMetadata bytes (the payload to sign).
// INVALID_ARGUMENT for a role naming an unknown key, a threshold < 1 or above
// its key count, version < 1.
absl::StatusOr<std::string> EncodeRoot(const RootSpec& spec);
// DecodeRootUnverified parses a root envelope's payload without checking any
// signature: for `ringctl keys inspect` and for the signer adding a signature.
absl::StatusOr<RootSpec> DecodeRootUnverified(absl::string_view envelope_json);

// TrustInitialRoot verifies a root the agent or server was configured with
// (pinned): signed by a threshold of its own root keys and not expired at `now`.
absl::StatusOr<Root> TrustInitialRoot(absl::string_view envelope_json, absl::Time now);
// TrustRootSignatures is TrustInitialRoot without the expiry check: for a root
// already trusted, which stays the newest one (expired or not) until an update
// replaces it, and which still verifies its successor.
absl::StatusOr<Root> TrustRootSignatures(absl::string_view envelope_json);

// IsRingName reports "canary", "early" or "broad", the ring names statements carry.
bool IsRingName(absl::string_view ring);
// VerifyRootUpdate verifies `next_json` as version trusted.version + 1: signed by
// a threshold of trusted's root keys and of its own. Expiry is not checked
// here (an intermediate root of a chain may have expired).
absl::StatusOr<Root> VerifyRootUpdate(const Root& trusted, absl::string_view next_json);
// WalkRootChain applies `updates` (consecutive versions) to `trusted` and
// returns the newest root, which must not be expired at `now`. Updates at or
// below trusted.version are skipped if identical to what was trusted, refused if
// different for the trusted version; more than kMaxRootChain new versions are refused.
absl::StatusOr<Root> WalkRootChain(const Root& trusted, const std::vector<std::string>& updates,
                                   absl::Time now);

// Floor is a verified channel floor.
struct Floor {
  std::string channel;
  int64_t min_version = 0;
  std::string envelope_json;
};
// EncodeFloor serializes a FloorMetadata (payload to sign).
absl::StatusOr<std::string> EncodeFloor(absl::string_view channel, int64_t min_version,
                                        absl::Time created);
// VerifyFloor checks a floor envelope against the root's release role.
absl::StatusOr<Floor> VerifyFloor(const Root& root, absl::string_view envelope_json);

// AssignedChannel and Assignment mirror AssignmentStatement (trust.proto).
struct AssignedChannel {
  std::string channel;
  int64_t version = 0;
  std::string manifest_sha256;
  int64_t size = 0;
  std::vector<int64_t> revoked_versions;
  bool rollback = false;
};
struct Assignment {
  std::string agent_id;
  std::string ring;
  int64_t sequence = 0;
  absl::Time issued;
  absl::Time expires;
  std::vector<AssignedChannel> channels;
  bool emergency_stop = false;
  int64_t root_version = 0;
  std::string payload_sha256;  // identifies the exact statement
};

// AssignmentPayload is the AssignmentStatement that SignAssignment signs for
// `a`, serialized: equal Assignments give equal bytes, so the SHA-256 of these
// bytes names one statement (Assignment::payload_sha256 once verified).
std::string AssignmentPayload(const Assignment& a);
// AssignmentPayload with the terms given instead of a's own: the payload of the statement
// that states what `a` states under another sequence, issue and expiry time.
std::string AssignmentPayload(const Assignment& a, int64_t sequence, absl::Time issued,
                              absl::Time expires);
// AssignmentPayloadInto writes that payload to `out`, reusing `out`'s storage and a message
// kept per thread: a poll that checks a held statement allocates nothing for it. The message
// keeps the capacity of the largest statement its thread built (the channels a poll was
// answered for, with their revoked versions).
void AssignmentPayloadInto(const Assignment& a, int64_t sequence, absl::Time issued,
                           absl::Time expires, std::string& out);
// SignAssignment signs AssignmentPayload(a) with the server key.
absl::StatusOr<std::string> SignAssignment(const Assignment& a, const Ed25519PrivateKey& key);
// VerifyAssignment checks signature (root's server role, threshold), payload
// type, that it is for `agent_id`, and that it is issued no later than
// now + kMaxClockSkew and expires after now - kMaxClockSkew.
absl::StatusOr<Assignment> VerifyAssignment(const Root& root, absl::string_view envelope_json,
                                            absl::string_view agent_id, absl::Time now);

// VerifiedContent is a content envelope the release role signed.
struct VerifiedContent {
  std::string channel;
  int64_t version = 0;
  std::string sha256;  // of the payload
  int64_t size = 0;
  std::string manifest_sha256;  // of the signed manifest bytes
};
// VerifyContentEnvelope checks a content envelope against the root's release
// role and against what `expected` (from a verified assignment) names: channel,
// version, manifest digest and size. Nothing of the payload is needed.
absl::StatusOr<VerifiedContent> VerifyContentEnvelope(const Root& root,
                                                      absl::string_view envelope_json,
                                                      const AssignedChannel& expected);

// AgentTrustState is what an agent persists between runs to refuse rollback
// and freeze attacks.
struct AgentTrustState {
  std::string ring;                                     // the ring the agent enrolled into
  int64_t last_sequence = 0;                            // of the newest accepted assignment
  std::string last_payload_sha256;                      // of that assignment
  std::map<std::string, int64_t> floors;                // channel -> highest floor seen
  std::map<std::string, int64_t> highest;               // channel -> highest version ever run
  std::map<std::string, std::vector<int64_t>> revoked;  // channel -> revoked versions seen
};

// ChannelDecision is what the agent may do for one channel of an accepted assignment.
struct ChannelDecision {
  AssignedChannel channel;
  bool apply = false;    // fetch and apply channel.version
  bool refused = false;  // the directive breaks a rule; keep what runs
  std::string reason;    // why refused (for logs and telemetry)
};

// AcceptAssignment applies the agent's rules to a verified assignment `a`
// given `state` and what runs now (`current`, channel -> version):
//   another ring than state.ring, a sequence below state.last_sequence, or the
//   same sequence with a different payload are refused as a whole
//   (FAILED_PRECONDITION, state unchanged);
//   per channel: a version below the floor is refused; a version below what
//   runs needs the rollback directive; a version revoked by this or any
//   earlier accepted assignment is never applied (a later answer cannot hide
//   the list); during an emergency stop nothing new is applied.
// On success `state` advances (sequence, revoked) and the per-channel decisions
// are returned. `floors` are floors verified for this poll; they raise state.floors.
absl::StatusOr<std::vector<ChannelDecision>> AcceptAssignment(
    AgentTrustState& state, const Assignment& a, const std::vector<Floor>& floors,
    const std::map<std::string, int64_t>& current);

// RecordRun notes that `version` of `channel` runs now (raises state.highest).
void RecordRun(AgentTrustState& state, absl::string_view channel, int64_t version);

// EncodeTrustState / DecodeTrustState: the persisted JSON form of AgentTrustState.
std::string EncodeTrustState(const AgentTrustState& state);
absl::StatusOr<AgentTrustState> DecodeTrustState(absl::string_view json);

}  // namespace ringwarden
