"""Active endpoints by path for the web server, kept in memory.

The database's triggers keep a counter of endpoint changes. On SQLite the cache polls it, so a
change made by the CLI (another process) takes effect within about half a second, without a
restart. On PostgreSQL the same triggers notify, and the cache listens: a change made by any
process is read at once, and the counter is polled only every half minute as a safety net (and
every half second again while the listening connection is lost)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.clock import Clock
from bot.storage import Endpoint, Store
from bot.storage.interface import ChangeListener
from bot.tasks import cancel_task

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
LISTENING_POLL_SECONDS = 30.0
RELISTEN_SECONDS = 5.0


class EndpointCache:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._by_path: dict[str, Endpoint] = {}
        self._version: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_touch: dict[int, float] = {}
        self._listener: ChangeListener | None = None
        self._changed = asyncio.Event()
        self._listen_tried = float("-inf")

    async def refresh(self) -> bool:
        if await self.store.endpoints.version() == self._version:
            return False
        version, endpoints = await self.store.endpoints.snapshot()
        self._by_path = {e.path: e for e in endpoints if not e.disabled}
        self._version = version
        log.debug("endpoint cache: %d active endpoints (version %s)", len(self._by_path), version)
        return True

    def get(self, path: str) -> Endpoint | None:
        return self._by_path.get(path)

    async def start(self) -> None:
        self._listener = await self.store.endpoints.listen(self._changed.set)
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="questlog-endpoint-cache")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    async def _listen_again(self) -> None:
        """The listening connection was lost: a new one (polling every half second until it
        is back, trying to listen again every few seconds)."""
        assert self._listener is not None
        now = self.clock.monotonic()
        if now - self._listen_tried < RELISTEN_SECONDS:
            return
        self._listen_tried = now
        fresh = await self.store.endpoints.listen(self._changed.set)
        if fresh is not None:
            await self._listener.close()
            self._listener = fresh

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.alive

    async def _poll(self) -> None:
        while True:
            wait = LISTENING_POLL_SECONDS if self.listening else POLL_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
            self._changed.clear()
            try:
                if self._listener is not None and not self._listener.alive:
                    await self._listen_again()
                await self.refresh()
            except Exception as exc:  # keep serving from the cache; the next poll retries
                log.warning("endpoint cache refresh failed: %s", exc)

    def should_touch(self, endpoint: Endpoint) -> bool:
        """At most one last_used_at write per endpoint per minute."""
        now = self.clock.monotonic()
        last = self._last_touch.get(endpoint.id)
        if last is not None and now - last < 60:
            return False
        self._last_touch[endpoint.id] = now
        return True
