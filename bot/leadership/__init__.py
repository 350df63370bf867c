"""The jobs that run once per instance: the Steam sync, pruning, the daily reward check and
the Linked Roles updates.

Every process of an instance serves webhooks and get-playtime, but these jobs must run in one
process only (two Steam syncs would spend the API budget twice, two reward checks race). The
process that holds the store's instance lock runs them (bot/storage/interface.py,
InstanceLock). The others try to take the lock every ``every`` seconds, so when its holder dies
(and PostgreSQL frees its session's lock) another takes the jobs over within that time; the
holder checks its lock as often and stops the jobs the moment it lost it. With SQLite the one
server always holds it, and the jobs start with the server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from bot.storage.interface import InstanceLock
from bot.tasks import cancel_task

log = logging.getLogger(__name__)

TRY_EVERY = 15.0  # seconds between attempts to take the lock, and between checks of it


class Job(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class InstanceJobs:
    def __init__(
        self, lock: InstanceLock, jobs: list[tuple[str, Job]], *, every: float = TRY_EVERY
    ) -> None:
        self.lock = lock
        self.jobs = jobs
        self.every = every
        self.leading = False
        self.takeovers = 0  # how often this process took the jobs (for /metrics)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take the lock and start the jobs when it is free (at once with SQLite), then keep
        trying or checking in the background."""
        await self._round()
        self._task = asyncio.create_task(self._loop(), name="questlog-instance-jobs")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)
        await self._stop_jobs()
        await self.lock.release()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("instance jobs: a round failed; trying again")

    async def _round(self) -> None:
        if self.leading:
            if not await self.lock.held():
                log.warning("instance jobs: the instance lock was lost; stopping the jobs here")
                await self._stop_jobs()
        elif await self.lock.acquire():
            await self._start_jobs()

    async def _start_jobs(self) -> None:
        self.leading = True
        self.takeovers += 1
        log.info("instance jobs: this process runs %s", ", ".join(n for n, _ in self.jobs))
        for name, job in self.jobs:
            try:
                await job.start()
            except Exception:
                log.exception("instance jobs: starting %s failed", name)

    async def _stop_jobs(self) -> None:
        if not self.leading:
            return
        self.leading = False
        for name, job in reversed(self.jobs):
            try:
                await job.stop()
            except Exception:
                log.exception("instance jobs: stopping %s failed", name)
