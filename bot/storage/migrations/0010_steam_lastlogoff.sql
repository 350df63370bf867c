-- GetPlayerSummaries' lastlogoff: a new value means the player was online and left since the
-- last pass, so something may have changed even when no game was shown (hidden game details).
ALTER TABLE steam_accounts ADD COLUMN last_logoff INTEGER;
