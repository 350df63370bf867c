"""Role rewards: a role for hours played (``/rewards``).

The storage decides, in the transaction of whatever changed a member's hours, which rewards
they earn and queues the role actions (bot/storage/rewards.py): an ingest that adds playtime,
a Steam library read, a link made or removed. This service does what no single change covers:

* a new reward is granted at once to everyone already over it (a full check of the guild:
  the candidates found in a read, then written in batches, so the writer is never held long);
* every day, shortly after the community's midnight, each guild with rewards is checked again:
  a period reward ("30 hours this month") comes and goes as days pass, and a member whose
  hours no longer count (an unlinked account, verification now required) loses what they had;
* a member who comes back to the server gets again what they earn (with the Server Members
  intent, when Discord tells the bot they joined).

The role actions themselves are the action worker's (bot/actions), sent through the bot's own
Discord client and its rate limits; the worker is woken when a check queued some.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import PERIODS, Clock
from bot.storage import Store
from bot.storage.records import Reward, RewardChanges, RewardSummary
from bot.storage.rewards import MAX_REWARDS, REWARD_COUNTS, REWARD_MODES, REWARD_SOURCES
from connectors.squad import GROUP_NAME, PERMISSIONS

log = logging.getLogger(__name__)

# What the cogs use (they do not import the storage package).
__all__ = ["REWARD_COUNTS", "REWARD_SOURCES", "Reward", "RewardChanges", "RewardRefused",
           "RewardService", "RewardSummary"]  # fmt: skip

BATCH = 200  # members per write transaction of a full check
MAX_HOURS = 100_000
DAILY_AFTER_MIDNIGHT = timedelta(minutes=5)
FIRST_CHECK = timedelta(minutes=1)  # after start: what changed while Questlog was stopped


def squad_permission_list(text: str) -> str:
    """Squad permissions as typed ("reserve, cameraman"): checked against Squad's list and
    kept comma-separated, each once, in Squad's spelling. RewardRefused names an unknown one."""
    wanted = [part.strip().lower() for part in text.replace(" ", ",").split(",") if part.strip()]
    unknown = [p for p in wanted if p not in PERMISSIONS]
    if unknown or not wanted:
        raise RewardRefused(
            "rewards.refused.squad_permission",
            permission=(unknown or [text])[0][:32],
            known=", ".join(PERMISSIONS),
        )
    return ",".join(dict.fromkeys(wanted))


class RewardRefused(Exception):
    """A reward that cannot be made as asked: ``msgid`` names why (a catalogue message id),
    ``fields`` fill it."""

    def __init__(self, msgid: str, **fields: object) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.fields = fields


