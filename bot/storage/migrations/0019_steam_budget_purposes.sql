-- The day's Steam Web API calls counted per purpose: the sync (its schedule, /sync now and
-- questlog sync) may spend [steam] sync_share of daily_call_limit, lookups (get-playtime and
-- /link) the rest, so neither can starve the other. Calls counted before this release were
-- almost all the sync's.
CREATE TABLE steam_budget_purposes (
    day     TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('sync', 'lookup')),
    calls   INTEGER NOT NULL,
    PRIMARY KEY (day, purpose)
) WITHOUT ROWID;
INSERT INTO steam_budget_purposes (day, purpose, calls) SELECT day, 'sync', calls FROM steam_budget;
DROP TABLE steam_budget;
ALTER TABLE steam_budget_purposes RENAME TO steam_budget;
