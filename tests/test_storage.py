from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from bot.clock import ManualClock
from bot.config import ConfigError, parse_config
from bot.core import Core
from bot.storage import engine as storage
from bot.storage.engine import (
    Database,
    StorageError,
    apply_migrations,
    connect_sync,
    latest_schema_version,
)

TABLES = {
    "meta",
    "guilds",
    "endpoints",
    "account_links",
    "link_codes",
    "raw_events",
    "activity_events",
    "feed_outbox",
    "playtime",
    "playtime_samples",
    "sessions",
    "milestones",
    "steam_budget",
}


def test_aiosqlite_still_offers_the_entry_point_we_rely_on() -> None:
    # bot.storage.engine runs whole transactions on aiosqlite's worker thread via these two members.
    assert callable(getattr(aiosqlite.Connection, "_execute", None))
    assert isinstance(getattr(aiosqlite.Connection, "_conn", None), property)


async def test_migrations_on_empty_database(tmp_path: Path) -> None:
    db = Database(tmp_path / "new" / "q.sqlite3")
    await db.open()
    try:
        names = {
            r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert TABLES <= names
        assert (await db.fetchone("PRAGMA user_version"))[0] == latest_schema_version()
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
        assert (await db.fetchone("PRAGMA busy_timeout"))[0] >= 5000
    finally:
        await db.close()


async def test_migrations_on_existing_database_keep_data_and_apply_only_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "q.sqlite3"
    conn = connect_sync(path)
    assert apply_migrations(conn) == list(range(1, latest_schema_version() + 1))
    conn.execute(
        "INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (7, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z')"
    )
    assert apply_migrations(conn) == []
    conn.close()

    real = storage._migrations()
    extra = (
        len(real) + 1,
        "test_extra",
        "ALTER TABLE guilds ADD COLUMN test_flag INTEGER NOT NULL DEFAULT 5;\n",
    )
    monkeypatch.setattr(storage, "_migrations", lambda: [*real, extra])
    db = Database(path)
    await db.open()
    try:
        row = await db.fetchone("SELECT guild_id, test_flag FROM guilds")
        assert tuple(row) == (7, 5)
        assert (await db.fetchone("PRAGMA user_version"))[0] == len(real) + 1
    finally:
        await db.close()


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connect_sync(tmp_path / "q.sqlite3")
    apply_migrations(conn)
    real = storage._migrations()
    broken = (
        len(real) + 1,
        "broken",
        "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n",
    )
    monkeypatch.setattr(storage, "_migrations", lambda: [*real, broken])
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(real)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0


async def test_group_commit_isolates_failing_operations(tmp_path: Path) -> None:
    db = Database(tmp_path / "q.sqlite3")
    await db.open()
    try:

        def good(n: int):
            return lambda c: (
                c.execute(
                    "INSERT INTO steam_budget (day, purpose, calls) VALUES (?, 'sync', ?)",
                    (f"d{n}", n),
                ).rowcount
            )

        def bad(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO steam_budget (day, purpose, calls) VALUES ('bad', 'sync', 1)")
            raise ValueError("boom")

        results = await asyncio.gather(
            *(db.write(good(n)) for n in range(20)), db.write(bad), return_exceptions=True
        )
        assert results[:20] == [1] * 20
        assert isinstance(results[20], ValueError)
        rows = await db.fetchall("SELECT day FROM steam_budget")
        assert sorted(r[0] for r in rows) == sorted(f"d{n}" for n in range(20))
        assert db.batches < 21  # concurrent writes shared commits
        assert db.batched_ops == 21
    finally:
        await db.close()


async def test_a_batch_without_failures_runs_without_savepoints(tmp_path: Path) -> None:
    # A savepoint makes SQLite copy every page it is about to change into a sub-journal first
    # (15-20 us per write in bench/ingest.py); only a batch with a failing operation pays that.
    db = Database(tmp_path / "q.sqlite3")
    await db.open()
    statements: list[str] = []
    try:
        assert db._writer is not None
        db._writer._conn.set_trace_callback(statements.append)

        def add(n: int):
            return lambda c: (
                c.execute(
                    "INSERT INTO steam_budget (day, purpose, calls) VALUES (?, 'sync', ?)",
                    (f"d{n}", n),
                ).rowcount
            )

        assert await asyncio.gather(*(db.write(add(n)) for n in range(10))) == [1] * 10
        assert any(s.startswith("INSERT INTO steam_budget") for s in statements)
        assert not [s for s in statements if "SAVEPOINT" in s.upper()]

        def bad(c: sqlite3.Connection) -> None:
            raise ValueError("boom")

        statements.clear()
        results = await asyncio.gather(db.write(add(10)), db.write(bad), return_exceptions=True)
        assert results[0] == 1 and isinstance(results[1], ValueError)
        assert any("SAVEPOINT" in s.upper() for s in statements)  # the isolated rerun
        db._writer._conn.set_trace_callback(None)
        rows = await db.fetchall("SELECT count(*) FROM steam_budget")
        assert rows[0][0] == 11
    finally:
        await db.close()


async def test_writes_after_close_fail_clearly(tmp_path: Path) -> None:
    db = Database(tmp_path / "q.sqlite3")
    await db.open()
    await db.close()
    with pytest.raises(StorageError):
        await db.write(lambda c: None)


def test_endpoints_take_any_kind_and_keep_their_rows_and_change_counter(tmp_path: Path) -> None:
    """Migration 0013 rebuilt endpoints without the CHECK that listed three kinds, with the
    secret optional, and its triggers back."""
    conn = connect_sync(tmp_path / "q.sqlite3")
    apply_migrations(conn, up_to=12)
    conn.execute("INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (1, 'x', 'x')")
    conn.execute(
        "INSERT INTO endpoints (path, kind, guild_id, secret, created_at)"
        " VALUES ('old', 'custom', 1, 's', 'x')"
    )
    apply_migrations(conn)
    rows = conn.execute("SELECT path, kind, secret FROM endpoints").fetchall()
    assert [tuple(r) for r in rows] == [("old", "custom", "s")]
    version = conn.execute("SELECT value FROM meta WHERE key = 'endpoints_version'").fetchone()[0]
    conn.execute(
        "INSERT INTO endpoints (path, kind, guild_id, secret, created_at)"
        " VALUES ('new', 'hello', 1, NULL, 'x')"
    )
    conn.execute("UPDATE endpoints SET disabled_at = 'y' WHERE path = 'old'")
    after = conn.execute("SELECT value FROM meta WHERE key = 'endpoints_version'").fetchone()[0]
    assert int(after) == int(version) + 2
    conn.close()


async def test_a_steady_stream_of_writes_does_not_grow_the_wal_without_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passive checkpoints never catch a writer that never pauses; past the limit the WAL is
    checkpointed fully between two batches and starts over, so it stays bounded."""
    monkeypatch.setattr(storage, "CHECKPOINT_SECONDS", 0.05)
    monkeypatch.setattr(storage, "WAL_RESTART_FRAMES", 200)
    db = Database(tmp_path / "q.sqlite3")
    await db.open()
    try:
        await db.write(lambda c: c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
        wal = tmp_path / "q.sqlite3-wal"
        deadline = asyncio.get_running_loop().time() + 1.5
        largest = 0
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.gather(
                *(db.write(lambda c: c.execute("INSERT INTO t (v) VALUES (randomblob(3000))"))
                  for _ in range(20))
            )  # fmt: skip
            largest = max(largest, wal.stat().st_size)
        assert db.wal_restarts >= 1
        # Without the restarts this loop leaves about 50,000 frames (200 MiB) in the WAL; with
        # them, what arrives during a checkpoint period or two past the limit.
        with sqlite3.connect(tmp_path / "q.sqlite3") as conn:
            (_, frames, _) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert frames < 10_000 and largest < 50 * 2**20
    finally:
        await db.close()


@pytest.mark.parametrize(("setting", "pragma"), [("normal", 1), ("full", 2)])
async def test_database_synchronous_setting_reaches_the_writer(
    tmp_path: Path, clock: ManualClock, setting: str, pragma: int
) -> None:
    config = parse_config(
        {"database": {"path": str(tmp_path / "q.sqlite3"), "synchronous": setting}}, env={}
    )
    core = await Core.start(config, clock)
    try:
        value = await core.store.engine.run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert value == pragma
    finally:
        await core.stop()


def test_database_synchronous_accepts_only_normal_or_full(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"database\.synchronous: must be one of normal, full"):
        parse_config({"database": {"synchronous": "off"}}, env={})


async def test_the_wal_is_emptied_once_the_writer_is_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "CHECKPOINT_SECONDS", 0.05)
    db = Database(tmp_path / "q.sqlite3")
    await db.open()
    try:
        limit = await db.run(lambda c: c.execute("PRAGMA journal_size_limit").fetchone()[0])
        assert limit == storage.WAL_LIMIT_BYTES
        await db.write(lambda c: c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
        await asyncio.gather(
            *(db.write(lambda c: c.execute("INSERT INTO t (v) VALUES (randomblob(3000))"))
              for _ in range(300))
        )  # fmt: skip
        wal = tmp_path / "q.sqlite3-wal"
        assert wal.stat().st_size > 1_000_000  # the burst is in the WAL
        for _ in range(60):  # at most 3 s: two quiet checkpoint rounds are enough
            # (the file is cut on the writer's thread a moment before the count goes up)
            if not wal.stat().st_size and db.wal_truncations:
                break
            await asyncio.sleep(0.05)
        assert wal.stat().st_size == 0 and db.wal_truncations >= 1
        assert (await db.fetchone("SELECT count(*) FROM t"))[0] == 300
    finally:
        await db.close()


async def test_many_writes_wake_the_checkpointer_before_its_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints also follow the pages written: with a period far too long to matter, a
    steady writer still gets its WAL restarted."""
    monkeypatch.setattr(storage, "CHECKPOINT_SECONDS", 3600.0)
    monkeypatch.setattr(storage, "CHECKPOINT_OPS", 50)
    monkeypatch.setattr(storage, "WAL_RESTART_FRAMES", 200)
    db = Database(tmp_path / "q.sqlite3")
    await db.open()
    try:
        await db.write(lambda c: c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
        for _ in range(40):
            await asyncio.gather(
                *(db.write(lambda c: c.execute("INSERT INTO t (v) VALUES (randomblob(3000))"))
                  for _ in range(20))
            )  # fmt: skip
            await asyncio.sleep(0)
        for _ in range(60):  # at most 3 s (a loaded machine), never the hour-long period
            if db.wal_restarts:
                break
            await asyncio.sleep(0.05)
        assert db.wal_restarts >= 1
    finally:
        await db.close()


def test_upgrading_keeps_the_budget_and_marks_battlemetrics_rows() -> None:
    """Migration 0019 keeps the day's calls (as the sync's); 0020 marks stored BattleMetrics
    rows as retried with their original time, and no other source's."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, up_to=18)
    conn.execute("INSERT INTO steam_budget (day, calls) VALUES ('2026-12-01', 42)")
    conn.executemany(
        "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
        " VALUES (1, ?, ?, '{}', '2026-12-01T00:00:00.000000Z')",
        [("battlemetrics", "a"), ("minecraft", "b"), ("custom", "c")],
    )
    apply_migrations(conn)
    assert conn.execute("SELECT day, purpose, calls FROM steam_budget").fetchall() == [
        ("2026-12-01", "sync", 42)
    ]
    assert conn.execute("SELECT source, timestamped FROM raw_events ORDER BY id").fetchall() == [
        ("battlemetrics", 1),
        ("minecraft", None),
        ("custom", None),
    ]
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "activity_events_raw" in indexes


def test_upgrading_keeps_the_titles_of_stored_events() -> None:
    """Migration 0022: events stored before keep their title (the first id whose title the feed
    writes in the guild's language is the next one); guilds follow their server's language."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, up_to=21)
    conn.execute("INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (1, 'x', 'x')")
    conn.execute(
        "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
        " VALUES (1, 'steam', 'a', '{}', '2026-12-01T00:00:00.000000Z')"
    )
    conn.executemany(
        "INSERT INTO activity_events (guild_id, raw_event_id, type, source, title, payload,"
        " occurred_at, created_at) VALUES (1, 1, 'steam.game_played', 'steam', ?, '{}', 'x', 'x')",
        [("Alex played Squad today: 1 h",), ("Alex played Squad today: 2 h",)],
    )
    apply_migrations(conn)
    row = conn.execute("SELECT value FROM meta WHERE key = 'titles_rendered_from'").fetchone()
    assert row == ("3",)
    assert conn.execute("SELECT feed_language, preferred_locale FROM guilds").fetchall() == [
        (None, None)
    ]
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(fresh)  # a new database: every title is written in the feed's language
    assert fresh.execute(
        "SELECT value FROM meta WHERE key = 'titles_rendered_from'"
    ).fetchone() == ("1",)
