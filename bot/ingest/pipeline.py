"""The one ingest path every source calls (DESIGN.md, "Data flow").

``Pipeline.ingest(source, guild_id, raw)`` hands the raw event, its dedupe hash (sha256 of the
connector's ``dedupe_key``, led by the hour of its ``dedupe_time``), its playtime/session effects and the connector to the store, whose
ingest transaction (bot/storage/events.py) stores the raw event under a unique
``(guild_id, dedupe_hash)``, applies the effects, normalizes it into at most one activity event,
announces the milestones the change reached and queues the event for the guild's feed channel,
all in one transaction of the group-committing writer. A duplicate stops at the first INSERT and
changes nothing. That transaction is the only code that stores activity events: the Steam sync
hands it its observations (inside its own transaction, bot/storage/steam_state.py), and
``announce`` takes the core's own events (``/feed test``) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bot.clock import Clock, to_iso
from bot.ingest.core_events import CORE_EVENTS
from bot.ingest.policy import DEFAULT_MILESTONE_HOURS, IngestPolicy
from bot.metrics import Metrics
from bot.storage import Store
from bot.storage.events import compact_json, dedupe_hash
from bot.storage.records import Delivery, IngestResult
from connectors.base import Connector, IgnoredDelivery, SchemaError, WebhookContext
from connectors.registry import Registry

log = logging.getLogger(__name__)

# The web layer talks to the core only; these connector types are part of the core's interface.
__all__ = ["IgnoredDelivery", "IngestResult", "Pipeline", "SchemaError", "WebhookContext"]


class Pipeline:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        metrics: Metrics,
        on_event: Callable[[], None] | None = None,
        milestone_hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS,
    ) -> None:
        self.policy = IngestPolicy.from_registry(registry, milestone_hours)
        self.store = store
        self.registry = registry
        self.clock = clock
        self.metrics = metrics
        self.on_event = on_event  # wakes the feed poster in-process
        self.on_actions: Callable[[], None] | None = None  # wakes the action worker

    def parse_webhook(self, source: str, body: Any, context: WebhookContext) -> dict[str, Any]:
        """Validate a decoded webhook body with the source's connector (SchemaError -> 422,
        IgnoredDelivery -> 202, counted here)."""
        try:
            return self.registry.get(source).parse_webhook(body, context)
        except IgnoredDelivery:
            self.count_ignored(source)
            raise

    async def already_ingested(self, source: str, guild_id: int, raw: Mapping[str, Any]) -> bool:
        """Whether a raw event with this dedupe key was stored for the guild."""
        identity = dedupe_hash(self.registry.get(source), raw)
        return await self.store.events.seen(guild_id, identity)

    def count_ignored(self, source: str) -> None:
        self.metrics.inc("questlog_ingest_total", source=source, result="ignored")

    async def ingest(
        self,
        source: str,
        guild_id: int,
        raw: Mapping[str, Any],
        *,
        endpoint_id: int | None = None,
        received_at: datetime | None = None,
        timestamped: bool = False,
    ) -> IngestResult:
        """``received_at``: when the web layer got the delivery (default: now).
        ``timestamped``: its sender retries with the original signature and time, so a retry
        past the payload window is refused as stale and pruning may remove its dedupe row."""
        return await self._ingest(
            self.registry.get(source), guild_id, raw, endpoint_id, received_at, timestamped
        )

    async def announce(self, guild_id: int, raw: Mapping[str, Any]) -> IngestResult:
        """An event the core announces itself (bot/ingest/core_events.py), the same way."""
        return await self._ingest(CORE_EVENTS, guild_id, raw, None, None, False)

    async def _ingest(
        self,
        connector: Connector,
        guild_id: int,
        raw: Mapping[str, Any],
        endpoint_id: int | None,
        received_at: datetime | None,
        timestamped: bool,
    ) -> IngestResult:
        delivery = Delivery(
            guild_id,
            connector.key,
            endpoint_id,
            dedupe_hash(connector, raw),
            compact_json(raw),
            to_iso(received_at or self.clock.now()),
            timestamped,
        )
        result = await self.store.events.ingest(
            delivery, connector, raw, connector.effects(raw), self.policy
        )
        status = "withheld" if result.details.get("withheld") else result.status
        self.metrics.inc("questlog_ingest_total", source=connector.key, result=status)
        if result.event_ids and self.on_event is not None:
            self.on_event()
        if result.actions and self.on_actions is not None:
            self.on_actions()
        return result
