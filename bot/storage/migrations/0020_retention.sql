-- Pruning (bot/storage/retention.py). A raw event whose signature carried a time
-- (BattleMetrics always; Minecraft and custom deliveries with X-Timestamp) is refused as stale
-- once its tolerance has passed, so its dedupe row may be removed with its payload; the
-- others keep a blanked row so a late retry stays a duplicate. 1 = timestamped, NULL = not.
ALTER TABLE raw_events ADD COLUMN timestamped INTEGER;
UPDATE raw_events SET timestamped = 1 WHERE source = 'battlemetrics';
-- Removing a raw event checks that no activity event still refers to it (and SQLite's foreign
-- key check on delete looks up the same column).
CREATE INDEX activity_events_raw ON activity_events (raw_event_id);
