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
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock, to_iso
from bot.storage.engine import Database
from bot.storage.playtime import record_playtime, remember_game_name
from bot.storage.records import GLOBAL_SCOPE, PlaytimeChange
from connectors.base import SchemaError, expect_object, integer, steam_id
from connectors.steam import SteamClient, SteamError

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


@dataclass(frozen=True)
class _Row:
    seconds: int | None
    status: str
    created_at: str
    updated_at: str


def _load(
    conn: sqlite3.Connection, source: str, scope: int, ids: Sequence[str], game: str
) -> dict[str, _Row]:
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        "SELECT player_id, seconds, status, created_at, updated_at FROM playtime"
        f" WHERE scope_guild_id = ? AND source = ? AND game_id = ? AND player_id IN ({marks})",
        (scope, source, game, *ids),
    ).fetchall()
    return {r[0]: _Row(r[1], r[2], r[3], r[4]) for r in rows}


class PlaytimeService:
    def __init__(
        self,
        db: Database,
        steam: SteamClient | None,
        clock: Clock,
        *,
        deadline: float = 4.5,
        concurrency: int = 8,
    ) -> None:
        self.db = db
        self.steam = steam
        self.clock = clock
        self.deadline = deadline
        self._semaphore = asyncio.Semaphore(concurrency)
        #: Called in the writer's transaction when a looked-up Steam total was stored (the
        #: Steam sync's announce_growth); returns how many activity events it stored.
        self.on_reading: (
            Callable[[sqlite3.Connection, str, int, str | None, PlaytimeChange, datetime], int]
            | None
        ) = None
        self.on_events: Callable[[], None] | None = None  # wakes the feed poster
        self._inflight: dict[tuple[str, int], asyncio.Task[str]] = {}

    async def lookup(self, guild_id: int, query: PlaytimeQuery) -> list[dict[str, Any]]:
        game = str(query.game_id)
        ids = query.steam_ids
        stored_steam = await self.db.read(lambda c: _load(c, STEAM_SOURCE, GLOBAL_SCOPE, ids, game))
        wanted = ids if query.refresh else [i for i in ids if i not in stored_steam]
        statuses: dict[str, str] = {}
        if wanted:
            statuses = await self._fetch_all(wanted, query.game_id)

        def load_both(conn: sqlite3.Connection) -> tuple[dict[str, _Row], dict[str, _Row]]:
            return (
                _load(conn, STEAM_SOURCE, GLOBAL_SCOPE, ids, game),
                _load(conn, BM_SOURCE, guild_id, ids, game),
            )

        steam_rows, bm_rows = await self.db.read(load_both)
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

    async def _fetch_all(self, ids: Sequence[str], app_id: int) -> dict[str, str]:
        if self.steam is None or not self.steam.configured:
            return dict.fromkeys(ids, "not_configured")
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
            else:
                status = "ok" if owned is not None else "not_owned"
                seconds = owned.playtime_seconds if owned is not None else None
                name = owned.name if owned is not None else None
        if status not in _DEFINITIVE:
            return status
        now = self.clock.now()
        value = seconds if status == "ok" else None  # not owned / private: a known "no value"

        def store(conn: sqlite3.Connection) -> int:
            change = record_playtime(
                conn,
                scope=GLOBAL_SCOPE,
                source=STEAM_SOURCE,
                player_id=sid,
                game_id=str(app_id),
                seconds=value,
                source_time=now,
                now_text=to_iso(now),
                status=status,
            )
            if name:
                remember_game_name(conn, str(app_id), name, to_iso(now))
            # A lookup may see a Steam total grow before the sync does: the sync's own news
            # (the day's played line, milestones, an achievement check) must not be lost.
            if self.on_reading is not None and change.applied:
                return self.on_reading(conn, sid, app_id, name, change, now)
            return 0

        if await self.db.write(store) and self.on_events is not None:
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
