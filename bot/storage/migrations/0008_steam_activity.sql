-- The Steam sync's activity planner: what GetPlayerSummaries last showed for each account.
-- in_game_app is Steam's gameid (NULL when not in a game, or invisible, or private).
ALTER TABLE steam_accounts ADD COLUMN in_game_app INTEGER;
ALTER TABLE steam_accounts ADD COLUMN in_game_since TEXT;
ALTER TABLE steam_accounts ADD COLUMN last_summary_at TEXT;
