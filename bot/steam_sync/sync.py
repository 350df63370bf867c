"""The Steam sync: every linked Steam account's library, on a schedule, within the key's budget.

One SteamID is synced once however many guilds link it (Steam data is public per SteamID), with
one ``GetOwnedGames`` call that returns every game's total playtime. Per account:

* The first successful sync stores the totals as the baseline and announces nothing.
* Later, a total that grew is stored with a sample of the increase (per-day and per-period
  playtime come from these real deltas), and each guild that links the account gets one
  ``steam.game_played`` event per game and local day. Its ``update_key`` names the player, game
  and day, so a later increase the same day edits that day's feed message instead of posting
  again (bot/feed/poster.py).
* A private library marks the account and its links ``private_profile`` (with the time it was
  noticed) and nothing else fails; a public one clears the mark.
* 429s and Steam outages reschedule the account with exponential backoff and jitter; a revoked
  or blocked key stops the sync and says so once, loudly, instead of retrying forever.

Scheduling (the budget planner): each account has a persisted ``next_sync_at``.

* ``GetPlayerSummaries`` (100 accounts per call) shows who is in a game right now (``gameid``).
  It runs for every account once per summary interval: the configured interval, stretched so
  summaries use at most ``SUMMARY_SHARE`` of the usable budget.
* A player seen in a game has their library read every active interval (the configured one,
  stretched when many play at once), and once more right after they leave, so a change is
  caught within two intervals.
* Everyone else (offline, invisible, private) is swept once a day at their own slot, so nothing
  is missed for more than a day.
* A new account's first read (the baseline) gets a slot spread over the configured interval (by
  a hash of its SteamID), so a restart or many new links never burst.
* The usable budget is ``BUDGET_SHARE`` of the daily limit; the rest stays for get-playtime
  lookups and ``/link``. ``make_plan`` projects the day's calls (``questlog status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import random
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import Clock, from_iso, to_iso
from bot.ingest.milestones import DEFAULT_MILESTONE_HOURS, Milestones
from bot.metrics import Metrics
from bot.storage.engine import Database
from bot.storage.events import insert_event
from bot.storage.playtime import game_name as stored_game_name
from bot.storage.playtime import reached_milestones, record_playtime, remember_game_name
from bot.storage.records import GLOBAL_SCOPE, PlaytimeChange
from bot.tasks import cancel_task
from connectors.base import ActivityEvent, human_duration
from connectors.steam import SteamClient
from connectors.steam.client import OwnedGame, Unlock
from connectors.steam.errors import (
    InvalidKey,
    NotConfigured,
    PrivateProfile,
    RateLimited,
    SteamError,
)

log = logging.getLogger(__name__)

BUDGET_SHARE = 0.8  # of the daily call limit; the rest is kept for lookups and /link
SUMMARY_SHARE = 0.4  # of the usable budget, at most, for GetPlayerSummaries
SWEEP_SHARE = 0.3  # of the usable budget, at most, for the daily sweep of every library
SWEEP_SECONDS = 86_400
SUMMARY_BATCH = 100
TICK_SECONDS = 5.0
DUE_PER_TICK = 200
SCHEMA_CACHE_SECONDS = 7 * 86_400
PERCENT_CACHE_SECONDS = 86_400
RARE_PERCENT = 10.0  # below this share of players an unlock is called rare in the feed
CALLS_PER_ACTIVE_READ = 2  # the library, and the achievements of the game being played
ENROL_SECONDS = 30.0  # new links are picked up within this (or at once via links_changed)
BACKOFF_BASE_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class Plan:
    """How often each kind of call runs, and what that costs a day."""

    summary_interval: int  # seconds between two GetPlayerSummaries passes over every account
    active_interval: int  # seconds between two library reads of a player in a game
    sweep_interval: int  # seconds between two library reads of everyone else
    summary_calls: int  # per day
    active_calls: int  # per day, at the number of players in a game now
    sweep_calls: int  # per day

    @property
    def projected_calls(self) -> int:
        return self.summary_calls + self.active_calls + self.sweep_calls


def make_plan(accounts: int, in_game: int, configured: int, daily_limit: int) -> Plan:
    """The plan for ``accounts`` linked SteamIDs of which ``in_game`` play right now."""
    usable = max(1.0, daily_limit * BUDGET_SHARE)
    day = 86_400
    batches = math.ceil(accounts / SUMMARY_BATCH)
    summary_interval = max(configured, math.ceil(batches * day / (usable * SUMMARY_SHARE)))
    sweep_interval = max(SWEEP_SECONDS, math.ceil(accounts * day / (usable * SWEEP_SHARE)))
    summary_calls = math.ceil(batches * day / summary_interval)
    sweep_calls = math.ceil(accounts * day / sweep_interval)
    left = max(1.0, usable - summary_calls - sweep_calls)
    active_interval = max(configured, math.ceil(in_game * CALLS_PER_ACTIVE_READ * day / left))
    active_calls = math.ceil(in_game * CALLS_PER_ACTIVE_READ * day / active_interval)
    return Plan(
        summary_interval, active_interval, sweep_interval, summary_calls, active_calls, sweep_calls
    )


def _slot(steam_id: str, interval: int) -> float:
    """A stable offset within the interval for a new account (spreads first syncs out)."""
    digest = hashlib.sha256(steam_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % max(1, interval)


@dataclass(frozen=True)
class SyncStatus:
    enabled: bool
    state: str  # running | disabled | not_configured | invalid_key
    detail: str | None
    accounts: int
    private: int
    due: int
    in_game: int
    interval_configured: int
    plan: Plan
    calls_today: int
    daily_limit: int


class SteamSync:
    def __init__(
        self,
        db: Database,
        steam: SteamClient,
        clock: Clock,
        metrics: Metrics,
        *,
        interval: int,
        daily_limit: int,
        tz: ZoneInfo,
        concurrency: int = 4,
        enabled: bool = True,
        language: str = "english",
        milestone_hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS,
        on_event: Any = None,
    ) -> None:
        self.db = db
        self.steam = steam
        self.clock = clock
        self.metrics = metrics
        self.interval = interval
        self.daily_limit = daily_limit
        self.tz = tz
        self.enabled = enabled
        self.milestone_hours = milestone_hours
        self.language = language  # of achievement names and descriptions (GetSchemaForGame)

        self.on_event = on_event  # wakes the feed poster
        self._semaphore = asyncio.Semaphore(concurrency)
        self._in_flight: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self.key_problem: str | None = None
        self._last_enrol: float | None = None
        self._plan: Plan | None = None
        self._next_summaries: float | None = None  # monotonic time of the next summary pass
        self._summary_failures = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.enabled and self.steam.configured:
            self._task = asyncio.create_task(self._run(), name="questlog-steam-sync")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    def wake(self) -> None:
        self._wakeup.set()

    async def _run(self) -> None:
        while self.key_problem is None:
            try:
                await self.run_once()
            except Exception:
                log.exception("steam sync pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=TICK_SECONDS)
            self._wakeup.clear()

    # ------------------------------------------------------------------ scheduling

    async def run_once(self) -> int:
        """One pass: enrol new links, poll summaries when their interval has passed, then read
        every due library (bounded concurrency). Returns how many libraries were read."""
        if self.key_problem is not None or not self.steam.configured:
            return 0
        now = self.clock.now()
        plan = await self._planned(now)
        if self._next_summaries is None or self.clock.monotonic() >= self._next_summaries:
            try:
                polled = await self._poll_summaries(plan)
            except Exception:  # an answer we cannot store must not stop the library reads
                log.exception("Steam summaries pass failed; backing off")
                polled = False
            if polled:
                self._summary_failures = 0
                wait = float(plan.summary_interval)
            else:  # 429 or Steam down: back off exponentially, with jitter
                self._summary_failures += 1
                wait = min(
                    BACKOFF_MAX_SECONDS,
                    BACKOFF_BASE_SECONDS * 2 ** min(self._summary_failures - 1, 16),
                ) * random.uniform(0.5, 1.5)
            self._next_summaries = self.clock.monotonic() + wait
            plan = await self._planned(now, force=True)  # who plays changed the active interval
        due = await self.db.fetchall(
            "SELECT steam_id FROM steam_accounts WHERE next_sync_at <= ? ORDER BY next_sync_at"
            " LIMIT ?",
            (to_iso(self.clock.now()), DUE_PER_TICK),
        )
        ids = [r[0] for r in due if r[0] not in self._in_flight]
        results = await asyncio.gather(*(self._sync_guarded(s, plan) for s in ids))
        return results.count("ok")

    async def _planned(self, now: datetime, *, force: bool = False) -> Plan:
        """Reconcile steam_accounts with the links (at most every ENROL_SECONDS: it reads every
        link) and return the plan in force."""
        due = self._last_enrol is None or self.clock.monotonic() - self._last_enrol >= ENROL_SECONDS
        if force or due or self._plan is None:
            self._plan = await self.db.write(
                lambda c: _enrol(c, now, self.interval, self.daily_limit)
            )
            self._last_enrol = self.clock.monotonic()
        return self._plan

    def links_changed(self) -> None:
        """A link was made or removed: enrol on the next pass."""
        self._last_enrol = None
        self.wake()

    async def _poll_summaries(self, plan: Plan) -> bool:
        """Who is in a game right now, 100 accounts per call: players in a game get their
        library read every active interval, and once more right after they leave. False when
        Steam refused or failed (the batches not asked are asked on the next pass)."""
        rows = await self.db.fetchall("SELECT steam_id FROM steam_accounts ORDER BY steam_id")
        ids = [r[0] for r in rows]
        for start in range(0, len(ids), SUMMARY_BATCH):
            batch = ids[start : start + SUMMARY_BATCH]
            try:
                found = await self.steam.get_player_summaries(batch)
            except (InvalidKey, NotConfigured) as exc:
                self._key_refused(exc)
                return False
            except SteamError as exc:  # rate limited or unavailable: the next pass retries
                state = "rate_limited" if isinstance(exc, RateLimited) else "unavailable"
                log.warning("Steam summaries deferred (%s): %s", state, exc)
                self.metrics.inc("questlog_steam_summaries_total", result=state)
                return False
            self.metrics.inc("questlog_steam_summaries_total", result="ok")
            games = {steam_id: summary.game_id for steam_id, summary in found.items()}
            logoffs = {steam_id: summary.last_logoff for steam_id, summary in found.items()}
            seen_at = self.clock.now()
            await self.db.write(
                lambda c, b=batch, g=games, o=logoffs, t=seen_at: _seen(c, b, g, t, plan, o)
            )
        return True

    async def sync_now(self, steam_ids: list[str] | None = None) -> int:
        """Read these libraries (every linked one when None) right away, outside the plan;
        returns how many were read."""
        return (await self.sync_report(steam_ids))["ok"]

    async def sync_report(self, steam_ids: list[str] | None = None) -> Counter[str]:
        """Like sync_now, counting each outcome: ok, private, deferred, invalid_key, busy."""
        now = self.clock.now()
        plan = await self._planned(now, force=True)
        if steam_ids is None:
            rows = await self.db.fetchall("SELECT steam_id FROM steam_accounts")
            steam_ids = [r[0] for r in rows]
        results = await asyncio.gather(*(self._sync_guarded(s, plan) for s in steam_ids))
        return Counter(results)

    def _key_refused(self, exc: Exception) -> None:
        if self.key_problem is None:
            log.error(
                "Steam sync stopped: the API key was refused (%s). Check [steam] api_key"
                " or STEAM_API_KEY and restart Questlog.",
                exc,
            )
        self.key_problem = str(exc)
        self.metrics.inc("questlog_steam_sync_total", result="invalid_key")

    async def _sync_guarded(self, steam_id: str, plan: Plan) -> str:
        if self.key_problem is not None:
            return "invalid_key"
        if steam_id in self._in_flight:
            return "busy"
        self._in_flight.add(steam_id)
        try:
            async with self._semaphore:
                return await self.sync_account(steam_id, plan)
        finally:
            self._in_flight.discard(steam_id)

    # ------------------------------------------------------------------ one account

    async def sync_account(self, steam_id: str, plan: Plan) -> str:
        """Read one library: "ok", "private", "deferred" (429/5xx) or "invalid_key"."""
        try:
            games = await self.steam.get_owned_games(steam_id)
        except PrivateProfile:
            await self.db.write(lambda c: _mark_private(c, steam_id, self.clock.now(), plan))
            self.metrics.inc("questlog_steam_sync_total", result="private_profile")
            return "private"
        except (InvalidKey, NotConfigured) as exc:
            self._key_refused(exc)
            return "invalid_key"
        except SteamError as exc:
            state = "rate_limited" if isinstance(exc, RateLimited) else "unavailable"
            error = str(exc)
            await self.db.write(lambda c: _mark_retry(c, steam_id, self.clock.now(), state, error))
            log.warning("Steam sync of an account deferred (%s): %s", state, exc)
            self.metrics.inc("questlog_steam_sync_total", result=state)
            return "deferred"
        now = self.clock.now()
        new_events = await self.db.write(
            lambda c: _apply_library(c, steam_id, games, now, plan, self.tz, self.milestone_hours)
        )
        self.metrics.inc("questlog_steam_sync_total", result="ok")
        # Only games played since their last check can have new unlocks; a check that fails
        # stays pending and is tried again after the next read.
        pending = await self.db.fetchall(
            "SELECT app_id FROM steam_pending_checks WHERE steam_id = ? ORDER BY since",
            (steam_id,),
        )
        names = {g.app_id: g for g in games}
        for (app_id,) in pending:
            game = names.get(app_id) or OwnedGame(app_id=app_id, playtime_forever_minutes=0)
            new_events += await self.check_achievements(steam_id, game)
        if new_events and self.on_event is not None:
            self.on_event()
        return "ok"

    # ------------------------------------------------------------------ achievements

    async def check_achievements(self, steam_id: str, game: OwnedGame) -> int:
        """Compare the player's unlocks in a game with the stored ones and announce new ones.
        The game's pending check is cleared only when the check completes, in the same
        transaction as what it stores, so a failure here loses nothing."""
        app_id = game.app_id
        if await self._fresh(app_id, "schema", self.language) == {}:
            # The game has no achievements (remembered for the schema's cache time).
            await self.db.write(lambda c: _checked(c, steam_id, app_id))
            return 0
        try:
            unlocks = await self.steam.get_player_achievements(steam_id, app_id)
        except (InvalidKey, NotConfigured) as exc:
            self._key_refused(exc)
            return 0
        except PrivateProfile:
            return 0  # game details hidden: checked again once they are public
        except SteamError as exc:
            log.warning("Steam achievements of app %s deferred: %s", app_id, exc)
            return 0
        if not unlocks:  # "Requested app has no stats": remember it, ask again in a week
            await self._store_cache(app_id, "schema", self.language, {})
            await self.db.write(lambda c: _checked(c, steam_id, app_id))
            return 0
        achieved = [u for u in unlocks if u.achieved]
        stored, game_baseline, account_baseline = await self.db.read(
            lambda c: _stored_unlocks(c, steam_id, app_id)
        )
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
        now = self.clock.now()

        def store(conn: sqlite3.Connection) -> int:
            if game_baseline is None:
                _store_unlocks(conn, steam_id, app_id, silent, now)
            count = _announce_unlocks(conn, steam_id, game, fresh, schema, percentages, now)
            _checked(conn, steam_id, app_id)
            return count

        return await self.db.write(store)

    async def _fresh(self, app_id: int, kind: str, language: str) -> dict[str, Any] | None:
        """The cached answer while it is fresh, else None."""
        row = await self.db.fetchone(
            "SELECT body, fetched_at FROM steam_game_cache WHERE app_id = ? AND kind = ?"
            " AND language = ?",
            (app_id, kind, language),
        )
        max_age = SCHEMA_CACHE_SECONDS if kind == "schema" else PERCENT_CACHE_SECONDS
        if row is None or from_iso(row[1]) <= self.clock.now() - timedelta(seconds=max_age):
            return None
        return dict(json.loads(row[0]))

    async def _store_cache(self, app_id: int, kind: str, language: str, body: Any) -> None:
        text = json.dumps(body, ensure_ascii=False)
        now = to_iso(self.clock.now())
        await self.db.write(
            lambda c: c.execute(
                "INSERT INTO steam_game_cache (app_id, kind, language, body, fetched_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, kind, language) DO UPDATE SET"
                " body = excluded.body, fetched_at = excluded.fetched_at",
                (app_id, kind, language, text, now),
            )
        )

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
            row = await self.db.fetchone(
                "SELECT body FROM steam_game_cache WHERE app_id = ? AND kind = ? AND language = ?",
                (app_id, kind, language),
            )
            return dict(json.loads(row[0])) if row is not None else {}
        await self._store_cache(app_id, kind, language, body)
        return body

    # ------------------------------------------------------------------ status

    async def status(self) -> SyncStatus:
        now = self.clock.now()
        day = now.strftime("%Y-%m-%d")

        def read(conn: sqlite3.Connection) -> tuple[int, int, int, int, int]:
            accounts, private, due, in_game = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = 'private'),"
                " count(*) FILTER (WHERE next_sync_at <= ?),"
                " count(*) FILTER (WHERE in_game_app IS NOT NULL) FROM steam_accounts",
                (to_iso(now),),
            ).fetchone()
            calls = conn.execute("SELECT calls FROM steam_budget WHERE day = ?", (day,)).fetchone()
            return accounts, private, due, in_game, calls[0] if calls else 0

        accounts, private, due, in_game, calls = await self.db.read(read)
        plan = make_plan(accounts, in_game, self.interval, self.daily_limit)
        if not self.enabled:
            state, detail = "disabled", "[steam] sync_enabled is false"
        elif not self.steam.configured:
            state, detail = "not_configured", "no Steam API key ([steam] api_key)"
        elif self.key_problem is not None:
            state, detail = "invalid_key", self.key_problem
        else:
            state, detail = "running", None
        return SyncStatus(
            enabled=self.enabled,
            state=state,
            detail=detail,
            accounts=accounts,
            private=private,
            due=due,
            in_game=in_game,
            interval_configured=self.interval,
            plan=plan,
            calls_today=calls,
            daily_limit=self.daily_limit,
        )


# --------------------------------------------------------------------------- SQL operations


def _enrol(conn: sqlite3.Connection, now: datetime, configured: int, daily_limit: int) -> Plan:
    """Add accounts linked since the last pass (each at its slot in the configured interval),
    drop those no guild links any more; returns the plan in force."""
    now_text = to_iso(now)
    linked = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT external_id FROM account_links WHERE source = 'steam'"
        ).fetchall()
    }
    known = {r[0] for r in conn.execute("SELECT steam_id FROM steam_accounts").fetchall()}
    for steam_id in linked - known:
        first = now + timedelta(seconds=_slot(steam_id, configured))
        conn.execute(
            "INSERT INTO steam_accounts (steam_id, next_sync_at, updated_at) VALUES (?, ?, ?)",
            (steam_id, to_iso(first), now_text),
        )
    for steam_id in known - linked:
        conn.execute("DELETE FROM steam_accounts WHERE steam_id = ?", (steam_id,))
    (in_game,) = conn.execute(
        "SELECT count(*) FROM steam_accounts WHERE in_game_app IS NOT NULL"
    ).fetchone()
    return make_plan(len(linked), in_game, configured, daily_limit)


def _seen(
    conn: sqlite3.Connection,
    batch: list[str],
    games: dict[str, int | None],
    now: datetime,
    plan: Plan,
    logoffs: dict[str, int | None] | None = None,
) -> None:
    """Store what the summaries showed and pull in the library reads it calls for."""
    now_text = to_iso(now)
    soon = to_iso(now + timedelta(seconds=plan.active_interval))
    logoffs = logoffs or {}
    for steam_id in batch:
        row = conn.execute(
            "SELECT in_game_app, next_sync_at, last_logoff, failures FROM steam_accounts"
            " WHERE steam_id = ?",
            (steam_id,),
        ).fetchone()
        if row is None:
            continue
        was, next_at, known_logoff, failures = row
        game = games.get(steam_id)
        logoff = logoffs.get(steam_id)
        if failures:
            pass  # backing off after a 429 or an outage: the summaries do not pull it in
        elif game is not None:
            next_at = min(next_at, soon)  # playing: read again within an active interval
        elif was is not None:
            next_at = now_text  # just left the game: read now, for the session's last minutes
        elif logoff is not None and known_logoff is not None and logoff > known_logoff:
            # Online and gone again without a visible game (hidden game details): maybe played.
            next_at = min(next_at, now_text)
        if logoff is not None and logoff != known_logoff:
            conn.execute(
                "UPDATE steam_accounts SET last_logoff = ? WHERE steam_id = ?", (logoff, steam_id)
            )
        if was is not None and was != game:
            _end_steam_session(conn, steam_id, was, now)
        if game is not None and was != game:
            _start_steam_session(conn, steam_id, game, now)
        conn.execute(
            "UPDATE steam_accounts SET in_game_app = ?, last_summary_at = ?, next_sync_at = ?,"
            " in_game_since = CASE WHEN ? IS NULL THEN NULL"
            " WHEN in_game_app IS ? THEN in_game_since ELSE ? END, updated_at = ?"
            " WHERE steam_id = ?",
            (game, now_text, next_at, game, game, now_text, now_text, steam_id),
        )


def _session_links(conn: sqlite3.Connection, steam_id: str) -> list[tuple[int, int, str | None]]:
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT guild_id, discord_user_id, display_name FROM account_links"
            " WHERE source = 'steam' AND external_id = ?",
            (steam_id,),
        ).fetchall()
    ]


def _game_name(conn: sqlite3.Connection, app_id: int) -> str:
    row = conn.execute("SELECT name FROM games WHERE game_id = ?", (str(app_id),)).fetchone()
    return row[0] if row else f"app {app_id}"


def _to_linking_guilds(
    conn: sqlite3.Connection,
    steam_id: str,
    now: datetime,
    *,
    event_type: str,
    title: Callable[[str], str],
    payload: dict[str, Any],
    external_id: str,
    occurred_at: datetime | None = None,
) -> int:
    """One activity event for every guild that links the account; returns how many."""
    now_text = to_iso(now)
    count = 0
    for guild_id, user_id, display_name in _session_links(conn, steam_id):
        event = ActivityEvent(
            type=event_type,
            title=title(display_name or "A linked player"),
            occurred_at=occurred_at or now,
            source="steam",
            payload=payload,
            guild_id=guild_id,
            actor_user_id=user_id,
            actor_external_id=steam_id,
            actor_name=display_name,
            external_id=external_id,
        )
        insert_event(conn, event, guild_id, None, now_text)
        count += 1
    return count


def _start_steam_session(
    conn: sqlite3.Connection, steam_id: str, app_id: int, now: datetime
) -> None:
    """Steam shows the player in a game: a session opens (public data: global scope)."""
    now_text = to_iso(now)
    conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
        " VALUES (?, 'steam', ?, '', ?, ?)",
        (GLOBAL_SCOPE, steam_id, str(app_id), now_text),
    )
    game = _game_name(conn, app_id)
    _to_linking_guilds(
        conn,
        steam_id,
        now,
        event_type="steam.session.started",
        title=lambda name: f"{name} started playing {game}",
        payload={"game_id": app_id, "game_name": game},
        external_id=f"{steam_id}:{app_id}:{now_text}",
    )


def _end_steam_session(conn: sqlite3.Connection, steam_id: str, app_id: int, now: datetime) -> None:
    """Steam no longer shows the player in that game: the open session closes."""
    now_text = to_iso(now)
    row = conn.execute(
        "SELECT id, started_at FROM sessions WHERE guild_id = ? AND source = 'steam'"
        " AND player_id = ? AND server_id = '' AND ended_at IS NULL AND closed_reason IS NULL"
        " ORDER BY started_at DESC LIMIT 1",
        (GLOBAL_SCOPE, steam_id),
    ).fetchone()
    if row is None:
        return
    seconds = max(0, int((now - from_iso(row[1])).total_seconds()))
    conn.execute(
        "UPDATE sessions SET ended_at = ?, duration_seconds = ?, closed_reason = 'ended'"
        " WHERE id = ?",
        (now_text, seconds, row[0]),
    )
    game = _game_name(conn, app_id)
    _to_linking_guilds(
        conn,
        steam_id,
        now,
        event_type="steam.session.ended",
        title=lambda name: f"{name} played {game} for {human_duration(seconds)}",
        payload={"game_id": app_id, "game_name": game, "duration_seconds": seconds},
        external_id=f"{steam_id}:{app_id}:{row[1]}:ended",
    )


def _next_time(now: datetime, interval: int) -> str:

    # A little jitter keeps accounts that synced together from staying in lockstep.
    return to_iso(now + timedelta(seconds=interval * random.uniform(0.95, 1.05)))


def _next_read(conn: sqlite3.Connection, steam_id: str, now: datetime, plan: Plan) -> str:
    """When to read this library again: soon while the player is in a game, else the sweep."""
    row = conn.execute(
        "SELECT in_game_app FROM steam_accounts WHERE steam_id = ?", (steam_id,)
    ).fetchone()
    if row is not None and row[0] is not None:
        return to_iso(now + timedelta(seconds=plan.active_interval))
    return _next_time(now, plan.sweep_interval)


def _set_link_status(conn: sqlite3.Connection, steam_id: str, status: str | None, now: str) -> None:
    conn.execute(
        "UPDATE account_links SET status = ?, updated_at = ? WHERE source = 'steam'"
        " AND external_id = ? AND status IS NOT ?",
        (status, now, steam_id, status),
    )


def _mark_private(conn: sqlite3.Connection, steam_id: str, now: datetime, plan: Plan) -> None:
    now_text = to_iso(now)
    conn.execute(
        "UPDATE steam_accounts SET state = 'private', private_since = coalesce(private_since, ?),"
        " last_synced_at = ?, next_sync_at = ?, failures = 0, last_error = NULL, updated_at = ?"
        " WHERE steam_id = ?",
        (now_text, now_text, _next_time(now, plan.sweep_interval), now_text, steam_id),
    )
    _set_link_status(conn, steam_id, "private_profile", now_text)


def _mark_retry(
    conn: sqlite3.Connection, steam_id: str, now: datetime, state: str, error: str
) -> None:
    row = conn.execute(
        "SELECT failures FROM steam_accounts WHERE steam_id = ?", (steam_id,)
    ).fetchone()
    failures = (row[0] if row else 0) + 1
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(failures - 1, 16))
    delay *= random.uniform(0.5, 1.5)
    now_text = to_iso(now)
    conn.execute(
        "UPDATE steam_accounts SET state = ?, failures = ?, last_error = ?, next_sync_at = ?,"
        " updated_at = ? WHERE steam_id = ?",
        (state, failures, error[:300], to_iso(now + timedelta(seconds=delay)), now_text, steam_id),
    )


def _local_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    return now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)


def _apply_library(
    conn: sqlite3.Connection,
    steam_id: str,
    games: list[OwnedGame],
    now: datetime,
    plan: Plan,
    tz: ZoneInfo,
    milestone_hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS,
) -> int:
    """Store the library's totals; after the baseline, announce what grew. Returns the number
    of activity events stored."""
    now_text = to_iso(now)
    account = conn.execute(
        "SELECT baseline_at FROM steam_accounts WHERE steam_id = ?", (steam_id,)
    ).fetchone()
    baseline = account is None or account[0] is None
    stored = 0
    for game in games:
        if game.name:
            remember_game_name(conn, str(game.app_id), game.name, now_text)
        change = record_playtime(
            conn,
            scope=GLOBAL_SCOPE,
            source="steam",
            player_id=steam_id,
            game_id=str(game.app_id),
            seconds=game.playtime_seconds,
            source_time=now,
            now_text=now_text,
        )
        if not baseline and change.applied:
            stored += announce_growth(
                conn, steam_id, game.app_id, game.name, change, now, tz, milestone_hours
            )
    conn.execute(
        "INSERT INTO steam_accounts (steam_id, state, baseline_at, last_synced_at, next_sync_at,"
        " updated_at) VALUES (?, 'ok', ?, ?, ?, ?) ON CONFLICT (steam_id) DO UPDATE SET"
        " state = 'ok', baseline_at = coalesce(steam_accounts.baseline_at, excluded.baseline_at),"
        " last_synced_at = excluded.last_synced_at, next_sync_at = excluded.next_sync_at,"
        " private_since = NULL, failures = 0, last_error = NULL, updated_at = excluded.updated_at",
        (steam_id, now_text, now_text, _next_read(conn, steam_id, now, plan), now_text),
    )
    _set_link_status(conn, steam_id, None, now_text)
    return stored


def announce_growth(
    conn: sqlite3.Connection,
    steam_id: str,
    app_id: int,
    game_name: str | None,
    change: PlaytimeChange,
    now: datetime,
    tz: ZoneInfo,
    milestone_hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS,
) -> int:
    """A stored Steam total grew (a library read, or a get-playtime lookup, whichever saw it
    first): the day's played line and any milestone for every guild that links the account,
    and a pending achievement check. Nothing before the account's baseline. Returns the
    number of activity events stored."""
    old, total = change.old, change.new
    if old is None or total is None or total <= old:
        return 0
    account = conn.execute(
        "SELECT baseline_at FROM steam_accounts WHERE steam_id = ?", (steam_id,)
    ).fetchone()
    if account is None or account[0] is None:
        return 0  # the sync's first read of this account will be its silent baseline
    now_text = to_iso(now)
    conn.execute(
        "INSERT OR IGNORE INTO steam_pending_checks (steam_id, app_id, since) VALUES (?, ?, ?)",
        (steam_id, app_id, now_text),
    )
    links = conn.execute(
        "SELECT guild_id, discord_user_id, display_name FROM account_links"
        " WHERE source = 'steam' AND external_id = ?",
        (steam_id,),
    ).fetchall()
    midnight = _local_midnight(now, tz)
    day = midnight.date().isoformat()
    (today,) = conn.execute(
        "SELECT coalesce(sum(delta_seconds), 0) FROM playtime_samples WHERE scope_guild_id = ?"
        " AND source = 'steam' AND player_id = ? AND game_id = ? AND at >= ?",
        (GLOBAL_SCOPE, steam_id, str(app_id), to_iso(midnight)),
    ).fetchone()
    if game_name is None:
        row = conn.execute("SELECT name FROM games WHERE game_id = ?", (str(app_id),)).fetchone()
        game_name = row[0] if row else None
    title_game = game_name or f"app {app_id}"
    stored = 0
    for guild_id, user_id, display_name in links:
        name = display_name or "A linked player"
        event = ActivityEvent(
            type="steam.game_played",
            title=f"{name} played {title_game} today: {human_duration(today)}",
            occurred_at=now,
            source="steam",
            payload={
                "game_id": app_id,
                "game_name": game_name,
                "seconds_today": today,
                "total_seconds": total,
                "day": day,
            },
            guild_id=guild_id,
            actor_user_id=user_id,
            actor_external_id=steam_id,
            actor_name=display_name,
            external_id=f"{steam_id}:{app_id}:{day}",
            update_key=f"steam.game_played:{steam_id}:{app_id}:{day}",
        )
        insert_event(conn, event, guild_id, None, now_text)
        stored += 1
        for hours in reached_milestones(
            conn,
            milestone_hours,
            guild_id=guild_id,
            source="steam",
            player_id=steam_id,
            game_id=str(app_id),
            old=old,
            new=total,
            at=now,
        ):
            milestone = Milestones(milestone_hours).event(
                guild_id=guild_id,
                source="steam",
                player_id=steam_id,
                game_id=str(app_id),
                game_name=stored_game_name(conn, str(app_id)),
                hours=hours,
                total=total,
                at=now,
                name=display_name,
                user_id=user_id,
            )
            insert_event(conn, milestone, guild_id, None, now_text)
            stored += 1
    return stored


def _stored_unlocks(
    conn: sqlite3.Connection, steam_id: str, app_id: int
) -> tuple[set[str], str | None, str | None]:
    """(stored unlocks, the game's baseline time, the account's baseline time)."""
    names = {
        r[0]
        for r in conn.execute(
            "SELECT api_name FROM steam_achievements WHERE steam_id = ? AND app_id = ?",
            (steam_id, app_id),
        ).fetchall()
    }
    row = conn.execute(
        "SELECT baseline_at FROM steam_achievement_games WHERE steam_id = ? AND app_id = ?",
        (steam_id, app_id),
    ).fetchone()
    account = conn.execute(
        "SELECT baseline_at FROM steam_accounts WHERE steam_id = ?", (steam_id,)
    ).fetchone()
    return names, row[0] if row else None, account[0] if account else None


def _checked(conn: sqlite3.Connection, steam_id: str, app_id: int) -> None:
    conn.execute(
        "DELETE FROM steam_pending_checks WHERE steam_id = ? AND app_id = ?", (steam_id, app_id)
    )


def _timestamp(iso_text: str | None) -> int | None:
    return int(from_iso(iso_text).timestamp()) if iso_text else None


def _unlock_time(unlock: Unlock) -> str | None:
    """Steam's unlocktime as stored text; missing, zero or absurd values are None."""
    if unlock.unlock_time is None or not 0 < unlock.unlock_time < 253_402_300_799:
        return None
    return to_iso(datetime.fromtimestamp(unlock.unlock_time, UTC))


