"""Read-only playtime queries in SQLite: a member's totals, leaderboards, days for charts, and
the games a guild has playtime in.

A member's playtime comes from their linked accounts in the guild (PLAYTIME_OF_LINK): Steam
links read the global Steam totals and the guild's BattleMetrics totals; Minecraft links read
the guild's Minecraft sessions. One game can have playtime from two sources, so a member's
figure for a game is the larger source, never the sum, which would count the same hours twice;
a member's accounts of one source add up.

A leaderboard is one statement over maintained summaries: all time, member_playtime (per member
and source, kept by the playtime and link writers); a range of days (today, a rolling window, a
calendar week or month), the players' playtime_periods rows of the whole months and weeks in it
and their playtime_daily rows of the other days, joined to the guild's links. Only the asked
page comes back, with the number of ranked members.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import date

from bot.clock import from_iso
from bot.storage.engine import Database
from bot.storage.playtime import (
    LINK_COUNTS,
    PLAYER_DAYS,
    PLAYTIME_OF_LINK,
    PROVEN_SQL,
    PROVEN_STEAM,
    cover,
    local_day,
    periods_of,
)
from bot.storage.records import GLOBAL_SCOPE, BoardPage, DailyPlaytime, DayRange, RoleValues, Total


def _page_sql(board: str) -> str:
    """``board`` (user_id, seconds, away per member) ranked, one page of it: parameters offset
    and the limit three times. A page past the end is the last page."""
    return (
        f"WITH {board},"
        " page AS (SELECT count(*) AS members,"
        " max(0, min(?, (count(*) - 1) / ? * ?)) AS start FROM board)"
        " SELECT user_id, seconds, away, members, start FROM board, page"
        " ORDER BY seconds DESC, user_id LIMIT ? OFFSET (SELECT start FROM page)"
    )


#: LINK_COUNTS for one known guild, its require_verified flag given as a parameter (no
#: correlated subquery per row on the boards' hot path).
_COUNTS_IN_GUILD = f"(? = 0 OR l.source <> 'steam' OR l.verified_by IN {PROVEN_SQL})"


@functools.lru_cache(maxsize=32)
def _range_board(keys: int, runs: int) -> str:
    """Per source the game's summary rows that cover the days (``keys`` playtime_periods keys
    and ``runs`` runs of playtime_daily days, as ``cover`` splits them), summed per player,
    joined to the guild's links and summed per member and source; then the larger source per
    member. Parameters per source: scope, game, source and the keys; per run scope, game,
    source, first and last day; then guild and link source."""
    parts = []
    if keys:
        parts.append(
            "SELECT player_id, seconds, away_seconds FROM playtime_periods WHERE scope_guild_id = ?"
            f" AND game_id = ? AND source = ? AND period IN ({','.join('?' * keys)})"
        )
    parts += [
        "SELECT player_id, seconds, away_seconds FROM playtime_daily WHERE scope_guild_id = ?"
        " AND game_id = ? AND source = ? AND day >= ? AND day <= ?"
    ] * runs
    rows = " UNION ALL ".join(parts)
    per_source = " UNION ALL ".join(
        "SELECT l.discord_user_id AS user_id, sum(t.seconds) AS seconds, sum(t.away) AS away"
        " FROM (SELECT player_id, sum(seconds) AS seconds, sum(away_seconds) AS away"
        f" FROM ({rows}) GROUP BY player_id) t"
        " CROSS JOIN account_links l"  # the players first, each link looked up by its key
        " ON l.guild_id = ? AND l.source = ? AND l.external_id = t.player_id AND "
        + _COUNTS_IN_GUILD
        + " GROUP BY l.discord_user_id"
        for _ in PLAYTIME_OF_LINK
    )
    return _page_sql(
        f"per_source AS ({per_source}),"
        # the away time of the source that counts (SQLite: a bare column beside max() is
        # the max row's)
        " board AS MATERIALIZED (SELECT user_id, max(seconds) AS seconds, away FROM per_source"
        " GROUP BY user_id HAVING max(seconds) > 0)"
    )


# All time: the maintained per-member sums (about two rows per member of the game, in key
# order). Days: the game's whole months and weeks of them from playtime_periods and the rest
# from playtime_daily (a rolling year is about 12 months, 8 weeks and 20 days per player).
_BOARD_ALL = _page_sql(
    "board AS MATERIALIZED (SELECT discord_user_id AS user_id, max(seconds) AS seconds,"
    " away_seconds AS away FROM member_playtime WHERE guild_id = ? AND game_id = ?"
    " GROUP BY discord_user_id HAVING max(seconds) > 0)"
)


def _leaderboard(
    conn: sqlite3.Connection,
    guild_id: int,
    game_id: str,
    days: DayRange | None,
    offset: int,
    limit: int,
) -> BoardPage:
    params: list[object] = []
    if days is None:
        sql, params = _BOARD_ALL, [guild_id, game_id]
    else:
        keys, runs = cover(*days)
        if not keys and not runs:
            return BoardPage([], 0, 0)
        # Whether the guild requires proven Steam links, read once: a constant per row below.
        row = conn.execute("SELECT require_verified FROM guilds WHERE guild_id = ?", (guild_id,))
        strict = int(bool((row.fetchone() or (0,))[0]))
        sql = _range_board(len(keys), len(runs))
        for link_source, source, is_global in PLAYTIME_OF_LINK:
            scope = GLOBAL_SCOPE if is_global else guild_id
            if keys:
                params += [scope, game_id, source, *keys]
            for first, last in runs:
                params += [scope, game_id, source, first, last]
            params += [guild_id, link_source, strict]
    params += [offset, limit, limit, limit]
    rows = conn.execute(sql, params).fetchall()
    if not rows:
        return BoardPage([], 0, 0)
    away = {r[0]: r[2] for r in rows if r[2]}
    return BoardPage([(r[0], r[1]) for r in rows], rows[0][3], rows[0][4], away)


def linked_keys(
    conn: sqlite3.Connection, guild_id: int, user_id: int
) -> list[tuple[str, int, str]]:
    """(playtime source, scope, player id) of every account the member linked in the guild."""
    links = conn.execute(
        "SELECT source, external_id FROM account_links WHERE guild_id = ? AND discord_user_id = ?",
        (guild_id, user_id),
    ).fetchall()
    return [
        (source, GLOBAL_SCOPE if is_global else guild_id, external)
        for link_source, external in links
        for wanted, source, is_global in PLAYTIME_OF_LINK
        if wanted == link_source
    ]


def _member_totals(
    conn: sqlite3.Connection, guild_id: int, user_id: int, game_id: str | None
) -> list[Total]:
    totals: list[Total] = []
    for source, scope_id, external in linked_keys(conn, guild_id, user_id):
        sql = (
            "SELECT game_id, seconds, away_seconds FROM playtime WHERE scope_guild_id = ?"
            " AND source = ? AND player_id = ? AND seconds IS NOT NULL"
        )
        params: list[object] = [scope_id, source, external]
        if game_id is not None:
            sql += " AND game_id = ?"
            params.append(game_id)
        totals.extend(Total(r[0], source, r[1], r[2]) for r in conn.execute(sql, params).fetchall())
    return sorted(totals, key=lambda t: (-t.seconds, t.game_id, t.source))


def _daily(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    first: date,
    last: date,
    game_id: str | None,
) -> list[DailyPlaytime]:
    found: list[DailyPlaytime] = []
    for source, scope_id, external in linked_keys(conn, guild_id, user_id):
        sql = (
            "SELECT day, game_id, seconds FROM playtime_daily WHERE scope_guild_id = ?"
            " AND source = ? AND player_id = ? AND day >= ? AND day <= ?"
        )
        params: list[object] = [scope_id, source, external, first.isoformat(), last.isoformat()]
        if game_id is not None:
            sql += " AND game_id = ?"
            params.append(game_id)
        found.extend(
            DailyPlaytime(date.fromisoformat(day), source, game, seconds)
            for day, game, seconds in conn.execute(sql, params).fetchall()
        )
    return found


def _guild_daily(
    conn: sqlite3.Connection, guild_id: int, first: date, last: date
) -> list[tuple[date, str, int, str, int]]:
    """(day, game, member, source, seconds) of every linked account of the guild, per day."""
    found: list[tuple[date, str, int, str, int]] = []
    for link_source, source, is_global in PLAYTIME_OF_LINK:
        rows = conn.execute(
            "SELECT d.day, d.game_id, l.discord_user_id, d.seconds FROM account_links l"
            " JOIN playtime_daily d ON d.scope_guild_id = ? AND d.source = ?"
            " AND d.player_id = l.external_id AND d.day >= ? AND d.day <= ?"
            " WHERE l.guild_id = ? AND l.source = ? AND " + LINK_COUNTS,
            (0 if is_global else guild_id, source, first.isoformat(), last.isoformat(),
             guild_id, link_source),
        ).fetchall()  # fmt: skip
        found.extend((date.fromisoformat(d), g, u, source, sec) for d, g, u, sec in rows)
    return found


def _guild_games(conn: sqlite3.Connection, guild_id: int) -> list[tuple[str, str | None]]:
    rows = conn.execute(
        "SELECT gg.game_id, g.name FROM guild_games gg LEFT JOIN games g ON g.game_id = gg.game_id"
        " WHERE gg.guild_id = ? ORDER BY gg.game_id",
        (guild_id,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _game_names(conn: sqlite3.Connection, game_ids: list[str]) -> dict[str, str]:
    if not game_ids:
        return {}
    marks = ",".join("?" * len(game_ids))
    rows = conn.execute(
        f"SELECT game_id, name FROM games WHERE game_id IN ({marks})", game_ids
    ).fetchall()
    return {r[0]: r[1] for r in rows}


# As migration 0014 creates it (rebuilt with the days).
_DAILY_PLAYER_INDEX = (
    "CREATE INDEX playtime_daily_player ON playtime_daily (scope_guild_id, source, player_id, day)"
)


def use_timezone(conn: sqlite3.Connection, name: str) -> bool:
    """Make ``name`` the time zone of playtime_daily's days; when it was another one (or none:
    a database from before the summaries), rebuild the days from the samples, in one
    transaction. Returns whether it rebuilt."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'summary_timezone'").fetchone()
    if row is not None and row[0] == name:
        return False
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(name)
    conn.create_function("questlog_day", 1, lambda at: local_day(at, zone), deterministic=True)
    conn.create_function("questlog_week", 1, lambda day: periods_of(day)[0], deterministic=True)
    conn.create_function("questlog_month", 1, lambda day: periods_of(day)[1], deterministic=True)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Without its second index while it fills (in key order), and the index built after
        # in one sorted pass: filling both at once rewrites the index's pages many times.
        conn.execute("DROP INDEX IF EXISTS playtime_daily_player")
        conn.execute("DELETE FROM playtime_daily")
        conn.execute("DELETE FROM playtime_periods")
        conn.execute(
            "INSERT INTO playtime_daily (scope_guild_id, game_id, day, source, player_id, seconds,"
            " away_seconds) SELECT scope_guild_id, game_id, questlog_day(at) AS day, source,"
            " player_id, sum(delta_seconds), sum(away_seconds) FROM playtime_samples"
            " GROUP BY scope_guild_id, game_id, day, source, player_id"
            " ORDER BY scope_guild_id, game_id, day, source, player_id"
        )
        for period in ("questlog_week", "questlog_month"):
            conn.execute(
                "INSERT INTO playtime_periods (scope_guild_id, game_id, period, source,"
                f" player_id, seconds, away_seconds) SELECT scope_guild_id, game_id,"
                f" {period}(day) AS period, source, player_id, sum(seconds), sum(away_seconds)"
                " FROM playtime_daily"
                " GROUP BY scope_guild_id, game_id, period, source, player_id"
                " ORDER BY scope_guild_id, game_id, period, source, player_id"
            )
        conn.execute(_DAILY_PLAYER_INDEX)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('summary_timezone', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (name,),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        for function in ("questlog_day", "questlog_week", "questlog_month"):
            conn.create_function(function, 1, None)
    return True


def _best_per_game(seconds: dict[tuple[str, str], int]) -> int:
    best: dict[str, int] = {}
    for (game, _source), value in seconds.items():
        best[game] = max(best.get(game, 0), value)
    return sum(best.values())


def role_values(
    conn: sqlite3.Connection, guild_id: int, user_id: int, first: str, last: str
) -> RoleValues:
    """A member's Linked Roles values in the guild, from the links that count there: hours in
    all games (per game the best of sources, as leaderboards count), hours in the local days
    ``first``..``last``, the last time playtime grew, whether a Steam link is proven."""
    links = conn.execute(
        "SELECT l.source, l.external_id, l.verified_by, l.display_name FROM account_links l"
        " WHERE l.guild_id = ? AND l.discord_user_id = ? AND " + LINK_COUNTS,
        (guild_id, user_id),
    ).fetchall()
    # Per game and source the member's accounts add up; per game the best source counts
    # (as on the leaderboards: Steam and BattleMetrics report the same Squad hours).
    totals: dict[tuple[str, str], int] = {}
    recent: dict[tuple[str, str], int] = {}
    last_at: str | None = None
    for link_source, external, _, _ in links:
        for wanted, source, is_global in PLAYTIME_OF_LINK:
            if wanted != link_source:
                continue
            scope = GLOBAL_SCOPE if is_global else guild_id
            for game, seconds in conn.execute(
                "SELECT game_id, seconds FROM playtime WHERE scope_guild_id = ? AND source = ?"
                " AND player_id = ?",
                (scope, source, external),
            ):
                totals[game, source] = totals.get((game, source), 0) + (seconds or 0)
            for game, seconds in conn.execute(PLAYER_DAYS, (scope, source, external, first, last)):
                recent[game, source] = recent.get((game, source), 0) + (seconds or 0)
            row = conn.execute(
                "SELECT max(at) FROM playtime_samples WHERE scope_guild_id = ? AND player_id = ?"
                " AND source = ? AND delta_seconds > 0",
                (scope, external, source),
            ).fetchone()
            if row and row[0] and (last_at is None or row[0] > last_at):
                last_at = row[0]
    steam = [(v, name) for source, _, v, name in links if source == "steam"]
    proven = [name for v, name in steam if v in PROVEN_STEAM]
    names = [name for _, name in steam if name]
    return RoleValues(
        hours_total=_best_per_game(totals) // 3600,
        hours_30d=_best_per_game(recent) // 3600,
        last_played=from_iso(last_at) if last_at else None,
        steam_verified=bool(proven),
        steam_name=next((n for n in proven if n), names[0] if names else None),
    )


class SqliteStats:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def role_values(self, guild_id: int, user_id: int, first: str, last: str) -> RoleValues:
        return await self._db.read(lambda c: role_values(c, guild_id, user_id, first, last))

    async def use_timezone(self, name: str) -> bool:
        """Days are local days in ``name`` (an IANA zone); rebuilt when it changes (on the
        writer's thread, between batches: seconds on a large database, once)."""
        return await self._db.run(lambda c: use_timezone(c, name))

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
        """(game id, name if known) of the games with playtime in this guild (its own
        sources, and Steam for the accounts it links)."""
        return await self._db.read(lambda c: _guild_games(c, guild_id))

    async def games_version(self) -> int:
        """Changes whenever a guild's list of games or a game's name changes."""
        row = await self._db.fetchone("SELECT value FROM meta WHERE key = 'games_version'")
        return int(row[0]) if row else 0

    async def game_names(self, game_ids: list[str]) -> dict[str, str]:
        """The known names of these games."""
        return await self._db.read(lambda c: _game_names(c, game_ids))
