"""A missing required field says it is required (and what it wants), for every connector and
get-playtime; a present field of the wrong shape says what shape it must have."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.services.get_playtime import parse_query
from connectors.base import SchemaError, WebhookContext
from connectors.registry import Registry

UUID = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
REGISTRY = Registry().discover()
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def context() -> WebhookContext:
    """What the web layer hands over after a verified signature (BattleMetrics needs it)."""
    return WebhookContext(
        received_at=NOW,
        signed_at=NOW,
        signed_at_text="2026-12-02T12:00:00.000Z",
        signature="ab" * 32,
    )


@pytest.mark.parametrize(
    ("source", "body", "field"),
    [
        ("custom", {}, "event_type"),
        ("custom", {"event_type": "match"}, "title"),
        ("custom", {"event_type": "match", "title": "t", "player": {}}, "player.id"),
        ("minecraft", {}, "type"),
        ("minecraft", {"type": "session.started"}, "player_uuid"),
        ("minecraft", {"type": "session.started", "player_uuid": UUID}, "at"),
        ("minecraft", {"type": "link.confirm", "player_uuid": UUID}, "code"),
        ("battlemetrics", {}, "steam_id"),
        ("battlemetrics", {"steam_id": "76561198000000001"}, "playtime"),
    ],
)
def test_a_missing_field_is_required(source: str, body: dict[str, Any], field: str) -> None:
    with pytest.raises(SchemaError) as info:
        REGISTRY.get(source).parse_webhook(body, context())
    assert info.value.field == field
    assert "is required" in str(info.value), str(info.value)


def test_get_playtime_steam_ids_is_required() -> None:
    with pytest.raises(SchemaError) as info:
        parse_query({"game_id": 393380}, None)
    assert info.value.field == "steam_ids" and "is required" in str(info.value)


@pytest.mark.parametrize(
    ("source", "body", "field", "says"),
    [
        ("custom", {"event_type": "match", "title": 5}, "title", "must be a string"),
        ("minecraft", {"type": "session.started", "player_uuid": 5}, "player_uuid", "UUID"),
        ("battlemetrics", {"steam_id": True, "playtime": "1"}, "steam_id", "must be a SteamID64"),
    ],
)
def test_a_wrong_shape_says_the_shape(
    source: str, body: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(SchemaError) as info:
        REGISTRY.get(source).parse_webhook(body, context())
    assert info.value.field == field and says in str(info.value)
    assert "is required" not in str(info.value)
