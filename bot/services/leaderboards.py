"""Playtime views for members: totals, leaderboards and daily hours (read-only queries).

A member's playtime comes from their linked accounts in the guild: Steam links read the global
Steam totals and the guild's BattleMetrics totals; Minecraft links read the guild's Minecraft
sessions. One game can have playtime from two sources (Steam counts everywhere, BattleMetrics
one community's servers), so a member's figure for a game is the larger source, never the sum,
which would count the same hours twice.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.clock import from_iso, to_iso
from bot.ingest.pipeline import GLOBAL_SCOPE

Period = Literal["today", "week", "month", "all"]
PERIODS: tuple[Period, ...] = ("today", "week", "month", "all")

# (link source, playtime source, scope): where a linked account's playtime lives
_SOURCES = (
    ("steam", "steam", "global"),
    ("steam", "battlemetrics", "guild"),
    ("minecraft", "minecraft", "guild"),
)


@dataclass(frozen=True)
class Total:
    game_id: str
    source: str
    seconds: int


def game_label(game_id: str, names: dict[str, str] | None = None) -> str:
    if names and game_id in names:
        return names[game_id]
    return "Minecraft" if game_id == "minecraft" else f"Steam app {game_id}"


def game_names(conn: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT game_id, name FROM games").fetchall()}


def remember_game_name(conn: sqlite3.Connection, game_id: str, name: str, now_text: str) -> None:
    conn.execute(
        "INSERT INTO games (game_id, name, updated_at) VALUES (?, ?, ?) ON CONFLICT (game_id) DO UPDATE"
        " SET name = excluded.name, updated_at = excluded.updated_at",
        (game_id, name[:200], now_text),
    )


def period_start(period: Period, now: datetime, tz: ZoneInfo) -> datetime | None:
    """Start of the period in the community's time zone (today, this week from Monday, this
    month); None for all time."""
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "today":
        return midnight
    if period == "week":
        return midnight - timedelta(days=midnight.weekday())
    if period == "month":
        return midnight.replace(day=1)
    return None


def _playtime_keys(
    conn: sqlite3.Connection, guild_id: int, user_id: int | None
) -> list[tuple[int, str, int, str]]:
    """(discord user, playtime source, scope, player id) for every source each of the guild's
    links (one member's, or all) has playtime under."""
    sql = "SELECT discord_user_id, source, external_id FROM account_links WHERE guild_id = ?"
    params: tuple[int, ...] = (guild_id,)
    if user_id is not None:
        sql += " AND discord_user_id = ?"
        params = (guild_id, user_id)
    return [
        (user, source, GLOBAL_SCOPE if scope == "global" else guild_id, external)
        for user, link_source, external in conn.execute(sql, params).fetchall()
        for wanted, source, scope in _SOURCES
        if wanted == link_source
    ]


def member_totals(
    conn: sqlite3.Connection, guild_id: int, user_id: int, game_id: str | None = None
) -> list[Total]:
    totals: list[Total] = []
    for _, source, scope_id, external in _playtime_keys(conn, guild_id, user_id):
        sql = (
            "SELECT game_id, seconds FROM playtime WHERE scope_guild_id = ? AND source = ?"
            " AND player_id = ? AND seconds IS NOT NULL"
        )
        params: list[object] = [scope_id, source, external]
        if game_id is not None:
            sql += " AND game_id = ?"
            params.append(game_id)
        totals.extend(Total(r[0], source, r[1]) for r in conn.execute(sql, params).fetchall())
    return sorted(totals, key=lambda t: (-t.seconds, t.game_id, t.source))


def guild_games(conn: sqlite3.Connection, guild_id: int) -> list[str]:
    """Games with playtime in this guild (its own sources, and Steam for its linked players)."""
    rows = conn.execute(
        "SELECT DISTINCT game_id FROM playtime WHERE scope_guild_id = ?"
        " UNION SELECT DISTINCT p.game_id FROM playtime p JOIN account_links l"
        " ON l.source = 'steam' AND l.external_id = p.player_id AND l.guild_id = ?"
        " WHERE p.scope_guild_id = 0 AND p.source = 'steam' AND p.seconds IS NOT NULL",
        (guild_id, guild_id),
    ).fetchall()
    return sorted(r[0] for r in rows)


def leaderboard(
    conn: sqlite3.Connection, guild_id: int, game_id: str, since: datetime | None
) -> list[tuple[int, int]]:
    """(discord user, seconds) best first: all-time totals, or hours played since ``since``."""
    per_member: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for user_id, source, scope_id, external in _playtime_keys(conn, guild_id, None):
        if since is None:
            row = conn.execute(
                "SELECT seconds FROM playtime WHERE scope_guild_id = ? AND source = ? AND player_id = ?"
                " AND game_id = ? AND seconds IS NOT NULL",
                (scope_id, source, external, game_id),
            ).fetchone()
            value = row[0] if row else 0
        else:
            row = conn.execute(
                "SELECT coalesce(sum(delta_seconds), 0) FROM playtime_samples WHERE scope_guild_id = ?"
                " AND source = ? AND player_id = ? AND game_id = ? AND at >= ?",
                (scope_id, source, external, game_id, to_iso(since)),
            ).fetchone()
            value = row[0]
        per_member[user_id][source] += value
    board = [
        (user, max(sources.values()))
        for user, sources in per_member.items()
        if max(sources.values()) > 0
    ]
    return sorted(board, key=lambda item: (-item[1], item[0]))


def daily_hours(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    since: datetime,
    until: datetime,
    tz: ZoneInfo,
    game_id: str | None = None,
) -> list[tuple[date, float]]:
    """Hours played per local day from ``since`` to ``until`` (every day present, zeros
    included); per day and game the larger source counts, as everywhere else."""
    per_day: dict[date, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for _, source, scope_id, external in _playtime_keys(conn, guild_id, user_id):
        sql = (
            "SELECT at, delta_seconds, game_id FROM playtime_samples WHERE scope_guild_id = ?"
            " AND source = ? AND player_id = ? AND at >= ? AND at < ?"
        )
        params: list[object] = [scope_id, source, external, to_iso(since), to_iso(until)]
        if game_id is not None:
            sql += " AND game_id = ?"
            params.append(game_id)
        for at, delta, game in conn.execute(sql, params).fetchall():
            per_day[from_iso(at).astimezone(tz).date()][(game, source)] += delta
    first, last = (
        since.astimezone(tz).date(),
        (until - timedelta(microseconds=1)).astimezone(tz).date(),
    )
    days = []
    day = first
    while day <= last:
        games: dict[str, int] = defaultdict(int)
        for (game, _source), seconds in per_day.get(day, {}).items():
            games[game] = max(games[game], seconds)
        days.append((day, sum(games.values()) / 3600))
        day += timedelta(days=1)
    return days
