"""SQLite storage: one writer per process with group commit, one reader, numbered migrations.

Writes are submitted as plain functions ``fn(conn) -> result``. The writer drains everything
queued and runs the whole batch as one transaction, committed once; every caller's future
resolves only after that COMMIT returned ("committed before acknowledged").

Where the work runs was decided by measurement (bench/ingest.py, README "Performance"). With
one GIL, a batch on aiosqlite's worker thread hands the GIL back and forth with the event loop
at every statement, and even a batch that only crosses to the thread for BEGIN and COMMIT waits
for those round trips while the loop has nothing else to do. So the fast path runs the whole
batch on the event-loop thread: its statements take microseconds and, in WAL mode with the
write lock held, never wait for locks. The one step that can wait is taking the write lock
while another process (the CLI) holds it: ``BEGIN IMMEDIATE`` is tried with a zero busy
timeout and, when the lock is taken, retried on aiosqlite's thread with the full timeout, so
the loop never blocks on a lock. WAL checkpoints, which fsync, run on a separate connection in
the background instead of inside a writer's COMMIT. Reads use their own connection and thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], T]

BUSY_TIMEOUT_MS = 10_000
MAX_BATCH = 512
# The writer's page cache; every cache is bounded (RSS, README). With hour-led dedupe
# identities its working set is small: on the large-community database, ingest ran as fast with
# 8 MiB as with 32 MiB (bench/scale.py's ingest phase, three alternating runs each), and the
# full cache is most of the server's RSS after start-up.
CACHE_KIB = 16_384
READER_CACHE_KIB = 16_384  # each reader's
CHECKPOINT_SECONDS = 1.0
WAL_RESTART_FRAMES = 16_384  # 64 MiB of 4 KiB pages: the WAL starts over past this
WAL_LIMIT_BYTES = 64 * 2**20  # journal_size_limit: a WAL that starts over is cut back to this
CHECKPOINT_OPS = 4_096  # writes (about 2 WAL pages each) that wake the checkpointer early
READERS = 2  # read-only connections (the machine this runs on has 2 cores or more)


class StorageError(Exception):
    """The database could not do what was asked (locked for too long, disk full, closed)."""


def read_migrations(folder: Traversable, first: int = 1) -> list[tuple[int, str, str]]:
    """(number, name, script) of every ``NNNN_name.sql`` in ``folder``, in order; the numbers
    must run ``first``..N without gaps (SQLite's from 1; PostgreSQL's from the version its
    whole-schema migration stands for)."""
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(first, first + len(numbers))):
        raise RuntimeError(f"migration numbers must be {first}..N without gaps, found {numbers}")
    return found


def _migrations() -> list[tuple[int, str, str]]:
    return read_migrations(resources.files("bot.storage.migrations"))


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


def apply_migrations(conn: sqlite3.Connection, up_to: int | None = None) -> list[int]:
    """Apply every migration newer than PRAGMA user_version (up to ``up_to``, for a test
    that builds an older release's database), each in its own transaction."""
    applied = []
    for number, name, script in _migrations():
        if up_to is not None and number > up_to:
            break
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


SYNCHRONOUS = {"normal": "NORMAL", "full": "FULL"}


def _configure(conn: sqlite3.Connection, *, readonly: bool, synchronous: str = "normal") -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        # Before anything is created: a new database gives pages freed by pruning back to the
        # file system (bot/storage/retention.py). An existing one keeps its mode until
        # `questlog vacuum` switches it (SQLite can change it only with a full VACUUM).
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("SQLite refused WAL mode (got %s); writes will be slower", mode)
    # NORMAL in WAL mode: a committed transaction survives the process being killed (kill -9);
    # only an OS crash or power loss can lose the last commits. FULL syncs the WAL at every
    # commit, so those survive too.
    conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[synchronous]}")
    conn.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB if readonly else CACHE_KIB}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")


class Connection(sqlite3.Connection):
    """sqlite3's connection, with room for what the storage code reads once per connection
    (bot/storage/events.py keeps migration 0017's upgrade hour on it). The writer and
    connect_sync's connections are of this class; readers never ingest."""


