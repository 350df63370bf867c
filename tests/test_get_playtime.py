"""get-playtime with Steam behind it: the local fake Steam Web API answers with real bodies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import ManualClock
from bot.config import parse_config
from bot.core import Core
from bot.storage import Endpoint
from tests.conftest import (
    GUILD,
    OTHER_GUILD,
    MakeEndpoint,
    bm_headers,
    hex_headers,
    iso_ms,
    steam_config_data,
)
from tests.fakes.steam import MODERN_ID, NOT_PUBLIC_403_ID, PRIVATE_ID, ROBIN_ID, FakeSteam
from web.app import create_app

CHIVALRY = 219640  # MODERN_ID owns it with playtime_forever 208 minutes
SQUAD = 393380


@pytest.fixture
def config_data(tmp_path: Path, steam: FakeSteam) -> dict[str, Any]:
    return steam_config_data(tmp_path, steam)


async def ask(
    client: TestClient,
    endpoint: Endpoint,
    ids: list[Any],
    game: int = CHIVALRY,
    refresh: bool = False,
) -> list[dict[str, Any]]:
    body = json.dumps({"steam_ids": ids, "game_id": game, "is_need_update": refresh}).encode()
    response = await client.post(
        f"/get-playtime/{endpoint.path}/", data=body, headers=hex_headers(endpoint.secret, body)
    )
    assert response.status == 200, await response.text()
    return await response.json()


def owned_calls(steam: FakeSteam) -> int:
    return steam.calls["GetOwnedGames"]


async def test_unknown_id_is_fetched_once_then_served_from_storage(
    client: TestClient, steam: FakeSteam, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    [first] = await ask(client, endpoint, [MODERN_ID, MODERN_ID])
    assert first["steam_status"] == "ok"
    assert first["steam_playtime"] == 208 * 60  # Steam minutes are stored as seconds
    assert owned_calls(steam) == 1
    [second] = await ask(client, endpoint, [MODERN_ID])
    assert second["steam_status"] == "not_requested"
    assert second["steam_playtime"] == 208 * 60
    assert owned_calls(steam) == 1
    [third] = await ask(client, endpoint, [MODERN_ID], refresh=True)
    assert third["steam_status"] == "ok"
    assert owned_calls(steam) == 2


async def test_real_487_game_library_and_not_owned(
    client: TestClient, steam: FakeSteam, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    library = {g["appid"]: g for g in steam.players[ROBIN_ID]}
    app_id = next(a for a, g in library.items() if g.get("playtime_forever", 0) > 0)
    [found] = await ask(client, endpoint, [ROBIN_ID], game=app_id)
    assert found["steam_playtime"] == library[app_id]["playtime_forever"] * 60
    [missing] = await ask(client, endpoint, [ROBIN_ID], game=SQUAD)
    assert (missing["steam_status"], missing["steam_playtime"]) == ("not_owned", None)
    calls = owned_calls(steam)
    [again] = await ask(client, endpoint, [ROBIN_ID], game=SQUAD)  # a definitive answer is stored
    assert (again["steam_status"], owned_calls(steam)) == ("not_requested", calls)


async def test_private_profiles_both_shapes(
    client: TestClient, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    answer = await ask(client, endpoint, [PRIVATE_ID, NOT_PUBLIC_403_ID])
    assert [(a["steam_status"], a["steam_playtime"]) for a in answer] == [
        ("private_profile", None),
        ("private_profile", None),
    ]


async def test_failure_is_not_cached_and_does_not_fail_others(
    client: TestClient, steam: FakeSteam, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    steam.fail_next("GetOwnedGames", [500, 500, 500])
    [failed] = await ask(client, endpoint, [MODERN_ID])
    assert (failed["steam_status"], failed["steam_playtime"]) == ("unavailable", None)
    assert failed["created_at"].endswith("Z")
    [retried] = await ask(client, endpoint, [MODERN_ID])  # unknown again, so Steam is asked again
    assert retried["steam_status"] == "ok"

    steam.fail_next("GetOwnedGames", [429, 429, 429])
    [limited] = await ask(client, endpoint, [ROBIN_ID], game=SQUAD)
    assert (limited["steam_status"], limited["steam_playtime"]) == ("rate_limited", None)
    [later] = await ask(client, endpoint, [ROBIN_ID], game=SQUAD)
    assert later["steam_status"] == "not_owned"


async def test_slow_lookup_answers_unavailable_in_time_and_finishes_in_background(
    client: TestClient, core: Core, steam: FakeSteam, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    core.playtime.deadline = 0.3
    steam.delays[MODERN_ID] = 0.8
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await ask(client, endpoint, [MODERN_ID, PRIVATE_ID], game=CHIVALRY)
    assert loop.time() - started < 0.75
    # One slow lookup does not hold up or fail the others.
    assert {a["steam_id"]: a["steam_status"] for a in answer} == {
        MODERN_ID: "unavailable",
        PRIVATE_ID: "private_profile",
    }
    await asyncio.sleep(0.8)
    [done] = await ask(client, endpoint, [MODERN_ID])
    assert (done["steam_status"], done["steam_playtime"]) == ("not_requested", 208 * 60)
    assert owned_calls(steam) == 2


async def test_concurrent_requests_share_one_steam_call(
    client: TestClient, core: Core, steam: FakeSteam, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    other = await make_endpoint("playtime", guild_id=OTHER_GUILD)
    steam.delays[MODERN_ID] = 0.2
    answers = await asyncio.gather(
        *(ask(client, e, [MODERN_ID]) for e in (endpoint, other, endpoint))
    )
    assert all(a[0]["steam_playtime"] == 208 * 60 for a in answers)
    assert owned_calls(steam) == 1  # public per-SteamID data: fetched once for every guild


async def test_bm_playtime_is_scoped_to_the_endpoint_guild(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    mine = await make_endpoint("playtime")
    theirs = await make_endpoint("playtime", guild_id=OTHER_GUILD)
    body = json.dumps({"steam_id": MODERN_ID, "playtime": "5000", "game_id": CHIVALRY}).encode()
    response = await client.post(
        f"/set-playtime/bm/{mine.path}/",
        data=body,
        headers=bm_headers(mine.secret, body, iso_ms(clock.now())),
    )
    assert response.status == 200
    [seen] = await ask(client, mine, [MODERN_ID])
    [unseen] = await ask(client, theirs, [MODERN_ID])
    assert seen["bm_playtime"] == 5000
    assert unseen["bm_playtime"] is None
    assert seen["steam_playtime"] == unseen["steam_playtime"] == 208 * 60


async def test_a_refused_key_is_reported_and_later_lookups_wait_for_the_sync_probe(
    tmp_path: Path, steam: FakeSteam, clock: ManualClock
) -> None:
    config = parse_config(
        {
            "database": {"path": str(tmp_path / "q.sqlite3")},
            "steam": {"api_key": "wrong-key", "api_base_url": steam.base_url},
        },
        env={},
    )
    core = await Core.start(config, clock)
    try:
        endpoint = await core.endpoint_admin.create(kind="playtime", guild_id=GUILD)
        await core.endpoints.refresh()
        async with TestClient(TestServer(create_app(core))) as client:
            [first] = await ask(client, endpoint, [MODERN_ID])
            [second] = await ask(client, endpoint, [MODERN_ID])
        assert first["steam_status"] == second["steam_status"] == "invalid_key"
        # The refusal paused the Steam sync, which probes the key; until a probe passes,
        # lookups answer invalid_key without asking Steam again.
        assert owned_calls(steam) == 1
        assert core.steam_sync.key_refused
    finally:
        await core.stop()


async def test_daily_budget_is_persisted_across_restarts(
    tmp_path: Path, steam: FakeSteam, clock: ManualClock
) -> None:

    data = {
        "database": {"path": str(tmp_path / "q.sqlite3")},
        "steam": {
            "api_key": steam.api_key,
            "api_base_url": steam.base_url,
            "daily_call_limit": 10,  # 8 for the sync, 2 for lookups
        },
    }
    core = await Core.start(parse_config(data, env={}), clock)
    try:
        endpoint = await core.endpoint_admin.create(kind="playtime", guild_id=GUILD)
        await core.endpoints.refresh()
        async with TestClient(TestServer(create_app(core))) as client:
            answer = await ask(client, endpoint, [MODERN_ID, ROBIN_ID])
            assert [a["steam_status"] for a in answer] == ["ok", "ok"]
    finally:
        await core.stop()
    core = await Core.start(parse_config(data, env={}), clock)  # a restart does not reset the day
    try:
        async with TestClient(TestServer(create_app(core))) as client:
            [limited] = await ask(client, endpoint, [PRIVATE_ID])
            assert limited["steam_status"] == "rate_limited"
            assert owned_calls(steam) == 2
            metrics = await (await client.get("/metrics")).text()
            assert 'questlog_steam_calls_left_today{purpose="lookup"} 0' in metrics
            assert 'questlog_steam_calls_left_today{purpose="sync"} 8' in metrics
        clock.advance(24 * 3600)  # a new UTC day
        async with TestClient(TestServer(create_app(core))) as client:
            [fresh] = await ask(client, endpoint, [PRIVATE_ID])
            assert fresh["steam_status"] == "private_profile"
    finally:
        await core.stop()


async def test_steam_game_names_are_remembered(
    client: TestClient, core: Core, steam: FakeSteam, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    library = {g["appid"]: g for g in steam.players[ROBIN_ID]}
    app_id = next(a for a, g in library.items() if g.get("name"))
    await ask(client, endpoint, [ROBIN_ID], game=app_id)
    row = await core.store.engine.fetchone(
        "SELECT name FROM games WHERE game_id = ?", (str(app_id),)
    )
    assert row is not None and row[0] == library[app_id]["name"]


async def test_with_the_sync_off_a_refused_key_does_not_stop_lookups(
    tmp_path: Path, steam: FakeSteam, clock: ManualClock
) -> None:
    """Nothing probes the key when the sync is off, so each lookup asks Steam itself and
    works again as soon as the key does."""
    config = parse_config(
        {
            "database": {"path": str(tmp_path / "q.sqlite3")},
            "steam": {"api_key": steam.api_key, "api_base_url": steam.base_url,
                      "sync_enabled": False},
        },
        env={},
    )  # fmt: skip
    good_key = steam.api_key
    core = await Core.start(config, clock)
    try:
        endpoint = await core.endpoint_admin.create(kind="playtime", guild_id=GUILD)
        await core.endpoints.refresh()
        async with TestClient(TestServer(create_app(core))) as client:
            steam.api_key = "0" * 32  # refused for a while
            [first] = await ask(client, endpoint, [MODERN_ID])
            assert first["steam_status"] == "invalid_key"
            steam.api_key = good_key
            clock.advance(120)
            [second] = await ask(client, endpoint, [MODERN_ID])
        assert second["steam_status"] == "ok" and owned_calls(steam) == 2
        assert not core.steam_sync.key_refused
    finally:
        await core.stop()


async def test_each_endpoint_has_a_daily_lookup_cap(
    tmp_path: Path, steam: FakeSteam, clock: ManualClock
) -> None:
    """Past [steam] lookups_per_endpoint_per_day an endpoint gets the stored values with
    steam_status rate_limited and Steam is not asked; other endpoints keep their own count,
    and the next UTC day starts again."""
    data = {
        "database": {"path": str(tmp_path / "q.sqlite3")},
        "steam": {"api_key": steam.api_key, "api_base_url": steam.base_url,
                  "sync_enabled": False, "lookups_per_endpoint_per_day": 2},
    }  # fmt: skip
    core = await Core.start(parse_config(data, env={}), clock)
    try:
        greedy = await core.endpoint_admin.create(kind="playtime", guild_id=GUILD)
        other = await core.endpoint_admin.create(kind="playtime", guild_id=GUILD)
        await core.endpoints.refresh()
        ids = [MODERN_ID, ROBIN_ID, PRIVATE_ID]
        async with TestClient(TestServer(create_app(core))) as client:
            first = await ask(client, greedy, ids, refresh=True)
            assert [a["steam_status"] for a in first][2] == "rate_limited"
            assert "rate_limited" not in [a["steam_status"] for a in first][:2]
            assert owned_calls(steam) == 2
            again = await ask(client, greedy, [MODERN_ID], refresh=True)
            assert again[0]["steam_status"] == "rate_limited"
            assert again[0]["steam_playtime"] == 208 * 60  # the stored value
            assert owned_calls(steam) == 2
            [fresh] = await ask(client, other, [PRIVATE_ID], refresh=True)
            assert fresh["steam_status"] != "rate_limited" and owned_calls(steam) == 3
            clock.advance(86_400)
            [tomorrow] = await ask(client, greedy, [MODERN_ID], refresh=True)
            assert tomorrow["steam_status"] == "ok" and owned_calls(steam) == 4
    finally:
        await core.stop()
