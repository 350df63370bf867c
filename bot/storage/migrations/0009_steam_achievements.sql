-- Steam achievements (issue 4). Unlocks are compared with what is stored, never with "the last
-- few days", and stored in the same transaction as the feed events they cause: exactly once,
-- also across restarts. A game's first check stores its existing unlocks silently.
CREATE TABLE steam_achievements (
    steam_id    TEXT NOT NULL,
    app_id      INTEGER NOT NULL,
    api_name    TEXT NOT NULL,
    unlocked_at TEXT,                    -- Steam's unlocktime, when it gives one
    noticed_at  TEXT NOT NULL,
    PRIMARY KEY (steam_id, app_id, api_name)
) WITHOUT ROWID;

CREATE TABLE steam_achievement_games (
    steam_id    TEXT NOT NULL,
    app_id      INTEGER NOT NULL,
    baseline_at TEXT NOT NULL,
    PRIMARY KEY (steam_id, app_id)
) WITHOUT ROWID;

-- Per-game answers that change slowly: the achievement schema (per language) and the global
-- unlock percentages. Re-fetched when older than the sync's cache times.
CREATE TABLE steam_game_cache (
    app_id     INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('schema', 'percentages')),
    language   TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    PRIMARY KEY (app_id, kind, language)
) WITHOUT ROWID;
