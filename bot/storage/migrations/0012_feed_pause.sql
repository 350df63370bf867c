-- A channel Discord refuses is paused, never failed: its events stay pending in order, the
-- poster probes it (Missing Access / Missing Permissions) and resumes by itself, and
-- /feed channel resumes it or moves its backlog (bot/feed/poster.py). Before this version a refusal
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
           CASE WHEN status = 'failed' AND coalesce(reason, '') NOT LIKE 'channel not found (404%'
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

-- What a refusal of the channel failed goes back to pending: the 403s and 404s (for which the
-- old code failed the whole channel) and the 400s other than Invalid Form Body (refusals of the
-- channel now). An event older than its server's maximum feed age (feed set --max-age) expires
-- instead, as it would have had it waited.
CREATE TEMP TABLE restored AS
    SELECT o.id, o.batch_id,
           CASE WHEN g.feed_max_age_seconds IS NOT NULL
                 AND o.created_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now',
                                             printf('-%d seconds', g.feed_max_age_seconds))
                THEN 'expired' ELSE 'pending' END AS outcome
    FROM feed_outbox o LEFT JOIN guilds g ON g.guild_id = o.guild_id
    WHERE o.status = 'failed'
      AND (o.last_error LIKE 'Discord refused (403%'
           OR o.last_error LIKE 'channel not found (404%'
           OR (o.last_error LIKE 'Discord rejected the message (400%'
               AND o.last_error NOT LIKE 'Discord rejected the message (400, Invalid Form Body%'));
UPDATE feed_outbox
    SET status = (SELECT outcome FROM restored r WHERE r.id = feed_outbox.id),
        last_error = CASE (SELECT outcome FROM restored r WHERE r.id = feed_outbox.id)
                     WHEN 'expired' THEN 'older than the feed maximum age' ELSE last_error END,
        next_attempt_at = NULL
    WHERE id IN (SELECT id FROM restored);
-- A failed batch is resent unchanged (its stored nonce) when all of its events wait again,
-- otherwise its waiting events are batched anew.
UPDATE feed_batches SET status = 'pending', next_attempt_at = NULL
    WHERE status = 'failed' AND id IN (SELECT batch_id FROM restored)
      AND NOT EXISTS (SELECT 1 FROM feed_outbox o
                      WHERE o.batch_id = feed_batches.id AND o.status != 'pending');
UPDATE feed_outbox SET batch_id = NULL, embed_index = NULL
    WHERE id IN (SELECT id FROM restored) AND status = 'pending'
      AND batch_id IN (SELECT id FROM feed_batches WHERE status != 'pending');
DROP TABLE restored;

-- Events wait for their server's feed channel: those left waiting for a channel the feed has
-- moved away from (the old code kept posting them there, or kept them failed) move to it.
UPDATE feed_outbox
    SET channel_id = (SELECT g.feed_channel_id FROM guilds g WHERE g.guild_id = feed_outbox.guild_id),
        batch_id = NULL, embed_index = NULL
    WHERE status = 'pending'
      AND EXISTS (SELECT 1 FROM guilds g WHERE g.guild_id = feed_outbox.guild_id
                  AND g.feed_channel_id IS NOT NULL AND g.feed_channel_id != feed_outbox.channel_id);
UPDATE feed_batches SET status = 'replaced', last_error = 'the feed moved to another channel'
    WHERE status = 'pending'
      AND NOT EXISTS (SELECT 1 FROM feed_outbox o
                      WHERE o.batch_id = feed_batches.id AND o.status = 'pending');
