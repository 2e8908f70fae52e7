-- 0009: the exposure budget (slow start) inside every stage. A rollout admits
-- its version to the stage ring's hosts below admitted_fraction in wave order;
-- rollouts from before keep offering their stage ring whole. An agent's
-- boot_since is the first heartbeat of its current boot id: survival is proven
-- by heartbeats of one boot spanning the probation period.

ALTER TABLE rollouts
  ADD COLUMN admitted_fraction double precision NOT NULL DEFAULT 1
    CHECK (admitted_fraction >= 0 AND admitted_fraction <= 1),
  ADD COLUMN admitted_hosts bigint NOT NULL DEFAULT 0 CHECK (admitted_hosts >= 0);

ALTER TABLE agents ADD COLUMN boot_since timestamptz;
