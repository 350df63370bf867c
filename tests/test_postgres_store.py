"""The PostgreSQL store as a whole (bot/storage/postgres/store.py): what it says about itself,
its row counts and its backup, on the throwaway cluster of tests/postgres.py."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

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
    gone = postgres_cluster.database_url("no_such_database").replace("questlog@", "questlog:hunter2@")
    target = tmp_path / "x.dump"
    with pytest.raises(StorageError) as failed:
        await dump_database(gone, target)
    said = str(failed.value)
    assert "no_such_database" in said and "hunter2" not in said
    assert not target.exists() and not tmp_path.joinpath("x.dump.partial").exists()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(gone)
