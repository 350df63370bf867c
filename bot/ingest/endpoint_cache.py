"""Active endpoints by path for the web server, kept in memory.

The cache polls a counter that the database's triggers keep, so a change made by the CLI (another
process) takes effect within about half a second, without a restart."""

from __future__ import annotations

import asyncio
import logging

from bot.clock import Clock
from bot.storage import Endpoint, Store
from bot.tasks import cancel_task

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class EndpointCache:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._by_path: dict[str, Endpoint] = {}
        self._version: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_touch: dict[int, float] = {}

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
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="questlog-endpoint-cache")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
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
