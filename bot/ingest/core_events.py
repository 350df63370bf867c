"""Events the core announces itself (``/feed test``), as a source of their own: they take the
one ingest path like every other source's, with this connector to identify and normalize them.
It is the core's, not a package in ``connectors/``: it has no endpoints, routes or config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import ActivityEvent, Connector, EventSpec, LinkInfo, timestamp


class CoreEvents(Connector):
    """A raw event here is the event itself: ``type``, ``id`` (unique per type), ``title``,
    ``at`` (ISO text), optionally ``payload`` and ``user_id`` (the member it is about)."""

    key = "questlog"
    name = "Questlog"
    events = (EventSpec("feed.test", "A sample event, posted by /feed test"),)

    def dedupe_key(self, raw: Mapping[str, Any]) -> str:
        return f"questlog:{raw['type']}:{raw['id']}"

    def normalize(self, raw: Mapping[str, Any], link: LinkInfo | None) -> ActivityEvent | None:
        return ActivityEvent(
            type=str(raw["type"]),
            title=str(raw["title"]),
            occurred_at=timestamp(raw["at"], "at"),
            source=self.key,
            payload=dict(raw.get("payload") or {}),
            actor_user_id=raw.get("user_id"),
        )


CORE_EVENTS = CoreEvents()
