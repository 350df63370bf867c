"""Read-only playtime queries on PostgreSQL: a member's totals, leaderboards, days for charts,
and the games a guild has playtime in. Twins of bot/storage/stats.py (its docstring tells how
a member's playtime is counted): the same names and parameters, with an
``asyncpg.Connection`` and typed values (datetime moments, date days).

A leaderboard is one statement over the maintained summaries, as on SQLite; "the larger
source per member, with that source's away time" (SQLite's bare column beside ``max()``) is a
``DISTINCT ON`` here, the ties broken as SQLite's scan order breaks them."""

from __future__ import annotations

import functools
from datetime import date
from zoneinfo import ZoneInfo

import asyncpg

from bot.storage.playtime import cover
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_playtime import (
    LINK_COUNTS,
    PLAYER_DAYS,
    PLAYTIME_OF_LINK,
    PROVEN_SQL,
    PROVEN_STEAM,
)
from bot.storage.records import GLOBAL_SCOPE, BoardPage, DailyPlaytime, DayRange, RoleValues, Total
from bot.storage.stats import _best_per_game

__all__ = ["PgStats", "linked_keys", "role_values", "use_timezone"]


def _page_sql(board: str, first: int) -> str:
    """``board`` (user_id, seconds, away per member) ranked, one page of it: parameters
    ``$first`` the offset, then the limit twice (the second NULL for a negative limit: none,
    as on SQLite). A page past the end is the last page."""
    offset, size, limit = (f"${first + n}::bigint" for n in range(3))
    return (
        f"WITH {board},"
        " page AS (SELECT count(*) AS members,"
        f" GREATEST(0, LEAST({offset}, (count(*) - 1) / NULLIF({size}, 0) * {size})) AS start"
        " FROM board)"
        " SELECT user_id, seconds, away, members, start FROM board, page"
        f" ORDER BY seconds DESC, user_id LIMIT {limit} OFFSET (SELECT start FROM page)"
    )


#: The guild requires proven Steam links: an unproven Steam link does not count (LINK_COUNTS
#: for a known guild whose require_verified flag was read once: no subquery per row).
_PROVEN_ONLY = f" AND l.verified_by IN {PROVEN_SQL}"

#: The larger source per member (``rank``: PLAYTIME_OF_LINK's order breaks a tie); rows of
#: nothing left out (SQLite: ``HAVING max(seconds) > 0``, the same members).
_BEST = (
    " board AS MATERIALIZED (SELECT DISTINCT ON (user_id) user_id, seconds, away"
    " FROM per_source WHERE seconds > 0 ORDER BY user_id, seconds DESC, rank)"
)


@functools.lru_cache(maxsize=32)
def _range_board(runs: int, strict: bool) -> str:
    """Per source the game's summary rows that cover the days (playtime_periods keys and
    ``runs`` runs of playtime_daily days, as ``cover`` splits them), summed per
    player, joined to the guild's links and summed per member and source; then the larger
    source per member. Parameters: $1 guild, $2 game, $3 the keys (text[]), then the first
    and last day of each run, then the page's (see _page_sql)."""
    parts = [  # (no keys: an empty array, nothing read)
        "SELECT player_id, seconds, away_seconds FROM playtime_periods"
        " WHERE scope_guild_id = {scope} AND game_id = $2 AND source = '{source}'"
        " AND period = ANY($3::text[])"
    ]
    parts += [
        "SELECT player_id, seconds, away_seconds FROM playtime_daily"
        " WHERE scope_guild_id = {scope} AND game_id = $2 AND source = '{source}'"
        f" AND day >= ${4 + 2 * n}::date AND day <= ${5 + 2 * n}::date"
        for n in range(runs)
    ]
    rows = " UNION ALL ".join(parts)
    per_source = " UNION ALL ".join(
        f"SELECT l.discord_user_id AS user_id, {rank} AS rank, sum(t.seconds)::bigint AS seconds,"
        " sum(t.away)::bigint AS away"
        " FROM (SELECT player_id, sum(seconds) AS seconds, sum(away_seconds) AS away"
        f" FROM ({rows.format(scope=GLOBAL_SCOPE if is_global else '$1', source=source)}) r"
        " GROUP BY player_id) t"
        " JOIN account_links l ON l.guild_id = $1"
        f" AND l.source = '{link_source}' AND l.external_id = t.player_id"
        + (_PROVEN_ONLY if strict and link_source == "steam" else "")
        + " GROUP BY l.discord_user_id"
        for rank, (link_source, source, is_global) in enumerate(PLAYTIME_OF_LINK)
    )
    return _page_sql(f"per_source AS ({per_source}),{_BEST}", 4 + 2 * runs)


