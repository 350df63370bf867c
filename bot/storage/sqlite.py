"""The SQLite store: one database file, one group-committing writer (bot/storage/engine.py),
and the parts grouped by what they store."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bot.storage.actions import SqliteActions
from bot.storage.consoles import SqliteConsoles
from bot.storage.endpoints import SqliteEndpoints
from bot.storage.engine import Database, latest_schema_version
from bot.storage.events import SqliteEvents
from bot.storage.instance import ProcessLock
from bot.storage.links import SqliteLinks
from bot.storage.oauth import SqliteOAuthStates, SqliteTokens
from bot.storage.outbox import SqliteFeed
from bot.storage.playtime import SqlitePlaytime
from bot.storage.presence import SqlitePresence
from bot.storage.privacy import SqlitePrivacy
from bot.storage.retention import SqliteRetention
from bot.storage.rewards import SqliteRewards
from bot.storage.squad_lists import SqliteSquadLists
from bot.storage.stats import SqliteStats
from bot.storage.steam_state import SqliteSteam


class SqliteStore:
    def __init__(self, engine: Database) -> None:
        #: The engine, for the SQLite implementation and its tests only.
        self.engine = engine
        self.endpoints = SqliteEndpoints(engine)
        self.links = SqliteLinks(engine)
        self.stats = SqliteStats(engine)
        self.feed = SqliteFeed(engine)
        self.events = SqliteEvents(engine)
        self.playtime = SqlitePlaytime(engine)
        self.steam = SqliteSteam(engine)
        self.retention = SqliteRetention(engine)
        self.oauth = SqliteOAuthStates(engine)
        self.tokens = SqliteTokens(engine)
        self.privacy = SqlitePrivacy(engine)
        self.presence = SqlitePresence(engine)
        self.actions = SqliteActions(engine)
        self.rewards = SqliteRewards(engine)
        self.consoles = SqliteConsoles(engine)
        self.squad_lists = SqliteSquadLists(engine)

    @classmethod
    async def open(
        cls, path: str | Path, *, maintain: bool = True, synchronous: str = "normal"
    ) -> SqliteStore:
        engine = Database(path, maintain=maintain, synchronous=synchronous)
        await engine.open()
        return cls(engine)

    async def close(self) -> None:
        await self.engine.close()

    async def ping(self) -> bool:
        try:
            return (await self.engine.fetchone("SELECT 1")) is not None
        except Exception:
            return False

    async def describe(self) -> dict[str, Any]:
        """Where the database is and its schema version (for questlog status)."""
        row = await self.engine.fetchone("PRAGMA user_version")
        path = self.engine.path
        return {
            "database": str(path),
            "database_bytes": path.stat().st_size if path.exists() else 0,
            "schema_version": int(row[0]) if row else 0,
            "schema_latest": latest_schema_version(),
        }

    async def table_rows(self) -> dict[str, int]:
        def count(conn: sqlite3.Connection) -> dict[str, int]:
            names = conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                " ORDER BY name"
            ).fetchall()
            return {
                n[0]: conn.execute(f'SELECT count(*) FROM "{n[0]}"').fetchone()[0] for n in names
            }

        return await self.engine.read(count)

    def write_stats(self) -> dict[str, float]:
        """The writer's group-commit counters, for /metrics."""
        db = self.engine
        return {
            "questlog_db_write_batches_total": db.batches,
            "questlog_db_write_ops_total": db.batched_ops,
            "questlog_db_write_ops_seconds_total": round(db.ops_seconds, 6),
            "questlog_db_commit_seconds_total": round(db.commit_seconds, 6),
            "questlog_db_wal_restarts_total": db.wal_restarts,
            "questlog_db_wal_truncations_total": db.wal_truncations,
        }

    async def backup(self, target: Path) -> None:
        await self.engine.backup(target)

    def instance_lock(self, name: str) -> ProcessLock:
        return ProcessLock(name)
