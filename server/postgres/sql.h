// sql.h: every SQL statement of ringwarden_postgres, as named constants.
//
// Statements take every value as a $n parameter, domain words included (the
// ring order, the final states and the holding pins arrive as text[]
// parameters), so no SQL is assembled at run time. Timestamps cross the driver
// as Unix microseconds both ways. PgTx::Exec prepares a statement once per
// connection, on first use. Constants only.
#pragma once

namespace ringwarden::sql {

// Statement is one SQL text and the name it is prepared under.
struct Statement {
  const char* name;
  const char* text;
};

// ---- Connections ------------------------------------------------------------

inline constexpr Statement kPing = {"ping", "SELECT 1"};

// ---- Content and channels ---------------------------------------------------

// The upsert takes the channel row lock, serializing uploads per channel.
inline constexpr Statement kLockChannel = {"lock_channel", R"sql(
INSERT INTO channels (name) VALUES ($1)
ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
RETURNING newest_version)sql"};

// $7: key ids as a text[] literal.
inline constexpr Statement kInsertContent = {"insert_content", R"sql(
INSERT INTO content (channel, version, sha256, size, envelope, payload, key_ids, description,
                     uploaded_by)
VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9))sql"};

inline constexpr Statement kBumpChannel = {"bump_channel", R"sql(
UPDATE channels SET newest_version = $2 WHERE name = $1)sql"};

// Metadata of every version, newest first; $1: a channel, or '' for all.
inline constexpr Statement kListContent = {"list_content", R"sql(
SELECT channel, version, sha256, size, convert_from(envelope, 'UTF8'),
       array_to_json(key_ids)::text, description,
       (extract(epoch from uploaded_at) * 1000000)::bigint, uploaded_by,
       completed_at IS NOT NULL, revoked_at IS NOT NULL
FROM content WHERE $1 = '' OR channel = $1
ORDER BY channel, version DESC)sql"};

// The columns of kListContent, then the payload.
inline constexpr Statement kGetContent = {"get_content", R"sql(
SELECT channel, version, sha256, size, convert_from(envelope, 'UTF8'),
       array_to_json(key_ids)::text, description,
       (extract(epoch from uploaded_at) * 1000000)::bigint, uploaded_by,
       completed_at IS NOT NULL, revoked_at IS NOT NULL, payload
FROM content WHERE channel = $1 AND version = $2)sql"};

// Whether version $2 of channel $1 is revoked, the newest completed version
// and the channel's floor (0: none); locks the channel row, which
// completions, rollbacks and floor uploads take too.
inline constexpr Statement kCheckRolloutVersion = {"check_rollout_version", R"sql(
SELECT c.revoked_at IS NOT NULL,
       (SELECT coalesce(max(version), 0) FROM content
        WHERE channel = $1 AND completed_at IS NOT NULL AND revoked_at IS NULL),
       coalesce((SELECT min_version FROM channel_floors WHERE channel = $1), 0)
FROM channels ch JOIN content c ON c.channel = ch.name AND c.version = $2::bigint
WHERE ch.name = $1
FOR UPDATE OF ch)sql"};

inline constexpr Statement kLockChannelRow = {"lock_channel_row", R"sql(
SELECT 1 FROM channels WHERE name = $1 FOR UPDATE)sql"};

inline constexpr Statement kCompleteContent = {"complete_content", R"sql(
UPDATE content SET completed_at = now()
WHERE channel = $1 AND version = $2 AND completed_at IS NULL)sql"};

inline constexpr Statement kRevokeContent = {"revoke_content", R"sql(
UPDATE content SET revoked_at = now()
WHERE channel = $1 AND version = $2 AND revoked_at IS NULL)sql"};

// ---- Settings, ring policy and pins -----------------------------------------