# All time: the maintained per-member sums (about two rows per member of the game, in key
# order; a tie between sources goes to the first in key order, as SQLite's scan gives it).
_BOARD_ALL = _page_sql(
    "per_source AS (SELECT discord_user_id AS user_id, seconds, away_seconds AS away,"
    ' source COLLATE "C" AS rank FROM member_playtime WHERE guild_id = $1 AND game_id = $2),'
    + _BEST,
    3,
)


async def _leaderboard(
    conn: asyncpg.Connection,
    guild_id: int,
    game_id: str,
    days: DayRange | None,
    offset: int,
    limit: int,
) -> BoardPage:
    page = [offset, limit, None if limit < 0 else limit]
    if days is None:
        sql, params = _BOARD_ALL, [guild_id, game_id, *page]
    else:
        keys, runs = cover(*days)
        if not keys and not runs:
            return BoardPage([], 0, 0)
        # Whether the guild requires proven Steam links, read once: a constant per row below.
        strict = bool(
            await conn.fetchval("SELECT require_verified FROM guilds WHERE guild_id = $1", guild_id)
        )
        sql = _range_board(len(runs), strict)
        spans = [date.fromisoformat(day) for run in runs for day in run]
        params = [guild_id, game_id, keys, *spans, *page]
    # Without parallel workers: a board is tens of milliseconds of work, which starting
    # workers made three times slower (bench scale, 2 cores).
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        rows = await conn.fetch(sql, *params)
    if not rows:
        return BoardPage([], 0, 0)
    away = {r[0]: r[2] for r in rows if r[2]}
    return BoardPage([(r[0], r[1]) for r in rows], rows[0][3], rows[0][4], away)


async def linked_keys(
    conn: asyncpg.Connection, guild_id: int, user_id: int
) -> list[tuple[str, int, str]]:
    """(playtime source, scope, player id) of every account the member linked in the guild."""
    links = await conn.fetch(
        "SELECT source, external_id FROM account_links WHERE guild_id = $1"
        " AND discord_user_id = $2 ORDER BY id",
        guild_id,
        user_id,
    )
    return [
        (source, GLOBAL_SCOPE if is_global else guild_id, external)
        for link_source, external in links
        for wanted, source, is_global in PLAYTIME_OF_LINK
        if wanted == link_source
    ]


async def _member_totals(
    conn: asyncpg.Connection, guild_id: int, user_id: int, game_id: str | None
) -> list[Total]:
    totals: list[Total] = []
    for source, scope_id, external in await linked_keys(conn, guild_id, user_id):
        sql = (
            "SELECT game_id, seconds, away_seconds FROM playtime WHERE scope_guild_id = $1"
            " AND source = $2 AND player_id = $3 AND seconds IS NOT NULL"
        )
        params: list[object] = [scope_id, source, external]
        if game_id is not None:
            sql += " AND game_id = $4"
            params.append(game_id)
        sql += ' ORDER BY game_id COLLATE "C"'
        totals.extend(Total(r[0], source, r[1], r[2]) for r in await conn.fetch(sql, *params))
    return sorted(totals, key=lambda t: (-t.seconds, t.game_id, t.source))


async def _daily(
    conn: asyncpg.Connection,
    guild_id: int,
    user_id: int,
    first: date,
    last: date,
    game_id: str | None,
) -> list[DailyPlaytime]:
    found: list[DailyPlaytime] = []
    for source, scope_id, external in await linked_keys(conn, guild_id, user_id):
        sql = (
            "SELECT day, game_id, seconds FROM playtime_daily WHERE scope_guild_id = $1"
            " AND source = $2 AND player_id = $3 AND day >= $4 AND day <= $5"
        )
        params: list[object] = [scope_id, source, external, first, last]
        if game_id is not None:
            sql += " AND game_id = $6"
            params.append(game_id)
        sql += ' ORDER BY day, game_id COLLATE "C"'  # the per-player index's order, as SQLite's
        found.extend(
            DailyPlaytime(day, source, game, seconds)
            for day, game, seconds in await conn.fetch(sql, *params)
        )
    return found


