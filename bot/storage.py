"""SQLite storage: one writer per process with group commit, one reader, numbered migrations.

Writes are submitted as plain functions ``fn(conn) -> result`` that run on the writer
connection's thread. The writer drains everything queued, runs the whole batch inside one
transaction (a SAVEPOINT per operation, so one failing operation does not undo the others) and
commits once; every caller's future resolves only after that COMMIT returned. That keeps
"committed before acknowledged" while paying for one fsync-free WAL commit and one thread round
trip per batch instead of per request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections import deque
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], T]

BUSY_TIMEOUT_MS = 10_000
MAX_BATCH = 512


class StorageError(Exception):
    """The database could not do what was asked (locked for too long, disk full, closed)."""


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("bot.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migration numbers must be 1..N without gaps, found {numbers}")
    return found


def latest_schema_version() -> int:
    return len(_migrations())


def _split_sql(script: str) -> list[str]:
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current)
            current = ""
    if current.strip() and not all(
        not ln.strip() or ln.strip().startswith("--") for ln in current.splitlines()
    ):
        raise RuntimeError("migration ends with an incomplete statement")
    return statements


def apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply every migration newer than PRAGMA user_version, each in its own transaction."""
    applied = []
    for number, name, script in _migrations():
        conn.execute("BEGIN IMMEDIATE")
        try:
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            if current >= number:
                conn.execute("ROLLBACK")
                continue
            for statement in _split_sql(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("applied database migration %04d_%s", number, name)
        applied.append(number)
    return applied


def _configure(conn: sqlite3.Connection, *, readonly: bool) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("SQLite refused WAL mode (got %s); writes will be slower", mode)
    # NORMAL in WAL mode: a committed transaction survives the process being killed (kill -9);
    # only an OS crash or power loss can lose the last commits.
    conn.execute("PRAGMA synchronous = NORMAL")
    if readonly:
        conn.execute("PRAGMA query_only = ON")


def connect_sync(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A plain sqlite3 connection with Questlog's settings (CLI helpers, backup, tests)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    _configure(conn, readonly=readonly)
    return conn


async def _run_on(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    # aiosqlite executes every call as a function on the connection's own thread; _execute is
    # the one entry point that lets us run a whole transaction there in one round trip.
    return await conn._execute(fn, conn._conn, *args)


class Database:
    """The process's storage handle: ``write`` (group-committed), ``read`` and ``run``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._queue: deque[tuple[Op[Any], asyncio.Future[Any]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.batched_ops = 0

    async def open(self) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await aiosqlite.connect(str(self.path), isolation_level=None)
        self._writer.row_factory = sqlite3.Row
        await _run_on(self._writer, lambda c: _configure(c, readonly=False))
        await _run_on(self._writer, apply_migrations)
        self._reader = await aiosqlite.connect(str(self.path), isolation_level=None)
        self._reader.row_factory = sqlite3.Row
        await _run_on(self._reader, lambda c: _configure(c, readonly=True))
        self._task = asyncio.create_task(self._write_loop(), name="questlog-db-writer")

    async def close(self) -> None:
        """Finish queued writes, then close both connections (their threads exit)."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._closing

    async def write(self, op: Op[T]) -> T:
        """Run ``op(conn)`` inside the next group commit; returns after COMMIT."""
        if self._closing or self._writer is None:
            raise StorageError("database is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        self._wakeup.set()
        return await future

    async def read(self, fn: Op[T]) -> T:
        """Run ``fn(conn)`` on the read-only connection (sees every committed write)."""
        if self._reader is None:
            raise StorageError("database is closed")
        return await _run_on(self._reader, fn)

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return await self.read(lambda c: c.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        return await self.read(lambda c: c.execute(sql, params).fetchone())

    async def run(self, fn: Op[T]) -> T:
        """Run ``fn(conn)`` on the writer thread outside any batch (backup, maintenance)."""
        if self._writer is None:
            raise StorageError("database is closed")
        return await _run_on(self._writer, fn)

    async def _write_loop(self) -> None:
        assert self._writer is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            ops = [op for op, _ in batch]
            try:
                outcomes = await _run_on(self._writer, _run_batch, ops)
            except Exception as exc:  # the whole transaction failed (busy, disk full, ...)
                log.error("database write batch of %d failed: %s", len(batch), exc)
                error = StorageError(f"database write failed: {exc}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.batched_ops += len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # the caller went away (cancelled request); the write stands
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)


def _run_batch(conn: sqlite3.Connection, ops: list[Op[Any]]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for op in ops:
            conn.execute("SAVEPOINT op")
            try:
                result = op(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                outcomes.append((False, exc))
            else:
                conn.execute("RELEASE op")
                outcomes.append((True, result))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes
