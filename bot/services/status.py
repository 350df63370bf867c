"""``questlog status``: what the running (or stopped) instance holds and plans, without Discord."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.config import Config
from bot.steam_sync.budget import LOOKUP, SYNC, Shares
from bot.steam_sync.plan import make_plan
from bot.storage import Store


async def status_report(store: Store, config: Config, now: datetime) -> dict[str, Any]:
    """Every figure ``questlog status`` prints, in its order."""
    database = await store.describe()
    active, disabled = await store.endpoints.count()
    raw_events, activity_events = await store.events.counts()
    feed = await store.feed.counts()
    steam = await store.steam.counts(now)
    key = await store.steam.key_state()
    calls = await store.steam.calls_on(now.strftime("%Y-%m-%d"))
    shares = Shares.split(config.steam.daily_call_limit, config.steam.sync_share)
    # The sync's plan, computed as the running server does (its accounts may lag new links by
    # a few seconds; the count of distinct linked SteamIDs is what the plan will use).
    plan = make_plan(
        steam["linked"], steam["in_game"], config.steam.sync_interval_seconds,
        shares.sync,
    )  # fmt: skip
    return {
        **database,
        "endpoints_active": active,
        "endpoints_disabled": disabled,
        "raw_events": raw_events,
        "activity_events": activity_events,
        "outbox_pending": feed["pending"],
        "outbox_failed": feed["failed"],
        "feed_channels_paused": feed["paused_channels"],
        "account_links": await store.links.count(),
        "steam_calls_today": sum(calls.values()),
        "steam_daily_limit": config.steam.daily_call_limit,
        "steam_sync_calls_today": f"{calls.get(SYNC, 0)} of {shares.sync}",
        "steam_lookup_calls_today": f"{calls.get(LOOKUP, 0)} of {shares.lookup}",
        "steam_configured": bool(config.steam.api_key),
        "steam_sync": _sync_state(config, key),
        "steam_accounts": steam["linked"],
        "steam_private_accounts": steam["private"],
        "steam_in_game": steam["in_game"],
        "steam_summary_interval_seconds": plan.summary_interval,
        "steam_active_interval_seconds": plan.active_interval,
        "steam_sweep_interval_seconds": plan.sweep_interval,
        "steam_projected_calls_per_day": plan.projected_calls,
        "discord_configured": bool(config.discord.token),
    }


def _sync_state(config: Config, key: dict[str, str]) -> str:
    if not (config.steam.sync_enabled and config.steam.api_key):
        return "off"
    if "steam_key_refused_since" in key:
        return (
            f"paused: key refused since {key['steam_key_refused_since']},"
            f" next probe at {key.get('steam_key_next_probe', '?')}"
        )
    return "on"
