"""Storage: the database, its migrations and every SQL statement Questlog runs.

``open_store(path)`` gives the :class:`Store` (bot/storage/interface.py) that the rest of the
code uses; the SQLite implementation is bot/storage/sqlite.py.
"""

from __future__ import annotations

from pathlib import Path

from bot.storage.engine import StorageError
from bot.storage.interface import Store
from bot.storage.records import Endpoint
from bot.storage.sqlite import SqliteStore


async def open_store(path: str | Path) -> SqliteStore:
    """Open (and migrate) the database at ``path``."""
    return await SqliteStore.open(path)


__all__ = ["Endpoint", "SqliteStore", "StorageError", "Store", "open_store"]
