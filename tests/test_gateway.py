"""The bot over a real (fake) gateway: discord.py's own websocket client, end to end."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path

import discord
import discord.gateway
import httpx
import pytest
import yarl

from bot.clock import ManualClock
from bot.core import Core
from bot.feed.poster import FeedPoster
from bot.gateway.client import DiscordComponent
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import guild_payload
from tests.process import cli, write_config

CHANNEL = 900000000000000051
GUILD_CHANNELS = {CHANNEL: None}


async def wait_until(predicate, limit: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.02)


async def test_connects_identifies_with_minimal_intents_and_resumes(
    core: Core, clock: ManualClock, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(discord_api.gateway_url)
    )
    discord_api.gateway_guilds[GUILD] = guild_payload(GUILD, GUILD_CHANNELS)
    component = DiscordComponent(core, FeedPoster(core.store, clock), discord_api.token)
    await component.start()
    try:
        await wait_until(lambda: core.discord_state == "connected")
        assert discord_api.identified[0]["intents"] == discord.Intents(guilds=True).value
        assert component.bot is not None and component.bot.get_guild(GUILD) is not None
        await discord_api.drop_gateway()  # Discord restarts a gateway node
        await wait_until(
            lambda: discord_api.gateway_connections == 2 and core.discord_state == "connected"
        )
        assert len(discord_api.identified) == 1  # resumed, not identified again
    finally:
        await component.stop()
    assert component.bot is None


async def test_questlog_run_with_a_token_posts_the_feed(
    tmp_path: Path, discord_api: FakeDiscord
) -> None:
    config = write_config(
        tmp_path,
        discord={
            "token": discord_api.token,
            "api_base_url": discord_api.api_base,
            "gateway_url": discord_api.gateway_url,
        },
    )
    cli(
        "feed",
        "set",
        "--guild",
        str(GUILD),
        "--channel",
        str(CHANNEL),
        "--config",
        str(config),
        cwd=tmp_path,
    )
    endpoint = json.loads(
        cli(
            "endpoint",
            "create",
            "--kind",
            "custom",
            "--guild",
            str(GUILD),
            "--json",
            "--config",
            str(config),
            cwd=tmp_path,
        ).stdout
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "STEAM_API_KEY")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    log: list[str] = []
    base_url: list[str] = []

    async def pump() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            log.append(line)
            if match := re.search(r"web server listening on (http://\S+)", line):
                base_url.append(match.group(1))

    reader = asyncio.create_task(pump())
    try:
        await wait_until(lambda: any("connected to Discord" in line for line in log), limit=30)
        assert any("synced" in line for line in log)
        body = json.dumps(
            {"event_type": "boss.killed", "title": "The dragon fell", "id": "e2e-1"}
        ).encode()
        signature = (
            "sha256=" + hmac.new(endpoint["secret"].encode(), body, hashlib.sha256).hexdigest()
        )
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{base_url[0]}/webhooks/custom/{endpoint['path']}",
                content=body,
                headers={"X-Signature": signature, "Content-Type": "application/json"},
            )
        assert response.status_code == 200
        await wait_until(lambda: discord_api.count(CHANNEL) == 1, limit=10)
        [message] = discord_api.messages[CHANNEL]
        assert message["embeds"][0]["title"].endswith("The dragon fell")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 15)
        await reader
    assert code == 0, "\n".join(log)
    assert not any("Traceback" in line for line in log), "\n".join(log)
    assert not any(discord_api.token in line for line in log)  # the token never reaches the log


async def test_unreachable_gateway_is_retried_quietly(
    core: Core,
    clock: ManualClock,
    discord_api: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL("ws://127.0.0.1:9/gateway")
    )
    component = DiscordComponent(
        core, FeedPoster(core.store, clock), discord_api.token, backoff_base=0.02
    )
    with caplog.at_level(logging.WARNING, logger="bot.gateway.client"):
        await component.start()
        try:
            await wait_until(lambda: component.attempts >= 3)
            assert core.discord_state in ("disconnected", "connecting")
        finally:
            await component.stop()
    assert not [
        r for r in caplog.records if r.name == "bot.gateway.client" and r.levelno >= logging.ERROR
    ]
    assert any("gateway" in r.getMessage() for r in caplog.records)


def test_no_voice_warnings_at_start(
    core: Core, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Questlog has no voice: discord.py's PyNaCl and davey warnings are not logged."""
    from bot.gateway.client import Questlog

    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", True)  # as on a host without PyNaCl
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", True)
    with caplog.at_level("INFO"):
        Questlog(core)
    assert not [r for r in caplog.records if "voice will NOT be supported" in r.getMessage()]
    assert logging.getLogger("discord.client").level == logging.NOTSET  # not silenced by level


