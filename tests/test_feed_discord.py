"""The feed poster end to end: discord.py's real HTTP client against a local fake Discord API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from discord.http import HTTPClient

from bot.clock import ManualClock
from bot.core import Core
from bot.feed.embeds import CHARS_PER_MESSAGE, embed_length
from bot.feed.poster import FeedPoster
from bot.feed.sender import DiscordSender
from bot.services.feed_admin import pause_reason
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.test_feed import CHANNEL, add_events, set_feed, statuses

GUILD_CHANNELS = {CHANNEL: None}
FAKE_DISCORD = {"per_channel": (5, 1.0)}


@pytest.fixture
async def http(discord_api: FakeDiscord) -> AsyncIterator[HTTPClient]:
    client = HTTPClient(asyncio.get_running_loop())
    await client.static_login(discord_api.token)
    try:
        yield client
    finally:
        await client.close()


def poster(core: Core, clock: ManualClock, http: HTTPClient, **kw: Any) -> FeedPoster:
    return FeedPoster(core.store, clock, DiscordSender(http), **kw)


async def test_batches_reach_discord_once(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 23, player={"id": "p1", "name": "@everyone"})
    assert await poster(core, clock, http).run_once() == 3
    messages = discord_api.messages[CHANNEL]
    assert [len(m["embeds"]) for m in messages] == [10, 10, 3]
    assert all(m["nonce"] for m in messages)
    assert await core.store.engine.read(statuses) == {"sent": 23}
    stored = {r[0] for r in await core.store.engine.fetchall("SELECT message_id FROM feed_outbox")}
    assert stored == {int(m["id"]) for m in messages}


async def test_long_titles_pass_discords_own_validation(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 10, title="{n:03d}" + "W" * 253, description="x" * 3000)
    assert await poster(core, clock, http).run_once() >= 5
    for message in discord_api.messages[CHANNEL]:
        assert sum(embed_length(e) for e in message["embeds"]) <= CHARS_PER_MESSAGE
    assert await core.store.engine.read(statuses) == {"sent": 10}


async def test_429_is_obeyed_and_posts_exactly_one_message(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 3)
    discord_api.fail_next(CHANNEL, [(429, 0.2)])
    assert await poster(core, clock, http).run_once() == 1
    assert discord_api.count(CHANNEL) == 1


async def test_server_errors_then_success(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 2)
    # discord.py does not retry a 503 itself: the poster backs off and keeps the rows pending.
    discord_api.fail_next(CHANNEL, [503, 503])
    feed = poster(core, clock, http, backoff_base=1)
    assert await feed.run_once() == 0
    clock.advance(10)
    assert await feed.run_once() == 0
    assert await core.store.engine.read(statuses) == {"pending": 2}
    clock.advance(10)
    assert await feed.run_once() == 1
    # A 500 is retried by discord.py itself (after a second): still exactly one message.
    await add_events(core, 1, start=50)
    discord_api.fail_next(CHANNEL, [500])
    assert await feed.run_once() == 1
    assert discord_api.count(CHANNEL) == 2
    assert await core.store.engine.read(statuses) == {"sent": 3}


async def test_forbidden_pauses_and_is_reported(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 4)
    discord_api.forbidden_channels.add(CHANNEL)
    assert await poster(core, clock, http).run_once() == 0
    status = await core.store.feed.status(GUILD)
    assert (status.channel_state, status.pause_code, status.pending) == ("paused", 50013, 4)
    assert status.failed == 0 and status.next_probe_at is not None
    assert "403" in (status.last_error or "")


async def test_deleted_channel_pauses_without_probing(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 1)
    discord_api.deleted_channels.add(CHANNEL)
    await poster(core, clock, http).run_once()
    status = await core.store.feed.status(GUILD)
    assert (status.channel_state, status.pause_code) == ("paused", 10003)
    assert status.next_probe_at is None and "deleted" in (
        pause_reason(status.pause_code, status.pause_detail)
    )


async def test_lost_response_then_restart_posts_once(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord, config: Any
) -> None:
    await set_feed(core)
    await add_events(core, 12)
    discord_api.drop_response_next(CHANNEL)
    assert await poster(core, clock, http, backoff_base=1).run_once() == 0
    assert discord_api.count(CHANNEL) == 1  # Discord made it; we never heard back
    await core.stop()
    restarted = await Core.start(config, clock)
    try:
        clock.advance(10)
        assert await poster(restarted, clock, http).run_once() == 2
        assert [len(m["embeds"]) for m in discord_api.messages[CHANNEL]] == [10, 2]
        assert await restarted.store.engine.read(statuses) == {"sent": 12}
    finally:
        await restarted.stop()

        async def noop() -> None:
            return None

        core.stop = noop  # type: ignore[method-assign]


async def test_sends_carry_the_batch_nonce_and_enforce_it(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    """Discord deduplicates a resend only when ``enforce_nonce`` is true (discord.py >= 2.5)."""
    await set_feed(core)
    await add_events(core, 2)
    discord_api.drop_response_next(CHANNEL)
    feed = poster(core, clock, http, backoff_base=1)
    assert await feed.run_once() == 0
    clock.advance(10)
    assert await feed.run_once() == 1
    posts = [r for r in discord_api.requests if r.method == "POST" and r.channel_id == CHANNEL]
    assert len(posts) == 2
    nonce = (await core.store.engine.fetchone("SELECT nonce FROM feed_batches"))[0]
    for request in posts:
        assert request.body["nonce"] == nonce
        assert request.body["enforce_nonce"] is True
        assert request.body["allowed_mentions"] == {"parse": []}
    assert discord_api.count(CHANNEL) == 1
