-- 0016: a heartbeat moves only an agent's last_seen_at and boot_since. The change feed now
-- carries those values for such updates, so the leader applies them in memory instead of
-- re-reading the agent: most of a period's changes are heartbeats. An update that moves
-- anything else the leader reads (the ring, the labels pins match) still names the agent for
-- a re-read, as before.
ALTER TABLE health_changes
  ADD COLUMN seen_ids text[],
  ADD COLUMN seen_at_us bigint[],
  ADD COLUMN boot_since_us bigint[];

CREATE FUNCTION ringwarden_note_agent_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO health_changes (source, agent_ids, seen_ids, seen_at_us, boot_since_us)
  SELECT TG_TABLE_NAME,
         coalesce(array_agg(agent_id) FILTER (WHERE NOT heartbeat), '{}'),
         array_agg(agent_id) FILTER (WHERE heartbeat),
         array_agg((extract(epoch from last_seen_at) * 1000000)::bigint) FILTER (WHERE heartbeat),
         array_agg((extract(epoch from boot_since) * 1000000)::bigint) FILTER (WHERE heartbeat)
  FROM (SELECT n.agent_id, n.last_seen_at, n.boot_since,
               n.ring IS NOT DISTINCT FROM o.ring AND n.labels IS NOT DISTINCT FROM o.labels
                 AND n.last_seen_at IS NOT NULL AS heartbeat
        FROM changed_rows n JOIN old_rows o USING (agent_id)) c
  HAVING count(*) > 0;
  RETURN NULL;
END $$;

DROP TRIGGER agents_updated_feed ON agents;
CREATE TRIGGER agents_updated_feed AFTER UPDATE ON agents
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION ringwarden_note_agent_change();
