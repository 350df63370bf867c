-- The Steam sync's state per SteamID (public data, shared by every guild that links it).
-- next_sync_at is persisted so a restart resumes the schedule instead of syncing everyone at
-- once; baseline_at is the first successful sync, whose totals are stored silently.
CREATE TABLE steam_accounts (
    steam_id       TEXT PRIMARY KEY,
    state          TEXT NOT NULL DEFAULT 'new'
                   CHECK (state IN ('new', 'ok', 'private', 'rate_limited', 'unavailable')),
    baseline_at    TEXT,
    last_synced_at TEXT,
    next_sync_at   TEXT NOT NULL,
    private_since  TEXT,
    failures       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    updated_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX steam_accounts_due ON steam_accounts (next_sync_at);
