-- 0010: every change to what agents are told reaches every replica at commit.
-- A statement trigger on each table the assignment snapshot reads sends NOTIFY
-- on ringwarden_catalog (payload: the table); replicas LISTEN and refresh at
-- once instead of on their next timer. Agents' heartbeats update agents
-- without touching their labels or revocation columns, so they notify nobody;
-- a new agent reaches other replicas on their periodic refresh.

CREATE FUNCTION notify_catalog_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ringwarden_catalog', TG_TABLE_NAME);
  RETURN NULL;
END;
$$;

CREATE TRIGGER content_notify AFTER INSERT OR UPDATE OR DELETE ON content
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_change();
CREATE TRIGGER rollouts_notify AFTER INSERT OR UPDATE OR DELETE ON rollouts
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_change();
CREATE TRIGGER pins_notify AFTER INSERT OR UPDATE OR DELETE ON pins
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_change();
CREATE TRIGGER ring_policy_notify AFTER INSERT OR UPDATE OR DELETE ON ring_policy
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_change();
CREATE TRIGGER settings_notify AFTER INSERT OR UPDATE OR DELETE ON settings
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_change();
CREATE TRIGGER trust_roots_notify AFTER INSERT OR UPDATE OR DELETE ON trust_roots
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_change();
CREATE TRIGGER channel_floors_notify AFTER INSERT OR UPDATE OR DELETE ON channel_floors
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_change();
CREATE TRIGGER agents_revocation_notify
  AFTER UPDATE OF labels, revoked_at, credentials_valid_after ON agents
  FOR EACH STATEMENT EXECUTE FUNCTION notify_catalog_change();
