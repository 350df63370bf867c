"""LISTEN on PostgreSQL: a connection of its own that calls back on every notification of a
channel (the schema's version triggers notify ``questlog_<counter>``), so caches refresh the
moment another process changes what they hold instead of polling."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10.0


class PgListener:
    def __init__(self, conn: asyncpg.Connection, channel: str) -> None:
        self._conn = conn
        self.channel = channel
        self._lost = False

    @classmethod
    async def open(cls, url: str, channel: str, changed: Callable[[], None]) -> PgListener | None:
        try:
            conn = await asyncpg.connect(url, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cannot listen on %s now (%s); polling", channel, type(exc).__name__)
            return None
        listener = cls(conn, channel)

        def notified(*_: Any) -> None:
            changed()

        def terminated(*_: Any) -> None:
            listener._lost = True
            changed()  # a notification may have been missed: look once

        try:
            conn.add_termination_listener(terminated)
            await conn.add_listener(channel, notified)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()
            return None
        return listener

    @property
    def alive(self) -> bool:
        return not self._lost and not self._conn.is_closed()

    async def close(self) -> None:
        self._lost = True
        try:
            await self._conn.close(timeout=CONNECT_SECONDS)
        except Exception:  # a broken connection (asyncpg's InternalClientError too): dropped
            self._conn.terminate()
