"""Login with Discord and Sign in through Steam, end to end: a "browser" follows the redirects
between Questlog's web server, the fake Discord (authorize page, token endpoint, /users/@me,
connections) and the fake Steam OpenID provider."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import httpx
import pytest
from aiohttp.test_utils import TestClient

from bot.clock import ManualClock
from bot.core import Core
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_oauth import CLIENT_ID, CLIENT_SECRET
from tests.fakes.steam import FakeSteam
from tests.fakes.steam_openid import FakeSteamOpenID

PUBLIC = "http://localhost:8080"
ALICE, MALLORY = 310000000000000001, 310000000000000002
ALICE_STEAM, ALICE_ALT, OTHER_STEAM = "76561198000000101", "76561198000000102", "76561198000000103"


@pytest.fixture
async def openid() -> Any:
    async with FakeSteamOpenID() as fake:
        yield fake


@pytest.fixture
def config_data(
    tmp_path: Path,
    discord_api: FakeDiscord,
    openid: FakeSteamOpenID,
    steam: FakeSteam,
    clock: ManualClock,
) -> dict[str, Any]:
    discord_api.oauth.add_user(
        ALICE,
        "alice",
        global_name="Alice <b>",
        locale="ru",
        steam=[
            (ALICE_STEAM, "alice_main", True, False),
            (ALICE_ALT, "alice_unverified", False, False),
            (OTHER_STEAM, "alice_revoked", True, True),
        ],
    )
    discord_api.oauth.add_user(MALLORY, "mallory", steam=[])
    discord_api.oauth.browser_user = ALICE
    return sign_in_config(tmp_path, discord_api, openid, steam, clock)


def sign_in_config(
    tmp_path: Path,
    discord_api: FakeDiscord,
    openid: FakeSteamOpenID,
    steam: FakeSteam,
    clock: ManualClock,
) -> dict[str, Any]:
    """A configuration with both sign-ins pointed at the fakes (whose clocks follow ours)."""
    openid.clock = clock.now  # its nonces carry Questlog's (test) time
    discord_api.oauth.redirect_uris.append(PUBLIC + "/oauth/discord/callback")
    return {
        "database": {"path": str(tmp_path / "q.sqlite3")},
        "web": {"port": 0, "public_url": PUBLIC},
        "discord": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "api_base_url": discord_api.api_base,
            "authorize_url": discord_api.base_url + "/oauth2/authorize",
        },
        "steam": {
            "api_key": steam.api_key,
            "api_base_url": steam.base_url,
            "requests_per_second": 1000.0,
            "openid_url": openid.endpoint,
        },
    }


async def browse(client: TestClient, url: str, hops: int = 6) -> aiohttp.ClientResponse | Any:
    """Follow redirects like a browser: Questlog's addresses go to the test server, the rest
    to the fakes. Returns the last answer (its text read)."""
    async with aiohttp.ClientSession() as outside:
        for _ in range(hops):
            if url.startswith(PUBLIC):
                response = await client.get(url[len(PUBLIC) :], allow_redirects=False)
            else:
                response = await outside.get(url, allow_redirects=False)
            await response.text()
            if response.status != 302:
                return response
            url = response.headers["Location"]
    raise AssertionError("too many redirects")


async def offer(core: Core, user: int = ALICE, locale: str = "ru") -> tuple[str, str]:
    made = await core.identity.offer(GUILD, user, locale)
    assert made.discord_url is not None and made.steam_url is not None
    return made.discord_url, made.steam_url


async def stored_links(core: Core, user: int) -> list[tuple[str, str]]:
    return [(link.external_id, link.verified_by) for link in await core.accounts.links(GUILD, user)]


async def test_login_with_discord_links_every_verified_steam_connection(
    core: Core, client: TestClient, discord_api: FakeDiscord
) -> None:
    start, _ = await offer(core)
    first = await client.get(start[len(PUBLIC) :], allow_redirects=False)
    assert first.status == 302
    target = urlsplit(first.headers["Location"])
    query = parse_qs(target.query)
    assert target.path == "/oauth2/authorize"
    assert query["scope"] == ["identify connections role_connections.write"]
    assert query["prompt"] == ["consent"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [PUBLIC + "/oauth/discord/callback"]
    assert first.headers["Referrer-Policy"] == "no-referrer"

    page = await browse(client, start)
    text = await page.text()
    assert page.status == 200
    assert page.headers["Content-Security-Policy"] == "default-src 'none'"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'lang="ru"' in text and "Steam привязан и подтверждён" in text
    assert "Alice &lt;b&gt;" in text and "Alice <b>" not in text  # names are escaped
    # Only the verified, unrevoked connection is linked, and as verified by Discord.
    assert await stored_links(core, ALICE) == [(ALICE_STEAM, "discord")]
    # The tokens are kept sealed: the database holds no token in the clear.
    stored = await core.store.tokens.get(ALICE)
    assert stored is not None
    issued = list(discord_api.oauth.access)
    assert issued and issued[0] not in stored.access_token
    assert core.identity.vault().open(stored.access_token) == issued[0]


async def test_a_state_works_once_and_not_after_ten_minutes(
    core: Core, client: TestClient, clock: ManualClock
) -> None:
    start, _ = await offer(core)
    done = await browse(client, start)
    assert done.status == 200
    again = await browse(client, start)  # the same button again: the state is used
    assert again.status == 409 and "уже использована" in await again.text()

    late, _ = await offer(core, locale="en-US")
    clock.advance(601)
    expired = await browse(client, late)
    assert expired.status == 410 and "expired" in await expired.text()

    forged = await client.get(
        "/oauth/discord/callback?" + urlencode({"state": "x" * 43, "code": "abc"})
    )
    assert forged.status == 400 and "not one Questlog made" in await forged.text()
    missing = await client.get("/oauth/discord/start")
    assert missing.status == 400


async def test_another_users_callback_is_refused_and_keeps_nothing(
    core: Core, client: TestClient, discord_api: FakeDiscord
) -> None:
    start, _ = await offer(core, user=MALLORY, locale="en-US")  # Mallory asked ...
    discord_api.oauth.browser_user = ALICE  # ... and Alice's browser approved it
    page = await browse(client, start)
    assert page.status == 403 and "Another Discord account" in await page.text()
    assert await stored_links(core, MALLORY) == []
    assert await stored_links(core, ALICE) == []
    assert await core.store.tokens.get(ALICE) is None


@pytest.mark.parametrize(
    ("script", "status", "words"),
    [
        ("cancel", 400, "cancelled"),
        (400, 400, "could not be used"),
        (503, 502, "could not reach Discord"),
        ("timeout", 504, "could not reach Discord"),
        (429, 503, "slow down"),
    ],
)
async def test_discords_errors_become_a_readable_page_and_one_log_line(
    core: Core,
    client: TestClient,
    discord_api: FakeDiscord,
    caplog: pytest.LogCaptureFixture,
    script: Any,
    status: int,
    words: str,
) -> None:
    if script == "cancel":
        discord_api.oauth.approve = False
    else:
        discord_api.oauth.script("token", script)
        discord_api.oauth.timeout_seconds = 2
        assert core.identity.oauth is not None
        core.identity.oauth._http.timeout = httpx.Timeout(0.3)  # 10 s in production
    start, _ = await offer(core, locale="en-US")
    with caplog.at_level(logging.WARNING):
        page = await browse(client, start)
    text = await page.text()
    assert page.status == status, text
    assert words in text
    failures = [r for r in caplog.records if r.name.startswith("bot.identity")]
    assert len(failures) == (0 if script == "cancel" else 1)
    assert CLIENT_SECRET not in caplog.text
    assert await stored_links(core, ALICE) == []


async def test_discords_error_description_is_escaped(core: Core, client: TestClient) -> None:
    _, _ = await offer(core, locale="en-US")
    start, _ = await offer(core, locale="en-US")
    state = parse_qs(urlsplit(start).query)["s"][0]
    query = urlencode(
        {"state": state, "error": "invalid_scope", "error_description": "<script>alert(1)</script>"}
    )
    page = await client.get("/oauth/discord/callback?" + query)
    text = await page.text()
    assert page.status == 400
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>" not in text


async def test_without_oauth_keys_the_flow_is_not_offered(
    tmp_path: Path, clock: ManualClock
) -> None:
    from bot.config import parse_config

    for web, discord, missing in (
        ({"public_url": PUBLIC}, {}, "[discord] client_id"),
        ({"public_url": PUBLIC}, {"client_id": CLIENT_ID}, "[discord] client_secret"),
        ({}, {"client_id": CLIENT_ID, "client_secret": "s"}, "[web] public_url"),
        (
            {"public_url": "http://questlog.example.org"},
            {"client_id": CLIENT_ID, "client_secret": "s"},
            "https",
        ),
    ):
        config = parse_config(
            {"database": {"path": str(tmp_path / "q.sqlite3")}, "web": web, "discord": discord},
            env={},
        )
        core = await Core.start(config, clock)
        try:
            made = await core.identity.offer(GUILD, ALICE, "en-US")
            assert made.discord_url is None
            assert made.missing is not None and missing in made.missing
        finally:
            await core.stop()


async def test_sign_in_through_steam_links_the_proven_account(
    core: Core, client: TestClient, openid: FakeSteamOpenID, discord_api: FakeDiscord
) -> None:
    openid.browser_steam_id = ALICE_ALT
    _, start = await offer(core, locale="en-US")
    # First the browser proves it is the member's (Discord, identify only) ...
    first = await client.get(start[len(PUBLIC) :], allow_redirects=False)
    asked = parse_qs(urlsplit(first.headers["Location"]).query)
    assert asked["scope"] == ["identify"]
    page = await browse(client, start)
    assert page.status == 200, await page.text()
    # ... then Steam is asked with a state of that next step, and its answer checked with it.
    [authorize] = [c for c in discord_api.oauth.calls if c[0] == "authorize"]
    assert authorize[1] == ALICE and authorize[2]["scope"] == "identify"
    to_steam = list(openid.checks)
    assert to_steam and to_steam[-1]["openid.mode"] == "check_authentication"
    return_to = to_steam[-1]["openid.return_to"]
    assert return_to.startswith(f"{PUBLIC}/oauth/steam/callback?s=")
    assert await stored_links(core, ALICE) == [(ALICE_ALT, "openid")]
    assert await core.store.tokens.get(ALICE) is None  # the identify token is not kept
    assert discord_api.oauth.revoked  # and it is revoked


async def test_a_steam_address_sent_to_someone_else_links_nothing(
    core: Core, client: TestClient, openid: FakeSteamOpenID, discord_api: FakeDiscord
) -> None:
    _, start = await offer(core, user=MALLORY, locale="en-US")  # Mallory's button ...
    discord_api.oauth.browser_user = ALICE  # ... opened by Alice, signed in to Steam
    page = await browse(client, start)
    assert page.status == 403 and "Another Discord account" in await page.text()
    assert openid.checks == []  # Steam was never asked
    assert await stored_links(core, MALLORY) == []


async def test_without_discord_keys_steam_sign_in_goes_straight_to_steam(
    tmp_path: Path, clock: ManualClock, openid: FakeSteamOpenID
) -> None:
    from aiohttp.test_utils import TestServer

    from bot.config import parse_config
    from web.app import create_app

    openid.clock = clock.now
    config = parse_config(
        {"database": {"path": str(tmp_path / "s.sqlite3")}, "web": {"public_url": PUBLIC},
         "steam": {"openid_url": openid.endpoint}},
        env={},
    )  # fmt: skip
    core = await Core.start(config, clock)
    try:
        made = await core.identity.offer(GUILD, ALICE, "en-US")
        assert made.discord_url is None and made.steam_url is not None
        assert made.missing is not None and "[discord] client_id" in made.missing
        async with TestClient(TestServer(create_app(core))) as local:
            # Nothing proves this browser is the member's: a page says what the sign-in does
            # (and warns about links sent by others) before Steam is asked.
            warned = await local.get(made.steam_url[len(PUBLIC) :], allow_redirects=False)
            text = await warned.text()
            assert warned.status == 200 and "If someone sent you this address" in text
            go = made.steam_url + "&go=1"
            assert f'href="{go.replace("&", "&amp;")}"' in text
            assert openid.checks == []
            first = await local.get(go[len(PUBLIC) :], allow_redirects=False)
            sent = parse_qs(urlsplit(first.headers["Location"]).query)
            state = parse_qs(urlsplit(made.steam_url).query)["s"][0]
            assert sent["openid.mode"] == ["checkid_setup"]
            assert sent["openid.return_to"] == [f"{PUBLIC}/oauth/steam/callback?s={state}"]
            assert sent["openid.realm"] == [PUBLIC]
            page = await browse(local, go)
            assert page.status == 200
        assert [link.verified_by for link in await core.accounts.links(GUILD, ALICE)] == ["openid"]
    finally:
        await core.stop()


async def steam_state(core: Core, user: int = ALICE) -> str:
    """A state of the Steam step itself (as after the browser's Discord check)."""
    return await core.store.oauth.create(
        kind="steam", guild_id=GUILD, user_id=user, language="en", now=core.clock.now()
    )


async def steam_callback(
    client: TestClient, core: Core, openid: FakeSteamOpenID, change: Any
) -> tuple[int, str]:
    """A callback with an assertion for the state, changed by ``change(fields, state)``."""
    state = await steam_state(core)
    fields = openid.assertion(f"{PUBLIC}/oauth/steam/callback?s={state}")
    fields = change(fields, state) or fields
    response = await client.get("/oauth/steam/callback?" + urlencode({"s": state, **fields}))
    return response.status, await response.text()


@pytest.mark.parametrize(
    "change",
    [
        # a forged return_to (another site's address)
        lambda f, s: {**f, "openid.return_to": f"https://evil.example/cb?s={s}"},
        # a changed signature
        lambda f, s: {**f, "openid.sig": "AAAA" + f["openid.sig"][4:]},
        # another account put in after signing
        lambda f, s: {
            **f,
            "openid.claimed_id": "https://steamcommunity.com/openid/id/" + OTHER_STEAM,
            "openid.identity": "https://steamcommunity.com/openid/id/" + OTHER_STEAM,
        },
        # claimed_id and identity differ
        lambda f, s: {
            **f,
            "openid.identity": "https://steamcommunity.com/openid/id/" + OTHER_STEAM,
        },
        # another provider
        lambda f, s: {**f, "openid.op_endpoint": "https://evil.example/openid/login"},
        # not signed over claimed_id
        lambda f, s: {**f, "openid.signed": "signed,op_endpoint,return_to,response_nonce"},
        # not a Steam id
        lambda f, s: {
            **f,
            "openid.claimed_id": "https://evil.example/id/1",
            "openid.identity": "https://evil.example/id/1",
        },
    ],
    ids=["return_to", "signature", "swapped_id", "identity", "op_endpoint", "unsigned", "foreign"],
)
async def test_steam_assertions_that_fail_a_check_link_nothing(
    core: Core, client: TestClient, openid: FakeSteamOpenID, change: Any
) -> None:
    status, text = await steam_callback(client, core, openid, change)
    assert status == 400, text
    assert "did not pass" in text
    assert await stored_links(core, ALICE) == []


async def test_a_replayed_steam_assertion_is_refused(
    core: Core, client: TestClient, openid: FakeSteamOpenID
) -> None:
    kept: dict[str, str] = {}

    def keep(fields: dict[str, str], state: str) -> None:
        kept.update(fields)

    status, _ = await steam_callback(client, core, openid, keep)
    assert status == 200
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam")
    # The same assertion with a fresh state of the same return address cannot be made (the
    # state is in return_to); a replay to the same state finds it used, and a provider that
    # would confirm it twice is still refused by the nonce.
    openid._checked.clear()
    state = await steam_state(core)
    replay = {**kept, "openid.return_to": f"{PUBLIC}/oauth/steam/callback?s={state}"}
    replay["openid.sig"] = openid.sign(replay)  # a provider that signs anything again
    response = await client.get("/oauth/steam/callback?" + urlencode({"s": state, **replay}))
    assert response.status == 400
    assert await stored_links(core, ALICE) == []


async def test_repeated_parameters_are_refused(
    core: Core, client: TestClient, openid: FakeSteamOpenID
) -> None:
    state = await steam_state(core)
    fields = openid.assertion(f"{PUBLIC}/oauth/steam/callback?s={state}")
    query = urlencode({"s": state, **fields})
    # A second claimed id after the signed one: read one way, verified another, if allowed.
    other = "https://steamcommunity.com/openid/id/" + OTHER_STEAM
    response = await client.get(
        "/oauth/steam/callback?" + query + "&" + urlencode({"openid.claimed_id": other})
    )
    assert response.status == 400
    assert await stored_links(core, ALICE) == []
    assert openid.checks == []
    assert (await core.store.oauth.peek(state, ("steam",), core.clock.now()))[0] == "ok"
    good = await client.get("/oauth/steam/callback?" + query)  # the same, once: accepted
    assert good.status == 200


async def test_a_nonce_with_an_impossible_time_is_a_page_not_a_500(
    core: Core, client: TestClient, openid: FakeSteamOpenID
) -> None:
    status, text = await steam_callback(
        client, core, openid,
        lambda f, s: {**f, "openid.response_nonce": "2026-13-45T99:00:00Zx"},
    )  # fmt: skip
    assert status == 400 and "did not pass" in text


async def test_steam_down_or_cancelled_reads_as_a_page(
    core: Core, client: TestClient, openid: FakeSteamOpenID
) -> None:
    openid.unavailable = True
    _, start = await offer(core, locale="en-US")
    page = await browse(client, start)
    assert page.status == 502 and "could not reach Steam" in await page.text()
    openid.unavailable = False
    openid.cancel = True
    _, start = await offer(core, locale="en-US")
    page = await browse(client, start)
    assert page.status == 400 and "cancelled" in await page.text()


def test_the_access_log_leaves_out_sign_in_queries(caplog: pytest.LogCaptureFixture) -> None:
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from web.accesslog import AccessLogger

    logger = logging.getLogger("test.access")
    access = AccessLogger(logger, "")
    with caplog.at_level(logging.INFO, "test.access"):
        access.log(make_mocked_request("GET", "/oauth/discord/callback?code=SECRETCODE&state=S"),
                   web.Response(status=200), 0.01)  # fmt: skip
        access.log(make_mocked_request("GET", "/healthz?x=1"), web.Response(status=200), 0.01)
    assert "SECRETCODE" not in caplog.text and "/oauth/discord/callback" in caplog.text
    assert "/healthz?x=1" in caplog.text
