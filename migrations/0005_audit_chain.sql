-- 0005: the audit log becomes a hash chain, and TRUNCATE joins UPDATE and
-- DELETE among the refused statements.
--
-- Every entry carries seq (1, 2, 3, ... without gaps; the id may have gaps),
-- prev_hash (the entry_hash of seq - 1; 64 zeros for seq 1) and entry_hash:
-- the lowercase hex SHA-256 of the canonical encoding (version 1)
--
--   "ringwarden.audit.v1\n" followed by ten netstrings "<byte length>:<bytes>,"
--   of seq, prev_hash, at (Unix microseconds), actor, action, rollout_id (''
--   when none), from_state, to_state, reason, evidence::text
--
-- with numbers in decimal and text in UTF-8. common/audit_chain.h computes the
-- same bytes for `ringctl audit verify`; docs/security.md says what it proves.
-- A BEFORE INSERT trigger assigns all three columns, so every insert path is
-- chained whoever writes, and whatever the writer put in them is overwritten.

ALTER TABLE audit_log
  ADD COLUMN seq        bigint,
  ADD COLUMN prev_hash  text,
  ADD COLUMN entry_hash text;

-- audit_netstring encodes one field as "<byte length>:<bytes>,".
CREATE FUNCTION audit_netstring(field text) RETURNS bytea
  LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT convert_to(octet_length(convert_to(field, 'UTF8'))::text || ':', 'UTF8')
         || convert_to(field, 'UTF8') || convert_to(',', 'UTF8')
$$;

-- audit_entry_hash is the entry_hash of an entry with these fields. `at` is
-- taken in exact microseconds (extract returns numeric, no floating point).
CREATE FUNCTION audit_entry_hash(seq bigint, prev_hash text, at timestamptz, actor text,
                                 action text, rollout_id text, from_state text, to_state text,
                                 reason text, evidence jsonb) RETURNS text
  LANGUAGE sql STABLE AS $$
  SELECT encode(sha256(
           convert_to(E'ringwarden.audit.v1\n', 'UTF8')
           || audit_netstring(seq::text)
           || audit_netstring(prev_hash)
           || audit_netstring(((extract(epoch FROM at) * 1000000)::bigint)::text)
           || audit_netstring(actor)
           || audit_netstring(action)
           || audit_netstring(coalesce(rollout_id, ''))
           || audit_netstring(from_state)
           || audit_netstring(to_state)
           || audit_netstring(reason)
           || audit_netstring(evidence::text)), 'hex')
$$;

-- Existing entries (an upgrade of a live database) are chained in id order.
-- ALTER TABLE holds the table exclusively until this migration commits, so no
-- entry is appended meanwhile.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;
DO $$
DECLARE
  entry record;
  n     bigint := 0;
  head  text := repeat('0', 64);
BEGIN
  FOR entry IN SELECT * FROM audit_log ORDER BY id LOOP
    n := n + 1;
    UPDATE audit_log
       SET seq = n,
           prev_hash = head,
           entry_hash = audit_entry_hash(n, head, entry.at, entry.actor, entry.action,
                                         entry.rollout_id, entry.from_state, entry.to_state,
                                         entry.reason, entry.evidence)
     WHERE id = entry.id
    RETURNING entry_hash INTO head;
  END LOOP;
END
$$;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;

ALTER TABLE audit_log
  ALTER COLUMN seq SET NOT NULL,
  ALTER COLUMN prev_hash SET NOT NULL,
  ALTER COLUMN entry_hash SET NOT NULL,
  ADD CONSTRAINT audit_log_seq_positive CHECK (seq > 0),
  ADD CONSTRAINT audit_log_prev_hash_hex CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  ADD CONSTRAINT audit_log_entry_hash_hex CHECK (entry_hash ~ '^[0-9a-f]{64}$');
CREATE UNIQUE INDEX audit_log_by_seq ON audit_log (seq);

-- audit_log_chain appends the entry to the chain. The transaction-level
-- advisory lock makes appenders take turns until they commit or roll back, so
-- the newest entry this statement sees is the last committed one: seq has no
-- gaps and no two entries claim the same predecessor.
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last_seq  bigint;
  last_hash text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('audit_log_chain'));
  SELECT seq, entry_hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
  IF NOT FOUND THEN
    last_seq := 0;
    last_hash := repeat('0', 64);
  END IF;
  NEW.seq := last_seq + 1;
  NEW.prev_hash := last_hash;
  NEW.entry_hash := audit_entry_hash(NEW.seq, NEW.prev_hash, NEW.at, NEW.actor, NEW.action,
                                     NEW.rollout_id, NEW.from_state, NEW.to_state, NEW.reason,
                                     NEW.evidence);
  RETURN NEW;
END;
$$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

-- One refusal for every statement that would change or remove entries.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
