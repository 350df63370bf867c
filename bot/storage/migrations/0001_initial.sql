-- Questlog schema, version 1. Times are ISO 8601 UTC text ("2025-03-01T12:00:00.000000Z"),
-- fixed width so they sort as text. Playtime is in seconds. guild_id 0 means "global"
-- (Steam data is public per SteamID and shared by every guild that links it).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('endpoints_version', '0');

CREATE TABLE guilds (
    guild_id             INTEGER PRIMARY KEY,
    feed_channel_id      INTEGER,
    feed_event_types     TEXT,            -- JSON list of enabled types; NULL = all
    feed_max_age_seconds INTEGER,         -- NULL = never expire pending feed rows
    settings             TEXT NOT NULL DEFAULT '{}',
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);

CREATE TABLE endpoints (
    id                         INTEGER PRIMARY KEY,
    path                       TEXT NOT NULL UNIQUE,
    kind                       TEXT NOT NULL CHECK (kind IN ('playtime', 'minecraft', 'custom')),
    guild_id                   INTEGER NOT NULL REFERENCES guilds (guild_id),
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TEXT,
    read_secret                TEXT,
    game_id                    INTEGER,
    options                    TEXT NOT NULL DEFAULT '{}',
    created_at                 TEXT NOT NULL,
    last_used_at               TEXT,
    disabled_at                TEXT
);
CREATE INDEX endpoints_guild ON endpoints (guild_id);

-- The running server caches endpoints and polls this counter, so a change made by the CLI in
-- another process takes effect within a second. last_used_at is deliberately not watched.
CREATE TRIGGER endpoints_changed_insert AFTER INSERT ON endpoints BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'endpoints_version';
END;
CREATE TRIGGER endpoints_changed_update
AFTER UPDATE OF path, kind, guild_id, secret, previous_secret, previous_secret_expires_at,
                read_secret, game_id, options, disabled_at ON endpoints BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'endpoints_version';
END;
CREATE TRIGGER endpoints_changed_delete AFTER DELETE ON endpoints BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'endpoints_version';
END;

CREATE TABLE account_links (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    discord_user_id INTEGER NOT NULL,
    source          TEXT NOT NULL,       -- 'steam', 'minecraft', ...
    external_id     TEXT NOT NULL,
    display_name    TEXT,
    verified        INTEGER NOT NULL DEFAULT 0,
    status          TEXT,                -- e.g. 'private_profile'
    settings        TEXT NOT NULL DEFAULT '{}',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (guild_id, source, external_id)
);
CREATE INDEX account_links_member ON account_links (guild_id, discord_user_id);
CREATE INDEX account_links_external ON account_links (source, external_id);

CREATE TABLE link_codes (
    guild_id        INTEGER NOT NULL,
    code            TEXT NOT NULL,
    discord_user_id INTEGER NOT NULL,
    source          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT,
    used_by         TEXT,
    PRIMARY KEY (guild_id, code)
);

CREATE TABLE raw_events (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    source      TEXT NOT NULL,
    endpoint_id INTEGER,
    dedupe_hash TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (guild_id, dedupe_hash)
);

CREATE TABLE activity_events (
    id                INTEGER PRIMARY KEY,
    guild_id          INTEGER NOT NULL,
    raw_event_id      INTEGER REFERENCES raw_events (id),
    type              TEXT NOT NULL,
    source            TEXT NOT NULL,
    actor_user_id     INTEGER,
    actor_external_id TEXT,
    actor_name        TEXT,
    title             TEXT NOT NULL,
    payload           TEXT NOT NULL,
    occurred_at       TEXT NOT NULL,
    external_id       TEXT,
    created_at        TEXT NOT NULL
);
CREATE INDEX activity_events_guild ON activity_events (guild_id, occurred_at);

CREATE TABLE feed_outbox (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES activity_events (id),
    guild_id        INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'expired')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    batch_id        INTEGER,
    message_id      INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX feed_outbox_pending ON feed_outbox (status, channel_id, id);

-- Current totals. scope_guild_id 0 = global (Steam); otherwise the guild of the endpoint.
CREATE TABLE playtime (
    scope_guild_id INTEGER NOT NULL,
    source         TEXT NOT NULL,
    player_id      TEXT NOT NULL,
    game_id        TEXT NOT NULL,
    seconds        INTEGER,              -- NULL when the source has no value (private, not owned)
    status         TEXT NOT NULL DEFAULT 'ok',
    source_time    TEXT,                 -- when the source measured it (newer wins)
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (scope_guild_id, source, player_id, game_id)
) WITHOUT ROWID;
CREATE INDEX playtime_game ON playtime (scope_guild_id, game_id, seconds);

-- History: one row per increase, for daily charts and period leaderboards.
CREATE TABLE playtime_samples (
    id             INTEGER PRIMARY KEY,
    scope_guild_id INTEGER NOT NULL,
    source         TEXT NOT NULL,
    player_id      TEXT NOT NULL,
    game_id        TEXT NOT NULL,
    at             TEXT NOT NULL,
    delta_seconds  INTEGER NOT NULL,
    total_seconds  INTEGER NOT NULL
);
CREATE INDEX playtime_samples_game ON playtime_samples (scope_guild_id, game_id, at);
CREATE INDEX playtime_samples_player ON playtime_samples (scope_guild_id, player_id, at);

CREATE TABLE sessions (
    id               INTEGER PRIMARY KEY,
    guild_id         INTEGER NOT NULL,
    source           TEXT NOT NULL,
    player_id        TEXT NOT NULL,
    server_id        TEXT NOT NULL DEFAULT '',
    game_id          TEXT NOT NULL,
    started_at       TEXT,
    ended_at         TEXT,
    duration_seconds INTEGER,
    closed_reason    TEXT                -- 'ended', 'superseded'
);
CREATE INDEX sessions_open ON sessions (guild_id, source, player_id, server_id, ended_at);

CREATE TABLE milestones (
    scope_guild_id INTEGER NOT NULL,
    source         TEXT NOT NULL,
    player_id      TEXT NOT NULL,
    game_id        TEXT NOT NULL,
    threshold      INTEGER NOT NULL,
    reached_at     TEXT NOT NULL,
    PRIMARY KEY (scope_guild_id, source, player_id, game_id, threshold)
) WITHOUT ROWID;

-- Steam Web API calls per UTC day, shared by every caller and process.
CREATE TABLE steam_budget (
    day   TEXT PRIMARY KEY,
    calls INTEGER NOT NULL
);
