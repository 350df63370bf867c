"""SteamClient against the fake Steam Web API (tests/fakes/steam.py); offline and fast.

Retries never wait: the client gets a fake clock whose ``sleep`` records the delay and moves the
clock forward, so the rate limiter and the backoff see time pass without any real sleeping.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from connectors.registry import Registry
from connectors.steam import (
    InvalidKey,
    MemoryBudget,
    NotConfigured,
    OwnedGame,
    PrivateProfile,
    RateLimited,
    SteamClient,
    SteamConnector,
    SteamError,
    Unavailable,
    VanityNotFound,
)
from tests.fakes.steam import (
    MODERN_ID,
    NOT_PUBLIC_403_ID,
    PRIVATE_ID,
    ROBIN_ID,
    SAPHYEL_ID,
    VALVE_GROUP_ID,
    FakeSteam,
    fixture_bytes,
    fixture_json,
)

TF2 = 440  # in the 487-game library: 42653 minutes


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


MakeClient = Callable[..., SteamClient]


@pytest.fixture
async def steam() -> AsyncIterator[FakeSteam]:
    async with FakeSteam() as fake:
        yield fake


@pytest.fixture
def steam_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_client(steam: FakeSteam, steam_clock: FakeClock) -> AsyncIterator[MakeClient]:
    clients: list[SteamClient] = []

    def make(api_key: str | None = None, **kwargs: Any) -> SteamClient:
        kwargs.setdefault("base_url", steam.base_url)
        kwargs.setdefault("sleep", steam_clock.sleep)
        kwargs.setdefault("monotonic", steam_clock.monotonic)
        # Fast enough that the limiter never sleeps between a test's calls unless it means to.
        kwargs.setdefault("requests_per_second", 1000.0)
        client = SteamClient(steam.api_key if api_key is None else api_key, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> SteamClient:
    clock = FakeClock()
    return SteamClient(
        "SECRETKEY",
        base_url="https://steam.invalid",
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


def json_response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )


# --------------------------------------------------------------------------- GetOwnedGames


async def test_owned_game_found_in_the_487_game_library(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    library = fixture_json("GetOwnedGames_v1-include_appinfo_487games_2015.json")["response"]
    assert library["game_count"] == 487
    tf2 = next(g for g in library["games"] if g["appid"] == TF2)

    game = await make_client().get_owned_game(ROBIN_ID, TF2)

    assert game == OwnedGame(TF2, tf2["playtime_forever"], "Team Fortress 2")
    assert game.playtime_forever_minutes == 42653
    assert game.playtime_seconds == 42653 * 60
    assert steam.calls["GetOwnedGames"] == 1
    assert steam.requested_steamids == [ROBIN_ID]
    params = steam.requests[0].params
    assert params["appids_filter[0]"] == "440"
    assert params["include_played_free_games"] == "1"
    assert params["format"] == "json"
    assert params["steamid"] == ROBIN_ID


async def test_owned_game_with_modern_fields(make_client: MakeClient) -> None:
    game = await make_client().get_owned_game(MODERN_ID, 335240)
    assert game == OwnedGame(335240, 7, "Transformice")
    assert game.playtime_seconds == 420


async def test_game_not_owned_is_none(steam: FakeSteam, make_client: MakeClient) -> None:
    assert await make_client().get_owned_game(ROBIN_ID, 1) is None
    assert steam.requests[0].status == 200


async def test_private_library_http_200_is_private_profile(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    with pytest.raises(PrivateProfile) as info:
        await make_client().get_owned_game(PRIVATE_ID, TF2)
    assert info.value.status == "private_profile"
    assert info.value.http_status == 200
    assert steam.calls["GetOwnedGames"] == 1


async def test_json_403_profile_not_public_is_private_profile(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    with pytest.raises(PrivateProfile) as info:
        await make_client().get_owned_game(NOT_PUBLIC_403_ID, TF2)
    assert info.value.http_status == 403
    assert steam.calls["GetOwnedGames"] == 1  # never retried


async def test_bad_key_html_403_is_invalid_key_and_not_retried(
    steam: FakeSteam, make_client: MakeClient, steam_clock: FakeClock
) -> None:
    with pytest.raises(InvalidKey) as info:
        await make_client("WRONGKEY").get_owned_game(ROBIN_ID, TF2)
    assert info.value.status == "invalid_key"
    assert info.value.http_status == 403
    assert steam.calls["GetOwnedGames"] == 1
    assert steam_clock.sleeps == []


async def test_missing_key_html_400_is_invalid_key(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    # The client never sends an empty key (NotConfigured), so the fake scripts Steam's 400.
    steam.fail_next("GetOwnedGames", [400])
    with pytest.raises(InvalidKey) as info:
        await make_client().get_owned_game(ROBIN_ID, TF2)
    assert info.value.http_status == 400
    assert steam.calls["GetOwnedGames"] == 1


async def test_429_then_success(
    steam: FakeSteam, make_client: MakeClient, steam_clock: FakeClock
) -> None:
    steam.fail_next("GetOwnedGames", [429])
    game = await make_client().get_owned_game(ROBIN_ID, TF2)
    assert game is not None and game.playtime_forever_minutes == 42653
    assert steam.calls["GetOwnedGames"] == 2
    assert len(steam_clock.sleeps) == 1
    assert 0.25 <= steam_clock.sleeps[0] <= 0.75  # 0.5 * 2**0 * uniform(0.5, 1.5)


async def test_429_every_time_is_rate_limited(
    steam: FakeSteam, make_client: MakeClient, steam_clock: FakeClock
) -> None:
    steam.fail_next("GetOwnedGames", [429, 429, 429])
    with pytest.raises(RateLimited) as info:
        await make_client().get_owned_game(ROBIN_ID, TF2)
    assert info.value.status == "rate_limited"
    assert info.value.local is False
    assert info.value.http_status == 429
    assert steam.calls["GetOwnedGames"] == 3
    assert len(steam_clock.sleeps) == 2
    assert 0.25 <= steam_clock.sleeps[0] <= 0.75
    assert 0.5 <= steam_clock.sleeps[1] <= 1.5  # 0.5 * 2**1 * uniform(0.5, 1.5)


async def test_500_then_success(
    steam: FakeSteam, make_client: MakeClient, steam_clock: FakeClock
) -> None:
    steam.fail_next("GetOwnedGames", [500])
    assert await make_client().get_owned_game(ROBIN_ID, TF2) is not None
    assert steam.calls["GetOwnedGames"] == 2
    assert len(steam_clock.sleeps) == 1


async def test_5xx_every_time_is_unavailable(steam: FakeSteam, make_client: MakeClient) -> None:
    steam.fail_next("GetOwnedGames", [500, 502, 503])
    with pytest.raises(Unavailable) as info:
        await make_client().get_owned_game(ROBIN_ID, TF2)
    assert info.value.status == "unavailable"
    assert info.value.http_status == 503
    assert steam.calls["GetOwnedGames"] == 3


async def test_timeout_is_unavailable(steam: FakeSteam, make_client: MakeClient) -> None:
    steam.delays[ROBIN_ID] = 5.0
    client = make_client(timeout=0.2, max_attempts=2)
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"did not answer within 0\.2 s"):
        await client.get_owned_game(ROBIN_ID, TF2)
    assert time.monotonic() - started < 2.0
    assert steam.calls["GetOwnedGames"] == 2


async def test_connection_error_is_retried_then_unavailable() -> None:
    attempts: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    client = mock_client(refuse)
    with pytest.raises(Unavailable, match="ConnectError"):
        await client.get_owned_game(ROBIN_ID, TF2)
    await client.aclose()
    assert len(attempts) == 3


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[]",
        b'{"response": []}',
        b'{"response": {"game_count": 1, "games": {"appid": 440}}}',
        b'{"response": {"game_count": 1, "games": [440]}}',
        b'{"response": {"game_count": 1, "games": [{"appid": 440, "playtime_forever": "x"}]}}',
        b'{"response": {"game_count": 1, "games": [{"appid": 440}]}}',
    ],
)
async def test_unexpected_owned_games_body_is_unavailable(body: bytes) -> None:
    client = mock_client(lambda request: httpx.Response(200, content=body))
    with pytest.raises(Unavailable, match="GetOwnedGames"):
        await client.get_owned_game(ROBIN_ID, TF2)
    await client.aclose()


async def test_unexpected_4xx_is_unavailable_without_retry() -> None:
    attempts: list[httpx.Request] = []

    def not_found(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        return httpx.Response(404, text="<html><body>Not Found</body></html>")

    client = mock_client(not_found)
    with pytest.raises(Unavailable, match="HTTP 404"):
        await client.get_owned_game(ROBIN_ID, TF2)
    await client.aclose()
    assert len(attempts) == 1


# --------------------------------------------------------------------------- GetPlayerSummaries


async def test_player_summaries_are_batched_by_100(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    ids = [ROBIN_ID, SAPHYEL_ID, PRIVATE_ID] + [str(76561198100000000 + i) for i in range(247)]
    assert len(ids) == 250

    summaries = await make_client().get_player_summaries(ids)

    assert steam.calls["GetPlayerSummaries"] == 3
    batches = [r.params["steamids"].split(",") for r in steam.requests]
    assert [len(b) for b in batches] == [100, 100, 50]
    assert [s for b in batches for s in b] == ids
    assert set(summaries) == {ROBIN_ID, SAPHYEL_ID, PRIVATE_ID}  # unknown ids are left out
    assert not summaries[PRIVATE_ID].public  # listed, with communityvisibilitystate 1
    robin = summaries[ROBIN_ID]
    assert robin.persona_name == "Robin"
    assert robin.profile_url == "http://steamcommunity.com/id/robinwalker/"
    assert robin.avatar_url is not None and robin.avatar_url.endswith("_full.jpg")
    assert robin.visibility == 3 and robin.public
    assert summaries[SAPHYEL_ID].persona_name == "Saphyel"


async def test_player_summaries_of_nobody_makes_no_call(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    assert await make_client().get_player_summaries([]) == {}
    assert steam.calls["GetPlayerSummaries"] == 0


async def test_private_summary_is_not_public() -> None:
    body = {"response": {"players": [{"steamid": PRIVATE_ID, "communityvisibilitystate": 1}]}}
    client = mock_client(lambda request: json_response(200, body))
    summaries = await client.get_player_summaries([PRIVATE_ID])
    await client.aclose()
    assert summaries[PRIVATE_ID].visibility == 1
    assert not summaries[PRIVATE_ID].public
    assert summaries[PRIVATE_ID].persona_name == ""


async def test_player_summaries_403_is_always_invalid_key() -> None:
    # Even a JSON "Profile is not public" 403: this endpoint never answers 403 for privacy.
    body = json.loads(
        fixture_bytes("GetPlayerAchievements_v1-error_profile_not_public_http403.json")
    )
    client = mock_client(lambda request: json_response(403, body))
    with pytest.raises(InvalidKey):
        await client.get_player_summaries([ROBIN_ID])
    await client.aclose()


async def test_player_summaries_bad_key(make_client: MakeClient) -> None:
    with pytest.raises(InvalidKey):
        await make_client("WRONGKEY").get_player_summaries([ROBIN_ID])


async def test_player_summaries_without_players_list_is_unavailable() -> None:
    client = mock_client(lambda request: json_response(200, {"response": {"players": {}}}))
    with pytest.raises(Unavailable, match="players"):
        await client.get_player_summaries([ROBIN_ID])
    await client.aclose()


# --------------------------------------------------------------------------- ResolveVanityURL


async def test_resolve_vanity(steam: FakeSteam, make_client: MakeClient) -> None:
    client = make_client()
    assert await client.resolve_vanity("Saphyel") == SAPHYEL_ID
    assert await client.resolve_vanity("robinwalker") == ROBIN_ID
    # A group id comes back as given; the caller decides it is not a player.
    assert await client.resolve_vanity("valve") == VALVE_GROUP_ID
    assert steam.requests[0].params["vanityurl"] == "Saphyel"


async def test_resolve_vanity_no_match_is_vanity_not_found(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    with pytest.raises(VanityNotFound) as info:
        await make_client().resolve_vanity("no-such-profile-here")
    assert info.value.status == "not_found"
    assert steam.calls["ResolveVanityURL"] == 1


# --------------------------------------------------------------------------- configuration, budget


async def test_empty_key_is_not_configured_without_http(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    client = make_client("  ")
    assert not client.configured
    with pytest.raises(NotConfigured) as info:
        await client.get_owned_game(ROBIN_ID, TF2)
    assert info.value.status == "not_configured"
    with pytest.raises(NotConfigured):
        await client.get_player_summaries([ROBIN_ID])
    with pytest.raises(NotConfigured):
        await client.resolve_vanity("Saphyel")
    assert sum(steam.calls.values()) == 0
    assert make_client().configured


async def test_spent_budget_is_local_rate_limit_without_http(
    steam: FakeSteam, make_client: MakeClient
) -> None:
    client = make_client(budget=MemoryBudget(0))
    with pytest.raises(RateLimited) as info:
        await client.get_owned_game(ROBIN_ID, TF2)
    assert info.value.local is True
    assert info.value.status == "rate_limited"
    assert sum(steam.calls.values()) == 0


async def test_a_client_for_another_budget_shares_the_pacing(
    steam: FakeSteam, make_client: MakeClient, steam_clock: FakeClock
) -> None:
    """The lookups' client takes its calls from its own budget but is paced with the sync's:
    Steam's per-IP burst limit does not care who asked."""
    sync_budget, lookup_budget = MemoryBudget(5), MemoryBudget(1)
    client = make_client(budget=sync_budget, requests_per_second=2.0)
    lookups = client.with_budget(lookup_budget)
    await client.get_owned_game(ROBIN_ID, TF2)
    await lookups.get_owned_game(ROBIN_ID, TF2)
    await client.get_owned_game(ROBIN_ID, TF2)
    assert steam_clock.sleeps == [0.5, 0.5]  # one slot every half second across both
    assert (sync_budget.used, lookup_budget.used) == (2, 1)
    with pytest.raises(RateLimited):
        await lookups.get_owned_game(ROBIN_ID, TF2)  # its own budget is spent
    await client.get_owned_game(ROBIN_ID, TF2)  # the other's is not
    await lookups.aclose()  # closes nothing shared
    await client.get_owned_game(ROBIN_ID, TF2)
    assert steam.calls["GetOwnedGames"] == 5


