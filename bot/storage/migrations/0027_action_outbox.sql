-- Outbound actions (issue 17): what Questlog does elsewhere (a role added, a console line),
-- queued in the same transaction as what causes it and carried out by the action worker, like
-- the feed outbox. 'in_flight': an attempt began (a non-idempotent action is marked so before
-- any byte is sent; one found in flight at start-up has an 'unknown' outcome and is never sent
-- again); 'paused': its pause key is refused until an admin fixes it (probed now and then);
-- 'done', 'failed' (can never work), 'unknown'. Kept feed_history_days once final.
CREATE TABLE action_outbox (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    connector       TEXT NOT NULL,
    action          TEXT NOT NULL,
    payload         TEXT NOT NULL,       -- JSON, validated by the action's model when queued
    idempotent      INTEGER NOT NULL,
    discord_user_id INTEGER,             -- the member it is about (privacy export and delete)
    pause_key       TEXT NOT NULL,       -- what a fixable refusal pauses ('reward:3', ...)
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'in_flight', 'done', 'failed', 'paused',
                                      'unknown')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT
);
CREATE INDEX action_outbox_due ON action_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX action_outbox_paused ON action_outbox (guild_id, pause_key, id)
    WHERE status = 'paused';
CREATE INDEX action_outbox_member ON action_outbox (guild_id, discord_user_id)
    WHERE discord_user_id IS NOT NULL;

-- A refusal an admin can fix holds back every action of its key in the guild; the worker
-- tries one of them again at next_probe_at (backing off), and a success lifts the pause.
CREATE TABLE action_pauses (
    guild_id      INTEGER NOT NULL,
    pause_key     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    paused_at     TEXT NOT NULL,
    probes        INTEGER NOT NULL DEFAULT 0,
    next_probe_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, pause_key)
) WITHOUT ROWID;
