-- Fewer index pages dirtied per write (bench/ingest.py, README "Performance").
-- playtime_game existed for the game autocomplete and leaderboards; both look rows up by game
-- and never order by seconds through the index, so seconds leaves it: updating a total no
-- longer moves an index entry.
DROP INDEX playtime_game;
CREATE INDEX playtime_game ON playtime (scope_guild_id, game_id);
-- Every reader of playtime_samples asks per player (leaderboards sum a member's accounts, charts
-- a member's days); the per-game index was never used.
DROP INDEX playtime_samples_game;
