"""The scheduler: one sync service per connector that can sync (``Capabilities.can_sync``).

A connector declares that its source can be polled; the core owns how: a sync service per
source holds the schedule, the budget and the writes (for Steam, bot/steam_sync/sync.py with its
summaries planner). The scheduler starts every service whose connector can sync, stops them in
reverse order, and routes "links changed" and "sync now" to the right one. A connector that can
sync but has no service here is reported once at start-up instead of being silently ignored.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

from connectors.registry import Registry

log = logging.getLogger(__name__)


class SyncService(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def links_changed(self) -> None:
        """A link of this source was made or removed."""
        ...

    async def sync_report(self, external_ids: list[str] | None = None) -> Counter[str]:
        """Sync these accounts (every linked one when None) now, outside the plan."""
        ...


class Scheduler:
    def __init__(self, registry: Registry, services: dict[str, SyncService]) -> None:
        self.services: dict[str, SyncService] = {}
        for key in registry.keys():
            if not registry.get(key).capabilities.can_sync:
                continue
            service = services.get(key)
            if service is None:
                log.warning("connector %r can sync, but the core has no sync service for it", key)
                continue
            self.services[key] = service

    async def start(self) -> None:
        for service in self.services.values():
            await service.start()

    async def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            await service.stop()

    def links_changed(self, source: str) -> None:
        service = self.services.get(source)
        if service is not None:
            service.links_changed()

    async def sync_now(self, source: str, external_ids: list[str] | None = None) -> Counter[str]:
        service = self.services.get(source)
        if service is None:
            raise LookupError(f"no sync service for {source!r}")
        return await service.sync_report(external_ids)