inline constexpr Statement kSetSetting = {"set_setting", R"sql(
INSERT INTO settings (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value)sql"};

inline constexpr Statement kListSettings = {"list_settings", R"sql(
SELECT key, value FROM settings)sql"};

inline constexpr Statement kLoadRingPolicy = {"load_ring_policy", R"sql(
SELECT canary_buckets, early_buckets, overrides::text, seed FROM ring_policy WHERE id = 1)sql"};

inline constexpr Statement kUpsertPin = {"upsert_pin", R"sql(
INSERT INTO pins (label_key, label_value, channel, policy, updated_by)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (label_key, label_value, channel) DO UPDATE
SET policy = EXCLUDED.policy, updated_by = EXCLUDED.updated_by, updated_at = now())sql"};

inline constexpr Statement kListPins = {"list_pins", R"sql(
SELECT label_key, label_value, channel, policy FROM pins
ORDER BY label_key, label_value, channel)sql"};

// ---- Roots of trust and channel floors --------------------------------------

// Serializes root uploads, so that versions stay consecutive.
inline constexpr Statement kLockTrustRoots = {"lock_trust_roots", R"sql(
SELECT pg_advisory_xact_lock(hashtext('trust_roots')))sql"};

inline constexpr Statement kNewestRootVersion = {"newest_root_version", R"sql(
SELECT coalesce(max(version), 0) FROM trust_roots)sql"};

// $3: expires at, Unix microseconds; $4: key ids as a text[] literal.
inline constexpr Statement kInsertRoot = {"insert_root", R"sql(
INSERT INTO trust_roots (version, envelope, expires_at, key_ids, uploaded_by)
VALUES ($1, $2, timestamptz 'epoch' + $3::bigint * interval '1 microsecond', $4::text[], $5))sql"};

inline constexpr Statement kListRoots = {"list_roots", R"sql(
SELECT version, envelope, (extract(epoch from expires_at) * 1000000)::bigint,
       array_to_json(key_ids)::text, (extract(epoch from uploaded_at) * 1000000)::bigint,
       uploaded_by
FROM trust_roots ORDER BY version)sql"};

// By channel; $1: a channel, or '' for all.
inline constexpr Statement kListFloors = {"list_floors", R"sql(
SELECT channel, min_version, envelope, array_to_json(key_ids)::text,
       (extract(epoch from uploaded_at) * 1000000)::bigint, uploaded_by
FROM channel_floors WHERE $1 = '' OR channel = $1
ORDER BY channel)sql"};

// $4: key ids as a text[] literal.
inline constexpr Statement kUpsertFloor = {"upsert_floor", R"sql(
INSERT INTO channel_floors (channel, min_version, envelope, key_ids, uploaded_by)
VALUES ($1, $2, $3, $4::text[], $5)
ON CONFLICT (channel) DO UPDATE
SET min_version = EXCLUDED.min_version, envelope = EXCLUDED.envelope,
    key_ids = EXCLUDED.key_ids, uploaded_at = now(), uploaded_by = EXCLUDED.uploaded_by)sql"};

// ---- Policies ---------------------------------------------------------------

// Serializes the writers of one policy name so that versions stay dense.
inline constexpr Statement kLockPolicyName = {"lock_policy_name", R"sql(
SELECT pg_advisory_xact_lock(hashtext('policy:' || $1)))sql"};

inline constexpr Statement kInsertPolicyVersion = {"insert_policy_version", R"sql(
INSERT INTO rollout_policies (name, version, body, created_by)
SELECT $1, coalesce(max(version), 0) + 1, $2::jsonb, $3 FROM rollout_policies WHERE name = $1
RETURNING version, (extract(epoch from created_at) * 1000000)::bigint)sql"};

// $2: a version, or 0 for the newest.
inline constexpr Statement kGetPolicy = {"get_policy", R"sql(
SELECT name, version, body::text, created_by,
       (extract(epoch from created_at) * 1000000)::bigint
FROM rollout_policies
WHERE name = $1 AND ($2::bigint = 0 OR version = $2::bigint)
ORDER BY version DESC LIMIT 1)sql"};

inline constexpr Statement kListPolicies = {"list_policies", R"sql(
SELECT DISTINCT ON (name) name, version, body::text, created_by,
       (extract(epoch from created_at) * 1000000)::bigint
FROM rollout_policies
ORDER BY name, version DESC)sql"};

// ---- Approval requests (the two-person rule) ------------------------------

// Times are Unix microseconds from the server's clock, as the core decides expiry with it.
// Marks the pending requests of key $1 that expired at $2 as expired, freeing the key.
inline constexpr Statement kExpireApprovalsOfKey = {"expire_approvals_of_key", R"sql(
UPDATE approval_requests SET state = 'expired'
WHERE dedupe_key = $1 AND state = 'pending'
  AND expires_at <= timestamptz 'epoch' + $2::bigint * interval '1 microsecond')sql"};

// $3: steps as a text[] literal. Does nothing when the key already has a pending request.
inline constexpr Statement kInsertApproval = {"insert_approval", R"sql(
INSERT INTO approval_requests (id, kind, steps, summary, request, rollout_id, policy,
                               requested_by, needed_role, reason, dedupe_key, requested_at,
                               expires_at)
VALUES ($1, $2, $3::text[], $4, $5::jsonb, $6, $7, $8, $9, $10, $11,
        timestamptz 'epoch' + $12::bigint * interval '1 microsecond',
        timestamptz 'epoch' + $13::bigint * interval '1 microsecond')
ON CONFLICT (dedupe_key) WHERE state = 'pending' DO NOTHING
RETURNING id)sql"};

#define RINGWARDEN_APPROVAL_COLUMNS                                                    \
  "id, kind, array_to_json(steps)::text, summary, request::text, rollout_id, policy, " \
  "requested_by, needed_role, reason, dedupe_key, state, "                             \
  "(extract(epoch from requested_at) * 1000000)::bigint, "                             \
  "(extract(epoch from expires_at) * 1000000)::bigint, decided_by, "                   \
  "(extract(epoch from decided_at) * 1000000)::bigint, decision_reason "

inline constexpr Statement kGetApproval = {
    "get_approval", "SELECT " RINGWARDEN_APPROVAL_COLUMNS "FROM approval_requests WHERE id = $1"};

inline constexpr Statement kGetPendingApprovalByKey = {
    "get_pending_approval_by_key", "SELECT " RINGWARDEN_APPROVAL_COLUMNS
                                   "FROM approval_requests "
                                   "WHERE dedupe_key = $1 AND state = 'pending'"};

// Newest first; $1: only pending requests unexpired at $2; $3: the limit.
inline constexpr Statement kListApprovals = {
    "list_approvals", "SELECT " RINGWARDEN_APPROVAL_COLUMNS
                      "FROM approval_requests WHERE NOT $1 OR (state = 'pending' AND "
                      "expires_at > timestamptz 'epoch' + $2::bigint * interval '1 microsecond') "
                      "ORDER BY requested_at DESC, id LIMIT $3"};

#undef RINGWARDEN_APPROVAL_COLUMNS

// Decides request $1 as $2 ('approved' or 'rejected') by $3 at $4 with reason $5,
// only while it is pending and unexpired at $4; no row back means it was not.
inline constexpr Statement kDecideApproval = {"decide_approval", R"sql(
UPDATE approval_requests
SET state = $2, decided_by = $3,
    decided_at = timestamptz 'epoch' + $4::bigint * interval '1 microsecond',
    decision_reason = $5
WHERE id = $1 AND state = 'pending'
  AND expires_at > timestamptz 'epoch' + $4::bigint * interval '1 microsecond'
RETURNING id)sql"};

// ---- Audit log --------------------------------------------------------------

inline constexpr Statement kInsertAudit = {"insert_audit", R"sql(
INSERT INTO audit_log (actor, action, rollout_id, from_state, to_state, reason, evidence)
VALUES ($1, $2, nullif($3, ''), $4, $5, $6, $7::jsonb))sql"};

// Newest first; $1: a rollout id, or '' for every entry; $2: the limit. The
// columns are exactly what the chain hashes (migrations/0005_audit_chain.sql):
// `at` in exact microseconds, the evidence as jsonb text.
inline constexpr Statement kListAudit = {"list_audit", R"sql(
SELECT id, (extract(epoch from at) * 1000000)::bigint, actor, action, coalesce(rollout_id, ''),
       from_state, to_state, reason, evidence::text, seq, prev_hash, entry_hash
FROM audit_log WHERE $1 = '' OR rollout_id = $1
ORDER BY seq DESC LIMIT $2)sql"};

// The columns of kListAudit in ascending seq order, after seq $2; $3: the limit.
inline constexpr Statement kListAuditOldestFirst = {"list_audit_oldest_first", R"sql(
SELECT id, (extract(epoch from at) * 1000000)::bigint, actor, action, coalesce(rollout_id, ''),
       from_state, to_state, reason, evidence::text, seq, prev_hash, entry_hash
FROM audit_log WHERE ($1 = '' OR rollout_id = $1) AND seq > $2
ORDER BY seq LIMIT $3)sql"};

// ---- Admin tokens -------------------------------------------------------------

// Self-conflicting, held until the transaction ends: serializes the checks of
// bootstrap and revocation ("is another live admin token there?") with each other.
inline constexpr Statement kLockAdminTokens = {"lock_admin_tokens", R"sql(
LOCK TABLE admin_tokens IN SHARE ROW EXCLUSIVE MODE)sql"};

// How many tokens of role $1 are live at $2 (Unix microseconds), leaving out id $3.
inline constexpr Statement kCountLiveAdminTokens = {"count_live_admin_tokens", R"sql(
SELECT count(*) FROM admin_tokens
WHERE role = $1 AND revoked_at IS NULL
  AND expires_at > timestamptz 'epoch' + $2::bigint * interval '1 microsecond' AND id <> $3)sql"};

// $5, $7: created and expires at, Unix microseconds.
inline constexpr Statement kInsertAdminToken = {"insert_admin_token", R"sql(
INSERT INTO admin_tokens (id, name, role, secret_sha256, created_at, created_by, expires_at)
VALUES ($1, $2, $3, $4, timestamptz 'epoch' + $5::bigint * interval '1 microsecond', $6,
        timestamptz 'epoch' + $7::bigint * interval '1 microsecond'))sql"};

// Every token, oldest first; $1: one id, or '' for all.
inline constexpr Statement kListAdminTokens = {"list_admin_tokens", R"sql(
SELECT id, name, role, secret_sha256, (extract(epoch from created_at) * 1000000)::bigint,
       created_by, (extract(epoch from expires_at) * 1000000)::bigint,
       (extract(epoch from revoked_at) * 1000000)::bigint, coalesce(revoked_by, '')
FROM admin_tokens WHERE $1 = '' OR id = $1
ORDER BY created_at, id)sql"};

// $2: revoked at, Unix microseconds; no row when absent or already revoked.
inline constexpr Statement kRevokeAdminToken = {"revoke_admin_token", R"sql(
UPDATE admin_tokens
SET revoked_at = timestamptz 'epoch' + $2::bigint * interval '1 microsecond', revoked_by = $3
WHERE id = $1 AND revoked_at IS NULL)sql"};

// ---- Rollouts and decisions -------------------------------------------------

inline constexpr Statement kInsertRollout = {"insert_rollout", R"sql(
INSERT INTO rollouts (id, channel, version, state, halted_from, previous_version, created_by,
                      policy_name, policy_version, broad_wave, broad_fraction,
                      admitted_fraction)
VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, $8, $9, $10, $11, $12))sql"};