async def _guild_daily(
    conn: asyncpg.Connection, guild_id: int, first: date, last: date
) -> list[tuple[date, str, int, str, int]]:
    """(day, game, member, source, seconds) of every linked account of the guild, per day."""
    found: list[tuple[date, str, int, str, int]] = []
    for link_source, source, is_global in PLAYTIME_OF_LINK:
        rows = await conn.fetch(
            "SELECT d.day, d.game_id, l.discord_user_id, d.seconds FROM account_links l"
            " JOIN playtime_daily d ON d.scope_guild_id = $1 AND d.source = $2"
            " AND d.player_id = l.external_id AND d.day >= $3 AND d.day <= $4"
            " WHERE l.guild_id = $5 AND l.source = $6 AND " + LINK_COUNTS +
            # (in the summary's key order, as SQLite's plan reads it)
            ' ORDER BY d.game_id COLLATE "C", d.day, d.player_id COLLATE "C"',
            GLOBAL_SCOPE if is_global else guild_id, source, first, last, guild_id, link_source,
        )  # fmt: skip
        found.extend((d, g, u, source, sec) for d, g, u, sec in rows)
    return found


async def _guild_games(conn: asyncpg.Connection, guild_id: int) -> list[tuple[str, str | None]]:
    rows = await conn.fetch(
        "SELECT gg.game_id, g.name FROM guild_games gg LEFT JOIN games g ON g.game_id = gg.game_id"
        ' WHERE gg.guild_id = $1 ORDER BY gg.game_id COLLATE "C"',
        guild_id,
    )
    return [(r[0], r[1]) for r in rows]


async def _game_names(conn: asyncpg.Connection, game_ids: list[str]) -> dict[str, str]:
    if not game_ids:
        return {}
    rows = await conn.fetch(
        "SELECT game_id, name FROM games WHERE game_id = ANY($1::text[])", list(game_ids)
    )
    return {r[0]: r[1] for r in rows}


# As migrations_pg/0033_schema.sql creates it (rebuilt with the days).
_DAILY_PLAYER_INDEX = (
    "CREATE INDEX playtime_daily_player ON playtime_daily (scope_guild_id, source, player_id, day)"
)
#: playtime_periods' keys of a local day ``d``, as bot/storage/playtime.py's periods_of makes
#: them: the week from its Monday ("week:2026-11-23") and the month ("month:2026-11").
_WEEK_OF = "'week:' || to_char(d.day - (extract(isodow FROM d.day)::int - 1), 'YYYY-MM-DD')"
_MONTH_OF = "'month:' || to_char(d.day, 'YYYY-MM')"


async def use_timezone(conn: asyncpg.Connection, name: str) -> bool:
    """Make ``name`` the time zone of playtime_daily's days; when it was another one (or none:
    a database from before the summaries), rebuild the days, weeks and months from the
    samples, inside the caller's transaction. Returns whether it rebuilt."""
    current = await conn.fetchval("SELECT value FROM meta WHERE key = 'summary_timezone'")
    if current == name:
        return False
    ZoneInfo(name)  # an unknown zone fails as on SQLite, before anything changes
    # Emptied whole, without the second index while they fill (in key order); the index
    # built after in one sorted pass.
    await conn.execute("DROP INDEX IF EXISTS playtime_daily_player")
    await conn.execute("TRUNCATE playtime_daily, playtime_periods")
    await conn.execute(
        "INSERT INTO playtime_daily (scope_guild_id, game_id, day, source, player_id, seconds,"
        " away_seconds) SELECT scope_guild_id, game_id, (at AT TIME ZONE $1)::date AS day,"
        " source, player_id, sum(delta_seconds), sum(away_seconds) FROM playtime_samples"
        " GROUP BY scope_guild_id, game_id, day, source, player_id"
        " ORDER BY scope_guild_id, game_id, day, source, player_id",
        name,
    )
    await conn.execute(
        "INSERT INTO playtime_periods (scope_guild_id, game_id, period, source, player_id,"
        " seconds, away_seconds) SELECT d.scope_guild_id, d.game_id, p.period, d.source,"
        " d.player_id, sum(d.seconds), sum(d.away_seconds) FROM playtime_daily d"
        f" CROSS JOIN LATERAL (VALUES ({_WEEK_OF}), ({_MONTH_OF})) AS p (period)"
        " GROUP BY d.scope_guild_id, d.game_id, p.period, d.source, d.player_id"
        " ORDER BY d.scope_guild_id, d.game_id, p.period, d.source, d.player_id"
    )
    await conn.execute(_DAILY_PLAYER_INDEX)
    await conn.execute(
        "INSERT INTO meta (key, value) VALUES ('summary_timezone', $1)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        name,
    )
    return True


