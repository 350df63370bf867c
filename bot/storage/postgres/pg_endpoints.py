"""Endpoints on PostgreSQL: the ``endpoints`` table and the change counter its triggers keep
(the same triggers notify ``questlog_endpoints_version``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_listen import PgListener
from bot.storage.records import Endpoint, EndpointRefused

#: What the endpoints' triggers notify (migration 0033: questlog_changed('endpoints_version')).
VERSION_CHANNEL = "questlog_endpoints_version"

_COLUMNS = (
    "id, path, kind, guild_id, secret, previous_secret, previous_secret_expires_at, read_secret,"
    " game_id, created_at, last_used_at, disabled_at"
)


def _endpoint(row: asyncpg.Record) -> Endpoint:
    return Endpoint(
        id=row["id"],
        path=row["path"],
        kind=row["kind"],
        guild_id=row["guild_id"],
        secret=row["secret"],
        previous_secret=row["previous_secret"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        read_secret=row["read_secret"],
        game_id=row["game_id"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        disabled=row["disabled_at"] is not None,
    )


async def ensure_guild(conn: asyncpg.Connection, guild_id: int, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO guilds (guild_id, created_at, updated_at) VALUES ($1, $2, $2)"
        " ON CONFLICT (guild_id) DO NOTHING",
        guild_id,
        now,
    )


async def _by_id(conn: asyncpg.Connection, endpoint_id: int) -> Endpoint | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM endpoints WHERE id = $1", endpoint_id)
    return _endpoint(row) if row else None


async def _changed(conn: asyncpg.Connection, endpoint_id: int) -> Endpoint:
    found = await _by_id(conn, endpoint_id)
    if found is None:
        raise EndpointRefused("disabled")  # gone: nothing to change
    return found


async def _all(conn: asyncpg.Connection, guild_id: int | None) -> list[Endpoint]:
    if guild_id is None:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM endpoints ORDER BY id")
    else:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM endpoints WHERE guild_id = $1 ORDER BY id", guild_id
        )
    return [_endpoint(r) for r in rows]


async def _version(conn: asyncpg.Connection) -> str:
    value = await conn.fetchval("SELECT value FROM meta WHERE key = 'endpoints_version'")
    return str(value) if value is not None else "0"


class PgEndpoints:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def create(
        self,
        *,
        path: str,
        kind: str,
        guild_id: int,
        secret: str | None,
        read_secret: str | None,
        game_id: int | None,
        now: datetime,
    ) -> Endpoint | None:
        """The new endpoint, or None when its path is taken."""

        async def op(conn: asyncpg.Connection) -> Endpoint | None:
            if await conn.fetchval("SELECT 1 FROM endpoints WHERE path = $1", path):
                return None
            await ensure_guild(conn, guild_id, now)
            new_id = await conn.fetchval(
                "INSERT INTO endpoints (path, kind, guild_id, secret, read_secret, game_id,"
                " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (path) DO NOTHING RETURNING id",
                path, kind, guild_id, secret, read_secret, game_id, now,
            )  # fmt: skip
            return None if new_id is None else await _by_id(conn, new_id)

        return await self._db.write(op)

    async def by_path(self, path: str) -> Endpoint | None:
        async def fn(conn: asyncpg.Connection) -> Endpoint | None:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM endpoints WHERE path = $1", path)
            return _endpoint(row) if row else None

        return await self._db.read(fn)

    async def list(self, guild_id: int | None = None) -> list[Endpoint]:
        return await self._db.read(lambda c: _all(c, guild_id))

    async def rotate(
        self, endpoint_id: int, secret: str, *, read: bool, keep_previous_until: datetime | None
    ) -> Endpoint:
        """A new secret (with ``read``, a new read secret) in one transaction with its checks:
        the endpoint is not disabled, and a new secret differs from the current one, which
        stays valid until ``keep_previous_until`` (None: not at all). Raises EndpointRefused."""

        async def op(conn: asyncpg.Connection) -> Endpoint:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM endpoints WHERE id = $1 FOR UPDATE", endpoint_id
            )
            current = _endpoint(row) if row else None
            if current is None or current.disabled:
                raise EndpointRefused("disabled")
            if read:
                await conn.execute(
                    "UPDATE endpoints SET read_secret = $1 WHERE id = $2", secret, endpoint_id
                )
            else:
                if secret == current.secret:
                    raise EndpointRefused("same_secret")
                keep = keep_previous_until is not None
                await conn.execute(
                    "UPDATE endpoints SET previous_secret = $1, previous_secret_expires_at = $2,"
                    " secret = $3 WHERE id = $4",
                    current.secret if keep else None, keep_previous_until, secret, endpoint_id,
                )  # fmt: skip
            return await _changed(conn, endpoint_id)

        return await self._db.write(op)

    async def disable(self, endpoint_id: int, now: datetime) -> Endpoint:
        async def op(conn: asyncpg.Connection) -> Endpoint:
            await conn.execute(
                "UPDATE endpoints SET disabled_at = coalesce(disabled_at, $1) WHERE id = $2",
                now,
                endpoint_id,
            )
            return await _changed(conn, endpoint_id)

        return await self._db.write(op)

    async def enable(self, endpoint_id: int) -> Endpoint:
        """Undo ``disable``: the endpoint answers again, with its secrets as they were."""

        async def op(conn: asyncpg.Connection) -> Endpoint:
            await conn.execute("UPDATE endpoints SET disabled_at = NULL WHERE id = $1", endpoint_id)
            return await _changed(conn, endpoint_id)

        return await self._db.write(op)

    async def touch(self, endpoint_id: int, now: datetime) -> None:
        """Record that the endpoint was used (its last_used_at; not a change of the endpoint
        for the caches, as on SQLite)."""

        async def op(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "UPDATE endpoints SET last_used_at = $1 WHERE id = $2", now, endpoint_id
            )

        await self._db.write(op)

    async def set_listening(self, url: str | None) -> None:
        """Where the running server listens, for the CLI's URLs; None when it stops."""

        async def op(conn: asyncpg.Connection) -> None:
            if url is None:
                await conn.execute("DELETE FROM meta WHERE key = 'web_listening'")
            else:
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('web_listening', $1)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    url,
                )

        await self._db.write(op)

    async def listening(self) -> str | None:
        async def fn(conn: asyncpg.Connection) -> str | None:
            value = await conn.fetchval("SELECT value FROM meta WHERE key = 'web_listening'")
            return str(value) if value is not None else None

        return await self._db.read(fn)

    async def version(self) -> str:
        """Changes whenever any endpoint is created, changed or deleted (by any process)."""
        return await self._db.read(_version)

    async def snapshot(self) -> tuple[str, list[Endpoint]]:
        """The version and every endpoint, read in one snapshot."""

        async def fn(conn: asyncpg.Connection) -> tuple[str, list[Endpoint]]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await _version(conn), await _all(conn, None)

        return await self._db.read(fn)

    async def listen(self, changed: Callable[[], None]) -> PgListener | None:
        """LISTEN on the channel the endpoints' triggers notify, on a connection of its own;
        None when the database cannot be reached now (the caller polls and tries again)."""
        return await PgListener.open(self._db.url, VERSION_CHANNEL, changed)

    async def count(self) -> tuple[int, int]:
        """(active, disabled) endpoints."""

        async def fn(conn: asyncpg.Connection) -> tuple[int, int]:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE disabled_at IS NULL),"
                " count(*) FILTER (WHERE disabled_at IS NOT NULL) FROM endpoints"
            )
            return int(row[0]), int(row[1])

        return await self._db.read(fn)
