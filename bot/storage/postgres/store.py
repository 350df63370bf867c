"""The PostgreSQL store: every part of the storage interface (bot/storage/interface.py) on
PostgreSQL; tests/test_store_contract.py and tests/test_contract_<part>.py run each part's
contract against both backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from bot.storage.engine import StorageError
from bot.storage.postgres.dump import dump_database, shown_url
from bot.storage.postgres.migrations import postgres_migrations, schema_version
from bot.storage.postgres.pg_actions import PgActions
from bot.storage.postgres.pg_consoles import PgConsoles
from bot.storage.postgres.pg_endpoints import PgEndpoints
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_events import PgEvents
from bot.storage.postgres.pg_leader import PgInstanceLock
from bot.storage.postgres.pg_links import PgLinks
from bot.storage.postgres.pg_oauth import PgOAuthStates, PgTokens
from bot.storage.postgres.pg_outbox import PgFeed
from bot.storage.postgres.pg_playtime import PgPlaytime
from bot.storage.postgres.pg_presence import PgPresence
from bot.storage.postgres.pg_privacy import PgPrivacy
from bot.storage.postgres.pg_retention import PgRetention
from bot.storage.postgres.pg_rewards import PgRewards
from bot.storage.postgres.pg_squad_lists import PgSquadLists
from bot.storage.postgres.pg_stats import PgStats
from bot.storage.postgres.pg_steam_state import PgSteam

#: The parts of the Store interface and their PostgreSQL classes.
_BUILT: dict[str, Callable[[PgDatabase], Any]] = {
    "feed": PgFeed,
    "events": PgEvents,
    "playtime": PgPlaytime,
    "endpoints": PgEndpoints,
    "consoles": PgConsoles,
    "actions": PgActions,
    "rewards": PgRewards,
    "oauth": PgOAuthStates,
    "tokens": PgTokens,
    "presence": PgPresence,
    "links": PgLinks,
    "squad_lists": PgSquadLists,
    "stats": PgStats,
    "steam": PgSteam,
    "privacy": PgPrivacy,
    "retention": PgRetention,
}


class PostgresStore:
    PARTS = tuple(_BUILT)

    def __init__(self, engine: PgDatabase) -> None:
        self.engine = engine
        for name, part in _BUILT.items():
            setattr(self, name, part(engine))

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

    async def describe(self) -> dict[str, Any]:
        """Where the database is (host, port and name only), its size and schema version."""

        async def fn(conn: asyncpg.Connection) -> dict[str, Any]:
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
            return {
                "database": shown_url(self.engine.url),
                "database_bytes": int(size),
                "schema_version": await schema_version(conn),
                "schema_latest": postgres_migrations()[-1][0],
            }

        return await self.engine.read(fn)

    async def table_rows(self) -> dict[str, int]:
        """Every table of the schema, counted in full in one snapshot."""

        async def fn(conn: asyncpg.Connection) -> dict[str, int]:
            names = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                ' ORDER BY tablename COLLATE "C"'
            )
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return {
                    n[0]: int(await conn.fetchval(f'SELECT count(*) FROM "{n[0]}"')) for n in names
                }

        return await self.engine.read(fn)

    async def backup(self, target: Path) -> None:
        """A consistent copy (one snapshot) with ``pg_dump`` in its custom format, for
        ``pg_restore``; the server's own backups (base backups, WAL archiving) serve a large
        database better."""
        await dump_database(self.engine.url, target)

    def instance_lock(self, name: str) -> PgInstanceLock:
        return PgInstanceLock(self.engine.url, name)

    def write_stats(self) -> dict[str, float]:
        return {
            "questlog_db_write_batches_total": float(self.engine.batches),
            "questlog_db_write_ops_total": float(self.engine.batched_ops),
        }
