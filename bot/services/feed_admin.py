"""The activity feed for admins (/feed and ``questlog feed``): where it goes, which events,
its state, a sample event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.clock import Clock, to_iso
from bot.feed.poster import pause_reason
from bot.storage import Store
from bot.storage.outbox import BACKFILL_MAX_HOURS
from bot.storage.records import FeedChange, FeedStatus

__all__ = ["BACKFILL_MAX_HOURS", "FeedAdmin", "FeedChange", "FeedStatus", "pause_reason"]


class FeedAdmin:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        wake: Callable[[], None] = lambda: None,
        announce: Callable[[int, dict[str, Any]], Awaitable[object]] | None = None,
        off_by_default: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.clock = clock
        self.off_by_default = off_by_default  # event types the feed skips unless turned on
        self.wake = wake  # the feed poster, when it runs in this process
        self.announce = announce  # the pipeline's entry for the core's own events

    async def set_channel(
        self,
        guild_id: int,
        channel_id: int,
        *,
        max_age: int | None = None,
        backfill_hours: int = 0,
    ) -> FeedChange:
        """Post the guild's events to the channel from now on: a paused channel resumes at
        once, and what waits for another channel moves here, oldest first. ``backfill_hours``
        (at most 72): events of that many past hours stored before the feed had a channel are
        posted too (at most 500, in order, once)."""
        if not 0 <= backfill_hours <= BACKFILL_MAX_HOURS:
            raise ValueError(f"backfill must be 0 to {BACKFILL_MAX_HOURS} hours")
        now = self.clock.now()
        since = to_iso(now - timedelta(hours=backfill_hours)) if backfill_hours else None
        change = await self.store.feed.set_channel(
            guild_id, channel_id, to_iso(now), max_age=max_age, backfill_since=since,
            off_by_default=self.off_by_default,
        )  # fmt: skip
        self.wake()
        return change

    async def status(self, guild_id: int) -> FeedStatus:
        return await self.store.feed.status(guild_id)

    async def event_types(self, guild_id: int) -> list[str] | None:
        """The event types the guild's feed posts; None means the defaults."""
        return await self.store.feed.event_types(guild_id)

    async def set_event_types(self, guild_id: int, types: list[str] | None) -> None:
        await self.store.feed.set_event_types(guild_id, types, to_iso(self.clock.now()))

    async def send_test(self, guild_id: int, user_id: int) -> bool:
        """Queue a sample event for the guild's feed; False when it has no channel."""
        if self.announce is None or await self.store.feed.channel(guild_id) is None:
            return False
        now = to_iso(self.clock.now())
        await self.announce(
            guild_id,
            {
                "type": "feed.test",
                "id": f"{user_id}:{now}",
                "title": "Questlog test event: the feed works",
                "at": now,
                "payload": {"description": "This is what activity looks like in this channel."},
                "user_id": user_id,
            },
        )
        return True
