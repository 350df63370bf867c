-- A channel Discord refuses is paused, never failed: its events stay pending in order, the
-- poster probes it (Missing Access / Missing Permissions) and resumes by itself, and
-- /feed channel resumes it or moves its backlog (bot/feed.py). Before this version a refusal
-- marked every waiting event failed for good, and those events go back to pending here.
--
-- SQLite cannot change a CHECK constraint in place, so both tables are rebuilt. Nothing
-- references them (feed_outbox.batch_id points at feed_batches.id, which is kept).

CREATE TABLE feed_channels_new (
    channel_id    INTEGER PRIMARY KEY,
    guild_id      INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'paused')),
    code          INTEGER,      -- Discord's JSON error code of the refusal (50001, 50013, 10003, ...)
    reason        TEXT,         -- Discord's own words for it
    paused_at     TEXT,
    probes        INTEGER NOT NULL DEFAULT 0,  -- probes refused since the pause
    next_probe_at TEXT,         -- NULL while paused: not probed (a deleted channel)
    changed_at    TEXT NOT NULL
);
-- A refusal of the old code read "Discord refused (403, <Discord's text>): ..." or
-- "channel not found (404, <Discord's text>): ...". A paused channel that can be probed is
-- probed at once after the upgrade (next_probe_at in the past).
INSERT INTO feed_channels_new (channel_id, guild_id, status, code, reason, paused_at, probes,
                               next_probe_at, changed_at)
    SELECT channel_id, guild_id,
           CASE status WHEN 'failed' THEN 'paused' ELSE 'ok' END,
           CASE WHEN status != 'failed' THEN NULL
                WHEN reason LIKE 'channel not found (404%' THEN 10003
                WHEN reason LIKE '%Missing Access%' THEN 50001
                ELSE 50013 END,
           CASE WHEN status = 'failed' THEN reason END,
           CASE WHEN status = 'failed' THEN changed_at END,
           0,
           CASE WHEN status = 'failed' AND reason NOT LIKE 'channel not found (404%'
                THEN changed_at END,
           changed_at
    FROM feed_channels;
DROP TABLE feed_channels;
ALTER TABLE feed_channels_new RENAME TO feed_channels;

-- Batches gain 'replaced' (its events went into other batches: one embed was refused and the
-- rest re-batched, or the feed moved to another channel) and maybe_posted (an attempt's answer
-- was lost, so the message may exist although Questlog never heard of it).
CREATE TABLE feed_batches_new (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    nonce           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'replaced')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    message_id      INTEGER,
    last_error      TEXT,
    maybe_posted    INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
INSERT INTO feed_batches_new (id, guild_id, channel_id, nonce, payload, status, attempts,
                              next_attempt_at, message_id, last_error, maybe_posted,
                              created_at, sent_at)
    SELECT id, guild_id, channel_id, nonce, payload, status, attempts, next_attempt_at,
           message_id, last_error,
           CASE WHEN last_error LIKE 'connection to Discord failed%'
                  OR last_error LIKE 'Discord error 5%' THEN 1 ELSE 0 END,
           created_at, sent_at
    FROM feed_batches;
DROP TABLE feed_batches;
ALTER TABLE feed_batches_new RENAME TO feed_batches;
CREATE INDEX feed_batches_open ON feed_batches (channel_id, id) WHERE status = 'pending';
-- A batch's events (marking them sent, splitting a batch, the order of unsent batches). Events
-- are stored without a batch, so ingest does not maintain this index.
CREATE INDEX feed_outbox_batch ON feed_outbox (batch_id) WHERE batch_id IS NOT NULL;

-- What a channel refusal failed goes back to pending, unchanged: the same batches, resent with
-- their stored nonces once the channel takes messages again.
UPDATE feed_batches SET status = 'pending', next_attempt_at = NULL
    WHERE status = 'failed'
      AND (last_error LIKE 'Discord refused (403%' OR last_error LIKE 'channel not found (404%');
UPDATE feed_outbox SET status = 'pending', next_attempt_at = NULL
    WHERE status = 'failed'
      AND (last_error LIKE 'Discord refused (403%' OR last_error LIKE 'channel not found (404%');