async def test_every_retry_takes_from_the_budget(steam: FakeSteam, make_client: MakeClient) -> None:
    budget = MemoryBudget(2)
    steam.fail_next("GetOwnedGames", [429, 429, 429])
    with pytest.raises(RateLimited) as info:
        await make_client(budget=budget).get_owned_game(ROBIN_ID, TF2)
    assert info.value.local is True
    assert steam.calls["GetOwnedGames"] == 2
    assert budget.used == 2 and budget.remaining == 0


async def test_rate_limiter_spaces_calls(
    steam: FakeSteam, make_client: MakeClient, steam_clock: FakeClock
) -> None:
    client = make_client(requests_per_second=2)
    for _ in range(5):
        await client.get_owned_game(ROBIN_ID, TF2)
    assert steam.calls["GetOwnedGames"] == 5
    assert steam_clock.sleeps == pytest.approx([0.5, 0.5, 0.5, 0.5])


async def test_rate_limiter_does_not_sleep_after_idle(
    make_client: MakeClient, steam_clock: FakeClock
) -> None:
    client = make_client(requests_per_second=2)
    await client.get_owned_game(ROBIN_ID, TF2)
    steam_clock.now += 10
    await client.get_owned_game(ROBIN_ID, TF2)
    assert steam_clock.sleeps == []


