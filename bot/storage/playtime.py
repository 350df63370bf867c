"""Playtime in SQLite: current totals per player and game, samples for charts and period
leaderboards, milestones, and the names of games. The functions run inside the caller's
transaction."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import from_iso, to_iso
from bot.storage.engine import Database
from bot.storage.records import GLOBAL_SCOPE, PlaytimeChange, StoredPlaytime

# Where a player's playtime for a game may be known, besides the source reporting now: the
# guild's own webhook sources and Steam's public value. A Steam ID is the same player in
# BattleMetrics and Steam; a Minecraft UUID appears in one source only.
_MILESTONE_SOURCES = (("guild", "battlemetrics"), ("guild", "minecraft"), ("global", "steam"))


# (link source, playtime source, global scope?): where a linked account's playtime lives. A
# Steam link reads the global Steam totals and its guild's BattleMetrics totals; a Minecraft
# link its guild's Minecraft sessions; the presence link (the member's Discord id, made when
# presence first counts for them) its guild's presence sessions. (Migration 0015 spells the same mapping in SQL.)
PLAYTIME_OF_LINK = (
    ("steam", "steam", True),
    ("steam", "battlemetrics", False),
    ("minecraft", "minecraft", False),
    ("discord", "discord", False),  # presence: the member's own Discord account (issue 16)
)
_LINK_OF = {source: (link, is_global) for link, source, is_global in PLAYTIME_OF_LINK}
#: How a Steam link is proven well enough for a guild that requires verification
#: (/admin settings require_verified): by the member's own sign-in, or by an admin.
PROVEN_STEAM = ("discord", "openid", "admin")
PROVEN_SQL = "(" + ", ".join(f"'{how}'" for how in PROVEN_STEAM) + ")"
#: A link of alias ``l`` counts (leaderboards, member summaries, milestones): anything but an
#: unproven Steam link in a guild that requires verified links.
LINK_COUNTS = (
    f"(l.source <> 'steam' OR l.verified_by IN {PROVEN_SQL}"
    " OR NOT EXISTS (SELECT 1 FROM guilds g WHERE g.guild_id = l.guild_id"
    " AND g.require_verified = 1))"
)
#: The member of link ``l`` lets Questlog collect (no /privacy off in its guild): new data is
#: credited to them, their Steam accounts are synced and their accounts' events are kept.
LINK_COLLECTS = (
    "NOT EXISTS (SELECT 1 FROM member_privacy p WHERE p.guild_id = l.guild_id"
    " AND p.discord_user_id = l.discord_user_id AND p.collecting = 0)"
)
#: One account's seconds per game over a range of local days, by the per-player index (left to
#: itself the planner reads every row of the scope by the primary key: all of a guild's days).
PLAYER_DAYS = (
    "SELECT game_id, sum(seconds) FROM playtime_daily INDEXED BY playtime_daily_player"
    " WHERE scope_guild_id = ? AND source = ? AND player_id = ? AND day >= ? AND day <= ?"
    " GROUP BY game_id"
)
_CREDIT = (
    "INSERT INTO member_playtime (guild_id, game_id, discord_user_id, source, seconds,"
    " away_seconds) SELECT l.guild_id, ?, l.discord_user_id, ?, ?, ? FROM account_links l"
    " WHERE l.source = ? AND l.external_id = ?{guild} AND " + LINK_COUNTS +
    " AND " + LINK_COLLECTS +
    " ON CONFLICT (guild_id, game_id, discord_user_id, source)"
    " DO UPDATE SET seconds = member_playtime.seconds + excluded.seconds,"
    " away_seconds = member_playtime.away_seconds + excluded.away_seconds"
)  # fmt: skip
_CREDIT_ANY_GUILD = _CREDIT.format(guild="")
_CREDIT_ONE_GUILD = _CREDIT.format(guild=" AND l.guild_id = ?")
_ADD_TO_MEMBER = (
    "INSERT INTO member_playtime (guild_id, game_id, discord_user_id, source, seconds,"
    " away_seconds) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (guild_id, game_id, discord_user_id, source)"
    " DO UPDATE SET seconds = member_playtime.seconds + excluded.seconds,"
    " away_seconds = member_playtime.away_seconds + excluded.away_seconds"
)


def remember_game_name(conn: sqlite3.Connection, game_id: str, name: str, now_text: str) -> None:
    conn.execute(
        "INSERT INTO games (game_id, name, updated_at) VALUES (?, ?, ?) ON CONFLICT (game_id) DO UPDATE"
        " SET name = excluded.name, updated_at = excluded.updated_at"
        " WHERE games.name IS NOT excluded.name",  # only a new name changes the row
        (game_id, name[:200], now_text),
    )


def game_name(conn: sqlite3.Connection, game_id: str) -> str | None:
    row = conn.execute("SELECT name FROM games WHERE game_id = ?", (game_id,)).fetchone()
    return row[0] if row else None


def record_playtime(
    conn: sqlite3.Connection,
    *,
    scope: int,
    source: str,
    player_id: str,
    game_id: str,
    seconds: int | None,
    source_time: datetime,
    now_text: str,
    status: str = "ok",
    sample: bool = True,
) -> PlaytimeChange:
    """Store a measured *total*. An older measurement never overwrites a newer one; an increase
    over a known value is sampled for charts and period leaderboards, unless ``sample`` is
    false (a baseline read: what grew while Questlog was not looking is no one period's)."""
    key = (scope, source, player_id, game_id)
    row = conn.execute(
        "SELECT seconds, source_time FROM playtime"
        " WHERE scope_guild_id = ? AND source = ? AND player_id = ? AND game_id = ?",
        key,
    ).fetchone()
    when = to_iso(source_time)
    old = row[0] if row else None
    if row is not None and row[1] is not None and row[1] > when:
        return PlaytimeChange(old, old, applied=False)
    conn.execute(
        "INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds, status,"
        " source_time, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (scope_guild_id, source, player_id, game_id) DO UPDATE SET"
        " seconds = excluded.seconds, status = excluded.status,"
        " source_time = excluded.source_time, updated_at = excluded.updated_at",
        (*key, seconds, status, when, now_text, now_text),
    )
    if sample and old is not None and seconds is not None and seconds > old:
        _sample(conn, key, when, seconds - old, 0, seconds)
    if seconds is not None and old is None:  # the player has a value for this game from now on
        _list_game(conn, scope, source, player_id, game_id)
    _credit_members(conn, key, (seconds or 0) - (old or 0), 0)
    return PlaytimeChange(old, seconds, applied=True)


def add_playtime(
    conn: sqlite3.Connection,
    *,
    scope: int,
    source: str,
    player_id: str,
    game_id: str,
    delta: int,
    at: datetime,
    now_text: str,
    away: int = 0,
) -> PlaytimeChange:
    """Add a session's active seconds (``delta``) and its away seconds (``away``: AFK and
    idle time, which only the total counts)."""
    key = (scope, source, player_id, game_id)
    row = conn.execute(
        "INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds, status,"
        " source_time, created_at, updated_at, away_seconds)"
        " VALUES (?, ?, ?, ?, ?, 'ok', ?, ?, ?, ?)"
        " ON CONFLICT (scope_guild_id, source, player_id, game_id) DO UPDATE SET"
        " seconds = coalesce(playtime.seconds, 0) + excluded.seconds,"
        " away_seconds = playtime.away_seconds + excluded.away_seconds,"
        " source_time = max(coalesce(playtime.source_time, ''), excluded.source_time),"
        " updated_at = excluded.updated_at"
        " RETURNING seconds, away_seconds",
        (*key, delta, to_iso(at), now_text, now_text, away),
    ).fetchone()
    total = int(row[0])
    if delta > 0 or away > 0:
        _sample(conn, key, to_iso(at), delta, away, total)
    if total == delta and row[1] == away:  # the row is new (or had no value)
        _list_game(conn, scope, source, player_id, game_id)
    _credit_members(conn, key, delta, away)
    return PlaytimeChange(total - delta, total, applied=True)


def _credit_members(
    conn: sqlite3.Connection, key: tuple[int, str, str, str], delta: int, away: int
) -> None:
    """Keep member_playtime (all-time leaderboards): the change goes to every member who links
    the account, in the guild of the row's scope (a global Steam row: in every guild)."""
    scope, source, player_id, game_id = key
    found = _LINK_OF.get(source)
    if not (delta or away) or found is None:
        return
    link_source, is_global = found
    if is_global:
        conn.execute(_CREDIT_ANY_GUILD, (game_id, source, delta, away, link_source, player_id))
    else:
        conn.execute(
            _CREDIT_ONE_GUILD, (game_id, source, delta, away, link_source, player_id, scope)
        )


def link_counts(conn: sqlite3.Connection, guild_id: int, source: str, verified_by: str) -> bool:
    """Whether a link of this kind counts in the guild (see LINK_COUNTS)."""
    if source != "steam" or verified_by in PROVEN_STEAM:
        return True
    row = conn.execute("SELECT require_verified FROM guilds WHERE guild_id = ?", (guild_id,))
    found = row.fetchone()
    return not (found and found[0])


def move_account_playtime(
    conn: sqlite3.Connection,
    guild_id: int,
    link_source: str,
    external_id: str,
    *,
    from_user: int | None,
    to_user: int | None,
) -> None:
    """An account's playtime leaves one member's summaries and joins another's (link: from
    nobody, unlink: to nobody, reassignment: both)."""
    if from_user == to_user:
        return
    for wanted, source, is_global in PLAYTIME_OF_LINK:
        if wanted != link_source:
            continue
        rows = conn.execute(
            "SELECT game_id, coalesce(seconds, 0), away_seconds FROM playtime"
            " WHERE scope_guild_id = ? AND source = ? AND player_id = ?"
            " AND (seconds > 0 OR away_seconds > 0)",
            (GLOBAL_SCOPE if is_global else guild_id, source, external_id),
        ).fetchall()
        for user, sign in ((from_user, -1), (to_user, 1)):
            if user is not None and rows:
                conn.executemany(
                    _ADD_TO_MEMBER,
                    [
                        (guild_id, game, user, source, sign * seconds, sign * away)
                        for game, seconds, away in rows
                    ],
                )


def _sample(
    conn: sqlite3.Connection,
    key: tuple[int, str, str, str],
    at: str,
    delta: int,
    away: int,
    total: int,
) -> None:
    """One increase (active ``delta``, ``away`` beside it): a sample (the history), its local
    day (playtime_daily: today's boards, charts) and its week and month (playtime_periods:
    those boards)."""
    conn.execute(
        "INSERT INTO playtime_samples (scope_guild_id, source, player_id, game_id, at,"
        " delta_seconds, total_seconds, away_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*key, at, delta, total, away),
    )
    scope, source, player_id, game_id = key
    day = local_day(at, summary_zone(conn))
    conn.execute(
        "INSERT INTO playtime_daily (scope_guild_id, game_id, day, source, player_id, seconds,"
        " away_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (scope_guild_id, game_id, day, source, player_id)"
        " DO UPDATE SET seconds = playtime_daily.seconds + excluded.seconds,"
        " away_seconds = playtime_daily.away_seconds + excluded.away_seconds",
        (scope, game_id, day, source, player_id, delta, away),
    )
    conn.executemany(
        "INSERT INTO playtime_periods (scope_guild_id, game_id, period, source, player_id,"
        " seconds, away_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (scope_guild_id, game_id, period, source, player_id)"
        " DO UPDATE SET seconds = playtime_periods.seconds + excluded.seconds,"
        " away_seconds = playtime_periods.away_seconds + excluded.away_seconds",
        [(scope, game_id, period, source, player_id, delta, away) for period in periods_of(day)],
    )


def periods_of(day: str) -> tuple[str, str]:
    """The week (from Monday) and the month a local day belongs to, as playtime_periods keys:
    ("week:2026-11-23", "month:2026-11")."""
    week = _monday(day)
    return f"week:{week}", f"month:{day[:7]}"


def cover(first: date, last: date) -> tuple[list[str], list[tuple[str, str]]]:
    """The fewest summary rows that add up to the local days ``first`` to ``last`` (both
    included): the whole months inside as playtime_periods keys, then the whole weeks
    (Monday to Sunday) inside what is left, and the remaining days as runs of playtime_daily
    days, (first, last) in ISO form. Every day is counted once: a week is taken only where no
    month is."""
    keys: list[str] = []
    runs: list[tuple[str, str]] = []
    if first > last:
        return keys, runs
    start = first if first.day == 1 else _next_month(first)
    month = start
    while _next_month(month) - _DAY <= last:
        keys.append(f"month:{month.isoformat()[:7]}")
        month = _next_month(month)
    parts = [(first, start - _DAY), (month, last)] if keys else [(first, last)]
    for a, b in parts:
        if a > b:
            continue
        monday = a + timedelta(days=-a.weekday() % 7)  # the first Monday on or after a
        week = monday
        while week + 6 * _DAY <= b:
            keys.append(f"week:{week.isoformat()}")
            week += 7 * _DAY
        if week == monday:  # no whole week: every day of the part
            runs.append((a.isoformat(), b.isoformat()))
            continue
        if a < monday:
            runs.append((a.isoformat(), (monday - _DAY).isoformat()))
        if week <= b:
            runs.append((week.isoformat(), b.isoformat()))
    return keys, runs


_DAY = timedelta(days=1)


def _next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@functools.lru_cache(maxsize=64)
def _monday(day: str) -> str:
    moment = date.fromisoformat(day)
    return (moment - timedelta(days=moment.weekday())).isoformat()


def summary_zone(conn: sqlite3.Connection) -> ZoneInfo:
    """The time zone of playtime_daily's days (UTC until a time zone is set)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'summary_timezone'").fetchone()
    return _zone(row[0] if row else "UTC")


@functools.lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day(at: str, zone: ZoneInfo) -> str:
    """The day (YYYY-MM-DD) in ``zone`` of a stored UTC timestamp."""
    if zone.key == "UTC":
        return at[:10]  # stored times are UTC text, date first (bot/clock.py)
    return from_iso(at).astimezone(zone).date().isoformat()


def _list_game(
    conn: sqlite3.Connection, scope: int, source: str, player_id: str, game_id: str
) -> None:
    """List the game for the guilds it now has playtime in: the scope's guild, or for a global
    Steam value every guild that links the account."""
    if scope != GLOBAL_SCOPE:
        conn.execute(
            "INSERT OR IGNORE INTO guild_games (guild_id, game_id) VALUES (?, ?)", (scope, game_id)
        )
    elif source == "steam":
        conn.execute(
            "INSERT OR IGNORE INTO guild_games (guild_id, game_id) SELECT guild_id, ?"
            " FROM account_links WHERE source = 'steam' AND external_id = ?",
            (game_id, player_id),
        )


def list_linked_games(
    conn: sqlite3.Connection, guild_id: int, source: str, external_id: str
) -> None:
    """A newly linked Steam account brings its games to the guild's list."""
    if source == "steam":
        conn.execute(
            "INSERT OR IGNORE INTO guild_games (guild_id, game_id) SELECT ?, game_id FROM playtime"
            " WHERE scope_guild_id = 0 AND source = 'steam' AND player_id = ?"
            " AND seconds IS NOT NULL",
            (guild_id, external_id),
        )


def reached_milestones(
    conn: sqlite3.Connection,
    hours: tuple[int, ...],
    *,
    guild_id: int,
    source: str,
    player_id: str,
    game_id: str,
    old: int | None,
    new: int | None,
    at: datetime,
) -> list[int]:
    """Milestones (hours) the player's best-known total for the game just reached in the guild,
    each at most once per guild whatever source reports it.

    Only a change that crosses a threshold by itself can raise the best total past it, so the
    other sources are read only then (rarely). A source's first report of a player (old
    unknown) is a silent baseline: a veteran's first report must not flood the feed."""
    if old is None or new is None or new <= old:
        return []
    crossed = [h for h in hours if old < h * 3600 <= new]
    if not crossed:
        return []
    others = 0
    for scope, other in _MILESTONE_SOURCES:
        if other == source:
            continue
        row = conn.execute(
            "SELECT seconds FROM playtime WHERE scope_guild_id = ? AND source = ?"
            " AND player_id = ? AND game_id = ?",
            (guild_id if scope == "guild" else GLOBAL_SCOPE, other, player_id, game_id),
        ).fetchone()
        if row is not None and row[0] is not None:
            others = max(others, int(row[0]))
    return [
        h
        for h in crossed
        if others < h * 3600  # another source had passed it already
        and conn.execute(
            "INSERT OR IGNORE INTO milestones (scope_guild_id, source, player_id, game_id, threshold,"
            " reached_at) VALUES (?, 'best', ?, ?, ?, ?)",
            (guild_id, player_id, game_id, h, to_iso(at)),
        ).rowcount
    ]


class SqlitePlaytime:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def for_players(
        self, scope: int, source: str, game_id: str, player_ids: Sequence[str]
    ) -> dict[str, StoredPlaytime]:
        """The stored totals of these players for one game (scope: a guild, or GLOBAL_SCOPE)."""
        if not player_ids:
            return {}
        marks = ",".join("?" * len(player_ids))
        rows = await self._db.fetchall(
            "SELECT player_id, seconds, status, created_at, updated_at FROM playtime"
            f" WHERE scope_guild_id = ? AND source = ? AND game_id = ? AND player_id IN ({marks})",
            (scope, source, game_id, *player_ids),
        )
        return {r[0]: StoredPlaytime(r[1], r[2], r[3], r[4]) for r in rows}
