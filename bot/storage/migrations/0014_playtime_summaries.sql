-- What keeps the playtime commands fast on a large community (bench/scale.py, README
-- "Performance"): summaries the writes keep up to date, so a command reads a few thousand rows
-- instead of a year of samples or every link's playtime.

-- Seconds played per local day (the time zone in meta 'summary_timezone'), per scope, game,
-- source and player. Period leaderboards read one game's days in key order; charts read one
-- player's days through playtime_daily_player. Derived from playtime_samples: the first start
-- with a time zone (or with another one) rebuilds it (bot/storage/stats.py, use_timezone), so
-- this migration only creates it.
CREATE TABLE playtime_daily (
    scope_guild_id INTEGER NOT NULL,
    game_id        TEXT NOT NULL,
    day            TEXT NOT NULL,        -- YYYY-MM-DD in the summary time zone
    source         TEXT NOT NULL,
    player_id      TEXT NOT NULL,
    seconds        INTEGER NOT NULL,
    PRIMARY KEY (scope_guild_id, game_id, day, source, player_id)
) WITHOUT ROWID;
CREATE INDEX playtime_daily_player ON playtime_daily (scope_guild_id, source, player_id, day);

-- The games a guild has playtime in: its own sources' games, and the Steam games of the accounts
-- it links (the game autocomplete). Kept by the playtime and link writers; a game stays listed
-- after its last player unlinks.
CREATE TABLE guild_games (
    guild_id INTEGER NOT NULL,
    game_id  TEXT NOT NULL,
    PRIMARY KEY (guild_id, game_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO guild_games (guild_id, game_id)
    SELECT DISTINCT scope_guild_id, game_id FROM playtime WHERE scope_guild_id <> 0;
INSERT OR IGNORE INTO guild_games (guild_id, game_id)
    SELECT DISTINCT l.guild_id, p.game_id FROM account_links l JOIN playtime p
    ON p.scope_guild_id = 0 AND p.source = 'steam' AND p.player_id = l.external_id
    WHERE l.source = 'steam' AND p.seconds IS NOT NULL;
-- The autocomplete keeps each guild's list until a game is listed or named (games_version).
INSERT OR IGNORE INTO meta (key, value) VALUES ('games_version', '0');
CREATE TRIGGER guild_games_changed_insert AFTER INSERT ON guild_games BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'games_version';
END;
CREATE TRIGGER guild_games_changed_delete AFTER DELETE ON guild_games BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'games_version';
END;
CREATE TRIGGER games_changed_insert AFTER INSERT ON games BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'games_version';
END;
CREATE TRIGGER games_changed_update AFTER UPDATE OF name ON games BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'games_version';
END;

-- Row counts for questlog status, kept by triggers: count(*) reads a whole index (seconds when
-- it is not in the page cache).
CREATE TABLE row_counts (
    name TEXT PRIMARY KEY,
    rows INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO row_counts (name, rows) SELECT 'raw_events', count(*) FROM raw_events;
INSERT INTO row_counts (name, rows) SELECT 'activity_events', count(*) FROM activity_events;
CREATE TRIGGER raw_events_count_insert AFTER INSERT ON raw_events BEGIN
    UPDATE row_counts SET rows = rows + 1 WHERE name = 'raw_events';
END;
CREATE TRIGGER raw_events_count_delete AFTER DELETE ON raw_events BEGIN
    UPDATE row_counts SET rows = rows - 1 WHERE name = 'raw_events';
END;
CREATE TRIGGER activity_events_count_insert AFTER INSERT ON activity_events BEGIN
    UPDATE row_counts SET rows = rows + 1 WHERE name = 'activity_events';
END;
CREATE TRIGGER activity_events_count_delete AFTER DELETE ON activity_events BEGIN
    UPDATE row_counts SET rows = rows - 1 WHERE name = 'activity_events';
END;
