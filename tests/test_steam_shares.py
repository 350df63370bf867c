"""The key's daily calls split between the sync and lookups ([steam] sync_share), each side
held to its share: a greedy script cannot stop the sync, and a large sync (or /sync now, or
questlog sync) cannot starve the scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.clock import ManualClock
from bot.config import parse_config
from bot.core import Core
from bot.steam_sync.budget import Shares
from bot.storage import Endpoint
from tests.conftest import GUILD, hex_headers, steam_config_data
from tests.fakes.steam import MODERN_ID, PRIVATE_ID, ROBIN_ID, SAPHYEL_ID, FakeSteam
from tests.test_steam_sync import link
from web.app import create_app

CHIVALRY = 219640  # MODERN_ID owns it: 208 minutes


async def ask(
    client: TestClient, endpoint: Endpoint, ids: list[str], refresh: bool = True
) -> list[dict[str, Any]]:
    body = json.dumps({"steam_ids": ids, "game_id": CHIVALRY, "is_need_update": refresh}).encode()
    response = await client.post(
        f"/get-playtime/{endpoint.path}/", data=body, headers=hex_headers(endpoint.secret, body)
    )
    assert response.status == 200, await response.text()
    return await response.json()


def test_the_split_gives_every_call_to_one_side() -> None:
    assert Shares.split(100_000, 0.8) == Shares(80_000, 20_000)
    assert Shares.split(10, 0.25) == Shares(2, 8)
    assert Shares.split(7, 1.0) == Shares(7, 0)
    assert Shares.split(7, 0.0) == Shares(0, 7)
    assert Shares.split(100, 0.29) == Shares(29, 71)  # not 28: 0.29 * 100 < 29 in floats


async def start(tmp_path: Path, steam: FakeSteam, clock: ManualClock, **steam_keys: Any) -> Core:
    data = steam_config_data(tmp_path, steam, daily_call_limit=10, **steam_keys)
    return await Core.start(parse_config(data, env={}), clock)


async def test_lookups_past_their_share_answer_stored_values_and_the_sync_goes_on(
    tmp_path: Path, steam: FakeSteam, clock: ManualClock
) -> None:
    core = await start(tmp_path, steam, clock, sync_share=0.8)  # 8 sync, 2 lookups
    try:
        endpoint = await core.endpoint_admin.create(kind="playtime", guild_id=GUILD)
        await core.endpoints.refresh()
        async with TestClient(TestServer(create_app(core))) as client:
            first = await ask(client, endpoint, [MODERN_ID, ROBIN_ID])
            assert [a["steam_status"] for a in first] == ["ok", "ok"]
            [again] = await ask(client, endpoint, [MODERN_ID])
            assert again["steam_status"] == "rate_limited"
            assert again["steam_playtime"] == 208 * 60  # the stored value
            assert steam.calls["GetOwnedGames"] == 2
            await link(core, SAPHYEL_ID)
            report = await core.steam_sync.sync_report([SAPHYEL_ID])
            assert report["ok"] == 1  # the sync's share is untouched by the script
            status = await core.steam_sync.status()
            assert (status.lookup_calls_today, status.lookup_limit) == (2, 2)
            assert status.calls_today >= 1 and status.daily_limit == 8
            metrics = await (await client.get("/metrics")).text()
            assert 'questlog_steam_calls_left_today{purpose="lookup"} 0' in metrics
    finally:
        await core.stop()


async def test_the_sync_past_its_share_defers_and_lookups_still_ask_steam(
    tmp_path: Path, steam: FakeSteam, clock: ManualClock
) -> None:
    """Also what `questlog sync` meets: it runs the same sync_report, without the cooldown of
    /sync now, but within the sync's share."""
    core = await start(tmp_path, steam, clock, sync_share=0.2)  # 2 sync, 8 lookups
    try:
        for user, steam_id in enumerate((MODERN_ID, ROBIN_ID, SAPHYEL_ID)):
            await link(core, steam_id, user=100 + user)
        report = await core.steam_sync.sync_report([MODERN_ID, ROBIN_ID, SAPHYEL_ID])
        assert report["ok"] <= 2 and report["deferred"] >= 1
        sync_calls = sum(steam.calls.values())
        assert sync_calls == 2
        again = await core.steam_sync.sync_report([MODERN_ID])
        assert again["deferred"] == 1 and sum(steam.calls.values()) == sync_calls
        endpoint = await core.endpoint_admin.create(kind="playtime", guild_id=GUILD)
        await core.endpoints.refresh()
        async with TestClient(TestServer(create_app(core))) as client:
            [private] = await ask(client, endpoint, [PRIVATE_ID])
            assert private["steam_status"] == "private_profile"  # Steam was asked
        assert await core.store.steam.calls_on(clock.now().strftime("%Y-%m-%d")) == {
            "sync": 2,
            "lookup": 1,
        }
        clock.advance(86_400)  # a new UTC day: both shares are whole again
        assert (await core.steam_sync.sync_report([MODERN_ID]))["ok"] == 1
    finally:
        await core.stop()


async def test_questlog_status_shows_both_shares(
    tmp_path: Path, steam: FakeSteam, clock: ManualClock
) -> None:
    from bot.services.status import status_report

    core = await start(tmp_path, steam, clock, sync_share=0.5)
    try:
        await core.store.steam.reserve_call(clock.now().strftime("%Y-%m-%d"), "lookup", 5)
        info = await status_report(core.store, core.config, clock.now())
        assert info["steam_sync_calls_today"] == "0 of 5"
        assert info["steam_lookup_calls_today"] == "1 of 5"
        assert info["steam_calls_today"] == 1
    finally:
        await core.stop()