inline constexpr Statement kGetRollout = {"get_rollout", R"sql(
SELECT id, channel, version, state, coalesce(halted_from, ''), previous_version, revision,
       created_by, (extract(epoch from created_at) * 1000000)::bigint,
       (extract(epoch from updated_at) * 1000000)::bigint,
       (extract(epoch from stage_started_at) * 1000000)::bigint,
       policy_name, policy_version, broad_wave, broad_fraction, admitted_fraction,
       admitted_hosts
FROM rollouts WHERE id = $1)sql"};

// The columns of kGetRollout, newest first. $1: a channel, or '' for all;
// $2: leave out the final states, $3 (text[], FinalStateNames()); $4: the
// limit, NULL for none.
inline constexpr Statement kListRollouts = {"list_rollouts", R"sql(
SELECT id, channel, version, state, coalesce(halted_from, ''), previous_version, revision,
       created_by, (extract(epoch from created_at) * 1000000)::bigint,
       (extract(epoch from updated_at) * 1000000)::bigint,
       (extract(epoch from stage_started_at) * 1000000)::bigint,
       policy_name, policy_version, broad_wave, broad_fraction, admitted_fraction,
       admitted_hosts
FROM rollouts
WHERE ($1 = '' OR channel = $1) AND (NOT $2::boolean OR state <> ALL($3::text[]))
ORDER BY created_at DESC, id LIMIT $4)sql"};

