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
* 429s and Steam outages reschedule the account with exponential backoff and jitter. A refused
  key (HTTP 401/403 that is not a private profile) pauses the sync with one error line; it
  re-probes with one cheap call (a one-id ``GetPlayerSummaries``), 5 minutes after, doubling up
  to an hour, and resumes by itself (one line) when Steam accepts the key again.

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
* The sync spends its share of the daily limit (``[steam] sync_share``, enforced by its own
  budget in bot/steam_sync/budget.py); the rest stays for get-playtime lookups and ``/link``.
  ``make_plan`` projects the day's calls within that share (``questlog status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.metrics import Metrics
from bot.steam_sync.achievements import AchievementChecker
from bot.steam_sync.budget import LOOKUP, SYNC, Shares
from bot.steam_sync.plan import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_MAX_SECONDS,
    DUE_PER_TICK,
    ENROL_SECONDS,
    SUMMARY_BATCH,
    TICK_SECONDS,
    Plan,
    first_slot,
    make_plan,
    next_time,
    retry_delay,
)
from bot.storage import Store
from bot.storage.interface import Growth, Observer
from bot.tasks import cancel_task
from connectors.steam import SteamClient
from connectors.steam.client import OwnedGame
from connectors.steam.errors import (
    InvalidKey,
    NotConfigured,
    PrivateProfile,
    RateLimited,
    SteamError,
)

log = logging.getLogger(__name__)

PROBE_FIRST_SECONDS = 300.0  # a refused key is probed again after 5 minutes,
PROBE_MAX_SECONDS = 3600.0  # doubling up to an hour
PROBE_STEAM_ID = "76561197960287930"  # a public account, for a probe when none is linked

__all__ = ["Plan", "SteamSync", "SyncStatus", "make_plan"]


@dataclass(frozen=True)
class SyncStatus:
    enabled: bool
    state: str  # running | disabled | not_configured | invalid_key (paused, probing)
    detail: str | None
    accounts: int
    private: int
    due: int
    in_game: int
    interval_configured: int
    plan: Plan
    calls_today: int  # the sync's calls today (its schedule, /sync now, questlog sync)
    daily_limit: int  # the sync's share of the day's calls
    lookup_calls_today: int = 0  # get-playtime and /link
    lookup_limit: int = 0
    key_refused_since: datetime | None = None
    next_probe_at: datetime | None = None


