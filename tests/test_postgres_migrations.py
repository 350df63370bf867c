"""The PostgreSQL migration runner (bot/storage/postgres/migrations.py) on a throwaway cluster:
each migration once, in order, two processes starting together without a race, a failed one
rolled back whole and tried again at the next start."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bot.storage.postgres.migrations import MIGRATION_LOCK, apply_migrations, schema_version

FIRST = (1, "members", "CREATE TABLE members (id bigint PRIMARY KEY, name text NOT NULL);")
SECOND = (
    2,
    "seconds",
    "ALTER TABLE members ADD COLUMN seconds bigint NOT NULL DEFAULT 0;"
    " INSERT INTO members (id, name) VALUES (1, 'first');",
)


async def test_each_migration_is_applied_once_in_order(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await schema_version(conn) == 0
        assert await apply_migrations(conn, [FIRST]) == [1]
        assert await apply_migrations(conn, [FIRST, SECOND]) == [2]
        assert await apply_migrations(conn, [FIRST, SECOND]) == []
        assert await schema_version(conn) == 2
        assert await conn.fetch("SELECT id, name, seconds FROM members") == [(1, "first", 0)]
        locks = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        )
        assert locks == 0  # released after the run
    finally:
        await conn.close()


async def test_two_processes_starting_together_apply_each_migration_once(
    postgres_url: str,
) -> None:
    slow = (1, "slow", "SELECT pg_sleep(0.3); CREATE TABLE members (id bigint PRIMARY KEY);")
    insert = (2, "row", "INSERT INTO members (id) VALUES (1);")  # twice would fail
    first, second = await asyncpg.connect(postgres_url), await asyncpg.connect(postgres_url)
    try:
        results = await asyncio.gather(
            apply_migrations(first, [slow, insert]), apply_migrations(second, [slow, insert])
        )
        assert sorted(results) == [[], [1, 2]]  # one did the work, the other waited
        assert await first.fetchval("SELECT count(*) FROM members") == 1
    finally:
        await first.close()
        await second.close()


async def test_a_failing_migration_is_rolled_back_and_tried_again(postgres_url: str) -> None:
    broken = (2, "broken", "ALTER TABLE members ADD COLUMN seconds bigint; SELECT 1 / 0;")
    conn = await asyncpg.connect(postgres_url)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await apply_migrations(conn, [FIRST, broken])
        assert await schema_version(conn) == 1  # the first stays, the broken one left nothing
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'members'"
        )
        assert sorted(r[0] for r in columns) == ["id", "name"]
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1",
            MIGRATION_LOCK & 0xFFFFFFFF,
        )
        assert held == 0  # the lock was released on the way out
        assert await apply_migrations(conn, [FIRST, SECOND]) == [2]  # fixed: applied next time
    finally:
        await conn.close()
