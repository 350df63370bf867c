"""The PostgreSQL store: the parts of the storage interface (bot/storage/interface.py) built so
far on PostgreSQL, listed in ``PARTS``. tests/test_store_contract.py runs every contract test
of those parts against both backends; the store is not selectable in the configuration until
every part is there."""

from __future__ import annotations

import asyncpg

from bot.storage.engine import StorageError
from bot.storage.postgres.pg_consoles import PgConsoles
from bot.storage.postgres.pg_endpoints import PgEndpoints
from bot.storage.postgres.pg_engine import PgDatabase


class PostgresStore:
    #: The parts of the Store interface implemented on PostgreSQL so far.
    PARTS = ("endpoints", "consoles")

    def __init__(self, engine: PgDatabase) -> None:
        self.engine = engine
        self.endpoints = PgEndpoints(engine)
        self.consoles = PgConsoles(engine)

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        engine = PgDatabase(url)
        await engine.open()
        return cls(engine)

    async def close(self) -> None:
        await self.engine.close()

    async def ping(self) -> bool:
        try:
            return bool(await self.engine.read(lambda c: c.fetchval("SELECT 1")))
        except (StorageError, OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    def write_stats(self) -> dict[str, float]:
        return {
            "questlog_db_write_batches_total": float(self.engine.batches),
            "questlog_db_write_ops_total": float(self.engine.batched_ops),
        }
