"""Custom webhooks: any script posts ``{"event_type", "title", "at"?, "id"?, "player"?, ...}``.

``id`` is the sender's own dedupe key; without it, the canonical JSON of the whole body is.
``update_key`` (optional) makes deliveries versions of one feed item: a later delivery with the
same key edits the feed message instead of posting a new one (a live score, a daily summary).
Extra keys are kept in the payload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.base import (
    ActivityEvent,
    Capabilities,
    Connector,
    EndpointKind,
    EventSpec,
    LinkInfo,
    RouteSpec,
    SchemaError,
    WebhookContext,
    canonical_json,
    expect_object,
    iso,
    optional_text,
    sha256_hex,
    text,
    timestamp,
    without_nul,
)

_EVENT_TYPE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}", re.ASCII)


class CustomConnector(Connector):
    key = "custom"
    name = "Custom webhook"
    capabilities = Capabilities(can_webhook=True)
    events = (EventSpec("custom.*", "Any event a custom script reports (custom.<event_type>)"),)
    link_source = "custom"
    endpoint_kinds = (
        EndpointKind("custom", "scripts", routes=(RouteSpec("/webhooks/custom/{path}", "custom"),)),
    )

    def parse_webhook(self, body: Any, context: WebhookContext) -> dict[str, Any]:
        data = expect_object(body)
        event_type = data.get("event_type")
        if event_type is None:
            raise SchemaError(
                "event_type", "is required (1-64 characters of a-z, 0-9, '_', '.', '-')"
            )
        if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
            raise SchemaError("event_type", "must be 1-64 characters of a-z, 0-9, '_', '.', '-'")
        for key, value in data.items():  # the extra keys are kept in the event as they came
            without_nul(key, "(a key)")
            without_nul(value, key)
        raw: dict[str, Any] = dict(data)
        raw["event_type"] = event_type
        raw["title"] = text(data.get("title"), "title", max_len=256)
        raw["at"] = iso(
            timestamp(data["at"], "at") if data.get("at") is not None else context.received_at
        )
        if data.get("id") is not None:
            ident = data["id"]
            if isinstance(ident, bool) or not isinstance(ident, str | int):
                raise SchemaError("id", "must be a string or an integer")
            raw["id"] = text(str(ident), "id", max_len=200)
        if data.get("update_key") is not None:
            raw["update_key"] = text(data["update_key"], "update_key", max_len=200)
        if data.get("player") is not None:
            player = expect_object(data["player"], "player")
            player_id = player.get("id")
            if isinstance(player_id, bool) or not isinstance(player_id, str | int):
                raise SchemaError("player.id", "is required (a string or an integer)")
            raw["player"] = {
                "id": text(str(player_id), "player.id", max_len=128),
                "name": optional_text(player.get("name"), "player.name", max_len=128),
            }
        # The body's own 'at' (or its absence) is part of its identity; the filled-in value is not.
        raw["_dedupe"] = f"id:{raw['id']}" if "id" in raw else sha256_hex(canonical_json(data))
        return raw

    def dedupe_key(self, raw: Mapping[str, Any]) -> str:
        return f"custom:{raw['_dedupe']}"

    def player_id(self, raw: Mapping[str, Any]) -> str | None:
        player = raw.get("player")
        return str(player["id"]) if player else None

    def normalize(self, raw: Mapping[str, Any], link: LinkInfo | None) -> ActivityEvent | None:
        player = raw.get("player") or {}
        payload = {k: v for k, v in raw.items() if not k.startswith("_")}
        return ActivityEvent(
            type=f"custom.{raw['event_type']}",
            title=raw["title"],
            occurred_at=timestamp(raw["at"], "at"),
            source=self.key,
            payload=payload,
            actor_user_id=link.discord_user_id if link else None,
            actor_external_id=player.get("id"),
            actor_name=player.get("name"),
            external_id=raw.get("id"),
            update_key=f"custom:{raw['update_key']}" if raw.get("update_key") else None,
        )
