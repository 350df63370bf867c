"""/webhook through real interactions; the endpoints it makes are used by the real web app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import discord
import pytest
from aiohttp.test_utils import TestClient

from bot.clock import ManualClock
from bot.core import Core
from bot.gateway.client import Questlog
from tests.conftest import GUILD, OTHER_GUILD, bm_headers, iso_ms
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import (
    add_guild,
    answer_text,
    answers,
    command_interaction,
    run_command,
)

HERE = 900000000000000021
PUBLIC = "https://questlog.example.org"


GUILD_CHANNELS = {HERE: None}


@pytest.fixture
def config_data(tmp_path: Path) -> dict[str, Any]:
    return {
        "database": {"path": str(tmp_path / "q.sqlite3")},
        "web": {"port": 0, "public_url": PUBLIC},
    }


def webhook(bot: Questlog, command: str, **options: Any) -> discord.Interaction:
    kinds = {"kind": 3, "secret": 3, "path": 3, "game_id": 4}
    opts = [{"name": k, "type": kinds[k], "value": v} for k, v in options.items()]
    return command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group="webhook", command=command, options=opts
    )


async def test_create_shows_urls_and_secret_once_and_the_endpoint_works(
    bot: Questlog, core: Core, clock: ManualClock, client: TestClient, discord_api: FakeDiscord
) -> None:
    create = webhook(bot, "create", kind="playtime", secret="bm-shared-secret", game_id=393380)
    await run_command(bot, create)
    [answer] = answers(discord_api, create)
    assert answer["data"]["flags"] & 64  # ephemeral
    text = answer["data"]["content"]
    [endpoint] = await core.endpoint_admin.list(GUILD)
    assert f"{PUBLIC}/set-playtime/bm/{endpoint.path}/" in text
    assert text.index("set-playtime") < text.index("get-playtime")
    assert "bm-shared-secret" in text and endpoint.game_id == 393380
    body = json.dumps({"steam_id": "76561198000000001", "playtime": "60"}).encode()
    response = await client.post(
        f"/set-playtime/bm/{endpoint.path}/",
        data=body,
        headers=bm_headers("bm-shared-secret", body, iso_ms(clock.now())),
    )
    assert response.status == 200  # live at once, fixed game id applied

    listing = webhook(bot, "list")
    await run_command(bot, listing)
    listed = answer_text(discord_api, listing)
    assert endpoint.path in listed and "bm-shared-secret" not in listed and "game 393380" in listed


async def test_rotate_and_disable(
    bot: Questlog, core: Core, clock: ManualClock, client: TestClient, discord_api: FakeDiscord
) -> None:
    endpoint = await core.endpoint_admin.create(kind="custom", guild_id=GUILD, secret="old-secret")
    rotate = webhook(bot, "rotate", path=endpoint.path)
    await run_command(bot, rotate)
    text = answer_text(discord_api, rotate)
    [current] = await core.endpoint_admin.list(GUILD)
    assert current.secret in text and current.secret != "old-secret"
    disable = webhook(bot, "disable", path=endpoint.path)
    await run_command(bot, disable)
    assert "disabled" in answer_text(discord_api, disable)
    body = b'{"event_type": "x", "title": "t"}'
    import hashlib
    import hmac

    sig = "sha256=" + hmac.new(current.secret.encode(), body, hashlib.sha256).hexdigest()
    assert (
        await client.post(
            f"/webhooks/custom/{endpoint.path}", data=body, headers={"X-Signature": sig}
        )
    ).status == 404


async def test_another_servers_endpoint_is_invisible(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    theirs = await core.endpoint_admin.create(kind="custom", guild_id=OTHER_GUILD, secret="theirs")
    for command in ("rotate", "disable"):
        interaction = webhook(bot, command, path=theirs.path)
        await run_command(bot, interaction)
        assert "no such endpoint" in answer_text(discord_api, interaction)
    [unchanged] = await core.endpoint_admin.list(OTHER_GUILD)
    assert (unchanged.secret, unchanged.disabled) == ("theirs", False)
    cog = bot.get_cog("Webhooks")
    mine = await core.endpoint_admin.create(kind="custom", guild_id=GUILD)
    choices = await cog._paths(webhook(bot, "rotate"), "")
    assert [c.value for c in choices] == [mine.path]


async def test_without_public_url_it_says_how_to_set_it(
    tmp_path: Path, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from bot.config import parse_config

    core = await Core.start(
        parse_config({"database": {"path": str(tmp_path / "x.sqlite3")}}, env={}), clock
    )
    bot = Questlog(core)
    try:
        await bot.login(discord_api.token)
        add_guild(bot, GUILD, {HERE: None})
        create = webhook(bot, "create", kind="custom")
        await run_command(bot, create)
        assert "public_url" in answer_text(discord_api, create)
        assert await core.endpoint_admin.list(GUILD) == []
    finally:
        await bot.close()
        await core.stop()


async def test_two_rotations_at_once_keep_the_middle_secret_in_grace(
    core: Core, clock: ManualClock
) -> None:
    """Each rotation reads and changes the secret in one transaction: the second keeps the
    first one's new secret valid for the grace period, not the original."""
    import asyncio
    from datetime import timedelta

    endpoint = await core.endpoint_admin.create(kind="custom", guild_id=GUILD, secret="s0")
    grace = timedelta(hours=24)
    first, second = await asyncio.gather(
        core.endpoint_admin.rotate(endpoint.path, grace=grace, secret="s1"),
        core.endpoint_admin.rotate(endpoint.path, grace=grace, secret="s2"),
    )
    # Which one the writer applies first is up to the scheduler (both read the endpoint first,
    # on either of the store's readers); the later one keeps the earlier one's secret.
    earlier, later = (first, second) if second.previous_secret == "s1" else (second, first)
    assert (earlier.previous_secret, later.previous_secret) == ("s0", earlier.secret)
