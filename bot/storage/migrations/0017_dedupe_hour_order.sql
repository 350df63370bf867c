-- Raw events are now stored under identities led by the hour of the event when its source's
-- dedupe key holds one ('2026-12-02T10~<sha256>', bot/storage/events.py dedupe_hash), so an
-- hour's new entries share pages of raw_events' unique index instead of one random page each.
-- Rows stored before keep their bare hash. A delivery whose event hour is this one or earlier
-- is also looked up under its bare hash, so a retry across the upgrade stays a duplicate. The
-- event's hour comes from the sender's clock (Minecraft's at, BattleMetrics' signed t, whose
-- tolerance may be up to a day), so the hour recorded is a day past the upgrade. A database
-- without raw events has no such rows and no upgrade hour.
INSERT INTO meta (key, value)
    SELECT 'dedupe_hour_order_from', strftime('%Y-%m-%dT%H', 'now', '+1 day')
    WHERE EXISTS (SELECT 1 FROM raw_events);
