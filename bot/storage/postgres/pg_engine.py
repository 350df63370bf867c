"""The PostgreSQL engine: a connection pool for reads and a few writer connections that
group-commit, as SQLite's engine (bot/storage/engine.py) does with its one.

``write(op)`` queues ``op``, an async function of a connection; a free writer runs every queued
operation in one transaction and resolves their futures only after COMMIT ("committed before
acknowledged"), so concurrent requests share a commit. When one operation raises, the
transaction is rolled back and the batch runs again with each operation under its own
savepoint, so only the failing one fails (operations are functions of the database, as on
SQLite, so running one twice is safe). A batch that PostgreSQL aborts for a deadlock or a
serialization failure with another process is run again, up to three times. ``read(fn)`` runs
``fn`` on a pooled connection and sees every committed write.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from bot.storage.engine import StorageError
from bot.storage.postgres.migrations import apply_migrations, postgres_migrations

log = logging.getLogger(__name__)

T = TypeVar("T")
Op = Callable[[asyncpg.Connection], Awaitable[T]]

MAX_BATCH = 256
#: Writer connections, each group-committing the operations queued while it was busy. One
#: would serialize every write behind the network round trips of the one before (SQLite's
#: writer runs in-process; PostgreSQL's each statement is a round trip): bench/ingest.py
#: measured 0.10 of SQLite's requests/s with one, README "Scaling out". Transactions of
#: several writers are what several processes run anyway (the storage parts lock what they
#: must: bot/storage/postgres/pg_playtime.py, lock_account).
WRITERS = 4
COMMAND_TIMEOUT = 60.0  # seconds for one statement on the writer and the pool
RETRIES = 3
_RETRIED = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


class PgDatabase:
    def __init__(self, url: str, *, pool_size: int = 8, writers: int = WRITERS) -> None:
        self.url = url
        self.pool_size = pool_size
        self.writers = writers
        self.pool: asyncpg.Pool | None = None
        self._writers: list[asyncpg.Connection] = []
        self._queue: deque[tuple[Op[Any], asyncio.Future[Any]]] = deque()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.batches = 0
        self.batched_ops = 0

    async def open(self) -> None:
        try:
            # Migrations first, on a connection without a statement timeout: a long one must
            # not be cut off (and rolled back at every start), and a process waiting for
            # another's migrations waits as long as they take.
            setup = await asyncpg.connect(self.url)
            try:
                await apply_migrations(setup, postgres_migrations())
            finally:
                await setup.close()
            self.pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=self.pool_size, command_timeout=COMMAND_TIMEOUT
            )
            for _ in range(self.writers):
                self._writers.append(
                    await asyncpg.connect(self.url, command_timeout=COMMAND_TIMEOUT)
                )
        except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self._close_connections()
            reason = "the URL is not valid" if isinstance(exc, ValueError) else str(exc)
            raise StorageError(f"cannot open the PostgreSQL database: {reason}") from None
        self._tasks = [
            asyncio.create_task(self._write_loop(n), name=f"questlog-pg-writer-{n}")
            for n in range(self.writers)
        ]

    async def close(self) -> None:
        """Finish what is queued, then close every connection."""
        self._closing = True
        self._wakeup.set()
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks)
        await self._close_connections()

    async def _close_connections(self) -> None:
        writers, self._writers = self._writers, []
        for writer in writers:
            await writer.close()
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def write(self, op: Op[T]) -> T:
        """Run ``op(conn)`` inside the next group commit; returns after COMMIT."""
        if self._closing or not self._writers:
            raise StorageError("database is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        self._wakeup.set()
        return await future

    async def read(self, fn: Op[T]) -> T:
        if self.pool is None:
            raise StorageError("database is closed")
        try:
            async with self.pool.acquire() as conn:
                return await fn(conn)
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    async def _write_loop(self, n: int) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    self._wakeup.set()  # the other writers see it too
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await asyncio.sleep(0)  # let requests already read join this batch
            if not self._queue:
                continue  # another writer took them
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            try:
                outcomes = await self._commit([op for op, _ in batch], n)
            except Exception as exc:
                log.error("database write batch of %d failed: %s", len(batch), exc)
                error = StorageError(f"database write failed: {exc}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.batched_ops += len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():  # the caller went away; the write stands
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def _commit(self, ops: list[Op[Any]], n: int) -> list[tuple[bool, Any]]:
        if self._writers[n].is_closed():  # the server restarted or dropped it: a new one
            self._writers[n] = await asyncpg.connect(self.url, command_timeout=COMMAND_TIMEOUT)
        conn = self._writers[n]
        for attempt in range(1, RETRIES + 1):
            try:
                try:
                    return await self._transaction(conn, ops, isolated=False)
                except _RETRIED:
                    raise
                except Exception:  # one operation failed: each alone, under a savepoint
                    return await self._transaction(conn, ops, isolated=True)
            except _RETRIED as exc:
                if attempt == RETRIES:
                    raise
                log.warning("database write batch retried (%s)", type(exc).__name__)
        raise AssertionError("unreachable")

    async def _transaction(
        self, conn: asyncpg.Connection, ops: list[Op[Any]], *, isolated: bool
    ) -> list[tuple[bool, Any]]:
        """The batch in one transaction, begun and committed by hand: PostgreSQL answers a
        COMMIT of a transaction that an error aborted with ROLLBACK and no error (an operation
        that caught a database error itself would leave it so), and that must not be taken
        for a commit."""
        await conn.execute("BEGIN")
        try:
            results = [
                await self._isolated(conn, op) if isolated else (True, await op(conn)) for op in ops
            ]
            if await conn.execute("COMMIT") != "COMMIT":
                raise StorageError("the transaction was aborted by an error an operation caught")
            return results
        except BaseException:
            if not conn.is_closed() and conn.is_in_transaction():
                await conn.execute("ROLLBACK")
            raise

    async def _isolated(self, conn: asyncpg.Connection, op: Op[Any]) -> tuple[bool, Any]:
        await conn.execute("SAVEPOINT op")
        try:
            value = await op(conn)
            await conn.execute("RELEASE SAVEPOINT op")  # fails if the op left it aborted
        except _RETRIED:
            raise
        except Exception as exc:
            await conn.execute("ROLLBACK TO SAVEPOINT op")
            await conn.execute("RELEASE SAVEPOINT op")
            return False, exc
        return True, value
