"""Instance locks on PostgreSQL: a session-level advisory lock held on a connection of its
own (bot/storage/interface.py, InstanceLock). When the process holding it dies, its
connection ends and PostgreSQL frees the lock at once; the next process to try takes it."""

from __future__ import annotations

import hashlib
import logging

import asyncpg

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10.0
CHECK_SECONDS = 10.0


def lock_key(name: str) -> int:
    """The advisory lock's 64-bit key for ``name`` (its own space beside the migrations')."""
    digest = hashlib.sha256(b"questlog instance lock:" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgInstanceLock:
    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self.name = name
        self.key = lock_key(name)
        self._conn: asyncpg.Connection | None = None

    async def acquire(self) -> bool:
        if self._conn is not None and await self.held():
            return True
        try:
            conn = await asyncpg.connect(self._url, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning(
                "instance lock %s: cannot reach the database (%s)", self.name, type(exc).__name__
            )
            return False
        try:
            taken = await conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", self.key, timeout=CHECK_SECONDS
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            taken = False
        if not taken:
            await self._close(conn)
            return False
        self._conn = conn
        return True

    async def held(self) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            # A session-level advisory lock ends only with an unlock (never issued here) or
            # with its session: while the connection answers, the lock is this process's.
            mine = await conn.fetchval("SELECT 1", timeout=CHECK_SECONDS)
        except Exception:  # any failure (asyncpg's InternalClientError on a connection the
            mine = 0  # server ended, too) means this process can no longer show it holds it
        if mine:
            return True
        self._conn = None
        await self._close(conn)
        return False

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._close(conn)  # ending the session frees its advisory locks

    @staticmethod
    async def _close(conn: asyncpg.Connection) -> None:
        try:
            await conn.close(timeout=CHECK_SECONDS)
        except Exception:  # a broken connection: dropped without a goodbye
            conn.terminate()
