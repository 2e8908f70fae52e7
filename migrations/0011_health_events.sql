-- 0011: health events agents report ("cpu_high", "load_check_slow"), one row
-- per event and channel version in effect, kept like crash reports. The
-- controller weighs them as soft failures by the rollout policy's
-- health_events weights; a kind the policy does not name is stored and weighs
-- nothing.

CREATE TABLE health_events (
  id         bigserial PRIMARY KEY,
  agent_id   text NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
  kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
  channel    text NOT NULL,
  version    bigint NOT NULL,
  detail     text NOT NULL DEFAULT '',
  at         timestamptz NOT NULL
);
CREATE INDEX health_events_by_version ON health_events (channel, version, at);
CREATE INDEX health_events_by_agent ON health_events (agent_id, channel, at);