def shard_of(guild_id: int, shards: int = 2) -> int:
    return (guild_id >> 22) % shards


async def test_two_processes_split_the_gateway_and_only_shard_0_syncs_commands(
    core: Core, clock: ManualClock, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(discord_api.gateway_url)
    )
    other = GUILD + (1 << 22)  # on the other shard of two
    discord_api.gateway_guilds[GUILD] = guild_payload(GUILD, GUILD_CHANNELS)
    discord_api.gateway_guilds[other] = guild_payload(other, {})
    components = [
        DiscordComponent(
            core,
            FeedPoster(core.store, clock),
            discord_api.token,
            shard_count=2,
            shard_ids=(shard,),
        )
        for shard in (0, 1)
    ]
    for component in components:
        await component.start()
    try:
        await wait_until(lambda: all(c.bot is not None and c.bot.is_ready() for c in components))
        for shard, component in enumerate(components):
            assert component.bot is not None
            assert [g.id for g in component.bot.guilds] == [
                g for g in (GUILD, other) if shard_of(g) == shard
            ]
        assert sorted(tuple(i["shard"]) for i in discord_api.identified) == [(0, 2), (1, 2)]
        assert discord_api.command_syncs == 1  # by the process with shard 0 only
        assert core.discord_state == "connected"
        await discord_api.drop_gateway(shard=1)  # one shard's node restarts
        await wait_until(
            lambda: discord_api.gateway_connections == 3 and core.discord_state == "connected"
        )
        assert len(discord_api.identified) == 2  # resumed; shard 0 untouched
    finally:
        for component in components:
            await component.stop()


async def test_without_a_shard_count_the_recommended_one_runs_in_one_process(
    core: Core, clock: ManualClock, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(discord_api.gateway_url)
    )
    discord_api.recommended_shards = 2
    other = GUILD + (1 << 22)
    discord_api.gateway_guilds[GUILD] = guild_payload(GUILD, GUILD_CHANNELS)
    discord_api.gateway_guilds[other] = guild_payload(other, {})
    component = DiscordComponent(core, FeedPoster(core.store, clock), discord_api.token)
    await component.start()
    try:
        await wait_until(lambda: component.bot is not None and component.bot.is_ready())
        assert component.bot is not None and component.bot.shard_count == 2
        assert sorted(g.id for g in component.bot.guilds) == sorted((GUILD, other))
        assert sorted(tuple(i["shard"]) for i in discord_api.identified) == [(0, 2), (1, 2)]
        assert discord_api.command_syncs == 1
        await wait_until(lambda: core.discord_state == "connected")
    finally:
        await component.stop()


def test_shard_settings_are_checked() -> None:
    from bot.config import ConfigError, parse_config

    ok = parse_config({"discord": {"shard_count": 4, "shard_ids": [3, 1]}}, env={})
    assert (ok.discord.shard_count, ok.discord.shard_ids) == (4, (1, 3))
    for bad, said in (
        ({"shard_ids": [0]}, "needs discord.shard_count"),
        ({"shard_count": 2, "shard_ids": [2]}, "shard 2 is not below shard_count 2"),
        ({"shard_count": 2, "shard_ids": [1, 1]}, "a shard appears twice"),
        ({"shard_count": 2, "shard_ids": "0"}, "expected a list of shard ids"),
        ({"shard_count": -1}, "must be between 0 and 4096"),
    ):
        with pytest.raises(ConfigError, match=said):
            parse_config({"discord": bad}, env={})
