"""No channel waits for another: a worker per channel, against the fake Discord with Discord's
own limits (5 messages per 5 s per channel, 50 requests per second in all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from discord.http import HTTPClient

from bot.clock import SystemClock, to_iso
from bot.config import Config
from bot.core import Core
from bot.feed.poster import FeedPoster
from bot.feed.sender import DiscordSender
from connectors.base import WebhookContext
from tests.fakes.discord import FakeDiscord

BUSY = [910000000000000000 + n for n in range(10)]
IDLE = 910000000000000099
GUILDS = {channel: 810000000000000000 + n for n, channel in enumerate([*BUSY, IDLE])}
GUILD_CHANNELS = dict.fromkeys([*BUSY, IDLE])
FAKE_DISCORD = {"per_channel": (5, 5.0), "global_per_second": 50}
#: The loose bound the issue sets: a new event for an idle channel is posted within 2 s.
BOUND = 2.0


@pytest.fixture
async def live(config: Config, discord_api: FakeDiscord) -> AsyncIterator[tuple[Core, HTTPClient]]:
    """A core on the real clock (the fake's rate limits run on real time) and a logged-in
    discord.py HTTP client."""
    core = await Core.start(config, SystemClock())
    http = HTTPClient(asyncio.get_running_loop())
    await http.static_login(discord_api.token)
    try:
        now = to_iso(core.clock.now())
        for channel, guild in GUILDS.items():
            await core.store.engine.write(
                lambda c, g=guild, ch=channel: c.execute(
                    "INSERT INTO guilds (guild_id, feed_channel_id, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?)",
                    (g, ch, now, now),
                )
            )
        yield core, http
    finally:
        await http.close()
        await core.stop()


async def backlog(core: Core, channels: list[int], per_channel: int) -> None:
    """``per_channel`` events waiting for each channel, through the ingest path (all at once:
    the writer commits them in groups)."""
    connector = core.registry.get("custom")
    context = WebhookContext(received_at=core.clock.now())
    await asyncio.gather(
        *(
            core.pipeline.ingest(
                "custom",
                GUILDS[channel],
                connector.parse_webhook(
                    {"event_type": "backlog", "title": f"backlog {n}", "id": f"{channel}-{n}"},
                    context,
                ),
            )
            for n in range(per_channel)
            for channel in channels
        )
    )


async def ingest_one(core: Core, channel: int, title: str) -> None:
    raw = core.registry.get("custom").parse_webhook(
        {"event_type": "fresh", "title": title, "id": title},
        WebhookContext(received_at=core.clock.now()),
    )
    await core.pipeline.ingest("custom", GUILDS[channel], raw)


async def until(check: Any, seconds: float) -> float:
    """Seconds until ``check()`` is true (fails the test after ``seconds``)."""
    started = time.monotonic()
    for _ in range(int(seconds / 0.005)):
        if check():
            return time.monotonic() - started
        await asyncio.sleep(0.005)
    raise AssertionError(f"not done within {seconds} s")


async def test_an_idle_channel_is_not_held_up_by_ten_busy_ones(
    live: tuple[Core, HTTPClient], discord_api: FakeDiscord
) -> None:
    core, http = live
    await backlog(core, BUSY, 500)
    poster = FeedPoster(core.store, core.clock, DiscordSender(http))
    core.pipeline.on_event = poster.wake
    await poster.start()
    try:
        # Every busy channel is draining (and soon waits on its 5-per-5-s bucket).
        await until(lambda: all(discord_api.count(c) for c in BUSY), 10)
        await ingest_one(core, IDLE, "fresh event")
        waited = await until(lambda: discord_api.count(IDLE) == 1, 10)
        assert waited < BOUND, f"the idle channel waited {waited:.2f} s"
        [message] = discord_api.messages[IDLE]
        assert message["embeds"][0]["title"] == "📣 fresh event"
    finally:
        await poster.stop()
    assert not [r for r in discord_api.rate_limited() if r.scope == "global"]


async def test_a_hanging_channel_delays_only_itself(
    live: tuple[Core, HTTPClient], discord_api: FakeDiscord
) -> None:
    core, http = live
    slow, other = BUSY[0], BUSY[1]
    discord_api.holds[slow] = 3.0  # a send that hangs for 3 s
    poster = FeedPoster(core.store, core.clock, DiscordSender(http))
    core.pipeline.on_event = poster.wake
    await poster.start()
    try:
        await ingest_one(core, slow, "slow one")
        await asyncio.sleep(0.2)  # its send is hanging now
        await ingest_one(core, other, "quick one")
        waited = await until(lambda: discord_api.count(other) == 1, 5)
        assert waited < 1.0 and discord_api.count(slow) == 0
        await until(lambda: discord_api.count(slow) == 1, 5)
    finally:
        await poster.stop()
