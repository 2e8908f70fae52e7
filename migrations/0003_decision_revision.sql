-- 0003: a decision records the rollout revision it judged, so a passed gate
-- only counts for that revision (not for a later stage, wave or resume).
ALTER TABLE rollout_decisions ADD COLUMN revision bigint NOT NULL DEFAULT 0;
