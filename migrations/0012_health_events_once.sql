-- 0012: a health event is stored once. Duplicate batches are dropped by
-- sequence number only within one replica; a batch replayed through another
-- replica must not add its events' weight again.

DELETE FROM health_events a USING health_events b
WHERE a.id > b.id AND a.agent_id = b.agent_id AND a.channel = b.channel
  AND a.version = b.version AND a.kind = b.kind AND a.at = b.at;
CREATE UNIQUE INDEX health_events_once ON health_events (agent_id, channel, version, kind, at);