# --------------------------------------------------------------------------- secrecy


async def test_api_key_never_in_errors_or_logs(
    steam: FakeSteam, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = steam.api_key
    errors: list[SteamError] = []

    async def collect(client: SteamClient, steam_id: str = ROBIN_ID) -> None:
        with pytest.raises(SteamError) as info:
            await client.get_owned_game(steam_id, TF2)
        errors.append(info.value)

    steam.fail_next("GetOwnedGames", [429, 429, 429])
    await collect(make_client())
    steam.fail_next("GetOwnedGames", [500, 500, 500])
    await collect(make_client())
    steam.fail_next("GetOwnedGames", [400])
    await collect(make_client())
    await collect(make_client(), PRIVATE_ID)
    await collect(make_client(), NOT_PUBLIC_403_ID)
    steam.delays[ROBIN_ID] = 5.0
    await collect(make_client(timeout=0.2, max_attempts=1))
    del steam.delays[ROBIN_ID]
    await collect(make_client(base_url="http://127.0.0.1:1", max_attempts=1))
    await collect(make_client(budget=MemoryBudget(0)))

    def echo_key(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"failed for {request.url}", request=request)

    await collect(make_client(transport=httpx.MockTransport(echo_key), max_attempts=1))

    def weird_status(request: httpx.Request) -> httpx.Response:
        return httpx.Response(418, text=f"<p>teapot {request.url}</p>")

    await collect(make_client(transport=httpx.MockTransport(weird_status)))

    wrong = "WRONGKEY1234567890"
    with pytest.raises(InvalidKey) as info:
        await make_client(wrong).get_owned_game(ROBIN_ID, TF2)
    errors.append(info.value)

    assert len(errors) == 11
    for error in errors:
        for text in (str(error), repr(error), *map(str, error.args)):
            assert key not in text and wrong not in text
    assert "HTTP Request" in caplog.text  # httpx logged the requests, with the key redacted
    assert "key=***" in caplog.text
    assert key not in caplog.text and wrong not in caplog.text
    assert key not in repr(make_client())


# --------------------------------------------------------------------------- the fake itself


async def test_fake_bad_key_page_is_html(steam: FakeSteam) -> None:
    async with httpx.AsyncClient(base_url=steam.base_url) as http:
        response = await http.get(
            "/IPlayerService/GetOwnedGames/v1/", params={"key": "nope", "steamid": ROBIN_ID}
        )
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.content == fixture_bytes("any_endpoint-error_bad_key_http403.html")


async def test_fake_answers_like_steam(steam: FakeSteam) -> None:
    key = steam.api_key
    async with httpx.AsyncClient(base_url=steam.base_url) as http:
        missing = await http.get("/ISteamUser/GetPlayerSummaries/v2/", params={"steamids": "1"})
        assert missing.status_code == 400
        assert missing.headers["Content-Type"].startswith("text/html")
        assert "Required parameter 'key' is missing" in missing.text

        # No trailing slash, two filters, no appinfo.
        both = await http.get(
            "/IPlayerService/GetOwnedGames/v1",
            params={
                "key": key,
                "steamid": ROBIN_ID,
                "appids_filter[0]": "440",
                "appids_filter[1]": "570",
            },
        )
        assert both.headers["Content-Type"] == "application/json; charset=UTF-8"
        body = both.json()["response"]
        assert body["game_count"] == 2
        assert {g["appid"] for g in body["games"]} == {440, 570}
        assert all("name" not in g and "img_icon_url" not in g for g in body["games"])

        none = await http.get(
            "/IPlayerService/GetOwnedGames/v1/",
            params={"key": key, "steamid": ROBIN_ID, "appids_filter[0]": "1"},
        )
        assert none.json() == {"response": {"game_count": 0}}

        private = await http.get(
            "/IPlayerService/GetOwnedGames/v1/", params={"key": key, "steamid": PRIVATE_ID}
        )
        assert (private.status_code, private.json()) == (200, {"response": {}})

        too_many = await http.get(
            "/ISteamUser/GetPlayerSummaries/v2/",
            params={"key": key, "steamids": ",".join(str(i) for i in range(101))},
        )
        assert too_many.status_code == 400

        steam.fail_next("ResolveVanityURL", [429])
        limited = await http.get(
            "/ISteamUser/ResolveVanityURL/v1/", params={"key": key, "vanityurl": "valve"}
        )
        assert limited.status_code == 429
        assert "Retry-After" not in limited.headers
        no_match = await http.get(
            "/ISteamUser/ResolveVanityURL/v1/", params={"key": key, "vanityurl": "zzz"}
        )
        assert no_match.content == fixture_bytes("ResolveVanityURL_v1-no_match_success42.json")
    assert steam.calls["ResolveVanityURL"] == 2
    with pytest.raises(KeyError):
        steam.fail_next("GetOwnedGame", [500])


# --------------------------------------------------------------------------- the connector


def test_steam_connector_is_registered() -> None:
    registry = Registry().discover()
    assert "steam" in registry.keys()
    connector = registry.configure({"steam": {"api_key": "k"}}).get("steam")
    assert isinstance(connector, SteamConnector)
    assert connector.secret_values == {"api_key": "k"}
    assert SteamConnector.capabilities.can_sync
    assert SteamConnector.capabilities.rate_limits.requests_per_day == 100_000
    assert SteamConnector.link_source == "steam"
