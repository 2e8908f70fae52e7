-- 0014: every heartbeat rewrites its agent's row in agents (last_seen_at, boot_id) and in
-- agent_versions (reported_at). None of those columns is indexed, so PostgreSQL can update
-- in place (a HOT update, no index entries) when the row's page has room for the new
-- version. Pages filled to 100 % never do, and every heartbeat then adds an entry to every
-- index. Leave a third of each page free for heartbeat updates. Existing pages gain the
-- room as they are rewritten or vacuumed; new ones have it at once.
ALTER TABLE agents SET (fillfactor = 70);
ALTER TABLE agent_versions SET (fillfactor = 70);
