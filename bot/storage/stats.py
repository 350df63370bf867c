"""Read-only playtime queries in SQLite: a member's totals, leaderboards, samples for charts,
and the games a guild has playtime in.

A member's playtime comes from their linked accounts in the guild: Steam links read the global
Steam totals and the guild's BattleMetrics totals; Minecraft links read the guild's Minecraft
sessions. One game can have playtime from two sources, so a member's figure for a game is the
larger source, never the sum, which would count the same hours twice.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime

from bot.clock import from_iso, to_iso
from bot.storage.engine import Database
from bot.storage.records import GLOBAL_SCOPE, Sample, Total

# (link source, playtime source, scope): where a linked account's playtime lives
_SOURCES = (
    ("steam", "steam", "global"),
    ("steam", "battlemetrics", "guild"),
    ("minecraft", "minecraft", "guild"),
)


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


def _member_totals(
    conn: sqlite3.Connection, guild_id: int, user_id: int, game_id: str | None
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


def _leaderboard(
    conn: sqlite3.Connection, guild_id: int, game_id: str, since: datetime | None
) -> list[tuple[int, int]]:
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


def _samples(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    since: datetime,
    until: datetime,
    game_id: str | None,
) -> list[Sample]:
    found: list[Sample] = []
    for _, source, scope_id, external in _playtime_keys(conn, guild_id, user_id):
        sql = (
            "SELECT at, delta_seconds, game_id FROM playtime_samples WHERE scope_guild_id = ?"
            " AND source = ? AND player_id = ? AND at >= ? AND at < ?"
        )
        params: list[object] = [scope_id, source, external, to_iso(since), to_iso(until)]
        if game_id is not None:
            sql += " AND game_id = ?"
            params.append(game_id)
        found.extend(
            Sample(from_iso(at), source, game, delta)
            for at, delta, game in conn.execute(sql, params).fetchall()
        )
    return found


def _guild_games(conn: sqlite3.Connection, guild_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT game_id FROM playtime WHERE scope_guild_id = ?"
        " UNION SELECT DISTINCT p.game_id FROM playtime p JOIN account_links l"
        " ON l.source = 'steam' AND l.external_id = p.player_id AND l.guild_id = ?"
        " WHERE p.scope_guild_id = 0 AND p.source = 'steam' AND p.seconds IS NOT NULL",
        (guild_id, guild_id),
    ).fetchall()
    return sorted(r[0] for r in rows)


class SqliteStats:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def member_totals(
        self, guild_id: int, user_id: int, game_id: str | None = None
    ) -> list[Total]:
        """Every stored total of the member's linked accounts, largest first."""
        return await self._db.read(lambda c: _member_totals(c, guild_id, user_id, game_id))

    async def leaderboard(
        self, guild_id: int, game_id: str, since: datetime | None
    ) -> list[tuple[int, int]]:
        """(discord user, seconds) best first: all-time totals, or played since ``since``;
        per member the larger source counts."""
        return await self._db.read(lambda c: _leaderboard(c, guild_id, game_id, since))

    async def samples(
        self,
        guild_id: int,
        user_id: int,
        since: datetime,
        until: datetime,
        game_id: str | None = None,
    ) -> list[Sample]:
        """What the member's linked accounts played from ``since`` to ``until``."""
        return await self._db.read(lambda c: _samples(c, guild_id, user_id, since, until, game_id))

    async def guild_games(self, guild_id: int) -> list[str]:
        """Games with playtime in this guild (its own sources, and Steam for its players)."""
        return await self._db.read(lambda c: _guild_games(c, guild_id))

    async def game_names(self) -> dict[str, str]:
        rows = await self._db.fetchall("SELECT game_id, name FROM games")
        return {r[0]: r[1] for r in rows}
