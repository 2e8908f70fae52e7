-- 0004: the root of trust and the per-channel floors, stored exactly as
-- release engineers signed them offline. The server verifies them before
-- storing and never signs either; agents fetch them with their polls.

-- Root metadata: version N+1 is stored only after it verified against N.
CREATE TABLE trust_roots (
  version      bigint PRIMARY KEY CHECK (version > 0),
  envelope     text NOT NULL,          -- DSSE JSON, byte for byte as signed
  expires_at   timestamptz NOT NULL,
  key_ids      text[] NOT NULL,        -- root keys whose signatures verified
  uploaded_at  timestamptz NOT NULL DEFAULT now(),
  uploaded_by  text NOT NULL
);

-- The lowest version of a channel agents may run; it only ever rises.
CREATE TABLE channel_floors (
  channel      text PRIMARY KEY,
  min_version  bigint NOT NULL CHECK (min_version > 0),
  envelope     text NOT NULL,          -- DSSE JSON, byte for byte as signed
  key_ids      text[] NOT NULL,        -- release keys whose signatures verified
  uploaded_at  timestamptz NOT NULL DEFAULT now(),
  uploaded_by  text NOT NULL
);
