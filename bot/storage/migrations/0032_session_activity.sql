-- Active versus away time (issue 18). last_seen_at: the last event of any kind from the player
-- on that server during the open session, where a session a server restart left open is closed
-- when the player joins again (crediting its active time up to then). away_since: the start of
-- an away-from-keyboard span still open; closed spans add to idle_seconds, which the session's
-- active time leaves out (as presence's idle time already did).
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
ALTER TABLE sessions ADD COLUMN away_since TEXT;
