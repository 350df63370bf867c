"""Every endpoint and status code through the real aiohttp application."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import ManualClock
from bot.config import Config
from bot.core import Core
from tests.conftest import GUILD, MakeEndpoint, bm_headers, hex_headers, iso_ms, sha_headers
from web.app import create_app

SID = "76561198000000001"
SID2 = "76561198000000002"
UUID = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


def bm_body(
    steam_id: str = SID, playtime: Any = "7200", game_id: Any = 393380, **extra: Any
) -> bytes:
    return json.dumps(
        {"steam_id": steam_id, "playtime": playtime, "game_id": game_id, **extra}
    ).encode()


async def post_bm(
    client: TestClient,
    endpoint: Any,
    body: bytes,
    clock: ManualClock,
    *,
    slash: bool = True,
    secret: str | None = None,
    content_type: str = "application/json",
    t: str | None = None,
) -> Any:
    url = f"/set-playtime/bm/{endpoint.path}" + ("/" if slash else "")
    headers = bm_headers(secret or endpoint.secret, body, t or iso_ms(clock.now()), content_type)
    return await client.post(url, data=body, headers=headers)


async def get_playtime(
    client: TestClient, endpoint: Any, payload: Any, secret: str | None = None
) -> Any:
    body = json.dumps(payload).encode()
    return await client.post(
        f"/get-playtime/{endpoint.path}/",
        data=body,
        headers=hex_headers(secret or endpoint.secret, body),
    )


async def error_of(response: Any) -> tuple[int, str]:
    data = await response.json()
    assert set(data) >= {"error", "detail"}
    assert "Traceback" not in data["detail"]
    return response.status, data["error"]


# --------------------------------------------------------------------------- BattleMetrics


@pytest.mark.parametrize("slash", [True, False])
@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/json; charset=utf-8"]
)
async def test_battlemetrics_delivery_is_stored(
    client: TestClient,
    core: Core,
    clock: ManualClock,
    make_endpoint: MakeEndpoint,
    slash: bool,
    content_type: str,
) -> None:
    endpoint = await make_endpoint("playtime")
    response = await post_bm(
        client, endpoint, bm_body(), clock, slash=slash, content_type=content_type
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "accepted"
    row = await core.store.engine.fetchone(
        "SELECT seconds, scope_guild_id FROM playtime WHERE source = 'battlemetrics'"
    )
    assert tuple(row) == (7200, GUILD)


async def test_battlemetrics_retry_is_acknowledged_without_effect(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    t1 = iso_ms(clock.now())
    first = bm_body(playtime="7200")
    assert (await post_bm(client, endpoint, first, clock, t=t1)).status == 200
    clock.advance(30)
    assert (await post_bm(client, endpoint, bm_body(playtime="9000"), clock)).status == 200
    replay = await post_bm(
        client, endpoint, first, clock, t=t1
    )  # BattleMetrics retrying the old one
    assert replay.status == 200
    assert (await replay.json())["status"] == "duplicate"
    row = await core.store.engine.fetchone(
        "SELECT seconds FROM playtime WHERE source = 'battlemetrics'"
    )
    assert row[0] == 9000  # the replay did not roll the value back


async def test_battlemetrics_empty_steam_id_is_ignored_with_202(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    response = await post_bm(client, endpoint, bm_body(steam_id=""), clock)
    assert response.status == 202
    assert (await response.json())["status"] == "ignored"
    assert core.metrics.get("questlog_ingest_total", source="battlemetrics", result="ignored") == 1
    assert (await core.store.engine.fetchone("SELECT count(*) FROM raw_events"))[0] == 0


async def test_fixed_game_id_wins_over_body(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime", game_id=440)
    body = json.dumps({"steam_id": SID, "playtime": 60}).encode()  # no game_id at all
    assert (await post_bm(client, endpoint, body, clock)).status == 200
    assert (
        await post_bm(client, endpoint, bm_body(game_id=393380, playtime="120"), clock)
    ).status == 200
    rows = await core.store.engine.fetchall("SELECT game_id, seconds FROM playtime")
    assert [tuple(r) for r in rows] == [("440", 120)]


async def test_real_playtime_service_template_renders_and_is_accepted(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    from tests.conftest import DATA

    template = (DATA / "battlemetrics/ar1ocker-playtime-service_set-playtime.json.tmpl").read_text()
    body = (
        template.replace("{{player.steamID}}", SID)
        .replace("{{player.game.timePlayed}}", "7200")
        .encode()
    )
    endpoint = await make_endpoint("playtime")
    assert (await post_bm(client, endpoint, body, clock)).status == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (bm_body(steam_id="abc"), "steam_id"),
        (bm_body(steam_id="76561198000000001x"), "steam_id"),
        (bm_body(steam_id="７６５６１１９８０００００００００１"), "steam_id"),  # full-width digits
        (bm_body(steam_id=True), "steam_id"),
        (bm_body(playtime="-5"), "playtime"),
        (bm_body(playtime=""), "playtime"),
        (bm_body(playtime="12.5"), "playtime"),
        (bm_body(playtime=10**30), "playtime"),
        (bm_body(game_id=None), "game_id"),
        (bm_body(game_id=2**40), "game_id"),
        (json.dumps({"steam_id": SID, "game_id": 1}).encode(), "playtime"),
        (b"[1, 2]", "body"),
    ],
)
async def test_battlemetrics_schema_violations_are_422_naming_the_field(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint, body: bytes, field: str
) -> None:
    endpoint = await make_endpoint("playtime")
    response = await post_bm(client, endpoint, body, clock)
    assert await error_of(response) == (422, "invalid_payload")
    assert (await response.json())["field"] == field


# --------------------------------------------------------------------------- status code order


async def test_404_unknown_disabled_and_wrong_kind_look_the_same(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    playtime = await make_endpoint("playtime")
    minecraft = await make_endpoint("minecraft")
    disabled = await make_endpoint("playtime")
    await core.endpoint_admin.disable(disabled.path)
    await core.endpoints.refresh()
    bodies = []
    for url in (
        "/set-playtime/bm/does-not-exist/",
        f"/set-playtime/bm/{disabled.path}/",
        f"/set-playtime/bm/{minecraft.path}/",
        f"/webhooks/minecraft/{playtime.path}",
        f"/webhooks/custom/{minecraft.path}",
        "/no/such/route",
    ):
        response = await client.post(url, data=b"{}")
        assert response.status == 404, url
        bodies.append(await response.json())
    assert all(b == bodies[0] for b in bodies)
    # 404 wins over 405 for a path that does not exist
    assert (await client.get("/get-playtime/does-not-exist/")).status == 404


async def test_405_for_get_on_get_playtime(client: TestClient, make_endpoint: MakeEndpoint) -> None:
    endpoint = await make_endpoint("playtime")
    response = await client.get(f"/get-playtime/{endpoint.path}/")
    assert await error_of(response) == (405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"
    assert (await client.post("/healthz")).status == 405


async def test_413_before_signature(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("minecraft")
    big = b'{"pad": "' + b"x" * (64 * 1024) + b'"}'
    response = await client.post(
        f"/webhooks/minecraft/{endpoint.path}",
        data=big,
        headers={"X-Signature": "sha256=" + "0" * 64},
    )
    assert await error_of(response) == (413, "payload_too_large")

    async def chunked() -> Any:
        for _ in range(70):
            yield b"x" * 1024

    response = await client.post(f"/webhooks/minecraft/{endpoint.path}", data=chunked())
    assert response.status == 413
    exact = b" " * (64 * 1024 - 2) + b"{}"  # exactly 64 KiB is allowed
    ok = await client.post(
        f"/webhooks/minecraft/{endpoint.path}",
        data=exact,
        headers={"X-Signature": "sha256=" + "0" * 64},
    )
    assert ok.status == 401


@pytest.mark.parametrize(
    "config_data", [{"web": {"rate_limit_per_minute": 2, "port": 0}}], indirect=False
)
async def test_429_per_endpoint_before_signature(
    tmp_path: Any, clock: ManualClock, config_data: dict[str, Any]
) -> None:
    from aiohttp.test_utils import TestServer

    from bot.config import parse_config
    from web.app import create_app

    config_data["database"] = {"path": str(tmp_path / "q.sqlite3")}
    core = await Core.start(parse_config(config_data, env={}), clock)
    try:
        a = await core.endpoint_admin.create(kind="custom", guild_id=GUILD)
        b = await core.endpoint_admin.create(kind="custom", guild_id=GUILD)
        await core.endpoints.refresh()
        async with TestClient(TestServer(create_app(core))) as client:
            codes = [
                (await client.post(f"/webhooks/custom/{a.path}", data=b"{}")).status
                for _ in range(3)
            ]
            assert codes == [401, 401, 429]
            response = await client.post(f"/webhooks/custom/{a.path}", data=b"{}")
            assert int(response.headers["Retry-After"]) >= 1
            assert (
                await client.post(f"/webhooks/custom/{b.path}", data=b"{}")
            ).status == 401  # per endpoint
            clock.advance(30)  # one token back
            assert (await client.post(f"/webhooks/custom/{a.path}", data=b"{}")).status == 401
    finally:
        await core.stop()


async def test_401_missing_bad_and_stale(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    url = f"/set-playtime/bm/{endpoint.path}/"
    body = bm_body()
    assert await error_of(await client.post(url, data=body)) == (401, "invalid_signature")
    wrong = bm_headers("not-the-secret", body, iso_ms(clock.now()))
    assert (await client.post(url, data=body, headers=wrong)).status == 401
    stale = bm_headers(endpoint.secret, body, iso_ms(clock.now() - timedelta(seconds=301)))
    response = await client.post(url, data=body, headers=stale)
    assert response.status == 401
    assert "skew" in (await response.json())["detail"]
    # signature computed over a re-serialized body does not match the raw bytes
    resigned = bm_headers(
        endpoint.secret, json.dumps(json.loads(body), indent=2).encode(), iso_ms(clock.now())
    )
    assert (await client.post(url, data=body, headers=resigned)).status == 401


async def test_415_after_signature_and_400_after_415(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("minecraft")
    url = f"/webhooks/minecraft/{endpoint.path}"
    body = b"not json at all"
    headers = sha_headers(endpoint.secret, body)
    assert (await client.post(url, data=body, headers=headers)).status == 400
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    assert await error_of(await client.post(url, data=body, headers=headers)) == (
        415,
        "unsupported_media_type",
    )
    headers["Content-Type"] = "text/plain"  # only BattleMetrics may send text/plain
    assert (await client.post(url, data=body, headers=headers)).status == 415
    bad_sig = {"X-Signature": "sha256=" + "0" * 64, "Content-Type": "text/html"}
    assert (await client.post(url, data=body, headers=bad_sig)).status == 401


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"type": NaN}',
        b'{"type": Infinity}',
        b'{"n": 1e999}',
        b'{"type": "\\ud800"}',
        b'{"a": 1, "a": 2}',
        b"\xff\xfe{}",
        b"",
        b"[" * 30000 + b"]" * 30000,
        b'{"n": ' + b"9" * 5000 + b"}",
    ],
    ids=[
        "truncated",
        "nan",
        "infinity",
        "huge-float",
        "lone-surrogate",
        "dup-key",
        "not-utf8",
        "empty",
        "deep",
        "huge-int",
    ],
)
async def test_400_for_malformed_json(
    client: TestClient, make_endpoint: MakeEndpoint, body: bytes
) -> None:
    endpoint = await make_endpoint("custom")
    body = body[: 64 * 1024]
    response = await client.post(
        f"/webhooks/custom/{endpoint.path}", data=body, headers=sha_headers(endpoint.secret, body)
    )
    assert await error_of(response) == (400, "malformed_json")


async def test_garbage_never_causes_500(client: TestClient, make_endpoint: MakeEndpoint) -> None:
    rng = random.Random(1234)
    endpoints = [await make_endpoint(k) for k in ("playtime", "minecraft", "custom")]
    values: list[Any] = [
        None,
        True,
        0,
        -1,
        2**70,
        1.5,
        "",
        "x" * 300,
        [],
        {},
        [1],
        {"a": None},
        "\u0000",
    ]
    keys = [
        "type",
        "steam_id",
        "steam_ids",
        "playtime",
        "game_id",
        "player_uuid",
        "at",
        "event_type",
        "title",
        "player",
        "code",
        "duration_seconds",
        "key",
        "is_need_update",
        "id",
        "server_id",
    ]
    for _ in range(150):
        payload = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(0, 6))}
        if rng.random() < 0.3:
            payload["type"] = rng.choice(
                ["session.started", "session.ended", "achievement.unlocked", "link.confirm"]
            )
        body = json.dumps(payload).encode()
        endpoint = rng.choice(endpoints)
        if endpoint.kind == "playtime":
            url = f"/get-playtime/{endpoint.path}/"
            headers = hex_headers(endpoint.secret, body)
        else:
            url = f"/webhooks/{endpoint.kind}/{endpoint.path}"
            headers = sha_headers(endpoint.secret, body)
        response = await client.post(url, data=body, headers=headers)
        assert response.status in (200, 202, 400, 422), (payload, await response.text())


# --------------------------------------------------------------------------- get-playtime


async def test_get_playtime_is_wire_compatible(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    await post_bm(client, endpoint, bm_body(steam_id=SID2, playtime="3600"), clock)
    response = await get_playtime(
        client,
        endpoint,
        {"steam_ids": [SID2, int(SID), SID2], "game_id": 393380, "is_need_update": False},
    )
    assert response.status == 200
    data = await response.json()
    assert [d["steam_id"] for d in data] == [SID2, SID]  # unique, in request order, strings
    first, second = data
    assert first["bm_playtime"] == 3600 and first["steam_playtime"] is None
    assert second["bm_playtime"] is None
    assert first["steam_status"] == "not_configured"  # no Steam key in this configuration
    for item in data:
        assert set(item) >= {
            "steam_id",
            "steam_playtime",
            "bm_playtime",
            "created_at",
            "updated_at",
            "steam_status",
        }
        assert item["created_at"].endswith("Z") and item["updated_at"].endswith("Z")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"steam_ids": [], "game_id": 1}, "steam_ids"),
        ({"steam_ids": [SID] * 121, "game_id": 1}, "steam_ids"),
        ({"steam_ids": SID, "game_id": 1}, "steam_ids"),
        ({"steam_ids": [SID, "123"], "game_id": 1}, "steam_ids[1]"),
        ({"steam_ids": [76561198000000001.0], "game_id": 1}, "steam_ids[0]"),
        ({"steam_ids": [SID]}, "game_id"),
        ({"steam_ids": [SID], "game_id": 1, "is_need_update": "yes"}, "is_need_update"),
    ],
)
async def test_get_playtime_422(
    client: TestClient, make_endpoint: MakeEndpoint, payload: Any, field: str
) -> None:
    endpoint = await make_endpoint("playtime")
    response = await get_playtime(client, endpoint, payload)
    assert await error_of(response) == (422, "invalid_payload")
    assert (await response.json())["field"] == field


async def test_read_secret_reads_but_cannot_write(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint(
        "playtime", secret="bm-shared-secret", read_secret="script-read-secret"
    )
    ok = await get_playtime(
        client, endpoint, {"steam_ids": [SID], "game_id": 1}, secret="script-read-secret"
    )
    assert ok.status == 200
    forged = await post_bm(client, endpoint, bm_body(), clock, secret="script-read-secret")
    assert forged.status == 401
    assert (
        await post_bm(client, endpoint, bm_body(), clock, secret="bm-shared-secret")
    ).status == 200


async def test_rotation_keeps_old_secret_for_the_grace_period(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime", secret="old-secret")
    rotated = await core.endpoint_admin.rotate(
        endpoint.path, grace=timedelta(hours=24), secret="new-secret"
    )
    await core.endpoints.refresh()
    assert (
        await post_bm(client, rotated, bm_body(playtime="1"), clock, secret="new-secret")
    ).status == 200
    assert (
        await post_bm(client, rotated, bm_body(playtime="2"), clock, secret="old-secret")
    ).status == 200
    clock.advance(24 * 3600 + 1)
    assert (
        await post_bm(client, rotated, bm_body(playtime="3"), clock, secret="old-secret")
    ).status == 401
    assert (
        await post_bm(client, rotated, bm_body(playtime="4"), clock, secret="new-secret")
    ).status == 200


async def test_endpoint_changes_reach_the_server_within_a_second(
    client: TestClient, core: Core, clock: ManualClock
) -> None:

    # Written straight to the database (as the CLI does from its own process), no manual refresh.
    endpoint = await core.endpoint_admin.create(kind="custom", guild_id=GUILD)
    body = b'{"event_type": "x", "title": "hello"}'

    async def status() -> int:
        return (
            await client.post(
                f"/webhooks/custom/{endpoint.path}",
                data=body,
                headers=sha_headers(endpoint.secret, body),
            )
        ).status

    async def wait_for(expected: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while loop.time() < deadline:
            if await status() == expected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"endpoint change not visible within 1 s (wanted {expected})")

    await wait_for(200)
    await core.endpoint_admin.disable(endpoint.path)
    await wait_for(404)


# --------------------------------------------------------------------------- Minecraft and custom


async def test_minecraft_events_and_identical_retries(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("minecraft")
    url = f"/webhooks/minecraft/{endpoint.path}"
    body = json.dumps(
        {
            "type": "session.started",
            "player_uuid": UUID,
            "player_name": "Notch",
            "server_id": "survival-1",
            "world": "world",
            "at": "2025-03-01T12:00:00Z",
        }
    ).encode()
    stamp = str(int(clock.now().timestamp()))
    response = await client.post(url, data=body, headers=sha_headers(endpoint.secret, body, stamp))
    assert response.status == 200
    assert (await response.json())["status"] == "accepted"
    # The sender lost our answer and retries the identical request: acknowledged as it would
    # be answered now (a duplicate), never an authentication error, and nothing changes.
    retry = await client.post(url, data=body, headers=sha_headers(endpoint.secret, body, stamp))
    assert (retry.status, (await retry.json())["status"]) == (200, "duplicate")
    # A resend signed afresh is a duplicate event too.
    fresh = await client.post(url, data=body, headers=sha_headers(endpoint.secret, body))
    assert (await fresh.json())["status"] == "duplicate"
    assert (await core.store.engine.fetchone("SELECT count(*) FROM activity_events"))[0] == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "player.teleported", "player_uuid": UUID, "at": "2025-03-01T12:00:00Z"}, "type"),
        (
            {"type": "session.started", "player_uuid": "nope", "at": "2025-03-01T12:00:00Z"},
            "player_uuid",
        ),
        ({"type": "session.started", "player_uuid": UUID}, "at"),
        ({"type": "session.started", "player_uuid": UUID, "at": "2025-03-01T12:00:00"}, "at"),
        (
            {
                "type": "session.ended",
                "player_uuid": UUID,
                "at": "2025-03-01T12:00:00Z",
                "duration_seconds": -1,
            },
            "duration_seconds",
        ),
        (
            {"type": "achievement.unlocked", "player_uuid": UUID, "at": "2025-03-01T12:00:00Z"},
            "key",
        ),
        ({"type": "link.confirm", "player_uuid": UUID}, "code"),
    ],
)
async def test_minecraft_422(
    client: TestClient, make_endpoint: MakeEndpoint, payload: Any, field: str
) -> None:
    endpoint = await make_endpoint("minecraft")
    body = json.dumps(payload).encode()
    response = await client.post(
        f"/webhooks/minecraft/{endpoint.path}",
        data=body,
        headers=sha_headers(endpoint.secret, body),
    )
    assert await error_of(response) == (422, "invalid_payload")
    assert (await response.json())["field"] == field


async def test_link_confirm_statuses(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("minecraft")
    code, _ = await core.accounts.new_code(guild_id=GUILD, discord_user_id=4242, source="minecraft")
    assert len(code) == 8

    async def confirm(value: str, uuid: str = UUID) -> Any:
        body = json.dumps(
            {"type": "link.confirm", "player_uuid": uuid, "player_name": "Notch", "code": value}
        ).encode()
        response = await client.post(
            f"/webhooks/minecraft/{endpoint.path}",
            data=body,
            headers=sha_headers(endpoint.secret, body),
        )
        assert response.status == 200
        return (await response.json())["status"]

    assert await confirm("WRONG123") == "unknown_code"
    assert await confirm(code.lower()) == "linked"
    assert await confirm(code) == "linked"  # a retry by the same player
    assert (
        await confirm(code, "11111111-2222-3333-4444-555555555555") == "unknown_code"
    )  # single use
    link = await core.store.engine.fetchone(
        "SELECT discord_user_id, external_id, verified, display_name FROM account_links"
    )
    assert tuple(link) == (4242, UUID, 1, "Notch")
    late, _ = await core.accounts.new_code(guild_id=GUILD, discord_user_id=5555, source="minecraft")
    clock.advance(601)
    assert await confirm(late) == "expired_code"


async def test_custom_event_and_dedupe_by_id(
    client: TestClient, core: Core, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("custom")
    url = f"/webhooks/custom/{endpoint.path}"
    payload = {
        "event_type": "boss.killed",
        "title": "The dragon fell",
        "id": "evt-1",
        "player": {"id": 42, "name": "Alex"},
        "damage": 9001,
    }
    body = json.dumps(payload).encode()
    assert (
        await (await client.post(url, data=body, headers=sha_headers(endpoint.secret, body))).json()
    )["status"] == "accepted"
    payload["title"] = "edited, same id"
    body = json.dumps(payload).encode()
    assert (
        await (await client.post(url, data=body, headers=sha_headers(endpoint.secret, body))).json()
    )["status"] == "duplicate"
    row = await core.store.engine.fetchone(
        "SELECT type, title, actor_external_id, actor_name, payload FROM activity_events"
    )
    assert tuple(row)[:4] == ("custom.boss.killed", "The dragon fell", "42", "Alex")
    assert json.loads(row[4])["damage"] == 9001
    for bad_payload, field in (
        ({"event_type": "Bad Type!", "title": "x"}, "event_type"),
        ({"event_type": "x"}, "title"),
        ({"event_type": "x", "title": "t", "player": {"name": "no id"}}, "player.id"),
        ({"event_type": "x", "title": "t", "player": "Alex"}, "player"),
        ({"event_type": "x", "title": "t", "id": {"nested": 1}}, "id"),
        ({"event_type": "x", "title": "t", "at": "yesterday"}, "at"),
    ):
        bad = json.dumps(bad_payload).encode()
        response = await client.post(url, data=bad, headers=sha_headers(endpoint.secret, bad))
        assert response.status == 422
        assert (await response.json())["field"] == field


# --------------------------------------------------------------------------- health and metrics


async def test_healthz(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    data = await response.json()
    assert (
        data["database"] == "ok" and data["discord"] == "disabled" and data["webhooks"] == "serving"
    )


async def test_healthz_asks_the_store_and_says_when_it_is_unreachable(
    client: TestClient, core: Core
) -> None:
    await core.store.close()  # the database went away under the running server
    response = await client.get("/healthz")
    assert response.status == 503
    data = await response.json()
    assert (data["status"], data["database"], data["webhooks"]) == (
        "degraded",
        "unavailable",
        "serving",
    )


async def test_metrics_counts_requests_and_duplicates(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    t = iso_ms(clock.now())
    await post_bm(client, endpoint, bm_body(), clock, t=t)
    await post_bm(client, endpoint, bm_body(), clock, t=t)
    text = await (await client.get("/metrics")).text()
    assert 'questlog_ingest_total{result="duplicate",source="battlemetrics"} 1' in text
    assert 'questlog_http_requests_total{route="set_playtime",status="200"} 2' in text
    assert 'questlog_steam_calls_left_today{purpose="sync"} 80000' in text
    assert 'questlog_steam_calls_left_today{purpose="lookup"} 20000' in text
    assert "questlog_outbox_pending 0" in text


@pytest.mark.parametrize("config_data", [{"web": {"metrics_token": "m-token", "port": 0}}])
async def test_metrics_token(
    tmp_path: Any, clock: ManualClock, config_data: dict[str, Any]
) -> None:
    from aiohttp.test_utils import TestServer

    from bot.config import parse_config
    from web.app import create_app

    config_data["database"] = {"path": str(tmp_path / "q.sqlite3")}
    core = await Core.start(parse_config(config_data, env={}), clock)
    try:
        async with TestClient(TestServer(create_app(core))) as client:
            assert (await client.get("/metrics")).status == 401
            assert (
                await client.get("/metrics", headers={"Authorization": "Bearer wrong"})
            ).status == 401
            ok = await client.get("/metrics", headers={"Authorization": "Bearer m-token"})
            assert ok.status == 200 and "questlog_" in await ok.text()
    finally:
        await core.stop()


async def test_battlemetrics_missing_steam_id_is_422_but_null_is_ignored(
    client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    missing = json.dumps({"playtime": "1", "game_id": 1}).encode()
    response = await post_bm(client, endpoint, missing, clock)
    assert response.status == 422 and (await response.json())["field"] == "steam_id"
    null = json.dumps({"steam_id": None, "playtime": "1", "game_id": 1}).encode()
    assert (await post_bm(client, endpoint, null, clock)).status == 202


async def test_fifty_identical_webhooks_at_once_make_one_event(
    client: TestClient, core: Core, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("playtime")
    body = bm_body(playtime="3600")
    headers = bm_headers(
        endpoint.secret, body, iso_ms(clock.now())
    )  # one delivery, retried 50 times
    url = f"/set-playtime/bm/{endpoint.path}/"
    responses = await asyncio.gather(
        *(client.post(url, data=body, headers=headers) for _ in range(50))
    )
    statuses = sorted([(r.status, (await r.json())["status"]) for r in responses])
    assert statuses == [(200, "accepted")] + [(200, "duplicate")] * 49
    assert (await core.store.engine.fetchone("SELECT count(*) FROM raw_events"))[0] == 1
    assert (
        core.metrics.get("questlog_ingest_total", source="battlemetrics", result="duplicate") == 49
    )


async def test_identical_timestamped_retries_are_acknowledged_before_and_after_a_restart(
    config: Config, clock: ManualClock
) -> None:
    """A Minecraft event, a custom event and a link.confirm, each sent twice with the same
    X-Timestamp and signature, then once more after a restart: the retries answer as the first
    delivery would be answered now and change nothing; a stale one stays 401."""
    first = await Core.start(config, clock)
    try:
        minecraft = await first.endpoint_admin.create(kind="minecraft", guild_id=GUILD)
        custom = await first.endpoint_admin.create(kind="custom", guild_id=GUILD)
        await first.endpoints.refresh()
        code, _ = await first.accounts.new_code(
            guild_id=GUILD, discord_user_id=4242, source="minecraft"
        )
    finally:
        await first.stop()
    stamp = str(int(clock.now().timestamp()))
    event = json.dumps({"type": "session.started", "player_uuid": UUID, "server_id": "s1",
                        "at": "2025-03-01T12:00:00Z"}).encode()  # fmt: skip
    raid = json.dumps({"event_type": "raid.won", "title": "Raid won"}).encode()  # no id
    confirm = json.dumps({"type": "link.confirm", "player_uuid": UUID, "code": code}).encode()
    deliveries = [
        (f"/webhooks/minecraft/{minecraft.path}", minecraft.secret, event, "accepted", "duplicate"),
        (f"/webhooks/custom/{custom.path}", custom.secret, raid, "accepted", "duplicate"),
        (f"/webhooks/minecraft/{minecraft.path}", minecraft.secret, confirm, "linked", "linked"),
    ]

    async def stored(core: Core) -> tuple[int, ...]:
        counts = []
        for table in ("raw_events", "activity_events", "sessions", "account_links"):
            counts.append((await core.store.engine.fetchone(f"SELECT count(*) FROM {table}"))[0])
        return tuple(counts)

    async def send(core: Core, rounds: list[int]) -> tuple[int, ...]:
        async with TestClient(TestServer(create_app(core))) as http:
            for k in rounds:
                for url, secret, body, first_answer, retry_answer in deliveries:
                    headers = sha_headers(secret, body, stamp)
                    response = await http.post(url, data=body, headers=headers)
                    expected = first_answer if k == 0 else retry_answer
                    assert (response.status, (await response.json())["status"]) == (
                        200,
                        expected,
                    ), url
            return await stored(core)

    core = await Core.start(config, clock)
    try:
        after_first = await send(core, [0, 1])
        assert after_first == (2, 2, 1, 1)  # two events, one session, one link
    finally:
        await core.stop()
    clock.advance(60)  # restarted a minute later, still inside the tolerance
    core = await Core.start(config, clock)
    try:
        assert await send(core, [1]) == after_first
        links = await core.accounts.links(GUILD, 4242)
        assert [link.external_id for link in links] == [UUID]
        clock.advance(config.webhooks.tolerance_seconds + 60)  # now the signature is stale
        async with TestClient(TestServer(create_app(core))) as http:
            url, secret, body, _, _ = deliveries[0]
            late = await http.post(url, data=body, headers=sha_headers(secret, body, stamp))
            assert await error_of(late) == (401, "invalid_signature")
    finally:
        await core.stop()


async def test_refusals_are_logged_once_a_minute_without_secrets(
    client: TestClient,
    clock: ManualClock,
    make_endpoint: MakeEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = await make_endpoint("playtime")
    body = bm_body()
    wrong = "not-the-secret-" + "x" * 20
    caplog.set_level("INFO", logger="questlog.web.refused")
    for _ in range(3):
        assert (await post_bm(client, endpoint, body, clock, secret=wrong)).status == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "questlog.web.refused"]
    assert len(lines) == 1
    assert lines[0].startswith(
        f"refused playtime webhook {endpoint.path[:6]}…: 401 invalid_signature"
    )
    clock.advance(61)
    assert (await post_bm(client, endpoint, body, clock, secret=wrong)).status == 401
    assert (await post_bm(client, endpoint, b'{"steam_id": 1}', clock)).status == 422
    huge = b"{" + b" " * 70_000 + b"}"
    assert (await post_bm(client, endpoint, huge, clock)).status == 413
    assert (await client.post("/set-playtime/bm/nosuchpath/", data=body)).status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "questlog.web.refused"]
    assert "(2 more like it in the last minute were not logged)" in lines[1]
    assert any(": 422 invalid_payload: " in line and "steam_id" in line for line in lines)
    assert any(": 413 payload_too_large" in line for line in lines)
    assert any("nosuch…: 404 not_found" in line for line in lines)
    text = "\n".join(lines)
    for secret in (endpoint.secret, wrong, body.decode(), endpoint.path):
        assert secret not in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_type": "t", "title": "a\u0000b"}, "title"),
        ({"event_type": "t", "title": "ok", "id": "x\u0000"}, "id"),
        ({"event_type": "t", "title": "ok", "boss": {"name": "\u0000"}}, "boss.name"),
        ({"event_type": "t", "title": "ok", "loot": ["sword", "\u0000"]}, "loot[1]"),
        ({"event_type": "t", "title": "ok", "a\u0000": 1}, "(a key)"),
    ],
)
async def test_a_nul_character_is_422_naming_the_field(
    client: TestClient, make_endpoint: MakeEndpoint, body: dict[str, Any], field: str
) -> None:
    """No database text holds NUL (PostgreSQL refuses it): refused up front, never a retry
    loop of a delivery that can never be stored."""
    endpoint = await make_endpoint("custom")
    raw = json.dumps(body).encode()
    response = await client.post(
        f"/webhooks/custom/{endpoint.path}", data=raw, headers=sha_headers(endpoint.secret, raw)
    )
    assert await error_of(response) == (422, "invalid_payload")
    assert (await response.json())["field"] == field
