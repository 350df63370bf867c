-- Feed items that update in place. Activity events sharing an update_key within a guild are
-- versions of one feed item: the poster edits the message that shows the earlier version
-- instead of posting again (bot/feed/poster.py). A version that was never posted is superseded by
-- the newer one. embed_index is the event's position among its message's embeds.
ALTER TABLE activity_events ADD COLUMN update_key TEXT;
CREATE INDEX activity_events_update ON activity_events (guild_id, update_key)
    WHERE update_key IS NOT NULL;

-- feed_outbox gains a status ('superseded') and a column; SQLite cannot change a CHECK
-- constraint in place, so the table is rebuilt. Nothing references feed_outbox.
CREATE TABLE feed_outbox_new (
    id              INTEGER PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES activity_events (id),
    guild_id        INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'expired', 'superseded')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    batch_id        INTEGER,
    message_id      INTEGER,
    embed_index     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
INSERT INTO feed_outbox_new (id, event_id, guild_id, channel_id, status, attempts,
                             next_attempt_at, batch_id, message_id, last_error, created_at,
                             updated_at)
    SELECT id, event_id, guild_id, channel_id, status, attempts, next_attempt_at, batch_id,
           message_id, last_error, created_at, updated_at
    FROM feed_outbox;
DROP TABLE feed_outbox;
ALTER TABLE feed_outbox_new RENAME TO feed_outbox;
CREATE INDEX feed_outbox_pending ON feed_outbox (status, channel_id, id);
CREATE INDEX feed_outbox_event ON feed_outbox (event_id);
