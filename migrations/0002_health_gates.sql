-- 0002: rollout policies, the policy a rollout started with, broad waves, and
-- the latest automatic decision per rollout and ring.

-- Policies are versioned: setting a policy adds a version, so a rollout can
-- always be explained by the exact gates it ran under.
CREATE TABLE rollout_policies (
  name        text NOT NULL,
  version     bigint NOT NULL CHECK (version > 0),
  body        jsonb NOT NULL,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, version)
);

ALTER TABLE rollouts ADD COLUMN policy_name text NOT NULL DEFAULT 'default';
ALTER TABLE rollouts ADD COLUMN policy_version bigint NOT NULL DEFAULT 0;
-- Index into the policy's broad_waves while BROAD.
ALTER TABLE rollouts ADD COLUMN broad_wave int NOT NULL DEFAULT 0 CHECK (broad_wave >= 0);
-- Share of the broad ring offered the version while BROAD (the wave's size).
ALTER TABLE rollouts ADD COLUMN broad_fraction double precision NOT NULL DEFAULT 1
  CHECK (broad_fraction > 0 AND broad_fraction <= 1);

CREATE TABLE rollout_decisions (
  rollout_id    text NOT NULL REFERENCES rollouts (id),
  ring          text NOT NULL CHECK (ring IN ('canary', 'early', 'broad')),
  kind          text NOT NULL,
  reason        text NOT NULL,
  gate_passed   boolean NOT NULL,
  summary       text NOT NULL,
  evidence      jsonb NOT NULL,
  evaluated_at  timestamptz NOT NULL,
  PRIMARY KEY (rollout_id, ring)
);

-- Agents that downloaded a version. A download followed by silence is a
-- suspected crash: a host in a boot loop never reports that it applied.
CREATE TABLE content_fetches (
  agent_id  text NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
  channel   text NOT NULL,
  version   bigint NOT NULL,
  first_at  timestamptz NOT NULL,
  last_at   timestamptz NOT NULL,
  count     bigint NOT NULL DEFAULT 1,
  PRIMARY KEY (agent_id, channel, version)
);
CREATE INDEX content_fetches_by_version ON content_fetches (channel, version);

CREATE INDEX crash_reports_by_agent ON crash_reports (agent_id, channel, at);
