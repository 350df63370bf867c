"""Game server consoles on PostgreSQL (``endpoint_consoles``): an endpoint's RCON settings.
The in-game announcements that the ingest transaction queues come with the events part."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from bot.storage.consoles import pause_key
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.records import ConsoleSettings

_COLUMNS = "endpoint_id, game, host, port, password, announce, created_at, updated_at"
_JOINED = ", ".join("c." + c for c in _COLUMNS.split(", "))


def _settings(row: asyncpg.Record) -> ConsoleSettings:
    return ConsoleSettings(
        endpoint_id=row["endpoint_id"], game=row["game"], host=row["host"], port=row["port"],
        sealed_password=row["password"], announce=row["announce"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )  # fmt: skip


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
