"""Squad admin lists in SQLite: who holds a reward with a Squad group, by the Steam ids that
count in the guild (only proven ones when it requires verification), and what each list served
last looked like (``squad_lists``), for Last-Modified."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from bot.clock import from_iso, to_iso
from bot.storage.engine import Database
from bot.storage.playtime import LINK_COUNTS

Groups = dict[str, set[str]]
Admins = list[tuple[str, str, str | None]]  # (SteamID64, group, the account's name)


def squad_admins(conn: sqlite3.Connection, guild_id: int) -> tuple[Groups, Admins]:
    groups: Groups = {}
    for group, permissions in conn.execute(
        "SELECT squad_group, squad_permissions FROM rewards WHERE guild_id = ?"
        " AND squad_group IS NOT NULL ORDER BY reward_id",
        (guild_id,),
    ):
        groups.setdefault(group, set()).update(p for p in (permissions or "").split(",") if p)
    if not groups:
        return groups, []
    admins = conn.execute(
        "SELECT l.external_id, r.squad_group, max(l.display_name) FROM reward_grants g"
        " JOIN rewards r ON r.reward_id = g.reward_id"
        " JOIN account_links l ON l.guild_id = g.guild_id"
        " AND l.discord_user_id = g.discord_user_id AND l.source = 'steam'"
        " WHERE g.guild_id = ? AND r.squad_group IS NOT NULL AND " + LINK_COUNTS +
        " GROUP BY l.external_id, r.squad_group ORDER BY l.external_id, r.squad_group",
        (guild_id,),
    ).fetchall()  # fmt: skip
    return groups, [(steam_id, group, name) for steam_id, group, name in admins]


def _changed_at(conn: sqlite3.Connection, endpoint_id: int, etag: str, now: datetime) -> datetime:
    row = conn.execute(
        "SELECT etag, changed_at FROM squad_lists WHERE endpoint_id = ?", (endpoint_id,)
    ).fetchone()
    if row is not None and row[0] == etag:
        return from_iso(row[1])
    conn.execute(
        "INSERT INTO squad_lists (endpoint_id, etag, changed_at) VALUES (?, ?, ?)"
        " ON CONFLICT (endpoint_id) DO UPDATE SET etag = excluded.etag,"
        " changed_at = excluded.changed_at",
        (endpoint_id, etag, to_iso(now)),
    )
    return now


class SqliteSquadLists:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def admins(self, guild_id: int) -> tuple[Groups, Admins]:
        """Every Squad group the guild's rewards give (with the union of their permissions)
        and every (SteamID64, group, name) of the members holding one."""
        return await self._db.read(lambda c: squad_admins(c, guild_id))

    async def changed_at(self, endpoint_id: int, etag: str, now: datetime) -> datetime:
        """Since when the endpoint's list has looked as ``etag`` says: read, and written only
        when the list changed (a poll every minute costs one read)."""
        row = await self._db.fetchone(
            "SELECT etag, changed_at FROM squad_lists WHERE endpoint_id = ?", (endpoint_id,)
        )
        if row is not None and row[0] == etag:
            return from_iso(row[1])
        return await self._db.write(lambda c: _changed_at(c, endpoint_id, etag, now))
