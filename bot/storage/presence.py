"""Presence playtime's stored half: whether a member consents, which game a Discord activity
is, the member's presence link, and sessions a crash left open. The sessions and playtime
themselves go through the one ingest path (source ``discord``)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from bot.clock import to_iso
from bot.storage.engine import Database
from bot.storage.links import link_account
from bot.storage.playtime import remember_game_name


def presence_consent(conn: sqlite3.Connection, guild_id: int, user_id: int) -> bool:
    """Presence is collected for the member when they turned it on, or when the guild's
    default is on and they did not turn it off; never while they turned collecting off."""
    row = conn.execute(
        "SELECT p.collecting, p.presence, g.presence_default FROM guilds g"
        " LEFT JOIN member_privacy p ON p.guild_id = g.guild_id AND p.discord_user_id = ?"
        " WHERE g.guild_id = ?",
        (user_id, guild_id),
    ).fetchone()
    if row is None:
        return False  # a guild Questlog knows nothing about: its default (off)
    collecting, chosen, default = row
    if collecting == 0:
        return False
    return bool(chosen) if chosen is not None else bool(default)


def _casefold_match(conn: sqlite3.Connection, name: str) -> str | None:
    """The game whose stored name is the activity's name, ignoring case (Steam's app ids
    first: that is where the other sources' time is)."""
    wanted = name.casefold()
    rows = conn.execute(
        "SELECT game_id, name FROM games WHERE name = ? COLLATE NOCASE", (name,)
    ).fetchall()
    if not rows and not name.isascii():  # NOCASE folds ASCII only: look closer
        rows = conn.execute(
            "SELECT game_id, name FROM games WHERE length(name) = ?", (len(name),)
        ).fetchall()
    found = sorted(
        (not game_id.isdigit(), game_id) for game_id, stored in rows if stored.casefold() == wanted
    )
    return found[0][1] if found else None


def presence_game(
    conn: sqlite3.Connection, application_id: str | None, name: str, now: datetime
) -> str:
    """The game id presence time for this activity lands under: the stored mapping of its
    application; else the game with the same name (case-folded), remembered for the
    application; else ``discord:app:<id>``, or ``discord:name:<name>`` without one."""
    now_text = to_iso(now)
    if application_id:
        row = conn.execute(
            "SELECT game_id FROM presence_games WHERE application_id = ?", (application_id,)
        ).fetchone()
        if row is not None:
            return str(row[0])
    game_id = _casefold_match(conn, name)
    if game_id is None:
        game_id = (
            f"discord:app:{application_id}"
            if application_id
            else (f"discord:name:{name.casefold()[:100]}")
        )
        remember_game_name(conn, game_id, name, now_text)
    if application_id:
        conn.execute(
            "INSERT INTO presence_games (application_id, game_id, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (application_id) DO NOTHING",
            (application_id, game_id, now_text),
        )
    return game_id


def ensure_presence_link(
    conn: sqlite3.Connection, guild_id: int, user_id: int, name: str | None, now: datetime
) -> None:
    """The member's presence link: their own Discord account as a source of playtime (so
    their presence time joins their other links in /playtime, boards, export and delete)."""
    found = conn.execute(
        "SELECT display_name FROM account_links WHERE guild_id = ? AND source = 'discord'"
        " AND external_id = ?",
        (guild_id, str(user_id)),
    ).fetchone()
    if found is not None and (found[0] == name or name is None):
        return  # already there (a name only ever replaces the stored one)
    link_account(
        conn, guild_id=guild_id, discord_user_id=user_id, source="discord",
        external_id=str(user_id), now=now, display_name=name, verified=True,
        linked_by="presence", verified_by="discord",
    )  # fmt: skip


def close_interrupted(conn: sqlite3.Connection) -> int:
    """Presence sessions a stopped or crashed process left open: closed (their time was
    credited by the flushes that ran)."""
    return conn.execute(
        "UPDATE sessions SET closed_reason = 'interrupted' WHERE source = 'discord'"
        " AND ended_at IS NULL AND closed_reason IS NULL"
    ).rowcount


class SqlitePresence:
    def __init__(self, db: Database) -> None:
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
