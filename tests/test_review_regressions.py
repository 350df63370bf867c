"""Inputs found in review that once produced a 500 or a wrong answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.clock import ManualClock
from bot.core import Core
from bot.feed.poster import FeedPoster
from tests.conftest import GUILD, MakeEndpoint, bm_headers, iso_ms, sha_headers
from tests.process import cli, write_config
from tests.test_feed import CHANNEL, MemoryDiscord, add_events, set_feed, statuses

SID = "76561198000000001"


@pytest.mark.parametrize("t", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_extreme_signature_timestamps_are_401(
    client: TestClient, make_endpoint: MakeEndpoint, t: str
) -> None:
    endpoint = await make_endpoint("playtime")
    response = await client.post(
        f"/set-playtime/bm/{endpoint.path}/",
        data=b"{}",
        headers={"X-Signature": f"t={t},s={'0' * 64}"},
    )
    assert response.status == 401


async def test_huge_x_timestamp_is_401(client: TestClient, make_endpoint: MakeEndpoint) -> None:
    endpoint = await make_endpoint("custom")
    headers = {"X-Signature": "sha256=" + "0" * 64, "X-Timestamp": "999999999999"}
    response = await client.post(f"/webhooks/custom/{endpoint.path}", data=b"{}", headers=headers)
    assert response.status == 401


@pytest.mark.parametrize(
    "payload",
    [
        {
            "type": "session.started",
            "player_uuid": "069a79f4-44e9-4726-a5be-fca90e38aaf5",
            "at": "0001-01-01T00:00:00+01:00",
        },
        {
            "type": "session.ended",
            "player_uuid": "069a79f4-44e9-4726-a5be-fca90e38aaf5",
            "at": "0001-01-01T00:00:10Z",
            "duration_seconds": 100,
        },
        {
            "type": "session.started",
            "player_uuid": "069a79f4-44e9-4726-a5be-fca90e38aaf5",
            "at": "9999-12-31T23:59:59Z",
        },
    ],
)
async def test_out_of_range_times_are_422(
    client: TestClient, make_endpoint: MakeEndpoint, payload: Any
) -> None:
    endpoint = await make_endpoint("minecraft")
    body = json.dumps(payload).encode()
    response = await client.post(
        f"/webhooks/minecraft/{endpoint.path}",
        data=body,
        headers=sha_headers(endpoint.secret, body),
    )
    assert response.status == 422
    assert (await response.json())["field"] == "at"


@pytest.mark.parametrize("depth", [65, 977, 2000])
async def test_deep_nesting_is_400(
    client: TestClient, make_endpoint: MakeEndpoint, depth: int
) -> None:
    endpoint = await make_endpoint("custom")
    nested = "[" * depth + "]" * depth
    body = ('{"event_type": "x", "title": "t", "deep": ' + nested + "}").encode()
    response = await client.post(
        f"/webhooks/custom/{endpoint.path}", data=body, headers=sha_headers(endpoint.secret, body)
    )
    assert response.status == 400


async def test_moderate_nesting_is_fine(client: TestClient, make_endpoint: MakeEndpoint) -> None:
    endpoint = await make_endpoint("custom")
    body = ('{"event_type": "x", "title": "t", "deep": ' + "[" * 60 + "]" * 60 + "}").encode()
    response = await client.post(
        f"/webhooks/custom/{endpoint.path}", data=body, headers=sha_headers(endpoint.secret, body)
    )
    assert response.status == 200


async def test_custom_link_confirm_type_is_just_a_custom_event(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("custom")
    code, _ = await core.accounts.new_code(guild_id=GUILD, discord_user_id=1, source="minecraft")
    for payload in (
        {"event_type": "x", "title": "t", "type": "link.confirm"},
        {
            "event_type": "x",
            "title": "t2",
            "type": "link.confirm",
            "code": code,
            "player_uuid": "nope",
        },
    ):
        body = json.dumps(payload).encode()
        response = await client.post(
            f"/webhooks/custom/{endpoint.path}",
            data=body,
            headers=sha_headers(endpoint.secret, body),
        )
        assert (response.status, (await response.json())["status"]) == (200, "accepted")
    assert (await core.store.engine.fetchone("SELECT count(*) FROM account_links"))[0] == 0
    assert (await core.store.engine.fetchone("SELECT count(*) FROM raw_events"))[0] == 2


async def test_late_battlemetrics_retry_of_an_accepted_delivery_is_acknowledged(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    body = json.dumps({"steam_id": SID, "playtime": "7200", "game_id": 393380}).encode()
    headers = bm_headers(endpoint.secret, body, iso_ms(clock.now()))
    url = f"/set-playtime/bm/{endpoint.path}/"
    assert (await client.post(url, data=body, headers=headers)).status == 200
    clock.advance(3600)  # far past the tolerance: our first answer was lost, BattleMetrics retries
    retry = await client.post(url, data=body, headers=headers)
    assert (retry.status, (await retry.json())["status"]) == (200, "duplicate")
    other = json.dumps({"steam_id": SID, "playtime": "9999", "game_id": 393380}).encode()
    stale = bm_headers(endpoint.secret, other, iso_ms(clock.now().replace(year=2024)))
    assert (
        await client.post(url, data=other, headers=stale)
    ).status == 401  # never accepted: refused
    assert (await core.store.engine.fetchone("SELECT seconds FROM playtime"))[0] == 7200


async def test_unexpected_send_error_backs_off_instead_of_hammering(
    core: Core, clock: ManualClock
) -> None:
    class Broken(MemoryDiscord):
        calls = 0

        async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
            Broken.calls += 1
            raise RuntimeError("Session is closed")

    await set_feed(core)
    await add_events(core, 2)
    poster = FeedPoster(core.store, clock, Broken())
    assert await poster.run_once() == 0
    assert await poster.run_once() == 0  # backing off: not sent again at once
    assert Broken.calls == 1
    assert await core.store.engine.read(statuses) == {"pending": 2}
    assert CHANNEL


def test_cli_rejects_a_secret_that_is_not_text(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = cli(
        "endpoint",
        "create",
        "--kind",
        "custom",
        "--guild",
        "1",
        "--secret",
        "ab\udcffcd",
        "--config",
        str(config),
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert "UTF-8" in result.stderr and "Traceback" not in result.stderr
