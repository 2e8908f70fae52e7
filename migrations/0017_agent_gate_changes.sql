-- 0017: a replica's snapshot reads the agent gates (labels, revocation, reset) changed since
-- its last refresh, instead of every gated agent on every refresh. Each change to a gate is
-- stamped with the id of the transaction that made it. A reader takes the oldest transaction
-- id still running (pg_snapshot_xmin) before it reads; any change it could not see was made by
-- a transaction at or above that id, so its next read asks for gate_xid >= that id. Every
-- insert is stamped, labelled or not: an id enrolled again after its row was deleted by hand
-- must not keep the gate of the row before.
ALTER TABLE agents ADD COLUMN gate_xid xid8;

CREATE FUNCTION ringwarden_stamp_agent_gate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.gate_xid := pg_current_xact_id();
  ELSIF NEW.labels IS DISTINCT FROM OLD.labels OR NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
        OR NEW.credentials_valid_after IS DISTINCT FROM OLD.credentials_valid_after THEN
    NEW.gate_xid := pg_current_xact_id();
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER agents_gate_stamp
  BEFORE INSERT OR UPDATE OF labels, revoked_at, credentials_valid_after ON agents
  FOR EACH ROW EXECUTE FUNCTION ringwarden_stamp_agent_gate();

-- Heartbeats leave gate_xid alone, so their updates stay HOT. Built inside the migration's
-- transaction (not CONCURRENTLY): it blocks writes to agents while it reads the table once.
CREATE INDEX agents_gate_changes ON agents (gate_xid) WHERE gate_xid IS NOT NULL;
