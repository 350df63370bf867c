"""get-playtime: stored playtime per SteamID, asking Steam only when needed.

Wire-compatible with the original Playtime-Service: the answer is a JSON array with one object
per unique requested ID, in request order. Steam is asked (GetOwnedGames for one app) only when
``is_need_update`` is true or no Steam result is stored for the ID; each ID once, with bounded
concurrency, and concurrent requests for the same ID share one call. The whole request answers
within ``deadline`` seconds: lookups still running then are reported ``unavailable`` and finish
in the background, storing their result for the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock, to_iso
from bot.storage import Store
from bot.storage.interface import Growth
from bot.storage.records import GLOBAL_SCOPE
from connectors.base import SchemaError, expect_object, integer, steam_id
from connectors.steam import SteamClient, SteamError
from connectors.steam.errors import InvalidKey

log = logging.getLogger(__name__)

STEAM_STATUSES = (
    "ok",
    "not_owned",
    "private_profile",
    "unavailable",
    "rate_limited",
    "invalid_key",
    "not_configured",
    "not_requested",
)
MAX_IDS = 120
STEAM_SOURCE = "steam"
BM_SOURCE = "battlemetrics"
# Results that are answers about the player (stored); anything else is a failure (retried later).
_DEFINITIVE = {"ok", "not_owned", "private_profile"}


@dataclass(frozen=True)
class PlaytimeQuery:
    steam_ids: list[str]
    game_id: int
    refresh: bool


def parse_query(body: Any, fixed_game_id: int | None) -> PlaytimeQuery:
    data = expect_object(body)
    ids = data.get("steam_ids")
    if ids is None:
        raise SchemaError("steam_ids", "is required (a list of 1 to 120 SteamID64 values)")
    if not isinstance(ids, list):
        raise SchemaError("steam_ids", "must be a list of 1 to 120 SteamID64 values")
    if not 1 <= len(ids) <= MAX_IDS:
        raise SchemaError("steam_ids", f"must hold 1 to {MAX_IDS} IDs, got {len(ids)}")
    unique: dict[str, None] = {}
    for index, value in enumerate(ids):
        unique.setdefault(steam_id(value, f"steam_ids[{index}]"), None)
    if fixed_game_id is not None:
        game = fixed_game_id
    elif data.get("game_id") is None:
        raise SchemaError("game_id", "is required because this endpoint has no fixed game")
    else:
        game = integer(data["game_id"], "game_id", lo=1, hi=2**32 - 1)
    refresh = data.get("is_need_update", False)
    if refresh is None:
        refresh = False
    if not isinstance(refresh, bool):
        raise SchemaError("is_need_update", "must be true or false")
    return PlaytimeQuery(list(unique), game, refresh)


class PlaytimeService:
    def __init__(
        self,
        store: Store,
        steam: SteamClient | None,
        clock: Clock,
        *,
        deadline: float = 4.5,
        concurrency: int = 8,
        per_endpoint_per_day: int = 2_000,
    ) -> None:
        self.store = store
        self.steam = steam
        self.clock = clock
        self.deadline = deadline
        self.per_endpoint_per_day = per_endpoint_per_day
        self._semaphore = asyncio.Semaphore(concurrency)
        #: How a looked-up Steam total that grew is announced (the Steam sync's news); None:
        #: not announced.
        self.growth: Callable[[datetime], Growth] | None = None
        self.on_events: Callable[[], None] | None = None  # wakes the feed poster
        #: Whether the Steam sync holds the key refused (then no lookup asks Steam), and where
        #: a lookup reports a refusal it meets (the sync pauses and probes).
        self.key_refused: Callable[[], bool] = lambda: False
        self.on_key_refused: Callable[[Exception], None] = lambda exc: None
        self._inflight: dict[tuple[str, int], asyncio.Task[str]] = {}

    async def lookup(
        self, guild_id: int, query: PlaytimeQuery, endpoint_id: int | None = None
    ) -> list[dict[str, Any]]:
        """``endpoint_id``: the get-playtime endpoint asking; each may make
        ``per_endpoint_per_day`` Steam lookups a UTC day, past which it gets the stored values
        (``steam_status`` "rate_limited")."""
        game = str(query.game_id)
        ids = query.steam_ids
        playtime = self.store.playtime
        stored_steam = await playtime.for_players(GLOBAL_SCOPE, STEAM_SOURCE, game, ids)
        wanted = ids if query.refresh else [i for i in ids if i not in stored_steam]
        statuses: dict[str, str] = {}
        if wanted and endpoint_id is not None and self._asks_steam():
            granted = await self.store.steam.reserve_lookups(
                self.clock.now().strftime("%Y-%m-%d"),
                endpoint_id,
                len(wanted),
                self.per_endpoint_per_day,
            )
            statuses = dict.fromkeys(wanted[granted:], "rate_limited")
            wanted = wanted[:granted]
        if wanted:
            statuses |= await self._fetch_all(wanted, query.game_id)

        steam_rows = await playtime.for_players(GLOBAL_SCOPE, STEAM_SOURCE, game, ids)
        bm_rows = await playtime.for_players(guild_id, BM_SOURCE, game, ids)
        now = to_iso(self.clock.now())
        answer = []
        for sid in ids:
            steam_row, bm_row = steam_rows.get(sid), bm_rows.get(sid)
            rows = [r for r in (steam_row, bm_row) if r is not None]
            answer.append(
                {
                    "steam_id": sid,
                    "steam_playtime": steam_row.seconds if steam_row else None,
                    "bm_playtime": bm_row.seconds if bm_row else None,
                    "created_at": min(r.created_at for r in rows) if rows else now,
                    "updated_at": max(r.updated_at for r in rows) if rows else now,
                    "steam_status": statuses.get(sid, "not_requested"),
                }
            )
        return answer

    def _asks_steam(self) -> bool:
        return self.steam is not None and self.steam.configured and not self.key_refused()

    async def _fetch_all(self, ids: Sequence[str], app_id: int) -> dict[str, str]:
        if self.steam is None or not self.steam.configured:
            return dict.fromkeys(ids, "not_configured")
        if self.key_refused():
            return dict.fromkeys(ids, "invalid_key")
        tasks = {sid: self._fetch_once(sid, app_id) for sid in ids}
        done, _pending = await asyncio.wait(tasks.values(), timeout=self.deadline)
        statuses = {}
        for sid, task in tasks.items():
            if task in done and not task.cancelled() and task.exception() is None:
                statuses[sid] = task.result()
            else:
                statuses[sid] = "unavailable"
        return statuses

    def _fetch_once(self, sid: str, app_id: int) -> asyncio.Task[str]:
        key = (sid, app_id)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(sid, app_id), name=f"steam-playtime-{sid}")
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return task

    async def _fetch(self, sid: str, app_id: int) -> str:
        assert self.steam is not None
        seconds: int | None = None
        name: str | None = None
        async with self._semaphore:
            try:
                owned = await self.steam.get_owned_game(sid, app_id)
            except SteamError as exc:
                status = exc.status
                log.info("Steam lookup for %s app %s: %s", sid, app_id, status)
                if isinstance(exc, InvalidKey):
                    self.on_key_refused(exc)
            else:
                status = "ok" if owned is not None else "not_owned"
                seconds = owned.playtime_seconds if owned is not None else None
                name = owned.name if owned is not None else None
        if status not in _DEFINITIVE:
            return status
        now = self.clock.now()
        value = seconds if status == "ok" else None  # not owned / private: a known "no value"

        events = await self.store.steam.record_lookup(
            sid,
            app_id,
            seconds=value,
            status=status,
            name=name,
            now=now,
            growth=self.growth(now) if self.growth is not None else None,
        )
        if events and self.on_events is not None:
            self.on_events()
        return status

    async def close(self) -> None:
        """Let background lookups finish briefly, then cancel what is left."""
        tasks = list(self._inflight.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=2)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(BaseException):
                    await task
