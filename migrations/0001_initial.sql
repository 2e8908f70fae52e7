-- 0001: content, rollouts, the audit log, agents and policy.

CREATE TABLE channels (
  name            text PRIMARY KEY,
  newest_version  bigint NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE content (
  channel      text NOT NULL REFERENCES channels (name),
  version      bigint NOT NULL CHECK (version > 0),
  sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size         bigint NOT NULL CHECK (size > 0),
  envelope     bytea NOT NULL,
  payload      bytea NOT NULL,
  key_ids      text[] NOT NULL,
  description  text NOT NULL DEFAULT '',
  uploaded_at  timestamptz NOT NULL DEFAULT now(),
  uploaded_by  text NOT NULL,
  completed_at timestamptz,
  revoked_at   timestamptz,
  PRIMARY KEY (channel, version)
);

CREATE TABLE rollouts (
  id               text PRIMARY KEY,
  channel          text NOT NULL,
  version          bigint NOT NULL,
  state            text NOT NULL CHECK (state IN ('PENDING', 'CANARY', 'EARLY', 'BROAD',
                                                  'COMPLETED', 'HALTED', 'ROLLED_BACK',
                                                  'CANCELLED')),
  halted_from      text,
  previous_version bigint NOT NULL DEFAULT 0,
  revision         bigint NOT NULL DEFAULT 1,
  created_by       text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  stage_started_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (channel, version) REFERENCES content (channel, version)
);
-- At most one unfinished rollout per channel: superseding is explicit.
CREATE UNIQUE INDEX rollouts_one_unfinished_per_channel ON rollouts (channel)
  WHERE state NOT IN ('COMPLETED', 'ROLLED_BACK', 'CANCELLED');
CREATE INDEX rollouts_by_created ON rollouts (created_at DESC);

-- The audit log: every state change with actor, reason, time and evidence.
CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor       text NOT NULL,
  action      text NOT NULL,
  rollout_id  text,
  from_state  text NOT NULL DEFAULT '',
  to_state    text NOT NULL DEFAULT '',
  reason      text NOT NULL DEFAULT '',
  evidence    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_rollout ON audit_log (rollout_id, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE agents (
  agent_id       text PRIMARY KEY,
  labels         jsonb NOT NULL DEFAULT '{}',
  ring           text NOT NULL CHECK (ring IN ('canary', 'early', 'broad')),
  hostname       text NOT NULL DEFAULT '',
  enrolled_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at   timestamptz,
  boot_id        text NOT NULL DEFAULT ''
);
CREATE INDEX agents_by_ring ON agents (ring);

-- What each agent last reported in effect, per channel.
CREATE TABLE agent_versions (
  agent_id     text NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
  channel      text NOT NULL,
  version      bigint NOT NULL,
  since        timestamptz NOT NULL,
  reported_at  timestamptz NOT NULL,
  PRIMARY KEY (agent_id, channel)
);
CREATE INDEX agent_versions_by_version ON agent_versions (channel, version);

-- Every apply outcome an agent reported; one row per agent, version and outcome.
CREATE TABLE apply_results (
  agent_id   text NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
  channel    text NOT NULL,
  version    bigint NOT NULL,
  outcome    text NOT NULL,
  detail     text NOT NULL DEFAULT '',
  first_at   timestamptz NOT NULL,
  last_at    timestamptz NOT NULL,
  count      bigint NOT NULL DEFAULT 1,
  PRIMARY KEY (agent_id, channel, version, outcome)
);
CREATE INDEX apply_results_by_version ON apply_results (channel, version, outcome);

CREATE TABLE crash_reports (
  id         bigserial PRIMARY KEY,
  agent_id   text NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
  kind       text NOT NULL,
  channel    text NOT NULL,
  version    bigint NOT NULL,
  detail     text NOT NULL DEFAULT '',
  at         timestamptz NOT NULL
);
CREATE INDEX crash_reports_by_version ON crash_reports (channel, version, agent_id);

-- Version policy per agent group (label) and channel: latest, n-1 or a version.
CREATE TABLE pins (
  label_key    text NOT NULL,
  label_value  text NOT NULL,
  channel      text NOT NULL,
  policy       text NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  updated_by   text NOT NULL,
  PRIMARY KEY (label_key, label_value, channel)
);

-- Ring membership policy; one row.
CREATE TABLE ring_policy (
  id              int PRIMARY KEY CHECK (id = 1),
  canary_buckets  int NOT NULL,
  early_buckets   int NOT NULL,
  overrides       jsonb NOT NULL,
  seed            text NOT NULL
);
INSERT INTO ring_policy VALUES
  (1, 100, 1000, '[{"key": "group", "value": "dogfood", "ring": "canary"}]', 'ringwarden');

-- Server-wide settings: emergency stop, the agent credential secret.
CREATE TABLE settings (
  key    text PRIMARY KEY,
  value  text NOT NULL
);
INSERT INTO settings VALUES ('emergency_stop', 'false');
INSERT INTO settings VALUES ('agent_token_secret', encode(sha256(gen_random_uuid()::text::bytea || clock_timestamp()::text::bytea), 'hex'));
