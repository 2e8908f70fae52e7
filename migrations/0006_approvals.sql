-- 0006: requests for a second person's approval (the two-person rule).
-- A request keeps the exact call to replay; approving executes it and decides
-- the request in one transaction, so a request is executed at most once.

CREATE TABLE approval_requests (
  id               text PRIMARY KEY,
  kind             text NOT NULL CHECK (kind IN ('rollout', 'pin', 'floor', 'policy')),
  steps            text[] NOT NULL,
  summary          text NOT NULL,
  request          jsonb NOT NULL,
  rollout_id       text NOT NULL DEFAULT '',
  policy           text NOT NULL DEFAULT '',
  requested_by     text NOT NULL,
  needed_role      text NOT NULL,
  reason           text NOT NULL DEFAULT '',
  dedupe_key       text NOT NULL,
  state            text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
  requested_at     timestamptz NOT NULL,
  expires_at       timestamptz NOT NULL CHECK (expires_at > requested_at),
  decided_by       text NOT NULL DEFAULT '',
  decided_at       timestamptz,
  decision_reason  text NOT NULL DEFAULT ''
);

-- One pending request per key: asking again returns the pending one.
CREATE UNIQUE INDEX approval_requests_pending_key
  ON approval_requests (dedupe_key) WHERE state = 'pending';
CREATE INDEX approval_requests_requested_at ON approval_requests (requested_at DESC);
