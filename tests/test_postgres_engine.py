"""The PostgreSQL engine's group commit (bot/storage/postgres/engine.py) on a throwaway
cluster: concurrent writes share commits, each is visible to another connection once it is
acknowledged, a failing operation fails alone, and a closed engine refuses writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from bot.storage.engine import StorageError
from bot.storage.postgres.pg_engine import PgDatabase


def add_game(game_id: str, name: str | None) -> Callable[[asyncpg.Connection], Awaitable[str]]:
    """An operation inserting a game (a NULL name violates NOT NULL)."""

    async def op(conn: asyncpg.Connection) -> str:
        await conn.execute(
            "INSERT INTO games (game_id, name, updated_at) VALUES ($1, $2, now())", game_id, name
        )
        return "ok"

    return op


async def test_concurrent_writes_share_commits_and_are_visible_once_acknowledged(
    postgres_url: str,
) -> None:
    db = PgDatabase(postgres_url)
    await db.open()
    other = await asyncpg.create_pool(postgres_url, min_size=1, max_size=4)
    try:

        def insert(n: int) -> Callable[[asyncpg.Connection], Awaitable[int]]:
            async def op(conn: asyncpg.Connection) -> int:
                return int(
                    await conn.fetchval(
                        "INSERT INTO games (game_id, name, updated_at) VALUES ($1, $2, now())"
                        " RETURNING length(name)",
                        f"g{n}",
                        "x" * n,
                    )
                )

            return op

        async def acknowledged(n: int) -> bool:
            await db.write(insert(n))
            seen = await other.fetchval("SELECT count(*) FROM games WHERE game_id = $1", f"g{n}")
            return seen == 1  # committed before acknowledged

        assert all(await asyncio.gather(*(acknowledged(n) for n in range(1, 101))))
        assert db.batched_ops == 100 and db.batches < 50  # one commit served several
    finally:
        await other.close()
        await db.close()


async def test_a_failing_operation_fails_alone(postgres_url: str) -> None:
    db = PgDatabase(postgres_url)
    await db.open()
    try:
        good, bad, later = add_game("a", "A"), add_game("b", None), add_game("c", "C")

        results = await asyncio.gather(
            db.write(good), db.write(bad), db.write(later), return_exceptions=True
        )
        assert db.batches == 1  # the three in one transaction: the failure was isolated
        assert results[0] == results[2] == "ok"
        assert isinstance(results[1], asyncpg.NotNullViolationError)
        names = await db.read(
            lambda c: c.fetch("SELECT game_id FROM games WHERE game_id IN ('a', 'b', 'c')")
        )
        assert sorted(r[0] for r in names) == ["a", "c"]
    finally:
        await db.close()
    with pytest.raises(StorageError, match="closed"):
        await db.write(good)


async def test_an_unreachable_server_is_a_storage_error() -> None:
    db = PgDatabase("postgresql://questlog@127.0.0.1:9/none")
    with pytest.raises(StorageError, match="cannot open the PostgreSQL database"):
        await db.open()


async def test_an_operation_that_swallows_a_database_error_never_loses_another(
    postgres_url: str,
) -> None:
    db = PgDatabase(postgres_url)
    await db.open()
    try:
        good = add_game("kept", "K")

        async def swallowing(conn: asyncpg.Connection) -> str:
            try:  # a duplicate it treats as "taken", leaving the transaction aborted
                await conn.execute(
                    "INSERT INTO games (game_id, name, updated_at)"
                    " VALUES ('minecraft', 'again', now())"
                )
            except asyncpg.UniqueViolationError:
                return "taken"
            return "inserted"

        results = await asyncio.gather(db.write(good), db.write(swallowing), return_exceptions=True)
        assert results[0] == "ok"
        assert isinstance(results[1], Exception)  # reported, never a false "taken"
        kept = await db.read(
            lambda c: c.fetchval("SELECT count(*) FROM games WHERE game_id = 'kept'")
        )
        assert kept == 1  # acknowledged means committed
    finally:
        await db.close()