inline constexpr Statement kRolloutTarget = {"rollout_target", R"sql(
SELECT channel, version FROM rollouts WHERE id = $1)sql"};

// The optimistic revision check: no row when the rollout moved past $2.
// $5: the stage restarts; $6, $7: the broad wave and fraction, NULL to keep them.
inline constexpr Statement kUpdateRolloutAtRevision = {"update_rollout_at_revision", R"sql(
UPDATE rollouts SET
  state = $3,
  halted_from = nullif($4, ''),
  revision = revision + 1,
  updated_at = now(),
  stage_started_at = CASE WHEN $5::boolean THEN now() ELSE stage_started_at END,
  broad_wave = coalesce($6::int, broad_wave),
  broad_fraction = coalesce($7::double precision, broad_fraction),
  admitted_fraction = coalesce($8::double precision, admitted_fraction),
  admitted_hosts = CASE WHEN $8::double precision IS NULL THEN admitted_hosts ELSE 0 END
WHERE id = $1 AND revision = $2)sql"};

// The exposure budget grows inside a stage (exposure.h): no row when the rollout moved past $2.
// It never shrinks, and it does not bump the revision: growth is not a transition.
inline constexpr Statement kUpdateExposure = {"update_exposure", R"sql(
UPDATE rollouts SET admitted_fraction = greatest(admitted_fraction, $3::double precision),
                    admitted_hosts = $4::bigint
WHERE id = $1 AND revision = $2)sql"};

// $8: evaluated at, Unix microseconds.
inline constexpr Statement kUpsertDecision = {"upsert_decision", R"sql(
INSERT INTO rollout_decisions (rollout_id, ring, kind, reason, gate_passed, summary, evidence,
                               evaluated_at, revision)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb,
        timestamptz 'epoch' + $8::bigint * interval '1 microsecond', $9::bigint)
ON CONFLICT (rollout_id, ring) DO UPDATE SET
  kind = EXCLUDED.kind, reason = EXCLUDED.reason, gate_passed = EXCLUDED.gate_passed,
  summary = EXCLUDED.summary, evidence = EXCLUDED.evidence,
  evaluated_at = EXCLUDED.evaluated_at, revision = EXCLUDED.revision)sql"};

// $2: the ring names in ring order (text[], kAllRings).
inline constexpr Statement kListDecisions = {"list_decisions", R"sql(
SELECT ring, kind, reason, gate_passed, summary, evidence::text,
       (extract(epoch from evaluated_at) * 1000000)::bigint, revision
FROM rollout_decisions WHERE rollout_id = $1
ORDER BY array_position($2::text[], ring))sql"};

// ---- Telemetry --------------------------------------------------------------

// $5: enrolled at, Unix microseconds.
inline constexpr Statement kUpsertAgent = {"upsert_agent", R"sql(
INSERT INTO agents (agent_id, labels, ring, hostname, enrolled_at)
VALUES ($1, $2::jsonb, $3, $4, timestamptz 'epoch' + $5::bigint * interval '1 microsecond')
ON CONFLICT (agent_id) DO UPDATE
SET labels = EXCLUDED.labels, ring = EXCLUDED.ring, hostname = EXCLUDED.hostname)sql"};

