"""The SQLite store: one database file, one group-committing writer (bot/storage/engine.py),
and the parts grouped by what they store."""

from __future__ import annotations

from pathlib import Path

from bot.storage.endpoints import SqliteEndpoints
from bot.storage.engine import Database
from bot.storage.events import SqliteEvents
from bot.storage.links import SqliteLinks
from bot.storage.outbox import SqliteFeed
from bot.storage.stats import SqliteStats


class SqliteStore:
    def __init__(self, engine: Database) -> None:
        #: The engine, for the SQLite implementation and its tests only.
        self.engine = engine
        self.endpoints = SqliteEndpoints(engine)
        self.links = SqliteLinks(engine)
        self.stats = SqliteStats(engine)
        self.feed = SqliteFeed(engine)
        self.events = SqliteEvents(engine)

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStore:
        engine = Database(path)
        await engine.open()
        return cls(engine)

    async def close(self) -> None:
        await self.engine.close()

    async def ping(self) -> bool:
        try:
            return (await self.engine.fetchone("SELECT 1")) is not None
        except Exception:
            return False

    async def backup(self, target: Path) -> None:
        await self.engine.backup(target)
