-- 0015: a change feed of the health rows, so the leader keeps each active rollout's evidence
-- in memory and re-reads only the agents whose rows changed (server/core/health_tracker.h),
-- instead of every agent of the channel each period.
--
-- Every statement that inserts, updates or deletes rows of the tables below appends one row
-- here, in its own transaction: the table and the agent ids it touched. The table lets the
-- leader re-read only the kinds of rows that changed: a heartbeat changes the agent, not its
-- crash reports. Statement-level triggers with transition tables cost one insert per
-- statement, not per row, so a telemetry flush of thousands of heartbeats adds one row; the
-- reader folds repeated ids. Each row carries the id of the transaction that wrote it; a
-- reader takes every row of the transactions below the oldest one still running
-- (pg_snapshot_xmin), which have all ended, so none is missed and none is read early.
-- The leader deletes rows older than a few minutes; a reader further behind reads everything.
CREATE TABLE health_changes (
  xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
  written_at timestamptz NOT NULL DEFAULT now(),
  source     text NOT NULL,
  agent_ids  text[] NOT NULL
);
CREATE INDEX health_changes_by_xid ON health_changes (xid);

CREATE FUNCTION ringwarden_note_health_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO health_changes (source, agent_ids)
  SELECT TG_TABLE_NAME, array_agg(agent_id) FROM changed_rows HAVING count(*) > 0;
  RETURN NULL;
END $$;

-- Every heartbeat updates its agent_versions row (reported_at); only a new version, or a new
-- `since`, changes what the leader judges, so only those are named. This keeps the feed's
-- cost on the heartbeat merge to the agents update alone.
CREATE FUNCTION ringwarden_note_version_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO health_changes (source, agent_ids)
  SELECT TG_TABLE_NAME, array_agg(n.agent_id)
  FROM changed_rows n JOIN old_rows o USING (agent_id, channel)
  WHERE n.version IS DISTINCT FROM o.version OR n.since IS DISTINCT FROM o.since
  HAVING count(*) > 0;
  RETURN NULL;
END $$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['agents', 'agent_versions', 'apply_results', 'content_fetches',
                           'crash_reports', 'health_events'] LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION ringwarden_note_health_change()',
                   t || '_inserted_feed', t);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I '
                   'REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %I()', t || '_updated_feed', t,
                   CASE WHEN t = 'agent_versions' THEN 'ringwarden_note_version_change'
                        ELSE 'ringwarden_note_health_change' END);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION ringwarden_note_health_change()',
                   t || '_deleted_feed', t);
  END LOOP;
END $$;
