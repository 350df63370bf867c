"""The activity feed for admins (/feed and ``questlog feed``): where it goes, which events,
its state, a sample event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.clock import Clock, to_iso
from bot.feed.poster import pause_reason
from bot.i18n import LANGUAGES, Language, language
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

    async def language(self, guild_id: int) -> tuple[Language | None, Language]:
        """(the feed language chosen for the guild, or None; the language its feed is
        written in: that one, else the Discord server's primary language when Questlog speaks
        it, else English)."""
        chosen, preferred = await self.store.feed.language(guild_id)
        picked = chosen if chosen in LANGUAGES else None
        return picked, language(picked, preferred)  # type: ignore[return-value]

    async def set_language(self, guild_id: int, chosen: Language | None) -> None:
        """``ru`` or ``en``; None: follow the Discord server's primary language. Titles of
        what is already queued are written in it too (they are written when posted)."""
        if chosen is not None and chosen not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
        await self.store.feed.set_language(guild_id, chosen, to_iso(self.clock.now()))

    async def note_locale(self, guild_id: int, locale: str) -> bool:
        """The Discord server's primary language as the bot sees it (a write only when it
        changed)."""
        return await self.store.feed.note_locale(guild_id, locale, to_iso(self.clock.now()))

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