class RewardService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        tz: ZoneInfo,
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.tz = tz
        self.wake = wake or (lambda: None)
        self._checks: dict[int, asyncio.Task[RewardChanges]] = {}
        self._loop: asyncio.Task[None] | None = None

    async def add(
        self,
        *,
        guild_id: int,
        role_id: int | None,
        hours: int,
        game_id: str | None = None,
        period: str = "all",
        source: str = "any",
        mode: str = "stack",
        created_by: int | None = None,
        squad_group: str | None = None,
        squad_permissions: str | None = None,
        counting: str = "active",
    ) -> Reward:
        """Store a reward (the caller checked that the bot can assign the role) and start
        granting it to everyone already over it. Its target is a role, a Squad group (with
        Squad permissions, ``reserve`` unless given), or both; it counts active time, or
        (``counting`` ``total``) the total with AFK and idle time."""
        if squad_group is None and squad_permissions is not None:
            raise RewardRefused("rewards.refused.squad_permissions_alone")
        if role_id is None and squad_group is None:
            raise RewardRefused("rewards.refused.no_target")
        if squad_group is not None and not GROUP_NAME.fullmatch(squad_group):
            raise RewardRefused("rewards.refused.squad_group")
        if squad_group is not None:
            squad_permissions = squad_permission_list(squad_permissions or "reserve")
        if not 1 <= hours <= MAX_HOURS:
            raise RewardRefused("rewards.refused.hours", max=MAX_HOURS)
        if (
            period not in PERIODS
            or source not in REWARD_SOURCES
            or mode not in REWARD_MODES
            or counting not in REWARD_COUNTS
        ):
            raise RewardRefused("rewards.refused.choice")
        existing = await self.store.rewards.list(guild_id)
        if len(existing) >= MAX_REWARDS:
            raise RewardRefused("rewards.refused.too_many", max=MAX_REWARDS)
        for other in existing:
            same = (other.game_id, other.period) == (game_id, period)
            target = (other.role_id, other.squad_group) == (role_id, squad_group)
            if same and other.hours == hours and (target or mode == "replace"):
                raise RewardRefused("rewards.refused.duplicate", id=other.id)
        reward = await self.store.rewards.add(
            guild_id=guild_id, role_id=role_id, hours=hours, game_id=game_id, period=period,
            source=source, mode=mode, created_by=created_by, now=self.clock.now(),
            squad_group=squad_group, squad_permissions=squad_permissions, counting=counting,
        )  # fmt: skip
        self.check_soon(guild_id)
        return reward

    async def remove(self, guild_id: int, reward_id: int, *, take_back: bool) -> list[int] | None:
        """Delete a reward (None: no such reward here); with ``take_back`` its role is taken
        from the members Questlog gave it to. A tier below it may apply again: checked."""
        holders = await self.store.rewards.remove(
            guild_id, reward_id, take_back=take_back, now=self.clock.now()
        )
        if holders is not None:
            self.wake()
            self.check_soon(guild_id)
        return holders

    async def summaries(self, guild_id: int) -> list[RewardSummary]:
        return await self.store.rewards.summaries(guild_id)

    async def rewards(self, guild_id: int) -> list[Reward]:
        return await self.store.rewards.list(guild_id)

    async def preview(
        self,
        *,
        guild_id: int,
        hours: int,
        game_id: str | None = None,
        period: str = "all",
        source: str = "any",
        counting: str = "active",
        limit: int = 10,
    ) -> tuple[int, list[tuple[int, int]]]:
        """Who would earn such a reward now: how many, and the ``limit`` with most hours."""
        if counting not in REWARD_COUNTS:
            raise RewardRefused("rewards.refused.choice")
        unsaved = Reward(
            0, guild_id, 0, hours, game_id, period, source, "stack", "", counting=counting
        )
        return await self.store.rewards.preview(unsaved, self.clock.now(), limit)

    async def check_guild(self, guild_id: int) -> RewardChanges:
        """Bring every member's rewards in the guild up to date (a read finds the members to
        look at; they are checked and their actions queued in batches)."""
        changes = RewardChanges()
        users = await self.store.rewards.candidates(guild_id, self.clock.now())
        for start in range(0, len(users), BATCH):
            changes += await self.store.rewards.check(
                guild_id, users[start : start + BATCH], self.clock.now()
            )
            if changes.queued:
                self.wake()
        if changes.queued:
            log.info(
                "rewards: guild %s checked: %d granted, %d taken away",
                guild_id,
                len(changes.granted),
                len(changes.removed),
            )
        return changes

    def check_soon(self, guild_id: int) -> asyncio.Task[RewardChanges]:
        """A full check of the guild in the background (one at a time per guild: a check
        asked for while one runs follows it)."""
        running = self._checks.get(guild_id)

        async def run() -> RewardChanges:
            if running is not None:
                with contextlib.suppress(Exception):
                    await running
            try:
                return await self.check_guild(guild_id)
            except Exception:
                log.exception("rewards: checking guild %s failed", guild_id)
                return RewardChanges()

        task = asyncio.create_task(run(), name=f"questlog-rewards-{guild_id}")
        self._checks[guild_id] = task

        def done(finished: asyncio.Task[RewardChanges]) -> None:
            if self._checks.get(guild_id) is finished:
                del self._checks[guild_id]

        task.add_done_callback(done)
        return task

    async def settled(self) -> None:
        """Wait for the checks in the background (tests, shutdown)."""
        while self._checks:
            await asyncio.gather(*list(self._checks.values()), return_exceptions=True)

    async def member_joined(self, guild_id: int, user_id: int) -> RewardChanges:
        """A member (back) in the server has none of the roles: grant what they earn again."""
        if not await self.store.rewards.list(guild_id):
            return RewardChanges()
        await self.store.rewards.forget_grants(guild_id, user_id)
        changes = await self.store.rewards.check(guild_id, [user_id], self.clock.now())
        if changes.queued:
            self.wake()
        return changes

    async def check_all(self) -> RewardChanges:
        changes = RewardChanges()
        for guild_id in await self.store.rewards.guilds():
            try:
                changes += await self.check_guild(guild_id)
            except Exception:
                log.exception("rewards: checking guild %s failed", guild_id)
        return changes

    def next_daily(self, now: datetime) -> datetime:
        """The next daily check: a few minutes after the community's next midnight."""
        local = now.astimezone(self.tz)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), self.tz)
        return midnight + DAILY_AFTER_MIDNIGHT

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._daily(), name="questlog-rewards-daily")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        for task in list(self._checks.values()):
            task.cancel()
        await asyncio.gather(*self._checks.values(), return_exceptions=True)
        self._checks.clear()

    async def _daily(self) -> None:
        await asyncio.sleep(FIRST_CHECK.total_seconds())
        while True:
            try:
                await self.check_all()
            except Exception:  # the database away for a moment: tomorrow's check still runs
                log.exception("rewards: the daily check failed")
            now = self.clock.now()
            await asyncio.sleep(max(1.0, (self.next_daily(now) - now).total_seconds()))
