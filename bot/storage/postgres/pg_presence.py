"""Presence playtime's stored half on PostgreSQL (the ``presence`` part): twins of
bot/storage/presence.py. Whether a member consents, which game a Discord activity is, the
member's presence link, and sessions a crash left open; the sessions and playtime themselves
go through the one ingest path (source ``discord``)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_links import link_account
from bot.storage.postgres.pg_playtime import remember_game_name

__all__ = [
    "PgPresence",
    "close_interrupted",
    "ensure_presence_link",
    "presence_consent",
    "presence_game",
]

#: SQLite's NOCASE: ASCII letters fold, nothing else does (whatever the database's locale).
_ASCII_FOLD = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"


async def presence_consent(conn: asyncpg.Connection, guild_id: int, user_id: int) -> bool:
    """Presence is collected for the member when they turned it on, or when the guild's
    default is on and they did not turn it off; never while they turned collecting off."""
    row = await conn.fetchrow(
        "SELECT p.collecting, p.presence, g.presence_default FROM guilds g"
        " LEFT JOIN member_privacy p ON p.guild_id = g.guild_id AND p.discord_user_id = $1"
        " WHERE g.guild_id = $2",
        user_id,
        guild_id,
    )
    if row is None:
        return False  # a guild Questlog knows nothing about: its default (off)
    collecting, chosen, default = row["collecting"], row["presence"], row["presence_default"]
    if collecting is False:
        return False
    return bool(chosen) if chosen is not None else bool(default)


async def _casefold_match(conn: asyncpg.Connection, name: str) -> str | None:
    """The game whose stored name is the activity's name, ignoring case (Steam's app ids
    first: that is where the other sources' time is)."""
    wanted = name.casefold()
    rows = await conn.fetch(
        f"SELECT game_id, name FROM games WHERE {_ASCII_FOLD.format('name')}"
        f" = {_ASCII_FOLD.format('$1::text')}",
        name,
    )
    if not rows and not name.isascii():  # NOCASE folds ASCII only: look closer
        rows = await conn.fetch(
            "SELECT game_id, name FROM games WHERE char_length(name) = $1", len(name)
        )
    found = sorted(
        (not row["game_id"].isdigit(), row["game_id"])
        for row in rows
        if row["name"].casefold() == wanted
    )
    return found[0][1] if found else None


async def presence_game(
    conn: asyncpg.Connection, application_id: str | None, name: str, now: datetime
) -> str:
    """The game id presence time for this activity lands under: the stored mapping of its
    application; else the game with the same name (case-folded), remembered for the
    application; else ``discord:app:<id>``, or ``discord:name:<name>`` without one."""
    if application_id:
        stored = await conn.fetchval(
            "SELECT game_id FROM presence_games WHERE application_id = $1", application_id
        )
        if stored is not None:
            return str(stored)
    game_id = await _casefold_match(conn, name)
    if game_id is None:
        game_id = (
            f"discord:app:{application_id}"
            if application_id
            else (f"discord:name:{name.casefold()[:100]}")
        )
        await remember_game_name(conn, game_id, name, now)
    if application_id:
        await conn.execute(
            "INSERT INTO presence_games (application_id, game_id, updated_at)"
            " VALUES ($1, $2, $3) ON CONFLICT (application_id) DO NOTHING",
            application_id,
            game_id,
            now,
        )
    return game_id


async def ensure_presence_link(
    conn: asyncpg.Connection, guild_id: int, user_id: int, name: str | None, now: datetime
) -> None:
    """The member's presence link: their own Discord account as a source of playtime (so
    their presence time joins their other links in /playtime, boards, export and delete)."""
    found = await conn.fetchrow(
        "SELECT display_name FROM account_links WHERE guild_id = $1 AND source = 'discord'"
        " AND external_id = $2",
        guild_id,
        str(user_id),
    )
    if found is not None and (found["display_name"] == name or name is None):
        return  # already there (a name only ever replaces the stored one)
    await link_account(
        conn, guild_id=guild_id, discord_user_id=user_id, source="discord",
        external_id=str(user_id), now=now, display_name=name, verified=True,
        linked_by="presence", verified_by="discord",
    )  # fmt: skip


async def close_interrupted(conn: asyncpg.Connection) -> int:
    """Presence sessions a stopped or crashed process left open: closed (their time was
    credited by the flushes that ran)."""
    status = await conn.execute(
        "UPDATE sessions SET closed_reason = 'interrupted' WHERE source = 'discord'"
        " AND ended_at IS NULL AND closed_reason IS NULL"
    )
    return int(status.split()[-1])


class PgPresence:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def consent(self, guild_id: int, user_id: int) -> bool:
        return await self._db.read(lambda c: presence_consent(c, guild_id, user_id))

    async def game(self, application_id: str | None, name: str, now: datetime) -> str:
        return await self._db.write(lambda c: presence_game(c, application_id, name, now))

    async def ensure_link(
        self, guild_id: int, user_id: int, name: str | None, now: datetime
    ) -> None:
        await self._db.write(lambda c: ensure_presence_link(c, guild_id, user_id, name, now))

    async def close_interrupted(self) -> int:
        return await self._db.write(close_interrupted)
