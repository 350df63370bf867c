"""The bot's lifecycle against the local fake Discord API (the gateway is replaced by a stand-in:
a fake gateway is future work)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import discord
import pytest

from bot.clock import ManualClock
from bot.core import Core
from bot.feed.poster import FeedPoster
from bot.gateway.client import DiscordComponent, Questlog, discover_extensions
from tests.fakes.discord import FakeDiscord
from tests.test_feed import CHANNEL, add_events, set_feed

GUILD_CHANNELS = {CHANNEL: None}


class Gateway:
    """Stands in for bot.connect(): 'connected' until the bot is closed."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()

    async def __call__(self, bot: Questlog) -> None:
        bot.core.discord_state = "connected"
        self.connected.set()
        while not bot.is_closed():  # noqa: ASYNC110 - discord.py offers no "closed" event
            await asyncio.sleep(0.01)


async def wait_for(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_login_syncs_commands_and_feeds_the_poster(
    core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    poster = FeedPoster(core.store, clock)
    gateway = Gateway()
    component = DiscordComponent(core, poster, discord_api.token, connect=gateway)
    await component.start()
    try:
        await asyncio.wait_for(gateway.connected.wait(), 5)
        assert core.discord_state == "connected"
        assert None in discord_api.synced_commands  # global sync without dev_guild_id
        assert poster.sender is not None
        await set_feed(core)
        await add_events(core, 3)
        assert await poster.run_once() == 1
        assert discord_api.count(CHANNEL) == 1
    finally:
        await component.stop()
    assert poster.sender is None
    assert component.bot is None


async def test_dev_guild_gets_instant_sync(
    core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    gateway = Gateway()
    component = DiscordComponent(
        core, FeedPoster(core.store, clock), discord_api.token, dev_guild_id=4242, connect=gateway
    )
    await component.start()
    try:
        await asyncio.wait_for(gateway.connected.wait(), 5)
        assert 4242 in discord_api.synced_commands
    finally:
        await component.stop()


async def test_bad_token_is_one_clear_error_and_no_retry(
    core: Core, clock: ManualClock, discord_api: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    component = DiscordComponent(
        core, FeedPoster(core.store, clock), "not-a-token", backoff_base=0.01
    )
    with caplog.at_level(logging.WARNING):
        await component.start()
        await wait_for(lambda: core.discord_state == "invalid_token")
        await asyncio.sleep(0.1)
    assert component.attempts == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "token" in errors[0].getMessage()
    assert "not-a-token" not in caplog.text
    await component.stop()


async def test_outage_at_boot_is_retried_until_discord_answers(
    core: Core, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord(channels=[CHANNEL]) as fake:
        monkeypatch.setattr(
            discord.http.Route, "BASE", "http://127.0.0.1:9/api/v10"
        )  # nothing there
        poster = FeedPoster(core.store, clock)
        gateway = Gateway()
        component = DiscordComponent(core, poster, fake.token, connect=gateway, backoff_base=0.02)
        await component.start()
        try:
            await wait_for(lambda: component.attempts >= 3)
            assert core.discord_state == "disconnected"
            assert poster.sender is None
            monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)  # Discord is back
            await asyncio.wait_for(gateway.connected.wait(), 5)
            assert poster.sender is not None
        finally:
            await component.stop()


def test_discover_extensions_walks_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fakecogs"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "alpha.py").write_text("async def setup(bot):\n    pass\n")
    (package / "sub" / "beta.py").write_text("async def setup(bot):\n    pass\n")
    (package / "_helpers.py").write_text("async def setup(bot):\n    pass\n")
    (package / "strings.py").write_text("HELLO = 'hi'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert discover_extensions("fakecogs") == ["fakecogs.alpha", "fakecogs.sub.beta"]
    finally:
        for name in [m for m in sys.modules if m.startswith("fakecogs")]:
            del sys.modules[name]


async def test_every_extension_loads_and_command_names_are_unique(core: Core) -> None:
    bot = Questlog(core)
    try:
        for name in discover_extensions():
            await bot.load_extension(name)
        names = [c.qualified_name for c in bot.tree.walk_commands()]
        assert len(names) == len(set(names))
    finally:
        await bot.close()
