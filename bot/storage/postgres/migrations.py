"""PostgreSQL migrations: numbered SQL files as for SQLite (``NNNN_name.sql``, the same schema
versions in PostgreSQL's types), each applied in its own transaction and recorded in
``schema_migrations``.

Every process applies them at start-up, under a session-level advisory lock: when two start
together, the second waits for the first and then finds nothing left to do, instead of both
running the same ``CREATE TABLE``. A process that dies holding the lock loses it with its
connection, and a migration that fails rolls back whole (its number is not recorded), so the
next start tries it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources

import asyncpg

from bot.storage.engine import read_migrations

log = logging.getLogger(__name__)

#: The schema version PostgreSQL's first migration brings a new database to at once (SQLite
#: reached it through migrations 1-33, from before PostgreSQL was supported).
BASELINE = 33

#: The advisory lock key of the migrations: "questlog" as a big-endian 64-bit integer.
#: Tables only PostgreSQL has: the leases that let several processes share the work (see
#: the end of migrations_pg/0033_schema.sql). Not copied from SQLite, not compared with it.
POSTGRES_ONLY = ("action_leases", "feed_leases")
MIGRATION_LOCK = int.from_bytes(b"questlog", "big")

_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)


async def apply_migrations(
    conn: asyncpg.Connection, migrations: Sequence[tuple[int, str, str]]
) -> list[int]:
    """Apply the ``(number, name, script)`` migrations the database does not have yet;
    returns the numbers applied by this call."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(_TABLE)
        done = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for number, name, script in migrations:
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name
                )
            log.info("applied PostgreSQL migration %04d_%s", number, name)
            applied.append(number)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def schema_version(conn: asyncpg.Connection) -> int:
    """The newest migration applied (0 for a new database)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


def postgres_migrations() -> list[tuple[int, str, str]]:
    """PostgreSQL's migrations (bot/storage/migrations_pg/), from BASELINE on."""
    return read_migrations(resources.files("bot.storage.migrations_pg"), first=BASELINE)
