-- Feed outbox rows per status for /metrics (every scrape) and questlog status, kept by
-- triggers like row_counts' other rows: counting 'pending' read the whole pending range of
-- feed_outbox_pending (64 ms for a paused channel's 500,000 waiting events).
INSERT INTO row_counts (name, rows)
    SELECT 'feed_outbox:' || s.status, (SELECT count(*) FROM feed_outbox o WHERE o.status = s.status)
    FROM (SELECT 'pending' AS status UNION ALL SELECT 'sent' UNION ALL SELECT 'failed'
          UNION ALL SELECT 'expired' UNION ALL SELECT 'superseded') s;
CREATE TRIGGER feed_outbox_count_insert AFTER INSERT ON feed_outbox BEGIN
    UPDATE row_counts SET rows = rows + 1 WHERE name = 'feed_outbox:' || NEW.status;
END;
CREATE TRIGGER feed_outbox_count_update AFTER UPDATE OF status ON feed_outbox
WHEN OLD.status IS NOT NEW.status BEGIN
    UPDATE row_counts SET rows = rows - 1 WHERE name = 'feed_outbox:' || OLD.status;
    UPDATE row_counts SET rows = rows + 1 WHERE name = 'feed_outbox:' || NEW.status;
END;
CREATE TRIGGER feed_outbox_count_delete AFTER DELETE ON feed_outbox BEGIN
    UPDATE row_counts SET rows = rows - 1 WHERE name = 'feed_outbox:' || OLD.status;
END;