// Every kind of telemetry row but agent upserts is streamed (COPY) into a
// session-local staging table, then moved by set-based statements: heartbeats,
// the bulk of the traffic, by the two below; the rest further down. DDL cannot be
// prepared; it is executed as it is.
inline constexpr char kHeartbeatStagingTable[] = "hb_in";

inline constexpr Statement kMergeHeartbeatsIntoAgents = {"merge_heartbeats_into_agents", R"sql(
UPDATE agents a SET last_seen_at = h.at, boot_id = h.boot_id,
  boot_since = CASE WHEN a.boot_id = h.boot_id AND a.boot_since IS NOT NULL THEN a.boot_since
                    ELSE h.first_at END
FROM (SELECT DISTINCT ON (agent_id) agent_id, boot_id,
             timestamptz 'epoch' + at_us * interval '1 microsecond' AS at,
             timestamptz 'epoch' + min(at_us) OVER (PARTITION BY agent_id, boot_id)
               * interval '1 microsecond' AS first_at
      FROM hb_in ORDER BY agent_id, at_us DESC) h
WHERE a.agent_id = h.agent_id AND (a.last_seen_at IS NULL OR a.last_seen_at <= h.at))sql"};

// A staged row with a negative version is a heartbeat that named no channel.
inline constexpr Statement kMergeHeartbeatsIntoVersions = {"merge_heartbeats_into_versions", R"sql(
INSERT INTO agent_versions (agent_id, channel, version, since, reported_at)
SELECT DISTINCT ON (h.agent_id, h.channel) h.agent_id, h.channel, h.version,
       timestamptz 'epoch' + h.at_us * interval '1 microsecond',
       timestamptz 'epoch' + h.at_us * interval '1 microsecond'
FROM hb_in h JOIN agents a USING (agent_id)
WHERE h.version >= 0
ORDER BY h.agent_id, h.channel, h.at_us DESC
ON CONFLICT (agent_id, channel) DO UPDATE SET
  version = EXCLUDED.version,
  since = CASE WHEN agent_versions.version = EXCLUDED.version THEN agent_versions.since
               ELSE EXCLUDED.since END,
  reported_at = EXCLUDED.reported_at
WHERE agent_versions.reported_at <= EXCLUDED.reported_at)sql"};

