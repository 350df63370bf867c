"""Squad admin lists on PostgreSQL: who holds a reward with a Squad group, by the Steam ids that
count in the guild (only proven ones when it requires verification), and what each list served
last looked like (``squad_lists``), for Last-Modified. Twins of bot/storage/squad_lists.py."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_playtime import LINK_COUNTS
from bot.storage.squad_lists import Admins, Groups


async def squad_admins(conn: asyncpg.Connection, guild_id: int) -> tuple[Groups, Admins]:
    groups: Groups = {}
    for group, permissions in await conn.fetch(
        "SELECT squad_group, squad_permissions FROM rewards WHERE guild_id = $1"
        " AND squad_group IS NOT NULL ORDER BY reward_id",
        guild_id,
    ):
        groups.setdefault(group, set()).update(p for p in (permissions or "").split(",") if p)
    if not groups:
        return groups, []
    admins = await conn.fetch(
        'SELECT l.external_id, r.squad_group, max(l.display_name COLLATE "C") FROM reward_grants g'
        " JOIN rewards r ON r.reward_id = g.reward_id"
        " JOIN account_links l ON l.guild_id = g.guild_id"
        " AND l.discord_user_id = g.discord_user_id AND l.source = 'steam'"
        " WHERE g.guild_id = $1 AND r.squad_group IS NOT NULL AND " + LINK_COUNTS +
        " GROUP BY l.external_id, r.squad_group"
        ' ORDER BY l.external_id COLLATE "C", r.squad_group COLLATE "C"',
        guild_id,
    )  # fmt: skip
    return groups, [(steam_id, group, name) for steam_id, group, name in admins]


async def _changed_at(
    conn: asyncpg.Connection, endpoint_id: int, etag: str, now: datetime
) -> datetime:
    row = await conn.fetchrow(
        "SELECT etag, changed_at FROM squad_lists WHERE endpoint_id = $1 FOR UPDATE", endpoint_id
    )
    if row is not None and row[0] == etag:
        return row[1]
    await conn.execute(
        "INSERT INTO squad_lists (endpoint_id, etag, changed_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (endpoint_id) DO UPDATE SET etag = excluded.etag,"
        " changed_at = excluded.changed_at",
        endpoint_id, etag, now,
    )  # fmt: skip
    return now


class PgSquadLists:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def admins(self, guild_id: int) -> tuple[Groups, Admins]:
        """Every Squad group the guild's rewards give (with the union of their permissions)
        and every (SteamID64, group, name) of the members holding one."""

        async def fn(conn: asyncpg.Connection) -> tuple[Groups, Admins]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await squad_admins(conn, guild_id)

        return await self._db.read(fn)

    async def changed_at(self, endpoint_id: int, etag: str, now: datetime) -> datetime:
        """Since when the endpoint's list has looked as ``etag`` says: read, and written only
        when the list changed (a poll every minute costs one read)."""

        async def fn(conn: asyncpg.Connection) -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT etag, changed_at FROM squad_lists WHERE endpoint_id = $1", endpoint_id
            )

        row = await self._db.read(fn)
        if row is not None and row["etag"] == etag:
            return row["changed_at"]
        return await self._db.write(lambda c: _changed_at(c, endpoint_id, etag, now))
