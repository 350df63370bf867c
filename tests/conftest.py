from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import ManualClock
from bot.config import Config, parse_config
from bot.core import Core
from bot.storage import Endpoint
from web.app import create_app
from web.signatures import BattleMetricsScheme, PlainHexScheme, Sha256Scheme

DATA = Path(__file__).parent / "data"
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GUILD = 111111111111111111
OTHER_GUILD = 222222222222222222
#: A Fernet key for the tests only ([security] secret_key, required with PostgreSQL).
TEST_SECRET_KEY = "n2eJ7bqnq2tRH5mO-0vxBvTrjGWqB4-mKx1F-1HlfqA="


def load_json(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def config_data(tmp_path: Path) -> dict[str, Any]:
    return {
        "database": {"path": str(tmp_path / "questlog.sqlite3")},
        "web": {"port": 0},
    }


def steam_config_data(tmp_path: Path, steam: Any, **steam_extra: Any) -> dict[str, Any]:
    """Config for tests that talk to the fake Steam API: fast pacing, tiny backoffs."""
    return {
        "database": {"path": str(tmp_path / "questlog.sqlite3")},
        "web": {"port": 0},
        "steam": {
            "api_key": steam.api_key,
            "api_base_url": steam.base_url,
            "requests_per_second": 1000.0,
            "retry_backoff_seconds": 0.01,
            **steam_extra,
        },
    }


@pytest.fixture
def config(config_data: dict[str, Any]) -> Config:
    return parse_config(config_data, env={})


@pytest.fixture
async def core(config: Config, clock: ManualClock) -> AsyncIterator[Core]:
    instance = await Core.start(config, clock)
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient]:
    server = TestServer(create_app(core))
    async with TestClient(server) as test_client:
        yield test_client


MakeEndpoint = Callable[..., Any]


@pytest.fixture
def make_endpoint(core: Core, clock: ManualClock) -> MakeEndpoint:
    async def make(kind: str = "playtime", guild_id: int = GUILD, **options: Any) -> Endpoint:
        endpoint = await core.endpoint_admin.create(kind=kind, guild_id=guild_id, **options)
        await core.endpoints.refresh()
        return endpoint

    return make


def bm_headers(
    secret: str, body: bytes, t: str, content_type: str = "application/json"
) -> dict[str, str]:
    return {"X-Signature": BattleMetricsScheme.sign(secret, body, t), "Content-Type": content_type}


def hex_headers(secret: str, body: bytes) -> dict[str, str]:
    return {"X-SIGNATURE": PlainHexScheme.sign(secret, body), "Content-Type": "application/json"}


def sha_headers(secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    headers = {
        "X-Signature": Sha256Scheme.sign(secret, body, timestamp),
        "Content-Type": "application/json",
    }
    if timestamp is not None:
        headers["X-Timestamp"] = timestamp
    return headers


def iso_ms(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------- Discord and Steam fakes
# A test module sets GUILD_CHANNELS ({channel id: None or the bot's Permissions there}) and,
# optionally, FAKE_DISCORD (keyword arguments for FakeDiscord).


@pytest.fixture
async def discord_api(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    import discord

    from tests.fakes.discord import FakeDiscord

    channels = getattr(request.module, "GUILD_CHANNELS", {})
    async with FakeDiscord(
        channels=list(channels), **getattr(request.module, "FAKE_DISCORD", {})
    ) as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        yield fake


@pytest.fixture
async def bot(request: pytest.FixtureRequest, core: Core, discord_api: Any) -> AsyncIterator[Any]:
    """A logged-in Questlog bot (setup_hook ran: cogs loaded, commands synced) whose cache holds
    the test guild with the module's channels."""
    from bot.gateway.client import Questlog
    from tests.fakes.interactions import add_guild

    instance = Questlog(core)
    await instance.login(discord_api.token)
    add_guild(instance, GUILD, getattr(request.module, "GUILD_CHANNELS", {}))
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
async def steam() -> AsyncIterator[Any]:
    from tests.fakes.steam import FakeSteam

    async with FakeSteam() as fake:
        yield fake


def provide_role_actions(
    core: Core, bot: Any, fake: Any, roles: dict[int, int], members: dict[int, str]
) -> Any:
    """The Discord connector's role actions on the test bot's client, against the fake
    Discord with these roles (id -> position; the bot's top role is 9 unless set) and
    members (id -> name)."""
    from bot.gateway.role_actions import RoleActions

    guild = GUILD
    fake.guild_roles[guild] = dict(roles)
    fake.bot_top_role.setdefault(guild, 9)
    for user, name in members.items():
        fake.add_member(guild, user, name)
    handlers = RoleActions()
    handlers.http = bot.http
    connector = core.registry.get("discord")
    connector.provide("grant_role", handlers.grant)
    connector.provide("remove_role", handlers.remove)
    return handlers


def database_at(version: int) -> Any:
    """An in-memory database migrated up to ``version``, for upgrade tests (autocommit)."""
    import sqlite3

    from bot.storage.engine import apply_migrations

    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, up_to=version)
    return conn


@pytest.fixture(scope="session")
def postgres_cluster() -> Any:
    """A throwaway PostgreSQL cluster for the whole run (tests/postgres.py); skipped with one
    reason when this machine has no PostgreSQL, failed instead under QUESTLOG_REQUIRE_POSTGRES."""
    import os

    from tests.postgres import REQUIRED, Unavailable, start_cluster

    try:
        cluster = start_cluster()
    except Unavailable as exc:
        if os.environ.get(REQUIRED) == "1":
            pytest.fail(f"{exc} ({REQUIRED}=1: CI must run the PostgreSQL tests)")
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.asynccontextmanager
async def postgres_database(cluster: Any) -> AsyncIterator[str]:
    """A new, empty database of the cluster (its URL), dropped afterwards."""
    import secrets

    import asyncpg

    name = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(cluster.url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield cluster.database_url(name)
    finally:
        admin = await asyncpg.connect(cluster.url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url(postgres_cluster: Any) -> AsyncIterator[str]:
    """A new, empty database of the cluster for one test."""
    async with postgres_database(postgres_cluster) as url:
        yield url
