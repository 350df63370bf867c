-- Active versus total time (issue 18). ``seconds`` stays the active time everywhere (what
-- milestones, rewards, Linked Roles and the boards rank by); ``away_seconds`` beside it is the
-- away-from-keyboard and idle time of the same sessions, so total = seconds + away_seconds.
-- Sources without sessions (Steam, BattleMetrics) report totals and keep 0 here. Time before
-- this version counts as active: sessions kept their idle time, but not per day, and a total
-- that the days and months could not match would be worse than none.
ALTER TABLE playtime ADD COLUMN away_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE playtime_samples ADD COLUMN away_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE playtime_daily ADD COLUMN away_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE playtime_periods ADD COLUMN away_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE member_playtime ADD COLUMN away_seconds INTEGER NOT NULL DEFAULT 0;

-- A reward counts active time (the default) or total time, AFK included.
ALTER TABLE rewards ADD COLUMN counting TEXT NOT NULL DEFAULT 'active'
    CHECK (counting IN ('active', 'total'));