def _store_unlocks(
    conn: sqlite3.Connection, steam_id: str, app_id: int, unlocks: list[Unlock], now: datetime
) -> None:
    """A game's first check: its existing unlocks are the baseline, stored silently."""
    now_text = to_iso(now)
    conn.executemany(
        "INSERT OR IGNORE INTO steam_achievements (steam_id, app_id, api_name, unlocked_at,"
        " noticed_at) VALUES (?, ?, ?, ?, ?)",
        [(steam_id, app_id, u.api_name, _unlock_time(u), now_text) for u in unlocks],
    )
    conn.execute(
        "INSERT OR IGNORE INTO steam_achievement_games (steam_id, app_id, baseline_at)"
        " VALUES (?, ?, ?)",
        (steam_id, app_id, now_text),
    )


def rarity(percent: float | None) -> str | None:
    """'rare: 2.3 % of players' below RARE_PERCENT, else '41.0 % of players'."""
    if percent is None:
        return None
    shown = f"{percent:.1f}" if percent >= 0.1 else f"{percent:.2f}"
    return f"rare: {shown} % of players" if percent < RARE_PERCENT else f"{shown} % of players"


def _announce_unlocks(
    conn: sqlite3.Connection,
    steam_id: str,
    game: OwnedGame,
    fresh: list[Unlock],
    schema: dict[str, Any],
    percentages: dict[str, Any],
    now: datetime,
) -> int:
    """Store new unlocks and announce each once to every guild that links the account (the
    INSERT and the events share the transaction: exactly once, also across restarts)."""
    now_text = to_iso(now)
    links = conn.execute(
        "SELECT guild_id, discord_user_id, display_name FROM account_links"
        " WHERE source = 'steam' AND external_id = ?",
        (steam_id,),
    ).fetchall()
    stored = 0
    for unlock in fresh:
        unlocked_at = _unlock_time(unlock)
        inserted = conn.execute(
            "INSERT OR IGNORE INTO steam_achievements (steam_id, app_id, api_name, unlocked_at,"
            " noticed_at) VALUES (?, ?, ?, ?, ?)",
            (steam_id, game.app_id, unlock.api_name, unlocked_at, now_text),
        ).rowcount
        if not inserted:
            continue
        info = schema.get(unlock.api_name) or {}
        display = info.get("name") or unlock.api_name
        percent = percentages.get(unlock.api_name)
        game_name = game.name or _stored_game_name(conn, game.app_id)
        title_game = game_name or f"app {game.app_id}"
        for guild_id, user_id, display_name in links:
            name = display_name or "A linked player"
            event = ActivityEvent(
                type="steam.achievement",
                title=f"{name} unlocked {display} in {title_game}",
                occurred_at=from_iso(unlocked_at) if unlocked_at else now,
                source="steam",
                payload={
                    "game_id": game.app_id,
                    "game_name": game_name,
                    "achievement": display,
                    "api_name": unlock.api_name,
                    "description": info.get("description"),
                    "icon": info.get("icon"),
                    "percent": percent,
                    "rarity": rarity(percent),
                },
                guild_id=guild_id,
                actor_user_id=user_id,
                actor_external_id=steam_id,
                actor_name=display_name,
                external_id=f"{steam_id}:{game.app_id}:{unlock.api_name}",
            )
            insert_event(conn, event, guild_id, None, now_text)
            stored += 1
    return stored


def _stored_game_name(conn: sqlite3.Connection, app_id: int) -> str | None:
    row = conn.execute("SELECT name FROM games WHERE game_id = ?", (str(app_id),)).fetchone()
    return row[0] if row else None
