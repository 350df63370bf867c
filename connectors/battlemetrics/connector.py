"""BattleMetrics trigger webhooks: a player's playtime for a game (set-playtime).

BattleMetrics renders the body from a template, so numbers usually arrive as strings
(``"playtime": "{{player.game.timePlayed}}"`` gives ``"7200"``, in seconds). A player without a
Steam identifier renders ``"steam_id": ""``; that delivery is acknowledged and ignored, because
BattleMetrics disables a webhook that keeps failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import (
    ActivityEvent,
    Capabilities,
    ConfigKey,
    Connector,
    Effect,
    EndpointKind,
    EventSpec,
    IgnoredDelivery,
    LinkInfo,
    RouteSpec,
    SchemaError,
    SetPlaytime,
    WebhookContext,
    expect_object,
    integer,
    iso,
    optional_text,
    steam_id,
    timestamp,
)

MAX_PLAYTIME_SECONDS = 10**10  # ~317 years: anything above is a broken template
MAX_APP_ID = 2**32 - 1


class BattleMetricsConnector(Connector):
    key = "battlemetrics"
    name = "BattleMetrics"
    capabilities = Capabilities(can_webhook=True)
    events = (EventSpec("playtime.milestone", "A player's playtime in a game crossed a milestone"),)
    link_source = "steam"
    announces = False  # a playtime report is state; the pipeline announces milestones it crosses
    endpoint_kinds = (
        EndpointKind(
            "playtime",
            "BattleMetrics + get-playtime",
            routes=(
                RouteSpec(
                    "/set-playtime/bm/{path}/",
                    "set_playtime",
                    label="BattleMetrics webhook",
                    scheme="battlemetrics",
                    content_types=("application/json", "text/plain"),
                    late_retries=True,
                ),
                RouteSpec(
                    "/get-playtime/{path}/",
                    "get_playtime",
                    label="get-playtime",
                    scheme="hex",
                    handler="get_playtime",
                    read=True,
                ),
            ),
            options=frozenset({"read_secret", "game_id"}),
        ),
    )
    config = (
        ConfigKey(
            "tolerance_seconds",
            300,
            "How far the X-Signature timestamp may be from this server's clock, in seconds.",
            minimum=1,
            maximum=86_400,
        ),
    )

    def parse_webhook(self, body: Any, context: WebhookContext) -> dict[str, Any]:
        data = expect_object(body)
        if context.signed_at is None or context.signed_at_text is None or not context.signature:
            raise SchemaError("X-Signature", "a BattleMetrics delivery must carry t= and s=")
        if "steam_id" not in data:
            raise SchemaError("steam_id", "is required (for example {{player.steamID}})")
        raw_id = data["steam_id"]
        if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
            raise IgnoredDelivery("steam_id is empty: the player has no Steam identifier")
        player = steam_id(raw_id, "steam_id")
        if "playtime" not in data:
            raise SchemaError(
                "playtime", "is required (seconds, for example {{player.game.timePlayed}})"
            )
        seconds = integer(data["playtime"], "playtime", hi=MAX_PLAYTIME_SECONDS)
        if context.fixed_game_id is not None:
            game = context.fixed_game_id
        elif data.get("game_id") is None:
            raise SchemaError("game_id", "is required because this endpoint has no fixed game")
        else:
            game = integer(data["game_id"], "game_id", lo=1, hi=MAX_APP_ID)
        return {
            "type": "set_playtime",
            "steam_id": player,
            "playtime": seconds,
            "game_id": game,
            "name": optional_text(data.get("name"), "name", max_len=128),
            "t": context.signed_at_text,
            "s": context.signature.lower(),
            "signed_at": iso(context.signed_at),
        }

    def dedupe_key(self, raw: Mapping[str, Any]) -> str:
        # One delivery is one (t, s) pair: a BattleMetrics retry repeats both.
        return f"battlemetrics:set_playtime:{raw['t']}:{raw['s']}"

    def dedupe_time(self, raw: Mapping[str, Any]) -> str | None:
        return raw.get("signed_at")  # parsed from ``t``, which the key holds

    def player_id(self, raw: Mapping[str, Any]) -> str | None:
        return str(raw["steam_id"])

    def effects(self, raw: Mapping[str, Any]) -> list[Effect]:
        return [
            SetPlaytime(
                player_id=str(raw["steam_id"]),
                game_id=str(raw["game_id"]),
                seconds=int(raw["playtime"]),
                source_time=timestamp(raw["signed_at"], "signed_at"),
            )
        ]

    def normalize(self, raw: Mapping[str, Any], link: LinkInfo | None) -> ActivityEvent | None:
        # A playtime report is state, not news; the pipeline announces milestones it crosses.
        return None
