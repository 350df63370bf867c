"""/feed through real discord.Interaction objects, the real CommandTree and the fake Discord API."""

from __future__ import annotations

import discord
import pytest

from bot.clock import ManualClock
from bot.core import Core
from bot.feed.poster import FeedPoster
from bot.gateway.client import Questlog
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import (
    answer_text,
    answers,
    command_interaction,
    run_command,
)

GOOD = 900000000000000011
NO_EMBED = 900000000000000012


GUILD_CHANNELS = {GOOD: None, NO_EMBED: discord.Permissions(view_channel=True, send_messages=True)}


def channel_option(channel_id: int) -> tuple[list[dict], dict]:
    options = [{"name": "channel", "type": 7, "value": str(channel_id)}]
    resolved = {
        "channels": {
            str(channel_id): {
                "id": str(channel_id),
                "type": 0,
                "name": "c",
                "permissions": "0",
                "guild_id": str(GUILD),
            }
        }
    }
    return options, resolved


def feed(bot: Questlog, command: str, channel: int | None = None) -> discord.Interaction:
    """A /feed <command> interaction in the test guild (with a channel option when given)."""
    options, resolved = channel_option(channel) if channel is not None else (None, None)
    return command_interaction(
        bot,
        guild_id=GUILD,
        channel_id=GOOD,
        group="feed",
        command=command,
        options=options,
        resolved=resolved,
    )


async def test_feed_commands_are_admin_only_and_guild_only(
    bot: Questlog, discord_api: FakeDiscord
) -> None:
    group = bot.tree.get_command("feed")
    assert isinstance(group, discord.app_commands.Group)
    assert group.default_permissions is not None and group.default_permissions.manage_guild
    assert group.guild_only
    assert {c.name for c in group.commands} == {"channel", "status", "test", "events", "language"}
    synced = {c["name"]: c for c in discord_api.synced_commands[None]}
    assert (
        int(synced["feed"]["default_member_permissions"])
        == discord.Permissions(manage_guild=True).value
    )


async def test_channel_checks_permissions_then_sets_it(
    bot: Questlog, core: Core, discord_api: FakeDiscord
) -> None:
    refused = feed(bot, "channel", NO_EMBED)
    await run_command(bot, refused)
    text = answer_text(discord_api, refused)
    assert "Embed Links" in text and "View Channel" not in text
    assert answers(discord_api, refused)[0]["data"]["flags"] & 64  # ephemeral
    assert (await core.store.feed.status(GUILD)).channel_id is None

    accepted = feed(bot, "channel", GOOD)
    await run_command(bot, accepted)
    assert f"<#{GOOD}>" in answer_text(discord_api, accepted)
    assert (await core.store.feed.status(GUILD)).channel_id == GOOD


async def test_test_and_status(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    before = feed(bot, "test")
    await run_command(bot, before)
    assert "/feed channel" in answer_text(
        discord_api, before
    )  # no channel yet: told how to set one

    await run_command(bot, feed(bot, "channel", GOOD))
    test = feed(bot, "test")
    await run_command(bot, test)
    assert "on its way" in answer_text(discord_api, test)

    from bot.feed.sender import DiscordSender

    assert await FeedPoster(core.store, clock, DiscordSender(bot.http)).run_once() == 1
    [message] = discord_api.messages[GOOD]
    assert "test event" in message["embeds"][0]["title"]

    status = feed(bot, "status")
    await run_command(bot, status)
    text = answer_text(discord_api, status)
    assert f"<#{GOOD}>" in text and "**Posted:** 1" in text and "**Waiting to post:** 0" in text


async def test_unexpected_errors_get_a_reference_not_a_traceback(
    bot: Questlog,
    core: Core,
    discord_api: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(op):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(core.store.engine, "read", broken)
    status = feed(bot, "status")
    await run_command(bot, status)
    text = answer_text(discord_api, status)
    assert "Reference" in text and "on fire" not in text and "Traceback" not in text
    reference = text.split("`")[1]
    assert any(reference in r.getMessage() for r in caplog.records)


async def test_events_select_saves_the_choice_and_filters_the_feed(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from unittest import mock

    from bot.clock import to_iso
    from bot.i18n import texts
    from cogs.feed import EventTypesView
    from tests.test_feed import add_events

    ask = feed(bot, "events")
    await run_command(bot, ask)
    [answer] = answers(discord_api, ask)
    select = answer["data"]["components"][0]["components"][0]
    values = {o["value"]: o.get("default") for o in select["options"]}
    assert set(values) == set(core.registry.event_types())
    quiet = {
        "steam.session.started", "steam.session.ended",
        "discord.session.started", "discord.session.ended",
    }  # fmt: skip
    assert {t for t, on in values.items() if not on} == quiet  # the rest is on by default

    cog = bot.get_cog("Feed")
    view = EventTypesView(
        cog, texts("en"), GUILD, core.registry.event_types(), None,
        core.registry.default_off_types(),
    )  # fmt: skip
    clicked = mock.AsyncMock(spec=discord.Interaction)
    clicked.response = mock.AsyncMock(spec=discord.InteractionResponse)
    with mock.patch.object(
        type(view.picker),
        "values",
        new_callable=mock.PropertyMock,
        return_value=["minecraft.achievement"],
    ):
        await view.chosen(clicked)
    assert await core.store.feed.event_types(GUILD) == ["minecraft.achievement"]
    assert "advancements" in clicked.response.edit_message.call_args.kwargs["content"]
    await core.store.feed.set_channel(GUILD, GOOD, to_iso(clock.now()))
    await add_events(core, 2)  # custom events: switched off now
    assert (await core.store.engine.fetchone("SELECT count(*) FROM feed_outbox"))[0] == 0
    with mock.patch.object(
        type(view.picker),
        "values",
        new_callable=mock.PropertyMock,
        return_value=[t for t in core.registry.event_types() if t not in quiet],
    ):
        await view.chosen(clicked)
    assert await core.store.feed.event_types(GUILD) is None  # the defaults
    with mock.patch.object(
        type(view.picker),
        "values",
        new_callable=mock.PropertyMock,
        return_value=core.registry.event_types(),
    ):
        await view.chosen(clicked)  # sessions too: an explicit choice
    assert set(await core.store.feed.event_types(GUILD) or []) >= quiet
