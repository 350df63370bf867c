"""The daily prune: every walk to its end in small steps, then the freed pages reclaimed."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.storage import Store
from bot.storage.records import PRUNE_COUNTS, PRUNE_KINDS, RetentionPolicy
from bot.tasks import cancel_task

log = logging.getLogger(__name__)

STEP_ROWS = 200  # rows a step examines: a few milliseconds of the writer (README)
# An activity event costs a step a few times what a raw event does (its outbox rows, three
# indexes, its raw event packed again), so the feed walk takes fewer per step.
ROWS_PER_STEP_DIVISOR = {"feed": 4}
RECLAIM_PAGES = 512  # pages (2 MiB at 4 KiB) given back per reclaim step
FIRST_RUN_SECONDS = 600.0  # after start-up, so a restart loop does not prune in a loop
EVERY_SECONDS = 86_400.0


@dataclass
class PruneReport:
    changed: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(PRUNE_COUNTS, 0)))
    steps: int = 0
    longest_step_seconds: float = 0.0
    longest_by_kind: dict[str, float] = field(default_factory=dict)
    step_seconds: dict[str, list[float]] = field(default_factory=dict)
    bytes_before: int = 0
    bytes_after: int = 0
    free_pages_left: int = 0
    auto_vacuum: int = 0  # 0 none, 1 full, 2 incremental

    @property
    def freed_bytes(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)

    def summary(self) -> str:
        what = ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in self.changed.items() if n)
        return (
            f"pruned {what or 'nothing'} in {self.steps} steps (longest"
            f" {self.longest_step_seconds * 1000:.1f} ms); file {self.bytes_before:,} ->"
            f" {self.bytes_after:,} bytes"
        )


class Pruner:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        policy: RetentionPolicy,
        *,
        step_rows: int = STEP_ROWS,
        first_run: float = FIRST_RUN_SECONDS,
        every: float = EVERY_SECONDS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.step_rows = step_rows
        self.first_run = first_run
        self.every = every
        self.last_report: PruneReport | None = None
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, *, reclaim: bool = True) -> PruneReport:
        """Prune everything that is due now; each step is one short write, and other writes
        (webhooks, the feed) take turns with them in the writer's queue."""
        report = PruneReport()
        space = await self.store.retention.space()
        report.bytes_before = space["pages"] * space["page_size"]
        report.auto_vacuum = space["auto_vacuum"]
        now = self.clock.now()
        await self.store.retention.begin()
        for kind in PRUNE_KINDS:
            while True:
                rows = max(1, self.step_rows // ROWS_PER_STEP_DIVISOR.get(kind, 1))
                step = await self.store.retention.prune_step(kind, now, self.policy, rows)
                report.steps += 1
                report.longest_step_seconds = max(report.longest_step_seconds, step.seconds)
                report.longest_by_kind[kind] = max(
                    report.longest_by_kind.get(kind, 0.0), step.seconds
                )
                report.step_seconds.setdefault(kind, []).append(step.seconds)
                report.changed.update(step.changed)
                if step.examined == 0:
                    break
                await asyncio.sleep(0)  # let waiting requests in between two steps
        if reclaim and report.auto_vacuum == 2:
            free = (await self.store.retention.space())["free_pages"]
            while free > 0:
                left = await self.store.retention.reclaim(RECLAIM_PAGES)
                if left >= free:  # nothing moved (another process holds the lock): next time
                    break
                free = left
                await asyncio.sleep(0)
        space = await self.store.retention.space()
        report.bytes_after = space["pages"] * space["page_size"]
        report.free_pages_left = space["free_pages"]
        self.last_report = report
        return report

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="questlog-prune")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_run)
        while True:
            try:
                report = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pruning failed; trying again in a day")
            else:
                log.info("%s", report.summary())
            await asyncio.sleep(self.every)
