"""Once-per-instance jobs (bot/leadership): run by the process holding the instance lock, moved
to another when it is lost; the lock on SQLite (always this process) and on PostgreSQL (a
session-level advisory lock, tested on the throwaway cluster of tests/postgres.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import asyncpg

from bot.leadership import InstanceJobs
from bot.storage.instance import ProcessLock
from bot.storage.postgres.migrations import MIGRATION_LOCK
from bot.storage.postgres.pg_leader import PgInstanceLock, lock_key


class Job:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.running = log, name, False

    async def start(self) -> None:
        self.running = True
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        if self.running:
            self.log.append(f"stop {self.name}")
        self.running = False


class Lock:
    """A lock the test takes away and gives back."""

    def __init__(self, free: bool = True) -> None:
        self.free, self.mine, self.released = free, False, 0

    async def acquire(self) -> bool:
        if self.free:
            self.free, self.mine = False, True
        return self.mine

    async def held(self) -> bool:
        return self.mine

    async def release(self) -> None:
        self.released += 1
        if self.mine:
            self.mine, self.free = False, True


async def until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached within {seconds} s")


async def test_the_jobs_run_only_while_the_lock_is_held() -> None:
    log: list[str] = []
    lock = Lock(free=False)
    jobs = InstanceJobs(lock, [("a", Job(log, "a")), ("b", Job(log, "b"))], every=0.02)
    await jobs.start()
    try:
        await asyncio.sleep(0.06)
        assert log == [] and not jobs.leading  # another process holds it
        lock.free = True
        await until(lambda: jobs.leading)
        assert log == ["start a", "start b"]
        lock.mine = False  # lost (its connection ended)
        await until(lambda: not jobs.leading)
        assert log[2:] == ["stop b", "stop a"]  # in reverse order
        lock.free = True
        await until(lambda: jobs.leading)
        assert jobs.takeovers == 2
    finally:
        await jobs.stop()
    assert log[-2:] == ["stop b", "stop a"] and lock.released == 1 and lock.free


async def test_on_sqlite_the_jobs_start_with_the_server() -> None:
    log: list[str] = []
    jobs = InstanceJobs(ProcessLock("instance-jobs"), [("a", Job(log, "a"))])
    await jobs.start()  # no waiting for a round
    assert jobs.leading and log == ["start a"]
    await jobs.stop()
    assert log == ["start a", "stop a"] and not await jobs.lock.held()


async def test_a_job_that_fails_to_start_does_not_stop_the_others() -> None:
    log: list[str] = []

    class Broken(Job):
        async def start(self) -> None:
            raise RuntimeError("no")

    jobs = InstanceJobs(Lock(), [("x", Broken(log, "x")), ("a", Job(log, "a"))])
    await jobs.start()
    await jobs.stop()
    assert log == ["start a", "stop a"]


def test_lock_keys_are_stable_and_apart_from_the_migrations_lock() -> None:
    assert lock_key("instance-jobs") == lock_key("instance-jobs") != lock_key("other")
    assert MIGRATION_LOCK not in {lock_key("instance-jobs"), lock_key("other")}
    assert -(2**63) <= lock_key("instance-jobs") < 2**63


async def test_one_holder_at_a_time_on_postgres(postgres_url: str) -> None:
    first, second = PgInstanceLock(postgres_url, "jobs"), PgInstanceLock(postgres_url, "jobs")
    other = PgInstanceLock(postgres_url, "other jobs")
    try:
        assert await first.acquire() and await first.held()
        assert await first.acquire()  # taking it again: still this one's
        assert not await second.acquire() and not await second.held()
        assert await other.acquire()  # another name: another lock
        await first.release()
        assert not await first.held()
        assert await second.acquire()
    finally:
        for lock in (first, second, other):
            await lock.release()


async def test_a_lost_connection_loses_the_lock_and_frees_it(postgres_url: str) -> None:
    first, second = PgInstanceLock(postgres_url, "jobs"), PgInstanceLock(postgres_url, "jobs")
    try:
        assert await first.acquire()
        admin = await asyncpg.connect(postgres_url)
        try:
            pid = first._conn.get_server_pid()  # type: ignore[union-attr]
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

        async def lost() -> bool:  # the backend ends a moment after pg_terminate_backend
            return not await first.held()

        await until_true(lost)  # noticed, and no traceback
        await until_true(second.acquire)
    finally:
        await first.release()
        await second.release()


async def until_true(attempt: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await attempt():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true within {seconds} s")


HOLDER = """
import asyncio, sys
import asyncpg
from bot.storage.postgres.pg_leader import PgInstanceLock

async def main() -> None:
    lock = PgInstanceLock(sys.argv[1], "jobs")
    assert await lock.acquire()
    print("held", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_killed_holder_hands_the_jobs_over(postgres_url: str) -> None:
    """SIGKILL of the holding process: PostgreSQL frees its lock as its connection ends, and
    the next round of another process takes the jobs."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, postgres_url, stdout=asyncio.subprocess.PIPE,
        cwd=os.getcwd(),
    )  # fmt: skip
    log: list[str] = []
    jobs = InstanceJobs(PgInstanceLock(postgres_url, "jobs"), [("a", Job(log, "a"))], every=0.05)
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 20)
        assert line.strip() == b"held"
        await jobs.start()
        await asyncio.sleep(0.2)
        assert not jobs.leading and log == []
        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(holder.wait(), 10)
        await until(lambda: jobs.leading)
        assert log == ["start a"]
    finally:
        if holder.returncode is None:
            holder.kill()
            await asyncio.wait_for(holder.wait(), 10)
        await jobs.stop()