def chunks(values: Sequence[T], size: int = 500) -> list[Sequence[T]]:
    """``values`` in slices of at most ``size``: one slice per ``IN (...)`` (SQLite's limit on
    bound parameters is far above it)."""
    return [values[i : i + size] for i in range(0, len(values), size)]


def connect_sync(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A plain sqlite3 connection with Questlog's settings (CLI helpers, backup, tests)."""
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, factory=Connection
    )
    conn.row_factory = sqlite3.Row
    _configure(conn, readonly=readonly)
    return conn


async def _run_on(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    # aiosqlite executes every call as a function on the connection's own thread; _execute is
    # the one entry point that lets us run a whole transaction there in one round trip.
    return await conn._execute(fn, conn._conn, *args)


class Database:
    """The process's storage handle: ``write`` (group-committed), ``read`` and ``run``."""

    def __init__(
        self, path: str | Path, *, maintain: bool = True, synchronous: str = "normal"
    ) -> None:
        self.path = Path(path)
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.synchronous = synchronous
        # The server maintains the WAL (a background checkpointer, a truncating checkpoint when
        # it closes); a one-shot CLI command beside it does neither, so it never blocks the
        # server's writer.
        self.maintain = maintain
        self._writer: aiosqlite.Connection | None = None
        # Read-only connections, each on its own thread: SQLite lets go of the GIL while it
        # steps, so two commands read at once on two cores instead of queueing on one thread.
        self._readers: list[aiosqlite.Connection] = []
        self._reading: dict[int, int] = {}  # id(reader) -> reads in flight
        self._checkpointer: aiosqlite.Connection | None = None
        self._queue: deque[tuple[Op[Any], asyncio.Future[Any]]] = deque()
        self._wakeup = asyncio.Event()
        self._exclusive = asyncio.Lock()  # a batch in progress, or run()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._stopping = asyncio.Event()
        self.batches = 0
        self.batched_ops = 0
        self.ops_seconds = 0.0  # time running operations (on the event loop)
        self.commit_seconds = 0.0  # time in COMMIT (on the event loop)
        self.wal_restarts = 0
        self.wal_truncations = 0  # the writer was idle and the WAL was emptied
        self._checkpoint_due = asyncio.Event()  # enough pages written since the last round
        self._ops_at_checkpoint = 0

    async def open(self) -> None:
        """Connect and migrate; a database that cannot be opened is a StorageError."""
        try:
            await self._open()
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise StorageError(str(exc)) from exc

    async def _open(self) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A path that cannot be opened fails here, before aiosqlite starts a worker thread
            # (a failed aiosqlite connect leaves one behind that outlives the event loop).
            sqlite3.connect(str(self.path)).close()
        # check_same_thread=False: batches run on the event-loop thread, maintenance and a
        # waiting BEGIN on aiosqlite's thread; never both at once (self._exclusive).
        self._writer = await aiosqlite.connect(
            str(self.path), isolation_level=None, check_same_thread=False, factory=Connection
        )
        self._writer.row_factory = sqlite3.Row
        await _run_on(
            self._writer, lambda c: _configure(c, readonly=False, synchronous=self.synchronous)
        )
        await _run_on(self._writer, apply_migrations)
        await _run_on(self._writer, _writer_settings)
        for _ in range(READERS):
            reader = await aiosqlite.connect(str(self.path), isolation_level=None)
            reader.row_factory = sqlite3.Row
            await _run_on(reader, lambda c: _configure(c, readonly=True))
            self._readers.append(reader)
            self._reading[id(reader)] = 0
        self._tasks = [asyncio.create_task(self._write_loop(), name="questlog-db-writer")]
        if self.maintain:
            self._checkpointer = await aiosqlite.connect(str(self.path), isolation_level=None)
            await _run_on(
                self._checkpointer,
                lambda c: _configure(c, readonly=False, synchronous=self.synchronous),
            )
            self._tasks.append(
                asyncio.create_task(self._checkpoint_loop(), name="questlog-db-checkpoint")
            )

    async def close(self) -> None:
        """Finish queued writes, checkpoint, then close every connection (their threads exit)."""
        self._closing = True
        self._stopping.set()
        self._wakeup.set()
        for task in self._tasks:
            await task
        self._tasks = []
        if self._writer is not None and self.maintain:
            try:
                await _run_on(self._writer, lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
            except sqlite3.Error as exc:
                log.warning("final checkpoint failed: %s", exc)
        for conn in (self._checkpointer, *self._readers, self._writer):
            if conn is not None:
                await conn.close()
        self._checkpointer = self._writer = None
        self._readers = []
        self._reading = {}

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
        """Run ``fn(conn)`` on the read-only connection (sees every committed write). A
        database error (locked too long, a broken file) is a StorageError."""
        if not self._readers:
            raise StorageError("database is closed")
        reader = min(self._readers, key=lambda r: self._reading[id(r)])  # the least busy
        self._reading[id(reader)] += 1
        try:
            return await _run_on(reader, fn)
        except sqlite3.OperationalError as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        finally:
            if id(reader) in self._reading:
                self._reading[id(reader)] -= 1

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return await self.read(lambda c: c.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        return await self.read(lambda c: c.execute(sql, params).fetchone())

    async def backup(self, target: Path) -> None:
        """A consistent copy at ``target`` (SQLite's online backup API, on a thread of its own,
        while the server writes); written to a temporary file and renamed into place."""
        if self._writer is None:
            raise StorageError("database is closed")
        await asyncio.to_thread(backup_file, self.path, Path(target))

    async def checkpoint(self) -> None:
        """Copy the whole WAL into the database file and truncate it, between batches (bulk
        loads; the background checkpointer's passive rounds cannot keep up with them)."""
        await self.run(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())

    async def run(self, fn: Op[T]) -> T:
        """Run ``fn(conn)`` on the writer connection's thread between batches (maintenance)."""
        if self._writer is None:
            raise StorageError("database is closed")
        async with self._exclusive:
            return await _run_on(self._writer, fn)

    async def _write_loop(self) -> None:
        assert self._writer is not None
        writer = self._writer
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # One turn of the loop first: requests whose bytes already arrived get parsed and
            # join this batch, so one COMMIT serves more of them.
            await asyncio.sleep(0)
            async with self._exclusive:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
                conn = writer._conn
                ops = [op for op, _ in batch]
                try:
                    await _begin(writer)
                    started = time.perf_counter()
                    outcomes = _run_together(conn, ops)
                    if outcomes is None:  # one failed: the transaction was rolled back
                        # The write lock is taken again; should another process hold it past
                        # the busy timeout in between (rare: only a batch with a failing
                        # operation gets here), the whole batch fails as any batch would.
                        await _begin(writer)
                        outcomes = _run_isolated(conn, ops)
                    ran = time.perf_counter()
                    conn.execute("COMMIT")
                    self.ops_seconds += ran - started
                    self.commit_seconds += time.perf_counter() - ran
                except Exception as exc:  # the transaction failed (busy, disk full, ...)
                    log.error("database write batch of %d failed: %s", len(batch), exc)
                    try:
                        await _run_on(writer, _rollback)
                    except sqlite3.Error as rollback_error:
                        log.error("rollback after a failed batch failed too: %s", rollback_error)
                    error = StorageError(f"database write failed: {exc}")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
            self.batches += 1
            self.batched_ops += len(batch)
            if self.batched_ops - self._ops_at_checkpoint >= CHECKPOINT_OPS:
                self._checkpoint_due.set()  # checkpoint by pages written, not only by time
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # the caller went away (cancelled request); the write stands
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def _checkpoint_loop(self) -> None:
        assert self._checkpointer is not None
        idle_since_ops = -1
        while not self._closing:
            stop = asyncio.ensure_future(self._stopping.wait())
            due = asyncio.ensure_future(self._checkpoint_due.wait())
            await asyncio.wait(
                {stop, due}, timeout=CHECKPOINT_SECONDS, return_when="FIRST_COMPLETED"
            )
            for waiter in (stop, due):
                waiter.cancel()
            if self._stopping.is_set():
                return  # close() makes the final, truncating checkpoint
            self._checkpoint_due.clear()
            self._ops_at_checkpoint = ops = self.batched_ops
            try:
                _busy, frames, _copied = await _run_on(
                    self._checkpointer,
                    lambda c: c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone(),
                )
                if frames > 0 and ops == idle_since_ops:
                    # No write for a whole round: empty the WAL file (at rest it takes no
                    # disk, and every later read searches an empty WAL index).
                    result = await self.run(
                        lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    )
                    if result is not None and result[0] == 0:
                        self.wal_truncations += 1
                    idle_since_ops = -1
                    continue
                idle_since_ops = ops
                if frames >= WAL_RESTART_FRAMES:
                    # Under a steady stream of writes a passive checkpoint never catches up
                    # with the writer, so the WAL (and its index in shared memory, which counts
                    # in the process's RSS) would grow without end. Between two batches the
                    # writer copies the rest and starts the WAL again from its beginning.
                    result = await self.run(
                        lambda c: c.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                    )
                    if result is not None and result[0] == 0:  # busy: a reader; next round
                        self.wal_restarts += 1
            except sqlite3.Error as exc:  # busy or locked: the next round retries
                log.debug("background checkpoint skipped: %s", exc)


def backup_file(source: Path, target: Path) -> None:
    """Copy the database at ``source`` to ``target`` consistently, even while it is written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = connect_sync(source, readonly=True)
    fd, temp = tempfile.mkstemp(prefix=".questlog-backup-", dir=target.parent)
    os.close(fd)
    try:
        dst = sqlite3.connect(temp)
        try:
            src.backup(dst)
        finally:
            dst.close()
        os.replace(temp, target)
    finally:
        src.close()
        if os.path.exists(temp):
            os.unlink(temp)


class DatabaseInUse(StorageError):
    """Another connection (a running server, a CLI command) has the database open."""


def vacuum_file(path: Path) -> tuple[int, int]:
    """Rebuild the database at ``path`` with a full VACUUM, switched to auto_vacuum INCREMENTAL
    on the way (an existing file can change mode only so); its size before and after.

    Needs every other connection closed (the server stopped): the file is locked exclusively
    first, and DatabaseInUse says so when it cannot be. SQLite writes a full copy while it
    works, so up to twice the file's size must be free (``questlog vacuum`` checks)."""
    path = Path(path)
    before = path.stat().st_size
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=0.2)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        try:
            conn.execute("BEGIN EXCLUSIVE")
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            raise DatabaseInUse(
                f"{path} is in use by another process (stop `questlog run` first)"
            ) from None
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return before, path.stat().st_size


def _writer_settings(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # the background checkpointer does it
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
    conn.execute("PRAGMA busy_timeout = 0")  # see _try_begin / _begin_waiting


async def _begin(writer: aiosqlite.Connection) -> None:
    """BEGIN IMMEDIATE on the loop when the write lock is free, else wait for it on the thread."""
    if not _try_begin(writer._conn):
        await _run_on(writer, _begin_waiting)


def _try_begin(conn: sqlite3.Connection) -> bool:
    """Take the write lock if it is free right now (the writer's busy timeout is 0)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return False
        raise
    return True


def _begin_waiting(conn: sqlite3.Connection) -> None:
    """Wait for the write lock on the worker thread, with the full busy timeout."""
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout = 0")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _run_together(conn: sqlite3.Connection, ops: list[Op[Any]]) -> list[tuple[bool, Any]] | None:
    """Run the operations back to back inside the open transaction (the fast path).

    No savepoint here: while one is open, SQLite first copies every page a statement is about
    to change into a sub-journal, and that cost about 15-20 us per write in bench/ingest.py.
    Operations fail only on bugs or constraint violations; when one raises, the whole
    transaction is rolled back and None returned, and the caller runs the batch again with
    ``_run_isolated``. Operations are pure functions of the database, so running one twice is
    safe."""
    try:
        return [(True, op(conn)) for op in ops]
    except Exception:
        _rollback(conn)
        return None


def _run_isolated(conn: sqlite3.Connection, ops: list[Op[Any]]) -> list[tuple[bool, Any]]:
    """Run each operation under its own savepoint, so a failing one is undone alone."""
    results: list[tuple[bool, Any]] = []
    for op in ops:
        conn.execute("SAVEPOINT op")
        try:
            value = op(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO op")
            results.append((False, exc))
        else:
            results.append((True, value))
        conn.execute("RELEASE op")
    return results
