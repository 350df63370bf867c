"""/link, /unlink, /links and /admin link|unlink with real interactions, fake Discord and fake Steam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.core import Core
from bot.gateway.client import Questlog
from tests.conftest import GUILD, sha_headers
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import (
    ADMIN_ID,
    PLAYER_ID,
    answer_text,
    command_interaction,
    member_option,
    run_command,
)
from tests.fakes.steam import PRIVATE_ID, ROBIN_ID, SAPHYEL_ID, FakeSteam

HERE = 900000000000000031
UUID = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


GUILD_CHANNELS = {HERE: None}


@pytest.fixture
def config_data(tmp_path: Path, steam: FakeSteam) -> dict[str, Any]:
    return {
        "database": {"path": str(tmp_path / "q.sqlite3")},
        "web": {"port": 0},
        "steam": {
            "api_key": steam.api_key,
            "api_base_url": steam.base_url,
            "requests_per_second": 1000.0,
        },
    }


async def run(
    bot: Questlog,
    fake: FakeDiscord,
    group: str | None,
    command: str,
    *,
    user: int = PLAYER_ID,
    resolved: dict | None = None,
    **options: Any,
) -> str:
    kinds = {"profile": 3, "source": 3, "account": 3}
    opts = [
        o if isinstance(o, dict) else {"name": k, "type": kinds[k], "value": o}
        for k, o in options.items()
    ]
    interaction = command_interaction(
        bot,
        guild_id=GUILD,
        channel_id=HERE,
        group=group,
        command=command,
        options=opts,
        resolved=resolved,
        user_id=user,
    )
    await run_command(bot, interaction)
    return answer_text(fake, interaction)


@pytest.mark.parametrize(
    ("profile", "name", "steam_id"),
    [
        (SAPHYEL_ID, "Saphyel", SAPHYEL_ID),
        (f"https://steamcommunity.com/profiles/{SAPHYEL_ID}/", "Saphyel", SAPHYEL_ID),
        ("https://steamcommunity.com/id/robinwalker/", "Robin", ROBIN_ID),
        ("robinwalker", "Robin", ROBIN_ID),
    ],
)
async def test_link_steam_every_input_form(
    bot: Questlog, discord_api: FakeDiscord, profile: str, name: str, steam_id: str
) -> None:
    text = await run(bot, discord_api, "link", "steam", profile=profile)
    assert f"**{name}**" in text and steam_id in text
    listed = await run(bot, discord_api, None, "links")
    # Steam links made this way are unverified (and without OAuth keys no buttons are offered)
    assert steam_id in listed and "not verified" in listed and "✅" not in listed


async def test_unknown_vanity_and_group_vanity(bot: Questlog, discord_api: FakeDiscord) -> None:
    assert "no Steam profile" in await run(
        bot, discord_api, "link", "steam", profile="nobody-by-that-name"
    )
    assert "group" in await run(bot, discord_api, "link", "steam", profile="valve")


async def test_private_profile_is_linked_and_explained(
    bot: Questlog, discord_api: FakeDiscord
) -> None:
    text = await run(bot, discord_api, "link", "steam", profile=PRIVATE_ID)
    assert "private" in text and "Game details" in text
    listed = await run(bot, discord_api, None, "links")
    assert "private profile" in listed and "Game details: Public" in listed  # how to fix it


async def test_double_claim_refused_and_admin_reassigns(
    bot: Questlog, core: Core, discord_api: FakeDiscord
) -> None:
    await run(bot, discord_api, "link", "steam", profile=SAPHYEL_ID)
    who = "SELECT linked_by FROM account_links WHERE external_id = ?"
    assert [tuple(r) for r in await core.store.engine.fetchall(who, (SAPHYEL_ID,))] == [("member",)]
    other = 4000000000000000099
    refused = await run(bot, discord_api, "link", "steam", profile=SAPHYEL_ID, user=other)
    assert "already linked to another member" in refused
    option, resolved = member_option("member", other, GUILD)
    moved = await run(
        bot,
        discord_api,
        "admin",
        "link",
        user=ADMIN_ID,
        resolved=resolved,
        member=option,
        source="steam",
        account=SAPHYEL_ID,
    )
    assert "Linked Steam account" in moved
    assert [tuple(r) for r in await core.store.engine.fetchall(who, (SAPHYEL_ID,))] == [
        (f"admin:{ADMIN_ID}",)
    ]
    assert "no linked accounts" in await run(bot, discord_api, None, "links")  # the player lost it
    option, resolved = member_option("member", other, GUILD)
    gone = await run(
        bot,
        discord_api,
        "admin",
        "unlink",
        user=ADMIN_ID,
        resolved=resolved,
        member=option,
        source="steam",
    )
    assert "Unlinked" in gone


async def test_minecraft_code_confirmed_in_game(
    bot: Questlog, core: Core, client: TestClient, discord_api: FakeDiscord
) -> None:
    text = await run(bot, discord_api, "link", "minecraft")
    code = text.split("**")[1]
    assert len(code) == 8
    endpoint = await core.endpoint_admin.create(kind="minecraft", guild_id=GUILD)
    await core.endpoints.refresh()
    body = json.dumps(
        {"type": "link.confirm", "player_uuid": UUID, "player_name": "Notch", "code": code}
    ).encode()
    response = await client.post(
        f"/webhooks/minecraft/{endpoint.path}",
        data=body,
        headers=sha_headers(endpoint.secret, body),
    )
    assert (await response.json())["status"] == "linked"
    listed = await run(bot, discord_api, None, "links")
    assert UUID in listed and "verified" in listed and "Notch" in listed
    assert "Unlinked your Minecraft" in await run(
        bot, discord_api, None, "unlink", source="minecraft"
    )
    assert "no linked accounts" in await run(bot, discord_api, None, "links")


async def test_admin_commands_need_manage_server(bot: Questlog) -> None:
    admin = bot.tree.get_command("admin")
    link = bot.tree.get_command("link")
    assert admin.default_permissions is not None and admin.default_permissions.manage_guild
    assert admin.guild_only and link.guild_only
    assert link.default_permissions is None  # players may link
