-- Pruning (bot/storage/retention.py). A raw event whose sender retries with the original
-- signature and its time (BattleMetrics) is refused as stale once the payload window has
-- passed, so its dedupe row may be removed with its payload. The others keep a blanked row so
-- a late retry stays a duplicate: a Minecraft or custom sender may sign a retry afresh with a
-- new X-Timestamp, and its dedupe key does not include the time. 1 = such a delivery.
ALTER TABLE raw_events ADD COLUMN timestamped INTEGER;
UPDATE raw_events SET timestamped = 1 WHERE source = 'battlemetrics';
-- Removing a raw event checks that no activity event still refers to it (and SQLite's foreign
-- key check on delete looks up the same column).
CREATE INDEX activity_events_raw ON activity_events (raw_event_id);
