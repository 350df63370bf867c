"""Storage: the database, its migrations and every SQL statement Questlog runs.

``open_store(path)`` gives the :class:`Store` (bot/storage/interface.py) that the rest of the
code uses; the SQLite implementation is bot/storage/sqlite.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.storage.engine import DatabaseInUse, StorageError, backup_file, vacuum_file
from bot.storage.interface import Store
from bot.storage.records import Endpoint
from bot.storage.sqlite import SqliteStore


async def open_store(
    path: str | Path, *, url: str = "", maintain: bool = True, synchronous: str = "normal"
) -> Store:
    """Open (and migrate) the database: PostgreSQL at ``url`` when one is given ([database]
    url), else SQLite at ``path``. ``maintain`` False for a one-shot command beside the running
    server: it leaves SQLite's write-ahead log to the server. ``synchronous``: SQLite's
    "normal" or "full" ([database] synchronous)."""
    if url:
        from bot.storage.postgres.store import PostgresStore

        return await PostgresStore.open(url)
    return await SqliteStore.open(path, maintain=maintain, synchronous=synchronous)


async def backup_database(path: str | Path, target: str | Path) -> None:
    """A consistent copy of the database at ``path`` as it is (not migrated, opened read-only),
    also while the server writes to it."""
    try:
        await asyncio.to_thread(backup_file, Path(path), Path(target))
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(str(exc)) from exc


async def vacuum_database(path: str | Path) -> tuple[int, int]:
    """A full VACUUM of the database at ``path`` (the server stopped), switching it to
    auto_vacuum INCREMENTAL; its size in bytes before and after. DatabaseInUse when another
    process has it open."""
    try:
        return await asyncio.to_thread(vacuum_file, Path(path))
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(str(exc)) from exc


__all__ = [
    "DatabaseInUse",
    "Endpoint",
    "SqliteStore",
    "StorageError",
    "Store",
    "backup_database",
    "open_store",
    "vacuum_database",
]
