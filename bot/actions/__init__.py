"""The action worker: carries out the action outbox (bot/storage/actions.py) through each
connector's ``execute`` (payload validated by the action's model, then its handler).

What becomes of an attempt, from the handler's answer (connectors/base.py, ActionError):

* it returns: done. ``ActionDone`` (nothing to do: the member left): done, with the reason;
* ``ActionRetry`` (Discord or a server down, a 429, a timeout): tried again after the time the
  target asked for, else an exponential backoff (``backoff_base`` doubling, at most
  ``backoff_max``), for ever for an idempotent action. A non-idempotent one is tried again only
  when nothing was sent (``sent=False``); otherwise its outcome is unknown;
* ``ActionPaused`` (a refusal an admin can fix): its pause key waits and is probed, like a feed
  channel Discord refuses;
* ``ActionFailed`` or a payload its model refuses: failed, with the reason;
* anything else (a bug): tried again if idempotent, unknown if not, and logged.

At start, attempts a stopped process left in flight are sorted out (``recover``): idempotent
ones are tried again, the others are "unknown" and never sent twice. With several processes on
PostgreSQL an attempt in flight holds a lease that its process renews while it runs; one whose
lease ran out (its process died) is sorted out the same way by whichever worker looks next
(``expire``, every round).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import timedelta

from bot.clock import Clock, from_iso
from bot.storage import Store
from bot.storage.records import QueuedAction
from bot.tasks import cancel_task
from connectors.base import (
    Action,
    ActionDone,
    ActionFailed,
    ActionPaused,
    ActionRetry,
    SchemaError,
)
from connectors.registry import Registry

log = logging.getLogger(__name__)

BATCH = 20  # claimed at once
CONCURRENCY = 4  # carried out side by side (the targets' own rate limits still apply)
POLL_SECONDS = 5.0  # also picks up what another process queued
MIN_WAIT_SECONDS = 1.0
RENEW_SECONDS = 5.0  # a quarter of an attempt's lease (bot/storage/postgres/pg_actions.py)


class ActionWorker:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        *,
        backoff_base: float = 5.0,
        backoff_max: float = 3600.0,
        probe_every: timedelta = timedelta(minutes=10),
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.probe_every = probe_every
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        again, unknown = await self.store.actions.recover(self.clock.now())
        if again or unknown:
            log.info(
                "actions: %d left in flight are tried again, %d have an unknown outcome",
                again,
                unknown,
            )
        self._task = asyncio.create_task(self._run(), name="questlog-actions")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Something was queued: look now."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                again, unknown = await self.store.actions.expire(self.clock.now())
                if again or unknown:
                    log.warning(
                        "actions: %d attempts of a process that died are tried again, %d have"
                        " an unknown outcome",
                        again,
                        unknown,
                    )
                while await self.run_once():
                    pass
            except Exception:
                log.exception("actions: a round failed; the worker goes on")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """Carry out what is due now; how many were attempted. Looking costs one read; the
        write that claims happens only when something is due."""
        now = self.clock.now()
        next_due = await self.store.actions.next_due()
        if next_due is None or from_iso(next_due) > now:
            return 0
        due = await self.store.actions.claim_due(now, BATCH)
        keys: dict[tuple[int, str], list[QueuedAction]] = {}
        for queued in due:  # one key's actions one after another: a refusal stops the rest
            keys.setdefault((queued.guild_id, queued.pause_key), []).append(queued)
        groups = list(keys.values())
        for start in range(0, len(groups), CONCURRENCY):
            await asyncio.gather(
                *(self._attempt_all(g) for g in groups[start : start + CONCURRENCY])
            )
        return len(due)

    async def _attempt_all(self, group: list[QueuedAction]) -> None:
        for queued in group:
            try:
                if await self._attempt(queued):
                    return  # paused: the others of its key were set waiting with it
            except Exception:  # recording the outcome failed: the rest of the round goes on
                log.exception("actions: could not record an attempt of #%s", queued.id)

    async def _attempt(self, queued: QueuedAction) -> bool:
        """One attempt and its outcome recorded; whether the action's key is paused now."""
        actions = self.store.actions
        try:
            connector = self.registry.get(queued.connector)
        except KeyError as exc:  # a connector that is gone: it can never work here
            await actions.final(queued, "failed", str(exc), self.clock.now())
            return False
        if not await actions.begin(queued, self.clock.now()):
            return False  # no longer waiting (forgotten meanwhile)
        try:
            async with self._leased(queued):
                await connector.execute(Action(queued.action, queued.payload))
        except ActionDone as exc:
            await actions.done(queued, self.clock.now(), str(exc), already=exc.already)
        except ActionRetry as exc:
            now = self.clock.now()
            if exc.sent and not queued.idempotent:
                await actions.final(queued, "unknown", f"{exc} (it may have been sent)", now)
                return
            wait = exc.retry_after if exc.retry_after is not None else self._backoff(queued)
            wait = max(MIN_WAIT_SECONDS, wait)  # a target asking for 0 s is not spun on
            await actions.retry(queued, str(exc), now + timedelta(seconds=wait), now)
        except ActionPaused as exc:
            await actions.paused(queued, str(exc), self.clock.now(), self.probe_every)
            log.warning(
                "actions: %s in guild %s paused: %s", queued.pause_key, queued.guild_id, exc
            )
            return True
        except (ActionFailed, SchemaError) as exc:
            await actions.final(queued, "failed", str(exc), self.clock.now())
        except Exception as exc:
            log.exception("actions: %s.%s failed unexpectedly", queued.connector, queued.action)
            now = self.clock.now()
            reason = f"an unexpected error ({type(exc).__name__})"
            if queued.idempotent:
                await actions.retry(
                    queued, reason, now + timedelta(seconds=self._backoff(queued)), now
                )
            else:
                await actions.final(queued, "unknown", reason, now)
        else:
            await actions.done(queued, self.clock.now())
        return False

    @contextlib.asynccontextmanager
    async def _leased(self, queued: QueuedAction) -> AsyncIterator[None]:
        """Renew this process's lease on the attempt while it runs (several processes on
        PostgreSQL: without renewals another process would count it left behind)."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(RENEW_SECONDS)
                try:
                    if not await self.store.actions.renew(queued, self.clock.now()):
                        log.warning("actions: the lease of #%s was lost", queued.id)
                        return
                except Exception as exc:  # the database away: the next renewal tries again
                    log.warning("actions: renewing the lease of #%s failed: %s", queued.id, exc)

        task = asyncio.create_task(keep(), name=f"questlog-action-lease-{queued.id}")
        try:
            yield
        finally:
            await cancel_task(task)

    def _backoff(self, queued: QueuedAction) -> float:
        wait = min(self.backoff_max, self.backoff_base * 2 ** min(queued.attempts, 20))
        return wait * random.uniform(0.8, 1.2)

    async def seconds_until_due(self) -> float | None:
        """For tests and status: seconds until the next action or probe is due."""
        due = await self.store.actions.next_due()
        if due is None:
            return None
        return max(0.0, (from_iso(due) - self.clock.now()).total_seconds())
