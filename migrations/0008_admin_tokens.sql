-- 0007: admin credentials live in the database, hashed, each with a role, a
-- name, an expiry and a revocation time. The token text is
-- rwt_<id>_<secret>; only the SHA-256 of the 32 random secret bytes is kept,
-- so a copy of this table does not let anyone call the server.
CREATE TABLE admin_tokens (
  id             text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{12}$'),
  name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
  role           text NOT NULL CHECK (role IN ('viewer', 'releaser', 'admin')),
  secret_sha256  text NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
  created_at     timestamptz NOT NULL,
  created_by     text NOT NULL,
  expires_at     timestamptz NOT NULL CHECK (expires_at > created_at),
  revoked_at     timestamptz,
  revoked_by     text
);
CREATE INDEX admin_tokens_live_admins ON admin_tokens (expires_at)
  WHERE role = 'admin' AND revoked_at IS NULL;
