"""Steam achievements: a game's new unlocks, announced once each with their name, description,
icon and rarity (from the game's cached schema and global percentages)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot.clock import Clock, from_iso
from bot.storage import Store
from bot.storage.interface import Observer
from connectors.steam import SteamClient
from connectors.steam.client import OwnedGame, Unlock
from connectors.steam.errors import InvalidKey, NotConfigured, PrivateProfile, SteamError

log = logging.getLogger(__name__)

SCHEMA_CACHE_SECONDS = 7 * 86_400
PERCENT_CACHE_SECONDS = 86_400


def _timestamp(iso_text: str | None) -> int | None:
    return int(from_iso(iso_text).timestamp()) if iso_text else None


class AchievementChecker:
    def __init__(
        self,
        store: Store,
        steam: SteamClient,
        clock: Clock,
        observer: Observer,
        *,
        language: str = "english",
        on_key_refused: Callable[[Exception], None] = lambda exc: None,
    ) -> None:
        self.store = store
        self.steam = steam
        self.clock = clock
        self.observer = observer
        self.language = language  # of achievement names and descriptions (GetSchemaForGame)
        self.on_key_refused = on_key_refused

    async def check(self, steam_id: str, game: OwnedGame) -> int:
        """Compare the player's unlocks in a game with the stored ones and announce new ones.
        The game's pending check is cleared only when the check completes, in the same
        transaction as what it stores, so a failure here loses nothing. Returns the events."""
        app_id = game.app_id
        if await self._fresh(app_id, "schema", self.language) == {}:
            # The game has no achievements (remembered for the schema's cache time).
            await self.store.steam.checked(steam_id, app_id)
            return 0
        try:
            unlocks = await self.steam.get_player_achievements(steam_id, app_id)
        except (InvalidKey, NotConfigured) as exc:
            self.on_key_refused(exc)
            return 0
        except PrivateProfile:
            return 0  # game details hidden: checked again once they are public
        except SteamError as exc:
            log.warning("Steam achievements of app %s deferred: %s", app_id, exc)
            return 0
        if not unlocks:  # "Requested app has no stats": remember it, ask again in a week
            await self.store.steam.cache(app_id, "schema", self.language, {}, self.clock.now())
            await self.store.steam.checked(steam_id, app_id)
            return 0
        achieved = [u for u in unlocks if u.achieved]
        stored, game_baseline, account_baseline = await self.store.steam.unlocks(steam_id, app_id)
        fresh = [u for u in achieved if u.api_name not in stored]
        silent: list[Unlock] = []
        if game_baseline is None:
            # The game's first check: what was unlocked before the account's own baseline is
            # history, stored silently; unlocks since (the session that led here) are news.
            since = _timestamp(account_baseline)
            silent = [u for u in fresh if since is None or (u.unlock_time or 0) <= since]
            fresh = [u for u in fresh if u not in silent]
        schema: dict[str, Any] = {}
        percentages: dict[str, Any] = {}
        if fresh:
            schema = await self._cached(app_id, "schema", self.language)
            if any(u.api_name not in schema for u in fresh):  # added by a game update since
                schema = await self._cached(app_id, "schema", self.language, refresh=True)
            percentages = await self._cached(app_id, "percentages", "")
        return await self.store.steam.store_unlocks(
            steam_id,
            game,
            silent=silent,
            fresh=fresh,
            schema=schema,
            percentages=percentages,
            now=self.clock.now(),
            observer=self.observer,
            baseline=game_baseline is None,
        )

    async def _fresh(self, app_id: int, kind: str, language: str) -> dict[str, Any] | None:
        """The cached answer while it is fresh, else None."""
        found = await self.store.steam.cached(app_id, kind, language)
        max_age = SCHEMA_CACHE_SECONDS if kind == "schema" else PERCENT_CACHE_SECONDS
        if found is None or found[1] <= self.clock.now() - timedelta(seconds=max_age):
            return None
        return found[0]

    async def _cached(
        self, app_id: int, kind: str, language: str, *, refresh: bool = False
    ) -> dict[str, Any]:
        """The game's schema or percentages, from the cache while fresh, else from Steam (a
        failure falls back to a stale copy, or to nothing: the event then shows API names)."""
        if not refresh:
            fresh = await self._fresh(app_id, kind, language)
            if fresh is not None:
                return fresh
        try:
            if kind == "schema":
                fetched = await self.steam.get_schema_for_game(app_id, language)
                body: dict[str, Any] = {
                    name: {"name": i.display_name, "description": i.description, "icon": i.icon}
                    for name, i in fetched.items()
                }
            else:
                body = dict(await self.steam.get_global_achievement_percentages(app_id))
        except SteamError as exc:
            log.warning("Steam %s of app %s unavailable: %s", kind, app_id, exc)
            found = await self.store.steam.cached(app_id, kind, language)
            return found[0] if found is not None else {}
        await self.store.steam.cache(app_id, kind, language, body, self.clock.now())
        return body
