"""The PostgreSQL store as a whole (bot/storage/postgres/store.py): what it says about itself,
its row counts and its backup, on the throwaway cluster of tests/postgres.py."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.clock import SystemClock
from bot.ingest import endpoint_cache
from bot.ingest.endpoint_cache import EndpointCache
from bot.storage.engine import StorageError
from bot.storage.postgres.dump import dump_database, shown_url, without_password
from bot.storage.postgres.migrations import postgres_migrations
from bot.storage.postgres.store import PostgresStore
from tests.conftest import postgres_database

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_the_password_is_taken_out_of_the_url_wherever_it_is() -> None:
    assert without_password("postgresql://bot:s3%2Fcr%3Ft@db:5433/questlog") == (
        "postgresql://bot@db:5433/questlog", "s3/cr?t",
    )  # fmt: skip
    assert without_password("postgresql://bot@db/q?password=p%26w&sslmode=require") == (
        "postgresql://bot@db/q?sslmode=require", "p&w",
    )  # fmt: skip
    assert without_password("postgresql://db/q") == ("postgresql://db/q", None)
    assert shown_url("postgresql://bot:secret@db:5433/questlog?password=x") == (
        "postgresql://db:5433/questlog"
    )


async def test_describe_and_table_rows(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url.replace("questlog@", "questlog:hunter2@"))
    try:
        info = await store.describe()
        assert info["schema_version"] == info["schema_latest"] == postgres_migrations()[-1][0]
        assert info["database_bytes"] > 0
        assert info["database"].startswith("postgresql://127.0.0.1:")
        assert "hunter2" not in str(info) and "questlog@" not in str(info)
        before = await store.table_rows()
        assert before["endpoints"] == 0 and "schema_migrations" in before and "meta" in before
        await store.endpoints.create(
            path="p" * 24, kind="custom", guild_id=1, secret="s", read_secret=None,
            game_id=None, now=NOW,
        )  # fmt: skip
        after = await store.table_rows()
        assert (after["endpoints"], after["guilds"]) == (1, 1)
        assert list(after) == sorted(after)
    finally:
        await store.close()


def _pg_restore(cluster: Any, url: str, dump: Path) -> None:
    subprocess.run(
        [str(cluster.bindir / "pg_restore"), "--no-owner", f"--dbname={url}", str(dump)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


async def test_backup_is_a_dump_that_restores(
    postgres_cluster: Any, postgres_url: str, tmp_path: Path
) -> None:
    store = await PostgresStore.open(postgres_url.replace("questlog@", "questlog:hunter2@"))
    try:
        endpoint = await store.endpoints.create(
            path="b" * 24, kind="custom", guild_id=7, secret="s", read_secret=None,
            game_id=None, now=NOW,
        )  # fmt: skip
        target = tmp_path / "backups" / "questlog.dump"
        await store.backup(target)
        assert target.exists() and not target.with_name("questlog.dump.partial").exists()
    finally:
        await store.close()
    async with postgres_database(postgres_cluster) as restored:
        _pg_restore(postgres_cluster, restored, target)
        copy = await PostgresStore.open(restored)
        try:
            assert await copy.endpoints.by_path("b" * 24) == endpoint
            assert await copy.table_rows() == await _rows(postgres_url)
        finally:
            await copy.close()


async def _rows(url: str) -> dict[str, int]:
    store = await PostgresStore.open(url)
    try:
        return await store.table_rows()
    finally:
        await store.close()


async def test_a_failed_backup_says_why_without_the_password(
    postgres_cluster: Any, tmp_path: Path
) -> None:
    gone = postgres_cluster.database_url("no_such_database").replace(
        "questlog@", "questlog:hunter2@"
    )
    target = tmp_path / "x.dump"
    with pytest.raises(StorageError) as failed:
        await dump_database(gone, target)
    said = str(failed.value)
    assert "no_such_database" in said and "hunter2" not in said
    assert not target.exists() and not tmp_path.joinpath("x.dump.partial").exists()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(gone)


async def _seen(cache: EndpointCache, path: str, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if cache.get(path) is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} not in the cache within {seconds} s")


async def test_the_endpoint_cache_listens_for_other_processes_changes(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change made through another connection (another process) reaches the cache by
    NOTIFY, with the safety poll an hour away; a lost listening connection is replaced."""
    monkeypatch.setattr(endpoint_cache, "LISTENING_POLL_SECONDS", 3600.0)
    monkeypatch.setattr(endpoint_cache, "RELISTEN_SECONDS", 0.0)
    mine, other = await PostgresStore.open(postgres_url), await PostgresStore.open(postgres_url)
    cache = EndpointCache(mine, SystemClock())
    await cache.start()
    try:
        assert cache.listening
        first = cache._listener
        await other.endpoints.create(
            path="n" * 24, kind="custom", guild_id=1, secret="s", read_secret=None,
            game_id=None, now=NOW,
        )  # fmt: skip
        await _seen(cache, "n" * 24)
        admin = await asyncpg.connect(postgres_url)
        try:
            pids = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
                " AND datname = current_database()"
            )
            assert len(pids) == 1
            await admin.execute("SELECT pg_terminate_backend($1)", pids[0][0])
        finally:
            await admin.close()
        for _ in range(500):  # lost, then listening again on a new connection
            if cache._listener is not first and cache.listening:
                break
            await asyncio.sleep(0.01)
        assert cache._listener is not first and cache.listening
        await other.endpoints.create(
            path="m" * 24, kind="custom", guild_id=1, secret="s", read_secret=None,
            game_id=None, now=NOW,
        )  # fmt: skip
        await _seen(cache, "m" * 24)
        assert cache.listening
    finally:
        await cache.stop()
        await mine.close()
        await other.close()
