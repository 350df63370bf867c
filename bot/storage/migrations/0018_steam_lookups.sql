-- Steam lookups made for each get-playtime endpoint per UTC day: past [steam]
-- lookups_per_endpoint_per_day an endpoint's lookups answer from the stored values
-- (steam_status "rate_limited"), so one script cannot spend the key's budget for everyone.
CREATE TABLE steam_lookups (
    day         TEXT NOT NULL,
    endpoint_id INTEGER NOT NULL,
    calls       INTEGER NOT NULL,
    PRIMARY KEY (day, endpoint_id)
) WITHOUT ROWID;
