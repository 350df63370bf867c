-- Games whose playtime grew (seen by the sync or by a get-playtime lookup) and whose
-- achievements have not been checked since. A row stays until a check succeeds, so a failed
-- check (429, Steam down, a crash) is retried on the next read instead of being lost.
CREATE TABLE steam_pending_checks (
    steam_id  TEXT NOT NULL,
    app_id    INTEGER NOT NULL,
    since     TEXT NOT NULL,
    PRIMARY KEY (steam_id, app_id)
) WITHOUT ROWID;
