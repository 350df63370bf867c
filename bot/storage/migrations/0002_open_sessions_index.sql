-- Only open sessions need the lookup index: a partial index stays a few pages, so a session
-- start or end rewrites one of them instead of a random leaf of an index over every session.
DROP INDEX sessions_open;
CREATE INDEX sessions_open ON sessions (guild_id, source, player_id, server_id, started_at)
    WHERE ended_at IS NULL AND closed_reason IS NULL;