async def role_values(
    conn: asyncpg.Connection, guild_id: int, user_id: int, first: date, last: date
) -> RoleValues:
    """A member's Linked Roles values in the guild, from the links that count there: hours in
    all games (per game the best of sources, as leaderboards count), hours in the local days
    ``first``..``last``, the last time playtime grew, whether a Steam link is proven."""
    links = await conn.fetch(
        "SELECT l.source, l.external_id, l.verified_by, l.display_name FROM account_links l"
        " WHERE l.guild_id = $1 AND l.discord_user_id = $2 AND " + LINK_COUNTS + " ORDER BY l.id",
        guild_id,
        user_id,
    )
    # Per game and source the member's accounts add up; per game the best source counts.
    totals: dict[tuple[str, str], int] = {}
    recent: dict[tuple[str, str], int] = {}
    last_at = None
    for link_source, external, _, _ in links:
        for wanted, source, is_global in PLAYTIME_OF_LINK:
            if wanted != link_source:
                continue
            scope = GLOBAL_SCOPE if is_global else guild_id
            for game, seconds in await conn.fetch(
                "SELECT game_id, seconds FROM playtime WHERE scope_guild_id = $1 AND source = $2"
                " AND player_id = $3",
                scope, source, external,
            ):  # fmt: skip
                totals[game, source] = totals.get((game, source), 0) + (seconds or 0)
            for game, seconds in await conn.fetch(
                PLAYER_DAYS, scope, source, external, first, last
            ):
                recent[game, source] = recent.get((game, source), 0) + int(seconds or 0)
            at = await conn.fetchval(
                "SELECT max(at) FROM playtime_samples WHERE scope_guild_id = $1 AND player_id = $2"
                " AND source = $3 AND delta_seconds > 0",
                scope, external, source,
            )  # fmt: skip
            if at is not None and (last_at is None or at > last_at):
                last_at = at
    steam = [(v, name) for source, _, v, name in links if source == "steam"]
    proven = [name for v, name in steam if v in PROVEN_STEAM]
    names = [name for _, name in steam if name]
    return RoleValues(
        hours_total=_best_per_game(totals) // 3600,
        hours_30d=_best_per_game(recent) // 3600,
        last_played=last_at,
        steam_verified=bool(proven),
        steam_name=next((n for n in proven if n), names[0] if names else None),
    )


class PgStats:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def role_values(self, guild_id: int, user_id: int, first: str, last: str) -> RoleValues:
        days = date.fromisoformat(first), date.fromisoformat(last)
        return await self._db.read(lambda c: role_values(c, guild_id, user_id, *days))

    async def use_timezone(self, name: str) -> bool:
        """Days are local days in ``name`` (an IANA zone); rebuilt when it changes (in one
        transaction: seconds on a large database, once)."""
        return await self._db.write(lambda c: use_timezone(c, name))

    async def member_totals(
        self, guild_id: int, user_id: int, game_id: str | None = None
    ) -> list[Total]:
        """Every stored total of the member's linked accounts, largest first."""
        return await self._db.read(lambda c: _member_totals(c, guild_id, user_id, game_id))

    async def leaderboard(
        self,
        guild_id: int,
        game_id: str,
        days: DayRange | None,
        offset: int = 0,
        limit: int = 10,
    ) -> BoardPage:
        """One page of (discord user, seconds), best first: all-time totals, or played on the
        local days ``days`` (first and last included); per member the larger source counts. An
        offset past the end gives the last page (``BoardPage.offset`` says where it starts)."""
        return await self._db.read(
            lambda c: _leaderboard(c, guild_id, game_id, days, offset, limit)
        )

    async def daily(
        self,
        guild_id: int,
        user_id: int,
        first: date,
        last: date,
        game_id: str | None = None,
    ) -> list[DailyPlaytime]:
        """What the member's linked accounts played per local day, ``first`` to ``last``."""
        return await self._db.read(lambda c: _daily(c, guild_id, user_id, first, last, game_id))

    async def guild_daily(
        self, guild_id: int, first: date, last: date
    ) -> list[tuple[date, str, int, str, int]]:
        """(day, game, member, source, seconds) for every member's linked accounts, per local
        day from ``first`` to ``last`` (for the server chart)."""
        return await self._db.read(lambda c: _guild_daily(c, guild_id, first, last))

    async def guild_games(self, guild_id: int) -> list[tuple[str, str | None]]:
        """(game id, name if known) of the games with playtime in this guild."""
        return await self._db.read(lambda c: _guild_games(c, guild_id))

    async def games_version(self) -> int:
        """Changes whenever a guild's list of games or a game's name changes (the triggers of
        guild_games and games count it)."""
        value = await self._db.read(
            lambda c: c.fetchval("SELECT value FROM meta WHERE key = 'games_version'")
        )
        return int(value) if value is not None else 0

    async def game_names(self, game_ids: list[str]) -> dict[str, str]:
        """The known names of these games."""
        return await self._db.read(lambda c: _game_names(c, game_ids))
