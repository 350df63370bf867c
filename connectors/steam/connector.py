"""The Steam connector: members link SteamID64s; the core's Steam sync polls the Steam Web API
(:mod:`connectors.steam.client`) and hands what it observes to the one ingest path as raw
observations, which this connector identifies (``dedupe_key``) and turns into events
(``normalize``), once per guild that links the account.

Observations (``raw["type"]``), every time an ISO text in ``at``:

* ``played``: the account's total for a game grew; ``today`` is what was played since the
  community's midnight, ``day`` that day. One feed line per player, game and day, edited as
  the day goes on (``update_key``).
* ``achievement``: a new unlock (``api_name``), with the game's schema entry (``info``: name,
  description, icon) and the share of players who have it (``percent``).
* ``session.started`` / ``session.ended``: Steam shows the player in a game, or no longer
  (``seconds`` played, from ``started``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import (
    ActivityEvent,
    Capabilities,
    ConfigKey,
    Connector,
    EventSpec,
    LinkInfo,
    RateLimits,
    SchemaError,
    SecretSpec,
    human_duration,
    timestamp,
)

#: Steam Web API Terms of Use: 100,000 calls per key per day.
STEAM_DAILY_CALL_LIMIT = 100_000
RARE_PERCENT = 10.0  # below this share of players an unlock is called rare in the feed
UNNAMED = "A linked player"
OBSERVATIONS = ("played", "achievement", "session.started", "session.ended")


def rarity(percent: float | None) -> str | None:
    """'rare: 2.3 % of players' below RARE_PERCENT, else '41.0 % of players'."""
    if percent is None:
        return None
    shown = f"{percent:.1f}" if percent >= 0.1 else f"{percent:.2f}"
    return f"rare: {shown} % of players" if percent < RARE_PERCENT else f"{shown} % of players"


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
    config = (
        ConfigKey(
            "api_key",
            "",
            "Steam Web API key from https://steamcommunity.com/dev/apikey. Empty: Steam lookups answer\n"
            '"not_configured". Environment: STEAM_API_KEY.',
            env="STEAM_API_KEY",
        ),
        ConfigKey(
            "api_base_url",
            "https://api.steampowered.com",
            "Point this at a mirror or a test double; the default is Valve's API.",
            url=True,
        ),
        ConfigKey(
            "daily_call_limit",
            100_000,
            "Valve's limit is 100,000 calls a day; Questlog stops calling when the day's count"
            " reaches this.",
            minimum=1,
            maximum=10_000_000,
        ),
        ConfigKey(
            "requests_per_second",
            5.0,
            "Client-side pacing of Steam calls (Steam also limits bursts per IP).",
            minimum=0.1,
            maximum=1000,
        ),
        ConfigKey(
            "timeout_seconds", 10.0, "Per-request timeout in seconds.", minimum=0.5, maximum=120
        ),
        ConfigKey("max_concurrency", 8, "Steam lookups running at once.", minimum=1, maximum=64),
        ConfigKey(
            "retry_backoff_seconds",
            0.5,
            "First retry delay after a 429, 5xx or timeout; doubles per retry, with random jitter.",
            minimum=0,
            maximum=60,
        ),
        ConfigKey(
            "openid_url",
            "https://steamcommunity.com/openid/login",
            "Sign in through Steam (OpenID 2.0): Steam's provider endpoint. Change it only for a"
            " test double.",
            url=True,
        ),
        ConfigKey(
            "sync_enabled",
            True,
            "Sync every linked Steam account's library (playtime per day, for the feed, /playtime"
            " and\nleaderboards). Needs api_key.",
        ),
        ConfigKey(
            "sync_interval_seconds",
            300,
            "Seconds between two checks of who is in a game (GetPlayerSummaries) and between two"
            " library\nreads of a player in a game; everyone else is read once a day. Stretched"
            " when the day's calls\nwould pass the sync's share of daily_call_limit (`questlog"
            " status` shows the plan).\nAt least 60.",
            minimum=60,
            maximum=7 * 86_400,
        ),
        ConfigKey(
            "sync_share",
            0.8,
            "Share of daily_call_limit the sync may spend (its schedule, /sync now and questlog\n"
            "sync); the rest is kept for get-playtime lookups and /link. Each side stops at its\n"
            'share: lookups past theirs answer from the stored values ("rate_limited").',
            minimum=0.0,
            maximum=1.0,
        ),
        ConfigKey(
            "lookups_per_endpoint_per_day",
            2_000,
            "Steam lookups (one GetOwnedGames call for one id) each get-playtime endpoint may\n"
            "make per UTC day; past it, answers carry the stored values with steam_status\n"
            '"rate_limited".',
            minimum=0,
            maximum=1_000_000,
        ),
        ConfigKey(
            "sync_now_cooldown_seconds",
            600,
            "Seconds before /sync now can run again in the same server (questlog sync on the\n"
            "machine has no cooldown). 0 = none.",
            minimum=0,
            maximum=86_400,
        ),
    )

    def dedupe_key(self, raw: Mapping[str, Any]) -> str:
        kind, steam_id, app_id = raw["type"], raw["steam_id"], raw["app_id"]
        if kind == "played":  # one announcement per new total
            return f"steam:played:{steam_id}:{app_id}:{raw['total']}"
        if kind == "achievement":  # once per unlock, ever
            return f"steam:achievement:{steam_id}:{app_id}:{raw['api_name']}"
        if kind in ("session.started", "session.ended"):
            return f"steam:{kind}:{steam_id}:{app_id}:{raw['started']}"
        raise SchemaError("type", f"must be one of {', '.join(OBSERVATIONS)}")

    def dedupe_time(self, raw: Mapping[str, Any]) -> str | None:
        # A session's start is in its key; a total or an unlock has no time of its own.
        return raw["started"] if raw["type"] in ("session.started", "session.ended") else None

    def player_id(self, raw: Mapping[str, Any]) -> str | None:
        return str(raw["steam_id"])

    def normalize(self, raw: Mapping[str, Any], link: LinkInfo | None) -> ActivityEvent | None:
        kind, steam_id, app_id = raw["type"], str(raw["steam_id"]), int(raw["app_id"])
        at = timestamp(raw["at"], "at")
        who = (link.display_name if link else None) or UNNAMED
        game_name = raw.get("game_name")
        game = game_name or f"app {app_id}"
        common: dict[str, Any] = {
            "source": self.key,
            "actor_user_id": link.discord_user_id if link else None,
            "actor_external_id": steam_id,
            "actor_name": link.display_name if link else None,
        }
        if kind == "played":
            today, total, day = int(raw["today"]), int(raw["total"]), str(raw["day"])
            return ActivityEvent(
                type="steam.game_played",
                title=f"{who} played {game} today: {human_duration(today)}",
                occurred_at=at,
                payload={
                    "game_id": app_id,
                    "game_name": game_name,
                    "seconds_today": today,
                    "total_seconds": total,
                    "day": day,
                },
                external_id=f"{steam_id}:{app_id}:{day}",
                update_key=f"steam.game_played:{steam_id}:{app_id}:{day}",
                **common,
            )
        if kind == "achievement":
            info: Mapping[str, Any] = raw.get("info") or {}
            display = info.get("name") or raw["api_name"]
            percent = raw.get("percent")
            return ActivityEvent(
                type="steam.achievement",
                title=f"{who} unlocked {display} in {game}",
                occurred_at=at,
                payload={
                    "game_id": app_id,
                    "game_name": game_name,
                    "achievement": display,
                    "api_name": raw["api_name"],
                    "description": info.get("description"),
                    "icon": info.get("icon"),
                    "percent": percent,
                    "rarity": rarity(percent),
                },
                external_id=f"{steam_id}:{app_id}:{raw['api_name']}",
                **common,
            )
        if kind == "session.started":
            return ActivityEvent(
                type="steam.session.started",
                title=f"{who} started playing {game}",
                occurred_at=at,
                payload={"game_id": app_id, "game_name": game_name},
                external_id=f"{steam_id}:{app_id}:{raw['started']}",
                **common,
            )
        if kind == "session.ended":
            seconds = int(raw["seconds"])
            return ActivityEvent(
                type="steam.session.ended",
                title=f"{who} played {game} for {human_duration(seconds)}",
                occurred_at=at,
                payload={"game_id": app_id, "game_name": game_name, "duration_seconds": seconds},
                external_id=f"{steam_id}:{app_id}:{raw['started']}:ended",
                **common,
            )
        raise SchemaError("type", f"must be one of {', '.join(OBSERVATIONS)}")
