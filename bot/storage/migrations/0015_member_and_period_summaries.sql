-- Summaries for the leaderboards that 0014's per-day rows left slow on a large community
-- (bench/scale.py, README "Performance"): an all-time board read every owner's row of a
-- popular game and joined each to the links (45 ms for 8,500 members); a month board read
-- every player-day of the month (27,000 rows, 30 ms).

-- All-time playtime per member, game and source: the member's linked accounts of that source,
-- summed. The playtime writers add each change to the members who link the account, and the
-- link writers move an account's playtime between members (bot/storage/playtime.py). An
-- all-time board reads one guild's game in key order: about two rows per member.
CREATE TABLE member_playtime (
    guild_id        INTEGER NOT NULL,
    game_id         TEXT NOT NULL,
    discord_user_id INTEGER NOT NULL,
    source          TEXT NOT NULL,
    seconds         INTEGER NOT NULL,
    PRIMARY KEY (guild_id, game_id, discord_user_id, source)
) WITHOUT ROWID;
-- Where a link's playtime lives (PLAYTIME_OF_LINK in bot/storage/playtime.py): a Steam link
-- reads the global Steam totals and its guild's BattleMetrics totals, a Minecraft link its
-- guild's Minecraft totals.
INSERT INTO member_playtime (guild_id, game_id, discord_user_id, source, seconds)
    SELECT l.guild_id, p.game_id, l.discord_user_id, p.source, sum(p.seconds)
    FROM account_links l JOIN playtime p ON p.player_id = l.external_id AND (
        (l.source = 'steam' AND p.source = 'steam' AND p.scope_guild_id = 0)
        OR (l.source = 'steam' AND p.source = 'battlemetrics' AND p.scope_guild_id = l.guild_id)
        OR (l.source = 'minecraft' AND p.source = 'minecraft' AND p.scope_guild_id = l.guild_id))
    WHERE p.seconds > 0
    GROUP BY l.guild_id, p.game_id, l.discord_user_id, p.source;

-- Seconds played per local week (from Monday: 'week:2026-11-23') and month ('month:2026-11'),
-- per scope, game, source and player, beside playtime_daily and derived from the samples the
-- same way: the next start rebuilds days, weeks and months (the zone is forgotten here).
CREATE TABLE playtime_periods (
    scope_guild_id INTEGER NOT NULL,
    game_id        TEXT NOT NULL,
    period         TEXT NOT NULL,
    source         TEXT NOT NULL,
    player_id      TEXT NOT NULL,
    seconds        INTEGER NOT NULL,
    PRIMARY KEY (scope_guild_id, game_id, period, source, player_id)
) WITHOUT ROWID;
DELETE FROM meta WHERE key = 'summary_timezone';

-- Samples are history now (the summaries are rebuilt from them); no reader asks them per player.
DROP INDEX playtime_samples_player;
