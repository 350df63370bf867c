-- Game server consoles (issue 18): an endpoint's RCON settings. The password is sealed with the
-- instance key (bot/vault), as OAuth tokens are; announce = 0 keeps the console for actions an
-- admin queues without announcing milestones and rewards in game.
CREATE TABLE endpoint_consoles (
    endpoint_id INTEGER PRIMARY KEY REFERENCES endpoints (id) ON DELETE CASCADE,
    game TEXT NOT NULL CHECK (game IN ('minecraft', 'squad')),
    host TEXT NOT NULL,
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    password TEXT NOT NULL,
    announce INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