class SteamSync:
    def __init__(
        self,
        store: Store,
        steam: SteamClient,
        clock: Clock,
        metrics: Metrics,
        *,
        interval: int,
        shares: Shares,
        tz: ZoneInfo,
        concurrency: int = 4,
        enabled: bool = True,
        sync_now_cooldown: float = 600.0,
        observer: Observer,
        language: str = "english",
        on_event: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.steam = steam
        self.clock = clock
        self.metrics = metrics
        self.interval = interval
        self.shares = shares
        self.tz = tz
        self.enabled = enabled
        self.sync_now_cooldown = sync_now_cooldown
        self._sync_now_at: dict[int, float] = {}  # guild -> monotonic time of its last /sync now
        self.observer = observer  # the Steam connector and the ingest policy
        self.on_event = on_event  # wakes the feed poster
        self.achievements = AchievementChecker(
            store, steam, clock, observer, language=language, on_key_refused=self._key_refused
        )
        self._semaphore = asyncio.Semaphore(concurrency)
        self._in_flight: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self.key_problem: str | None = None  # Steam refused the key: paused, probing
        self.key_refused_since: datetime | None = None
        self._probe_wait = PROBE_FIRST_SECONDS
        self._next_probe: float | None = None  # monotonic
        self._next_probe_at: datetime | None = None
        self._saved_key_state: object = None  # what questlog status last got to see
        self._last_enrol: float | None = None
        self._plan: Plan | None = None
        self._next_summaries: float | None = None  # monotonic time of the next summary pass
        self._summary_failures = 0

    def growth(self, now: datetime) -> Growth:
        """How a total that grew now is announced (also for get-playtime's lookups)."""
        local = now.astimezone(self.tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return Growth(self.observer, midnight)

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
        while True:
            try:
                if self.key_problem is not None:
                    await self.probe_key()
                else:
                    await self.run_once()
                await self.save_key_state()
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
        due = await self.store.steam.due(self.clock.now(), DUE_PER_TICK)
        ids = [s for s in due if s not in self._in_flight]
        results = await asyncio.gather(*(self._sync_guarded(s, plan) for s in ids))
        return results.count("ok")

    async def _planned(self, now: datetime, *, force: bool = False) -> Plan:
        """Reconcile the sync's accounts with the links (at most every ENROL_SECONDS: it reads
        every link) and return the plan in force."""
        due = self._last_enrol is None or self.clock.monotonic() - self._last_enrol >= ENROL_SECONDS
        if force or due or self._plan is None:
            linked, in_game = await self.store.steam.enrol(
                now, lambda steam_id: now + timedelta(seconds=first_slot(steam_id, self.interval))
            )
            self._plan = make_plan(linked, in_game, self.interval, self.shares.sync)
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
        ids = await self.store.steam.accounts()
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
            await self.store.steam.seen(
                batch, games, self.clock.now(), plan.active_interval, self.observer, logoffs
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
            steam_ids = await self.store.steam.accounts()
        results = await asyncio.gather(*(self._sync_guarded(s, plan) for s in steam_ids))
        return Counter(results)

    def claim_sync_now(self, guild_id: int) -> datetime | None:
        """A guild's /sync now: None when it may run now (and the cooldown starts), else when it
        may run again. One guild cannot spend the budget of the others by asking repeatedly."""
        now = self.clock.monotonic()
        last = self._sync_now_at.get(guild_id)
        if last is not None and now - last < self.sync_now_cooldown:
            return self.clock.now() + timedelta(seconds=self.sync_now_cooldown - (now - last))
        self._sync_now_at[guild_id] = now
        return None

    async def linked_accounts(
        self, guild_id: int | None = None, discord_user_id: int | None = None
    ) -> list[str]:
        """The linked SteamIDs (of a guild, of one member): what /sync now and questlog sync
        read."""
        return await self.store.links.steam_ids(guild_id, discord_user_id)

    @property
    def _probes(self) -> bool:
        """Whether this sync runs (the server starts it) and so probes a refused key."""
        return self.enabled and self.steam.configured

    @property
    def key_refused(self) -> bool:
        """Whether the running sync holds the key refused and is probing it (then lookups wait
        for its probe). Without a running sync (sync_enabled = false, or a CLI process) nothing
        would ever probe, so lookups keep asking Steam themselves."""
        return self.key_problem is not None and self._probes

    def report_refused_key(self, exc: Exception) -> None:
        """Steam refused the key on a call made elsewhere (a get-playtime lookup): the running
        sync pauses and probes; without one there is nothing to pause."""
        if self._probes:
            self._key_refused(exc)

    def _key_refused(self, exc: Exception) -> None:
        if self.key_problem is None:
            self.key_refused_since = self.clock.now()
            self._probe_wait = PROBE_FIRST_SECONDS
            self._schedule_probe()
            if self._probes:
                log.error(
                    "Steam sync paused: the API key was refused (%s). Check [steam] api_key or"
                    " STEAM_API_KEY; the key is tried again at %s, and the sync resumes by"
                    " itself.",
                    exc,
                    self._next_probe_at.isoformat(timespec="seconds")
                    if self._next_probe_at
                    else "?",
                )
            else:
                log.error("Steam refused the API key (%s); check [steam] api_key.", exc)
        self.key_problem = str(exc)
        self.metrics.inc("questlog_steam_sync_total", result="invalid_key")

    async def save_key_state(self) -> None:
        """Store the key's state when it changed, for ``questlog status`` (another process)."""
        state = (self.key_refused_since, self._next_probe_at, self.key_problem)
        if state != self._saved_key_state:
            await self.store.steam.set_key_state(*state)
            self._saved_key_state = state

    def _schedule_probe(self) -> None:
        self._next_probe = self.clock.monotonic() + self._probe_wait
        self._next_probe_at = self.clock.now() + timedelta(seconds=self._probe_wait)

    async def probe_key(self) -> bool | None:
        """While the key is refused: when the probe is due, one one-id GetPlayerSummaries.
        True: accepted again, the sync resumes; False: still refused (the next probe waits
        twice as long, at most an hour); None: not due, or Steam did not answer either way."""
        if self.key_problem is None:
            return True
        if self._next_probe is not None and self.clock.monotonic() < self._next_probe:
            return None
        accounts = await self.store.steam.accounts()
        probe = accounts[0] if accounts else PROBE_STEAM_ID
        try:
            await self.steam.get_player_summaries([probe])
        except (InvalidKey, NotConfigured) as exc:
            self._probe_wait = min(PROBE_MAX_SECONDS, self._probe_wait * 2)
            self._schedule_probe()
            self.key_problem = str(exc)
            self.metrics.inc("questlog_steam_key_probes_total", result="refused")
            return False
        except SteamError as exc:  # 429 or Steam down: says nothing about the key
            self._schedule_probe()
            log.warning("Steam key probe inconclusive (%s); trying again later", exc)
            self.metrics.inc("questlog_steam_key_probes_total", result="inconclusive")
            return None
        since = self.key_refused_since
        self.key_problem = self.key_refused_since = None
        self._next_probe = self._next_probe_at = None
        self._next_summaries = None  # poll at once
        self.metrics.inc("questlog_steam_key_probes_total", result="accepted")
        log.info(
            "Steam accepted the API key again; the sync resumed (paused since %s).",
            since.isoformat(timespec="seconds") if since else "?",
        )
        return True

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
            now = self.clock.now()
            await self.store.steam.mark_private(steam_id, now, next_time(now, plan.sweep_interval))
            self.metrics.inc("questlog_steam_sync_total", result="private_profile")
            return "private"
        except (InvalidKey, NotConfigured) as exc:
            self._key_refused(exc)
            return "invalid_key"
        except SteamError as exc:
            state = "rate_limited" if isinstance(exc, RateLimited) else "unavailable"
            await self.store.steam.mark_retry(
                steam_id, self.clock.now(), state, str(exc), retry_delay
            )
            log.warning("Steam sync of an account deferred (%s): %s", state, exc)
            self.metrics.inc("questlog_steam_sync_total", result=state)
            return "deferred"
        now = self.clock.now()
        new_events = await self.store.steam.apply_library(
            steam_id,
            games,
            now,
            soon=now + timedelta(seconds=plan.active_interval),
            later=next_time(now, plan.sweep_interval),
            growth=self.growth(now),
        )
        self.metrics.inc("questlog_steam_sync_total", result="ok")
        # Only games played since their last check can have new unlocks; a check that fails
        # stays pending and is tried again after the next read.
        names = {g.app_id: g for g in games}
        for app_id in await self.store.steam.pending_checks(steam_id):
            game = names.get(app_id) or OwnedGame(app_id=app_id, playtime_forever_minutes=0)
            new_events += await self.achievements.check(steam_id, game)
        if new_events and self.on_event is not None:
            self.on_event()
        return "ok"

    async def check_achievements(self, steam_id: str, game: OwnedGame) -> int:
        return await self.achievements.check(steam_id, game)

    # ------------------------------------------------------------------ status

    async def status(self) -> SyncStatus:
        now = self.clock.now()
        counts = await self.store.steam.counts(now)
        calls = await self.store.steam.calls_on(now.strftime("%Y-%m-%d"))
        plan = make_plan(counts["accounts"], counts["in_game"], self.interval, self.shares.sync)
        if not self.enabled:
            state, detail = "disabled", "[steam] sync_enabled is false"
        elif not self.steam.configured:
            state, detail = "not_configured", "no Steam API key ([steam] api_key)"
        elif self.key_problem is not None:
            state, detail = "invalid_key", self.key_problem
        else:
            state, detail = "running", None
        refused = self.key_problem is not None
        return SyncStatus(
            enabled=self.enabled,
            state=state,
            detail=detail,
            accounts=counts["accounts"],
            private=counts["private"],
            due=counts["due"],
            in_game=counts["in_game"],
            interval_configured=self.interval,
            plan=plan,
            calls_today=calls.get(SYNC, 0),
            daily_limit=self.shares.sync,
            lookup_calls_today=calls.get(LOOKUP, 0),
            lookup_limit=self.shares.lookup,
            key_refused_since=self.key_refused_since if refused else None,
            next_probe_at=self._next_probe_at if refused else None,
        )
