-- Role rewards (issue 17): a role for hours played. A reward names the hours, the role, the
-- game (NULL: the member's best game), the period (the leaderboards' vocabulary: 'all', 'today',
-- '7d', '30d', '90d', '365d', 'week', 'month'), the source ('any': the best known total across
-- sources, never their sum) and the mode ('stack': kept beside the others; 'replace': only the
-- highest of the replace rewards of the same game and period is held, a tier). created_by is
-- the admin who made it (forgotten with them).
CREATE TABLE rewards (
    reward_id  INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    role_id    INTEGER NOT NULL,
    hours      INTEGER NOT NULL CHECK (hours > 0),
    game_id    TEXT,
    period     TEXT NOT NULL DEFAULT 'all',
    source     TEXT NOT NULL DEFAULT 'any',
    mode       TEXT NOT NULL DEFAULT 'stack' CHECK (mode IN ('stack', 'replace')),
    created_by INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX rewards_guild ON rewards (guild_id);

-- Every grant Questlog made and still stands by: the member earned the reward and its role was
-- queued for them (grant_role in the action outbox, in the same transaction). Questlog only
-- ever takes away a role it has a row for here. seconds: the hours that earned it.
CREATE TABLE reward_grants (
    reward_id       INTEGER NOT NULL,
    discord_user_id INTEGER NOT NULL,
    guild_id        INTEGER NOT NULL,
    role_id         INTEGER NOT NULL,
    seconds         INTEGER NOT NULL,
    granted_at      TEXT NOT NULL,
    PRIMARY KEY (reward_id, discord_user_id)
) WITHOUT ROWID;
CREATE INDEX reward_grants_member ON reward_grants (guild_id, discord_user_id);

-- A member's summaries by member (a reward check reads one member's games).
CREATE INDEX member_playtime_member ON member_playtime (guild_id, discord_user_id);
