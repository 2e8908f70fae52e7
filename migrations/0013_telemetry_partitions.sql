-- 0013: crash reports and health events, the telemetry that grows with time,
-- are partitioned by day (UTC) on their `at`, so old days are dropped whole
-- instead of deleted row by row. A default partition takes rows outside every
-- day partition (an agent's clock far off, or a day not created yet); when a
-- day is created, its rows move out of the default partition first.
-- ringwarden_maintain_telemetry creates today's and the next days' partitions
-- and drops the days past the retention; the server calls it on a timer.

ALTER TABLE crash_reports RENAME TO crash_reports_unpartitioned;
ALTER TABLE health_events RENAME TO health_events_unpartitioned;

CREATE TABLE crash_reports (
  id         bigint NOT NULL DEFAULT nextval('crash_reports_id_seq'),
  agent_id   text NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
  kind       text NOT NULL,
  channel    text NOT NULL,
  version    bigint NOT NULL,
  detail     text NOT NULL DEFAULT '',
  at         timestamptz NOT NULL
) PARTITION BY RANGE (at);
ALTER SEQUENCE crash_reports_id_seq OWNED BY crash_reports.id;
CREATE TABLE crash_reports_default PARTITION OF crash_reports DEFAULT;

CREATE TABLE health_events (
  id         bigint NOT NULL DEFAULT nextval('health_events_id_seq'),
  agent_id   text NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE,
  kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
  channel    text NOT NULL,
  version    bigint NOT NULL,
  detail     text NOT NULL DEFAULT '',
  at         timestamptz NOT NULL
) PARTITION BY RANGE (at);
ALTER SEQUENCE health_events_id_seq OWNED BY health_events.id;
CREATE TABLE health_events_default PARTITION OF health_events DEFAULT;

INSERT INTO crash_reports SELECT id, agent_id, kind, channel, version, detail, at
FROM crash_reports_unpartitioned;
INSERT INTO health_events SELECT id, agent_id, kind, channel, version, detail, at
FROM health_events_unpartitioned;
DROP TABLE crash_reports_unpartitioned;
DROP TABLE health_events_unpartitioned;

-- A unique key of a partitioned table must hold the partition key.
ALTER TABLE crash_reports ADD PRIMARY KEY (id, at);
CREATE INDEX crash_reports_by_version ON crash_reports (channel, version, agent_id);
CREATE INDEX crash_reports_by_agent ON crash_reports (agent_id, channel, at);
ALTER TABLE health_events ADD PRIMARY KEY (id, at);
CREATE INDEX health_events_by_version ON health_events (channel, version, at);
CREATE INDEX health_events_by_agent ON health_events (agent_id, channel, at);
CREATE UNIQUE INDEX health_events_once ON health_events (agent_id, channel, version, kind, at);

-- ringwarden_maintain_telemetry keeps one partition per UTC day from yesterday
-- to `days_ahead` days after `now_at`, and drops every day that ended before
-- `now_at - retain` (rows of such days in the default partition are deleted).
-- Replicas may call it at the same time: an advisory lock runs them in turn.
CREATE FUNCTION ringwarden_maintain_telemetry(
    retain interval, days_ahead int, now_at timestamptz,
    OUT created int, OUT dropped int, OUT expired bigint)
LANGUAGE plpgsql AS $$
DECLARE
  parent text;
  part text;
  day date;
  lower_at timestamptz;
  upper_at timestamptz;
  cutoff timestamptz := now_at - retain;
  n bigint;
  old record;
BEGIN
  IF retain < interval '1 day' THEN
    RAISE EXCEPTION 'telemetry retention must be at least one day, not %', retain;
  END IF;
  IF days_ahead < 0 OR days_ahead > 31 THEN
    RAISE EXCEPTION 'days_ahead must be within [0, 31], not %', days_ahead;
  END IF;
  PERFORM pg_advisory_xact_lock(7243118021013);
  created := 0;
  dropped := 0;
  expired := 0;
  FOREACH parent IN ARRAY ARRAY['crash_reports', 'health_events'] LOOP
    FOR i IN -1..days_ahead LOOP
      day := (now_at AT TIME ZONE 'UTC')::date + i;
      part := format('%s_p%s', parent, to_char(day, 'YYYYMMDD'));
      lower_at := day::timestamp AT TIME ZONE 'UTC';
      upper_at := (day + 1)::timestamp AT TIME ZONE 'UTC';
      CONTINUE WHEN upper_at <= cutoff OR to_regclass(part) IS NOT NULL;
      EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                     part, parent);
      EXECUTE format('WITH moved AS (DELETE FROM %I WHERE at >= $1 AND at < $2 RETURNING *) '
                     'INSERT INTO %I SELECT * FROM moved', parent || '_default', part)
        USING lower_at, upper_at;
      EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                     parent, part, lower_at, upper_at);
      created := created + 1;
    END LOOP;
    FOR old IN
      SELECT c.relname, to_date(substring(c.relname FROM '_p([0-9]{8})$'), 'YYYYMMDD') AS day
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = parent::regclass AND c.relname ~ '_p[0-9]{8}$'
    LOOP
      CONTINUE WHEN ((old.day + 1)::timestamp AT TIME ZONE 'UTC') > cutoff;
      EXECUTE format('DROP TABLE %I', old.relname);
      dropped := dropped + 1;
    END LOOP;
    EXECUTE format('DELETE FROM %I WHERE at < $1', parent || '_default') USING cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    expired := expired + n;
  END LOOP;
END;
$$;

DO $$ BEGIN PERFORM ringwarden_maintain_telemetry(interval '90 days', 2, now()); END $$;
