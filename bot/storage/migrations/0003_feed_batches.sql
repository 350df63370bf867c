-- The feed poster fixes each Discord message (up to 10 embeds) before sending it, stores it here
-- and sends it with nonce = the batch's nonce; after a lost response or a restart the same batch
-- is sent again unchanged, so Discord's nonce check can return the message it already made.
CREATE TABLE feed_batches (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    nonce           TEXT NOT NULL,
    payload         TEXT NOT NULL,       -- the exact message body: {"embeds": [...]}
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    message_id      INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX feed_batches_open ON feed_batches (channel_id, id) WHERE status = 'pending';

-- A channel Discord refused (deleted, no permission) is not posted to until an admin fixes it.
CREATE TABLE feed_channels (
    channel_id INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    status     TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed')),
    reason     TEXT,
    changed_at TEXT NOT NULL
);

-- Makes nonces unique per installation (a fresh database restarts batch ids at 1).
INSERT INTO meta (key, value) VALUES ('instance_id', lower(hex(randomblob(4))));
