-- Endpoint kinds come from the connectors (EndpointKind), so a new source needs no migration:
-- endpoints loses the CHECK that listed the three kinds, and a kind that needs no HMAC secret
-- (EndpointKind.needs_secret) stores none. SQLite cannot drop a CHECK in place: the table is
-- rebuilt (nothing references it), and its index and change-counter triggers with it.
CREATE TABLE endpoints_new (
    id                         INTEGER PRIMARY KEY,
    path                       TEXT NOT NULL UNIQUE,
    kind                       TEXT NOT NULL,
    guild_id                   INTEGER NOT NULL REFERENCES guilds (guild_id),
    secret                     TEXT,
    previous_secret            TEXT,
    previous_secret_expires_at TEXT,
    read_secret                TEXT,
    game_id                    INTEGER,
    options                    TEXT NOT NULL DEFAULT '{}',
    created_at                 TEXT NOT NULL,
    last_used_at               TEXT,
    disabled_at                TEXT
);
INSERT INTO endpoints_new (id, path, kind, guild_id, secret, previous_secret,
                           previous_secret_expires_at, read_secret, game_id, options, created_at,
                           last_used_at, disabled_at)
    SELECT id, path, kind, guild_id, secret, previous_secret, previous_secret_expires_at,
           read_secret, game_id, options, created_at, last_used_at, disabled_at
    FROM endpoints;
DROP TABLE endpoints;
ALTER TABLE endpoints_new RENAME TO endpoints;
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
-- The server reloads everything it caches when the counter moves.
UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'endpoints_version';