// Applies, downloads, crash reports and health events are moved by one
// statement each. `n` is the row's place in the batch, so the last detail of a
// repeated apply wins. Rows of agents that never enrolled are ignored, not
// fatal to the batch.
inline constexpr char kApplyStagingTable[] = "apply_in";
inline constexpr char kFetchStagingTable[] = "fetch_in";
inline constexpr char kCrashStagingTable[] = "crash_in";
inline constexpr char kHealthEventStagingTable[] = "health_event_in";
// Every staging table; created once per session, emptied at each commit.
inline constexpr Statement kCreateTelemetryStaging = {"create_telemetry_staging", R"sql(
CREATE TEMP TABLE IF NOT EXISTS hb_in (
  agent_id text, channel text, version bigint, boot_id text, at_us bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS apply_in (
  n bigint, agent_id text, channel text, version bigint, outcome text, detail text, at_us bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS fetch_in (
  agent_id text, channel text, version bigint, at_us bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS crash_in (
  agent_id text, kind text, channel text, version bigint, detail text, at_us bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS health_event_in (
  agent_id text, kind text, channel text, version bigint, detail text, at_us bigint
) ON COMMIT DELETE ROWS)sql"};

// One row per agent, version and outcome: repeats in the batch add to its count.
inline constexpr Statement kMergeApplies = {"merge_applies", R"sql(
INSERT INTO apply_results (agent_id, channel, version, outcome, detail, first_at, last_at, count)
SELECT s.agent_id, s.channel, s.version, s.outcome, (array_agg(s.detail ORDER BY s.n DESC))[1],
       timestamptz 'epoch' + min(s.at_us) * interval '1 microsecond',
       timestamptz 'epoch' + max(s.at_us) * interval '1 microsecond', count(*)
FROM apply_in s JOIN agents a USING (agent_id)
GROUP BY s.agent_id, s.channel, s.version, s.outcome
ON CONFLICT (agent_id, channel, version, outcome) DO UPDATE SET
  detail = EXCLUDED.detail,
  last_at = greatest(apply_results.last_at, EXCLUDED.last_at),
  count = apply_results.count + EXCLUDED.count)sql"};

inline constexpr Statement kMergeFetches = {"merge_fetches", R"sql(
INSERT INTO content_fetches (agent_id, channel, version, first_at, last_at, count)
SELECT s.agent_id, s.channel, s.version,
       timestamptz 'epoch' + min(s.at_us) * interval '1 microsecond',
       timestamptz 'epoch' + max(s.at_us) * interval '1 microsecond', count(*)
FROM fetch_in s JOIN agents a USING (agent_id)
GROUP BY s.agent_id, s.channel, s.version
ON CONFLICT (agent_id, channel, version) DO UPDATE SET
  last_at = greatest(content_fetches.last_at, EXCLUDED.last_at),
  count = content_fetches.count + EXCLUDED.count)sql"};

// `kind` holds CrashKindName.
inline constexpr Statement kMergeCrashes = {"merge_crashes", R"sql(
INSERT INTO crash_reports (agent_id, kind, channel, version, detail, at)
SELECT s.agent_id, s.kind, s.channel, s.version, s.detail,
       timestamptz 'epoch' + s.at_us * interval '1 microsecond'
FROM crash_in s JOIN agents a USING (agent_id))sql"};

// `kind` passed ValidateHealthEventKind. A replayed event is stored once (migration 0012).
inline constexpr Statement kMergeHealthEvents = {"merge_health_events", R"sql(
INSERT INTO health_events (agent_id, kind, channel, version, detail, at)
SELECT s.agent_id, s.kind, s.channel, s.version, s.detail,
       timestamptz 'epoch' + s.at_us * interval '1 microsecond'
FROM health_event_in s JOIN agents a USING (agent_id)
ON CONFLICT (agent_id, channel, version, kind, at) DO NOTHING)sql"};

// Partitions of crash_reports and health_events (migration 0013). $1: the
// retention in seconds; $2: days ahead; $3: now, Unix microseconds.
inline constexpr Statement kMaintainTelemetry = {"maintain_telemetry", R"sql(
SELECT created, dropped, expired
FROM ringwarden_maintain_telemetry($1::bigint * interval '1 second', $2::int,
                                   timestamptz 'epoch' + $3::bigint * interval '1 microsecond'))sql"};

// ---- Health and fleet views -------------------------------------------------

// Every agent with its version in effect on channel $1 and its last heartbeat,
// except the agents carrying the label of a holding pin: $2 and $3 are the
// pins' label keys and values, parallel text[].
#define RINGWARDEN_HEALTH_AGENTS                                                     \
  "SELECT a.agent_id, a.ring, coalesce(v.version, 0),"                               \
  " (extract(epoch from v.since) * 1000000)::bigint,"                                \
  " (extract(epoch from a.last_seen_at) * 1000000)::bigint,"                         \
  " (extract(epoch from a.boot_since) * 1000000)::bigint"                            \
  " FROM agents a"                                                                   \
  " LEFT JOIN agent_versions v ON v.agent_id = a.agent_id AND v.channel = $1"        \
  " WHERE NOT EXISTS ("                                                              \
  "   SELECT 1 FROM unnest($2::text[], $3::text[]) AS held (label_key, label_value)" \
  "   WHERE a.labels ->> held.label_key = held.label_value)"
#define RINGWARDEN_HEALTH_APPLIES                                              \
  "SELECT agent_id, outcome, (extract(epoch from first_at) * 1000000)::bigint" \
  " FROM apply_results WHERE channel = $1 AND version = $2"
#define RINGWARDEN_HEALTH_FETCHES                                     \
  "SELECT agent_id, (extract(epoch from first_at) * 1000000)::bigint" \
  " FROM content_fetches WHERE channel = $1 AND version = $2"
// Rows on version $2 or $3 from $4 (Unix microseconds) on.
#define RINGWARDEN_HEALTH_SINCE(table)                                         \
  "SELECT agent_id, kind, version, (extract(epoch from at) * 1000000)::bigint" \
  " FROM " table                                                               \
  " WHERE channel = $1 AND version IN ($2, $3)"                                \
  "   AND at >= timestamptz 'epoch' + $4::bigint * interval '1 microsecond'"

inline constexpr Statement kHealthAgents = {"health_agents", RINGWARDEN_HEALTH_AGENTS};
inline constexpr Statement kHealthApplies = {"health_applies", RINGWARDEN_HEALTH_APPLIES};
inline constexpr Statement kHealthFetches = {"health_fetches", RINGWARDEN_HEALTH_FETCHES};
inline constexpr Statement kHealthCrashes = {"health_crashes",
                                             RINGWARDEN_HEALTH_SINCE("crash_reports")};
inline constexpr Statement kHealthEvents = {"health_events",
                                            RINGWARDEN_HEALTH_SINCE("health_events")};

// The same reads for only the agents of the last parameter (text[]): the agents a change
// feed named. Each uses an index that leads with agent_id.
inline constexpr Statement kHealthAgentsOf = {
    "health_agents_of", RINGWARDEN_HEALTH_AGENTS " AND a.agent_id = ANY($4::text[])"};
inline constexpr Statement kHealthAppliesOf = {
    "health_applies_of", RINGWARDEN_HEALTH_APPLIES " AND agent_id = ANY($3::text[])"};
inline constexpr Statement kHealthFetchesOf = {
    "health_fetches_of", RINGWARDEN_HEALTH_FETCHES " AND agent_id = ANY($3::text[])"};
inline constexpr Statement kHealthCrashesOf = {
    "health_crashes_of",
    RINGWARDEN_HEALTH_SINCE("crash_reports") " AND agent_id = ANY($5::text[])"};
inline constexpr Statement kHealthEventsOf = {
    "health_events_of", RINGWARDEN_HEALTH_SINCE("health_events") " AND agent_id = ANY($5::text[])"};

#undef RINGWARDEN_HEALTH_AGENTS
#undef RINGWARDEN_HEALTH_APPLIES
#undef RINGWARDEN_HEALTH_FETCHES
#undef RINGWARDEN_HEALTH_SINCE

// The change feed of migration 0015. Every transaction with an id below the
// horizon has ended.
// Below xmax, xmin is a transaction still running.
inline constexpr Statement kHealthChangesHorizon = {"health_changes_horizon", R"sql(
SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmin(s) < pg_snapshot_xmax(s)
FROM pg_current_snapshot() s)sql"};

// The tables and agents named by transactions from horizon $1 up to horizon $2.
inline constexpr Statement kHealthChanges = {"health_changes", R"sql(
SELECT DISTINCT source, unnest(agent_ids) FROM health_changes
WHERE xid >= $1::text::xid8 AND xid < $2::text::xid8)sql"};

// The agent rows heartbeats alone moved (migration 0016), from horizon $1 up to horizon $2,
// with their values, in transaction order.
inline constexpr Statement kHealthSeen = {"health_seen", R"sql(
SELECT s.id, s.at_us, s.boot_us
FROM health_changes h, unnest(h.seen_ids, h.seen_at_us, h.boot_since_us) AS s (id, at_us, boot_us)
WHERE h.xid >= $1::text::xid8 AND h.xid < $2::text::xid8 AND h.seen_ids IS NOT NULL
ORDER BY h.xid)sql"};

// $1: keep the changes of the last $1 seconds.
inline constexpr Statement kTrimHealthChanges = {"trim_health_changes", R"sql(
DELETE FROM health_changes WHERE written_at < now() - $1::double precision * interval '1 second')sql"};

// $1: a ring, or '' for every ring.
inline constexpr Statement kCountAgents = {"count_agents", R"sql(
SELECT count(*) FROM agents WHERE $1 = '' OR ring = $1)sql"};

// $1: a ring, or '' for every ring; $2: the limit.
// The columns AgentFromRow reads.
#define RINGWARDEN_AGENT_COLUMNS                                                  \
  "a.agent_id, a.ring, a.labels::text, a.hostname,"                               \
  " (extract(epoch from a.enrolled_at) * 1000000)::bigint,"                       \
  " (extract(epoch from a.last_seen_at) * 1000000)::bigint,"                      \
  " coalesce((SELECT json_object_agg(v.channel, v.version) FROM agent_versions v" \
  " WHERE v.agent_id = a.agent_id)::text, '{}'), a.reported_labels::text,"        \
  " (extract(epoch from a.revoked_at) * 1000000)::bigint, a.enrolled_with"
inline constexpr Statement kListAgents = {"list_agents", "SELECT " RINGWARDEN_AGENT_COLUMNS R"sql(
FROM agents a WHERE $1 = '' OR a.ring = $1
ORDER BY a.agent_id LIMIT $2)sql"};

// ---- Agent identity ---------------------------------------------------------

// $7: expires at, Unix microseconds.
inline constexpr Statement kInsertEnrollmentToken = {"insert_enrollment_token", R"sql(
INSERT INTO enrollment_tokens (id, secret_sha256, labels, max_uses, created_by, description,
                               expires_at)
VALUES ($1, decode($2, 'hex'), $3::jsonb, $4, $5, $6,
        timestamptz 'epoch' + $7::bigint * interval '1 microsecond'))sql"};

#define RINGWARDEN_TOKEN_COLUMNS                                     \
  "id, encode(secret_sha256, 'hex'), labels::text, max_uses, uses,"  \
  " (extract(epoch from created_at) * 1000000)::bigint, created_by," \
  " (extract(epoch from expires_at) * 1000000)::bigint,"             \
  " (extract(epoch from revoked_at) * 1000000)::bigint, description"
inline constexpr Statement kListEnrollmentTokens = {
    "list_enrollment_tokens",
    "SELECT " RINGWARDEN_TOKEN_COLUMNS " FROM enrollment_tokens ORDER BY created_at DESC, id"};
// The row lock makes concurrent enrollments count uses one at a time.
inline constexpr Statement kLockEnrollmentToken = {
    "lock_enrollment_token",
    "SELECT " RINGWARDEN_TOKEN_COLUMNS " FROM enrollment_tokens WHERE id = $1 FOR UPDATE"};
inline constexpr Statement kRevokeEnrollmentToken = {"revoke_enrollment_token", R"sql(
UPDATE enrollment_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1)sql"};
inline constexpr Statement kUseEnrollmentToken = {"use_enrollment_token", R"sql(
UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = $1)sql"};

inline constexpr Statement kLockAgent = {"lock_agent", R"sql(
SELECT (extract(epoch from revoked_at) * 1000000)::bigint, reenroll_allowed
FROM agents WHERE agent_id = $1 FOR UPDATE)sql"};
// $1 id, $2 assigned labels, $3 ring, $4 hostname, $5 reported labels, $6 token id.
inline constexpr Statement kEnrollAgent = {"enroll_agent", R"sql(
INSERT INTO agents (agent_id, labels, ring, hostname, reported_labels, enrolled_with)
VALUES ($1, $2::jsonb, $3, $4, $5::jsonb, $6)
ON CONFLICT (agent_id) DO UPDATE
SET labels = EXCLUDED.labels, ring = EXCLUDED.ring, hostname = EXCLUDED.hostname,
    reported_labels = EXCLUDED.reported_labels, enrolled_with = EXCLUDED.enrolled_with,
    enrolled_at = now(), reenroll_allowed = false)sql"};
inline constexpr Statement kLabelAgent = {"label_agent", R"sql(
UPDATE agents SET labels = $2::jsonb, ring = $3 WHERE agent_id = $1)sql"};
inline constexpr Statement kRevokeAgent = {"revoke_agent", R"sql(
UPDATE agents SET revoked_at = coalesce(revoked_at, now()) WHERE agent_id = $1)sql"};
// Certificates count whole seconds: a credential issued in the second of the
// reset or later stands.
inline constexpr Statement kResetAgent = {"reset_agent", R"sql(
UPDATE agents SET revoked_at = NULL, reenroll_allowed = true,
                  credentials_valid_after = date_trunc('second', now())
WHERE agent_id = $1)sql"};
inline constexpr Statement kGetAgent = {
    "get_agent", "SELECT " RINGWARDEN_AGENT_COLUMNS " FROM agents a WHERE a.agent_id = $1"};
// What the snapshot knows of individual agents (the partial index agents_with_gates).
inline constexpr Statement kListAgentGates = {"list_agent_gates", R"sql(
SELECT agent_id, labels::text, (extract(epoch from revoked_at) * 1000000)::bigint,
       (extract(epoch from credentials_valid_after) * 1000000)::bigint
FROM agents
WHERE labels <> '{}' OR revoked_at IS NOT NULL OR credentials_valid_after IS NOT NULL)sql"};
// Where a read of the gates starts from (migration 0017): this database server (a standby
// promoted in a failover, or a restored or restarted server, starts anew) and the oldest
// transaction still running on it.
inline constexpr Statement kAgentGateCursor = {"agent_gate_cursor", R"sql(
SELECT pg_postmaster_start_time()::text, pg_snapshot_xmin(pg_current_snapshot())::text)sql"};
// $1: an earlier kAgentGateCursor. The gates changed since (the partial index
// agents_gate_changes), cleared ones included: they come back with no labels and no times.
inline constexpr Statement kListAgentGateChanges = {"list_agent_gate_changes", R"sql(
SELECT agent_id, labels::text, (extract(epoch from revoked_at) * 1000000)::bigint,
       (extract(epoch from credentials_valid_after) * 1000000)::bigint
FROM agents
WHERE gate_xid >= $1::text::xid8)sql"};

inline constexpr Statement kRolloutsByState = {"rollouts_by_state", R"sql(
SELECT channel, state, count(*) FROM rollouts GROUP BY 1, 2)sql"};

inline constexpr Statement kAgentsByRing = {"agents_by_ring", R"sql(
SELECT ring, count(*) FROM agents GROUP BY 1)sql"};

inline constexpr Statement kAgentsByVersion = {"agents_by_version", R"sql(
SELECT channel, version, count(*) FROM agent_versions GROUP BY 1, 2)sql"};

// $1: the window, in seconds.
inline constexpr Statement kAgentsSeenWithin = {"agents_seen_within", R"sql(
SELECT count(*) FROM agents WHERE last_seen_at > now() - make_interval(secs => $1))sql"};

// ---- Leader lock: a session-level advisory lock on its own connection --------

inline constexpr Statement kTryAdvisoryLock = {"try_advisory_lock", R"sql(
SELECT pg_try_advisory_lock($1))sql"};

inline constexpr Statement kAdvisoryUnlock = {"advisory_unlock", R"sql(
SELECT pg_advisory_unlock($1))sql"};

// ---- Migration runner -------------------------------------------------------

// DDL: executed as it is, never prepared.
inline constexpr Statement kCreateSchemaMigrations = {"create_schema_migrations", R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version     int PRIMARY KEY,
  name        text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
))sql"};

// Held until the transaction ends: serializes replicas migrating at once.
inline constexpr Statement kMigrationLock = {"migration_lock", R"sql(
SELECT pg_advisory_xact_lock($1))sql"};

inline constexpr Statement kSchemaVersion = {"schema_version", R"sql(
SELECT coalesce(max(version), 0) FROM schema_migrations)sql"};

inline constexpr Statement kRecordMigration = {"record_migration", R"sql(
INSERT INTO schema_migrations (version, name) VALUES ($1, $2))sql"};

}  // namespace ringwarden::sql
