"""Game server consoles on PostgreSQL (``endpoint_consoles``): an endpoint's RCON settings, and
the in-game announcements of milestones and rewards queued on the action outbox in the
transaction that decides them (at most once: console commands are not idempotent). Twins of
bot/storage/consoles.py."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from bot.storage.consoles import ANNOUNCED, LineWriter, _announcement, pause_key
from bot.storage.postgres.pg_actions import queue_action
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_outbox import feed_language
from bot.storage.records import ConsoleSettings
from connectors.base import ActivityEvent, SchemaError

log = logging.getLogger(__name__)

_COLUMNS = "endpoint_id, game, host, port, password, announce, created_at, updated_at"
_JOINED = ", ".join("c." + c for c in _COLUMNS.split(", "))


def _settings(row: asyncpg.Record) -> ConsoleSettings:
    return ConsoleSettings(
        endpoint_id=row["endpoint_id"], game=row["game"], host=row["host"], port=row["port"],
        sealed_password=row["password"], announce=row["announce"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )  # fmt: skip


async def announce_in_game(
    conn: asyncpg.Connection,
    guild_id: int,
    events: Sequence[ActivityEvent],
    write_line: LineWriter,
    now: datetime,
) -> list[int]:
    """Queue, for every announcing console of the guild's enabled endpoints, one line per event
    of a linked member (a milestone, a reward earned by playing), written in the guild's feed
    language; the queued action ids."""
    wanted = [e for e in events if e.type in ANNOUNCED and e.actor_user_id is not None]
    if not wanted:
        return []
    consoles = await conn.fetch(
        "SELECT c.endpoint_id, c.game FROM endpoint_consoles c JOIN endpoints e"
        " ON e.id = c.endpoint_id WHERE e.guild_id = $1 AND e.disabled_at IS NULL"
        " AND c.announce ORDER BY c.endpoint_id",
        guild_id,
    )
    if not consoles:
        return []
    language = await feed_language(conn, guild_id)
    queued = []
    for event in wanted:
        line = write_line(
            {"type": event.type, "payload": event.payload, "actor_name": event.actor_name,
             "actor_external_id": event.actor_external_id},
            language,
        )  # fmt: skip
        if not line:
            continue
        for endpoint_id, game in consoles:
            connector, action = _announcement(endpoint_id, game, line)
            key, user = pause_key(endpoint_id), event.actor_user_id
            try:
                action_id = await queue_action(
                    conn, connector, action, guild_id=guild_id, pause_key=key, now=now, user_id=user
                )
            except SchemaError as exc:  # a line its model refuses is not said; the event stays
                log.warning("in-game line for console %s not queued: %s", endpoint_id, exc)
            else:
                queued.append(action_id)
    return queued


class PgConsoles:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def set(
        self,
        endpoint_id: int,
        *,
        game: str,
        host: str,
        port: int,
        sealed_password: str,
        announce: bool,
        now: datetime,
    ) -> ConsoleSettings:
        """Save the endpoint's console (replacing what it had); a console paused on its
        settings is probed again at once."""

        async def op(conn: asyncpg.Connection) -> ConsoleSettings:
            row = await conn.fetchrow(
                f"INSERT INTO endpoint_consoles ({_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
                " ON CONFLICT (endpoint_id) DO UPDATE SET game = excluded.game,"
                " host = excluded.host, port = excluded.port, password = excluded.password,"
                " announce = excluded.announce, updated_at = excluded.updated_at"
                f" RETURNING {_COLUMNS}",
                endpoint_id, game, host, port, sealed_password, announce, now,
            )  # fmt: skip
            await conn.execute(
                "UPDATE action_pauses SET next_probe_at = $1 WHERE pause_key = $2"
                " AND guild_id = (SELECT guild_id FROM endpoints WHERE id = $3)",
                now, pause_key(endpoint_id), endpoint_id,
            )  # fmt: skip
            return _settings(row)

        return await self._db.write(op)

    async def get(self, endpoint_id: int) -> ConsoleSettings | None:
        """The console of an enabled endpoint, None when it has none or is disabled."""

        async def fn(conn: asyncpg.Connection) -> ConsoleSettings | None:
            row = await conn.fetchrow(
                f"SELECT {_JOINED} FROM endpoint_consoles c JOIN endpoints e"
                " ON e.id = c.endpoint_id WHERE c.endpoint_id = $1 AND e.disabled_at IS NULL",
                endpoint_id,
            )
            return _settings(row) if row else None

        return await self._db.read(fn)

    async def list(self, guild_id: int | None = None) -> list[ConsoleSettings]:
        async def fn(conn: asyncpg.Connection) -> list[ConsoleSettings]:
            sql = f"SELECT {_JOINED} FROM endpoint_consoles c JOIN endpoints e ON e.id = c.endpoint_id"
            if guild_id is None:
                rows = await conn.fetch(sql + " ORDER BY c.endpoint_id")
            else:
                rows = await conn.fetch(
                    sql + " WHERE e.guild_id = $1 ORDER BY c.endpoint_id", guild_id
                )
            return [_settings(r) for r in rows]

        return await self._db.read(fn)

    async def remove(self, endpoint_id: int) -> bool:
        """Forget the endpoint's console; whether it had one. Actions already queued for it
        fail when their turn comes (no settings any more)."""

        async def op(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                "DELETE FROM endpoint_consoles WHERE endpoint_id = $1", endpoint_id
            )
            return status != "DELETE 0"

        return await self._db.write(op)
