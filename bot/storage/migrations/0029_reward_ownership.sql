-- Role rewards, after review (issue 17). A grant whose member already had the role (given by
-- hand, by another bot) is not Questlog's to take away: the grant action finds that out when
-- it runs and clears owned, and a reward lost then drops the grant without removing the role.
ALTER TABLE reward_grants ADD COLUMN owned INTEGER NOT NULL DEFAULT 1;

-- The unfinished actions of one key (a reward's), for /rewards list and removing a reward: the
-- other indexes cover only pending rows by time and paused rows.
CREATE INDEX action_outbox_key ON action_outbox (guild_id, pause_key)
    WHERE status IN ('pending', 'in_flight', 'paused');
