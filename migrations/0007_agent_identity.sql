-- 0007: agent identity. Agents enroll once with a short-lived, scoped,
-- revocable enrollment token and are known from then on by their own
-- credential. Labels that decide a ring or a pin come only from the token or
-- from an admin; what an agent says about itself is kept for display.

CREATE TABLE enrollment_tokens (
  id             text PRIMARY KEY,
  secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
  labels         jsonb NOT NULL DEFAULT '{}',
  max_uses       integer NOT NULL CHECK (max_uses > 0),
  uses           integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text NOT NULL,
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  description    text NOT NULL DEFAULT ''
);

ALTER TABLE agents
  ADD COLUMN reported_labels jsonb NOT NULL DEFAULT '{}',
  ADD COLUMN enrolled_with text NOT NULL DEFAULT '',
  ADD COLUMN revoked_at timestamptz,
  -- Credentials issued before this instant are refused (set by a reset).
  ADD COLUMN credentials_valid_after timestamptz,
  -- One enrollment of an existing id is allowed (set by a reset).
  ADD COLUMN reenroll_allowed boolean NOT NULL DEFAULT false;

-- Labels stored so far were asserted by the agents themselves: keep them for
-- display only, and let those agents enroll once more under the new rules.
UPDATE agents SET reported_labels = labels, labels = '{}', reenroll_allowed = true;

-- What every replica's snapshot needs to know about individual agents: the
-- few with assigned labels, revoked, or reset.
CREATE INDEX agents_with_gates ON agents (agent_id)
  WHERE labels <> '{}' OR revoked_at IS NOT NULL OR credentials_valid_after IS NOT NULL;
