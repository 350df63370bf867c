"""The Steam connector: links members to SteamID64s and (later) syncs from the Steam Web API.

Only the declaration lives here for now; :mod:`connectors.steam.client` does the HTTP work.
Achievement sync, and with it ``dedupe_key``/``normalize``, comes in a later change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import (
    ActivityEvent,
    Capabilities,
    Connector,
    EventSpec,
    LinkInfo,
    RateLimits,
    SecretSpec,
)

#: Steam Web API Terms of Use: 100,000 calls per key per day.
STEAM_DAILY_CALL_LIMIT = 100_000


class SteamConnector(Connector):
    key = "steam"
    name = "Steam"
    link_source = "steam"
    capabilities = Capabilities(
        can_sync=True,
        requires_auth=False,
        rate_limits=RateLimits(requests_per_day=STEAM_DAILY_CALL_LIMIT),
    )
    secrets = (
        SecretSpec("api_key", "Steam Web API key from https://steamcommunity.com/dev/apikey"),
    )
    events = (
        EventSpec(
            "steam.game_played",
            "A linked player played a Steam game today (one line per game and day, updated)",
        ),
        EventSpec(
            "steam.achievement",
            "A linked player unlocked a Steam achievement (with its rarity)",
        ),
        EventSpec("steam.session.started", "A linked player started a Steam game", False),
        EventSpec("steam.session.ended", "A linked player stopped playing a Steam game", False),
    )

    def dedupe_key(self, raw: Mapping[str, Any]) -> str:
        raise NotImplementedError("Steam sync is not implemented yet")

    def normalize(self, raw: Mapping[str, Any], link: LinkInfo | None) -> ActivityEvent | None:
        raise NotImplementedError("Steam sync is not implemented yet")
