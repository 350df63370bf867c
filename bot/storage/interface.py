"""The store's interface: what every backend implements (SQLite today, PostgreSQL next).

Everything outside ``bot/storage`` talks to these named, typed, async methods and never to SQL
or a connection. Writes are committed before a method returns ("committed before
acknowledged"); a backend may group concurrent writes into one commit.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot.storage.records import Endpoint


class EndpointStore(Protocol):
    async def create(
        self,
        *,
        path: str,
        kind: str,
        guild_id: int,
        secret: str,
        read_secret: str | None,
        game_id: int | None,
        now: datetime,
    ) -> Endpoint | None:
        """The new endpoint, or None when its path is taken."""
        ...

    async def by_path(self, path: str) -> Endpoint | None: ...

    async def list(self, guild_id: int | None = None) -> list[Endpoint]: ...

    async def set_secret(
        self, endpoint_id: int, secret: str, previous: str | None, previous_expires: datetime | None
    ) -> Endpoint: ...

    async def set_read_secret(self, endpoint_id: int, secret: str) -> Endpoint: ...

    async def disable(self, endpoint_id: int, now: datetime) -> Endpoint: ...

    async def touch(self, endpoint_id: int, now: datetime) -> None: ...

    async def version(self) -> str:
        """Changes whenever any endpoint changes, whichever process changed it."""
        ...

    async def snapshot(self) -> tuple[str, list[Endpoint]]: ...

    async def count(self) -> tuple[int, int]:
        """(active, disabled)."""
        ...


class Store(Protocol):
    """One database. ``open`` and ``close`` are the backend's own (see ``open_store``)."""

    endpoints: EndpointStore

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """Whether the database answers (for /healthz)."""
        ...

    async def backup(self, target: Path) -> None:
        """A consistent copy of the whole database at ``target`` while it is in use."""
        ...
