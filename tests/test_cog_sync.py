"""/sync now and /sync status through real interactions, the fake Discord and the fake Steam."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.clock import ManualClock
from bot.core import Core
from bot.gateway.client import Questlog
from tests.conftest import GUILD, steam_config_data
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import answer_text, command_interaction, member_option, run_command
from tests.fakes.steam import PRIVATE_ID, SAPHYEL_ID, FakeSteam
from tests.test_steam_sync import ALICE, BOB, link

CHANNEL = 900000000000000021
GUILD_CHANNELS = {CHANNEL: None}


@pytest.fixture
def config_data(tmp_path: Any, steam: FakeSteam) -> dict[str, Any]:
    return steam_config_data(tmp_path, steam)


def sync(bot: Questlog, command: str, member: int | None = None) -> discord.Interaction:
    options = resolved = None
    if member is not None:
        option, resolved = member_option("member", member, GUILD)
        options = [option]
    return command_interaction(
        bot,
        guild_id=GUILD,
        channel_id=CHANNEL,
        group="sync",
        command=command,
        options=options,
        resolved=resolved,
    )


async def test_sync_is_an_admin_group(bot: Questlog, discord_api: FakeDiscord) -> None:
    group = bot.tree.get_command("sync")
    assert isinstance(group, discord.app_commands.Group)
    assert group.guild_only
    assert group.default_permissions is not None and group.default_permissions.manage_guild
    assert {c.name for c in group.commands} == {"now", "status"}


async def test_sync_now_reads_the_guilds_accounts_and_reports(
    bot: Questlog, core: Core, steam: FakeSteam, discord_api: FakeDiscord, clock: ManualClock
) -> None:
    empty = sync(bot, "now")
    await run_command(bot, empty)
    assert "/link steam" in answer_text(discord_api, empty)

    await link(core, SAPHYEL_ID, user=ALICE)
    await link(core, PRIVATE_ID, user=BOB)
    everyone = sync(bot, "now")
    await run_command(bot, everyone)
    text = answer_text(discord_api, everyone)
    assert "Read 1 of 2" in text and "With private game details: 1" in text
    assert steam.calls["GetOwnedGames"] == 2

    # Asked again at once: the server's cooldown ([steam] sync_now_cooldown_seconds, 600).
    again = sync(bot, "now")
    await run_command(bot, again)
    text = answer_text(discord_api, again)
    assert "works again <t:" in text and steam.calls["GetOwnedGames"] == 2
    clock.advance(599)
    still = sync(bot, "now", member=ALICE)
    await run_command(bot, still)
    assert "works again" in answer_text(discord_api, still)
    assert steam.calls["GetOwnedGames"] == 2
    clock.advance(1)

    one = sync(bot, "now", member=ALICE)
    await run_command(bot, one)
    assert "Read 1 of 1" in answer_text(discord_api, one)
    assert steam.calls["GetOwnedGames"] == 3


async def test_sync_status_shows_the_plan(
    bot: Questlog, core: Core, steam: FakeSteam, discord_api: FakeDiscord
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()
    status = sync(bot, "status")
    await run_command(bot, status)
    text = answer_text(discord_api, status)
    assert "**Steam sync:** running" in text
    assert "Linked accounts: 1 (0 in a game now, 0 private)" in text
    assert "checked every 5 min" in text and "once every 24 h" in text
    assert "API calls today: sync 1 of 80,000" in text
    assert "lookups and links 0 of 20,000" in text


async def test_a_refused_key_is_explained(
    bot: Questlog, core: Core, steam: FakeSteam, discord_api: FakeDiscord
) -> None:
    await link(core, SAPHYEL_ID)
    steam.api_key = "0" * 32
    first = sync(bot, "now")
    await run_command(bot, first)
    assert "refused the API key" in answer_text(discord_api, first)
    status = sync(bot, "status")
    await run_command(bot, status)
    text = answer_text(discord_api, status)
    assert "paused: Steam refused the API key since <t:" in text and "next probe at <t:" in text
