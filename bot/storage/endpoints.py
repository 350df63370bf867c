"""Endpoints in SQLite: the ``endpoints`` table and the change counter its triggers keep."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from bot.clock import from_iso, to_iso
from bot.storage.engine import Database
from bot.storage.records import Endpoint, EndpointRefused

_COLUMNS = (
    "id, path, kind, guild_id, secret, previous_secret, previous_secret_expires_at, read_secret,"
    " game_id, created_at, last_used_at, disabled_at"
)


def _endpoint(row: sqlite3.Row | tuple) -> Endpoint:
    (id_, path, kind, guild_id, secret, prev, prev_exp, read_secret, game_id, created, used,
     disabled) = row  # fmt: skip
    return Endpoint(
        id=id_,
        path=path,
        kind=kind,
        guild_id=guild_id,
        secret=secret,
        previous_secret=prev,
        previous_secret_expires_at=from_iso(prev_exp) if prev_exp else None,
        read_secret=read_secret,
        game_id=game_id,
        created_at=from_iso(created),
        last_used_at=from_iso(used) if used else None,
        disabled=disabled is not None,
    )


def ensure_guild(conn: sqlite3.Connection, guild_id: int, now: datetime) -> None:
    conn.execute(
        "INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (guild_id) DO NOTHING",
        (guild_id, to_iso(now), to_iso(now)),
    )


def _by_id(conn: sqlite3.Connection, endpoint_id: int) -> Endpoint | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone()
    return _endpoint(row) if row else None


def _all(conn: sqlite3.Connection, guild_id: int | None) -> list[Endpoint]:
    if guild_id is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM endpoints ORDER BY id").fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM endpoints WHERE guild_id = ? ORDER BY id", (guild_id,)
        ).fetchall()
    return [_endpoint(r) for r in rows]


def _version(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = 'endpoints_version'").fetchone()
    return row[0] if row else "0"


class SqliteEndpoints:
    def __init__(self, db: Database) -> None:
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

        def op(conn: sqlite3.Connection) -> Endpoint | None:
            if conn.execute("SELECT 1 FROM endpoints WHERE path = ?", (path,)).fetchone():
                return None
            ensure_guild(conn, guild_id, now)
            cur = conn.execute(
                "INSERT INTO endpoints (path, kind, guild_id, secret, read_secret, game_id,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (path, kind, guild_id, secret, read_secret, game_id, to_iso(now)),
            )
            return _by_id(conn, int(cur.lastrowid or 0))

        return await self._db.write(op)

    async def by_path(self, path: str) -> Endpoint | None:
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM endpoints WHERE path = ?", (path,))
        return _endpoint(row) if row else None

    async def list(self, guild_id: int | None = None) -> list[Endpoint]:
        return await self._db.read(lambda c: _all(c, guild_id))

    async def rotate(
        self, endpoint_id: int, secret: str, *, read: bool, keep_previous_until: datetime | None
    ) -> Endpoint:
        """A new secret (with ``read``, a new read secret) in one transaction with the checks
        it depends on: the endpoint is not disabled, and a new secret differs from the current
        one, which stays valid until ``keep_previous_until`` (None: not at all). Raises
        EndpointRefused."""

        def op(conn: sqlite3.Connection) -> Endpoint:
            current = _by_id(conn, endpoint_id)
            if current is None or current.disabled:
                raise EndpointRefused("disabled")
            if read:
                conn.execute(
                    "UPDATE endpoints SET read_secret = ? WHERE id = ?", (secret, endpoint_id)
                )
            else:
                if secret == current.secret:
                    raise EndpointRefused("same_secret")
                keep = keep_previous_until is not None
                conn.execute(
                    "UPDATE endpoints SET previous_secret = ?, previous_secret_expires_at = ?,"
                    " secret = ? WHERE id = ?",
                    (current.secret if keep else None,
                     to_iso(keep_previous_until) if keep_previous_until else None, secret,
                     endpoint_id),
                )  # fmt: skip
            found = _by_id(conn, endpoint_id)
            assert found is not None
            return found

        return await self._db.write(op)

    async def disable(self, endpoint_id: int, now: datetime) -> Endpoint:
        def op(conn: sqlite3.Connection) -> Endpoint:
            conn.execute(
                "UPDATE endpoints SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?",
                (to_iso(now), endpoint_id),
            )
            found = _by_id(conn, endpoint_id)
            assert found is not None
            return found

        return await self._db.write(op)

    async def enable(self, endpoint_id: int) -> Endpoint:
        """Undo ``disable``: the endpoint answers again, with its secrets as they were."""

        def op(conn: sqlite3.Connection) -> Endpoint:
            conn.execute("UPDATE endpoints SET disabled_at = NULL WHERE id = ?", (endpoint_id,))
            found = _by_id(conn, endpoint_id)
            assert found is not None
            return found

        return await self._db.write(op)

    async def touch(self, endpoint_id: int, now: datetime) -> None:
        """Record that the endpoint was used (its last_used_at)."""
        text = to_iso(now)
        await self._db.write(
            lambda c: c.execute(
                "UPDATE endpoints SET last_used_at = ? WHERE id = ?", (text, endpoint_id)
            )
        )

    async def set_listening(self, url: str | None) -> None:
        """Where the running server listens (``http://host:port``), for the CLI's URLs when
        ``[web] port = 0`` picks a free port; None when it stops."""

        def op(conn: sqlite3.Connection) -> None:
            if url is None:
                conn.execute("DELETE FROM meta WHERE key = 'web_listening'")
            else:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('web_listening', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (url,),
                )

        await self._db.write(op)

    async def listening(self) -> str | None:
        row = await self._db.fetchone("SELECT value FROM meta WHERE key = 'web_listening'")
        return str(row[0]) if row else None

    async def version(self) -> str:
        """Changes whenever any endpoint is created, changed or deleted (by any process)."""
        return await self._db.read(_version)

    async def snapshot(self) -> tuple[str, list[Endpoint]]:
        """The version and every endpoint, read together."""
        return await self._db.read(lambda c: (_version(c), _all(c, None)))

    async def listen(self, changed: Callable[[], None]) -> None:
        """SQLite has no change notifications across processes: callers poll version()."""
        return None

    async def count(self) -> tuple[int, int]:
        """(active, disabled) endpoints."""
        row = await self._db.fetchone(
            "SELECT count(*) FILTER (WHERE disabled_at IS NULL),"
            " count(*) FILTER (WHERE disabled_at IS NOT NULL) FROM endpoints"
        )
        assert row is not None
        return int(row[0]), int(row[1])
