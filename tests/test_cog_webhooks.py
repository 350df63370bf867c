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


async def test_rcon_asks_the_password_in_a_form_and_logs_in_with_it(
    bot: Questlog, core: Core, discord_api: FakeDiscord
) -> None:
    from tests.fakes.interactions import sent_modal, submit_modal
    from tests.fakes.rcon import FakeRcon

    endpoint = await core.endpoint_admin.create(kind="minecraft", guild_id=GUILD)
    async with FakeRcon("s3cret-rcon") as server:
        options = [
            {"name": "path", "type": 3, "value": endpoint.path},
            {"name": "game", "type": 3, "value": "minecraft"},
            {"name": "host", "type": 3, "value": "127.0.0.1"},
            {"name": "port", "type": 4, "value": server.port},
        ]
        ask = command_interaction(
            bot, guild_id=GUILD, channel_id=HERE, group="webhook", command="rcon",
            options=options, locale="ru",
        )  # fmt: skip
        await run_command(bot, ask)
        form = sent_modal(discord_api, ask)
        assert form["title"] == "Пароль RCON"
        assert await core.store.consoles.list(GUILD) == []  # nothing saved before the form
        submitted = await submit_modal(
            bot, form, ["s3cret-rcon"], guild_id=GUILD, channel_id=HERE, locale="ru"
        )
    said = answer_text(discord_api, submitted)
    assert "Консоль сохранена" in said and "Вход по паролю удался" in said
    assert "s3cret-rcon" not in json.dumps(discord_api.interactions)
    assert server.logins == 1
    (console,) = await core.store.consoles.list(GUILD)
    assert (console.game, console.port, console.announce) == ("minecraft", server.port, True)

    command = next(c for c in bot.tree.get_commands() if c.name == "webhook")
    rcon = command.get_command("rcon")  # type: ignore[union-attr]
    assert "password" not in [p.name for p in rcon.parameters]  # never a slash option

    gone = webhook(bot, "rcon-remove", path=endpoint.path)
    await run_command(bot, gone)
    assert "forgotten" in answer_text(discord_api, gone)
    assert await core.store.consoles.list(GUILD) == []


async def test_rcon_refuses_a_squad_console_on_a_minecraft_endpoint(
    bot: Questlog, core: Core, discord_api: FakeDiscord
) -> None:
    from tests.fakes.interactions import sent_modal, submit_modal

    endpoint = await core.endpoint_admin.create(kind="minecraft", guild_id=GUILD)
    options = [
        {"name": "path", "type": 3, "value": endpoint.path},
        {"name": "game", "type": 3, "value": "squad"},
        {"name": "host", "type": 3, "value": "127.0.0.1"},
        {"name": "port", "type": 4, "value": 21114},
    ]
    ask = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group="webhook", command="rcon", options=options
    )
    await run_command(bot, ask)
    submitted = await submit_modal(
        bot, sent_modal(discord_api, ask), ["pw"], guild_id=GUILD, channel_id=HERE
    )
    assert "393380" in answer_text(discord_api, submitted)
    assert await core.store.consoles.list(GUILD) == []
