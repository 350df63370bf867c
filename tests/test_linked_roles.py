"""Linked Roles: the metadata registered at start, the entry without a state, values pushed
after the flow and when they change, token refresh, and what a 429, a 401 or a lost key do."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient

from bot.clock import ManualClock
from bot.core import Core
from bot.identity.roles import metadata_records
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_oauth import CLIENT_ID, CLIENT_SECRET
from tests.test_oauth_flows import PUBLIC, browse
from tests.test_stats import A_STEAM, ALICE, seed

ROLE_PUTS = "role_connection.put"


@pytest.fixture
def config_data(tmp_path: Path, discord_api: FakeDiscord, clock: ManualClock) -> dict[str, Any]:
    discord_api.oauth.clock = lambda: clock.now().timestamp()
    discord_api.oauth.redirect_uris.append(PUBLIC + "/oauth/discord/callback")
    discord_api.oauth.add_user(ALICE, "alice", locale="ru", steam=[(A_STEAM, "alice", True, False)])
    discord_api.oauth.browser_user = ALICE
    return {
        "database": {"path": str(tmp_path / "q.sqlite3")},
        "web": {"port": 0, "public_url": PUBLIC},
        "discord": {
            "token": discord_api.token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "api_base_url": discord_api.api_base,
            "authorize_url": discord_api.base_url + "/oauth2/authorize",
        },
        "linked_roles": {"guild_id": GUILD},
    }


def puts(fake: FakeDiscord) -> list[Any]:
    return [body for name, _, body in fake.oauth.calls if name == ROLE_PUTS]


async def connect(client: TestClient) -> Any:
    """A member opens the Linked Roles entry (no state of Questlog's) and approves."""
    return await browse(client, PUBLIC + "/oauth/discord/linked-roles")


async def test_metadata_is_registered_with_the_bot_token(
    core: Core, discord_api: FakeDiscord
) -> None:
    assert core.roles is not None
    assert await core.roles.register()
    records = discord_api.oauth.metadata
    assert [(r["key"], r["type"]) for r in records] == [
        ("hours_total", 2), ("hours_30d", 2), ("last_played", 6), ("steam_verified", 7),
    ]  # fmt: skip
    assert records[0]["name_localizations"]["ru"] == "Часов в играх"
    assert all(len(r.name) <= 100 and len(r.description) <= 200 for r in metadata_records())


async def test_the_entry_starts_a_flow_and_pushes_the_members_values(
    core: Core, client: TestClient, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    assert core.roles is not None and await core.roles.register()
    first = await client.get("/oauth/discord/linked-roles", allow_redirects=False)
    assert first.status == 302
    assert parse_qs(urlsplit(first.headers["Location"]).query)["state"]
    page = await connect(client)
    text = await page.text()
    assert page.status == 200 and 'lang="ru"' in text  # /users/@me's locale
    [body] = puts(discord_api)
    assert body["platform_name"] == "Questlog"
    assert body["metadata"]["hours_total"] == "10"  # Alice: 10 h of Squad (best of sources)
    assert body["metadata"]["steam_verified"] == "0"  # her link was typed, not proven
    assert discord_api.oauth.role_connections[ALICE]["metadata"] == body["metadata"]
    # The link itself is not touched by the Linked Roles entry (no guild asked).
    [link] = await core.accounts.links(GUILD, ALICE)
    assert link.verified_by == "none"


async def test_changed_values_are_pushed_at_most_every_ten_minutes_and_daily(
    core: Core, client: TestClient, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    assert core.roles is not None and await core.roles.register()
    await connect(client)
    assert len(puts(discord_api)) == 1
    assert (await core.roles.tick())["pushed"] == 0  # nothing changed
    await core.store.links.verify(
        guild_id=GUILD, discord_user_id=ALICE, accounts=[("steam", A_STEAM, "alice")],
        verified_by="openid", now=clock.now(),
    )  # fmt: skip
    clock.advance(5 * 60)
    assert (await core.roles.tick())["pushed"] == 0  # changed, but pushed 5 minutes ago
    clock.advance(6 * 60)
    assert (await core.roles.tick())["pushed"] == 1
    assert puts(discord_api)[-1]["metadata"]["steam_verified"] == "1"
    assert puts(discord_api)[-1]["platform_username"] == "alice"
    clock.advance(11 * 60)
    assert (await core.roles.tick())["pushed"] == 0
    clock.advance(24 * 3600)  # a day later everyone is pushed (hours_30d shrinks by itself)
    done = await core.roles.tick()
    assert done["pushed"] == 1 and done["refreshed"] == 0


async def test_tokens_are_refreshed_before_they_expire_and_dropped_on_invalid_grant(
    core: Core, client: TestClient, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    assert core.roles is not None
    await connect(client)
    before = await core.store.tokens.get(ALICE)
    assert before is not None
    clock.advance(6 * 24 * 3600 + 60)  # less than a day before the 7 days end
    done = await core.roles.tick()
    assert done["refreshed"] == 1
    after = await core.store.tokens.get(ALICE)
    assert after is not None and after.expires_at > before.expires_at
    discord_api.oauth.refresh.clear()  # Discord forgot the grant (the member deauthorised)
    clock.advance(6 * 24 * 3600 + 60)
    done = await core.roles.tick()
    assert done["dropped"] == 1
    assert await core.store.tokens.get(ALICE) is None


async def test_a_429_waits_and_a_401_drops_the_token(
    core: Core, client: TestClient, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    assert core.roles is not None and await core.roles.register()
    discord_api.oauth.script("role_connection", 429)
    await connect(client)
    stored = await core.store.tokens.get(ALICE)
    assert stored is not None and stored.pushed_at is None
    assert stored.push_due_at is not None and stored.push_due_at > clock.now()  # retry_after
    clock.advance(2)
    assert (await core.roles.tick())["pushed"] == 1
    discord_api.oauth.script("role_connection", 401)
    clock.advance(24 * 3600)
    assert (await core.roles.tick())["dropped"] == 1
    assert await core.store.tokens.get(ALICE) is None


async def test_a_lost_key_reads_as_not_connected(
    core: Core, client: TestClient, clock: ManualClock, discord_api: FakeDiscord,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from bot.vault import Vault, new_key

    assert core.roles is not None and await core.roles.register()
    await connect(client)
    sent = len(puts(discord_api))
    core.roles.vault = Vault(new_key(), "a replaced secret.key")
    core.identity._vault = core.roles.vault
    clock.advance(24 * 3600)
    with caplog.at_level(logging.ERROR, "bot.vault"):
        await core.roles.tick()
        await core.roles.tick()
    assert len(puts(discord_api)) == sent  # nothing sent with a token it cannot read
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "not connected" in caplog.records[0].getMessage()
    assert await core.identity.access_token(ALICE) is None
    stored = await core.store.tokens.get(ALICE)
    assert stored is not None and json.loads(stored.pushed_values or "{}")  # kept, unreadable


async def test_a_refresh_that_keeps_failing_holds_up_nobody_else(
    core: Core, client: TestClient, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from bot.storage.records import StoredTokens

    assert core.roles is not None
    await connect(client)
    alice = await core.store.tokens.get(ALICE)
    assert alice is not None
    # 1,200 members whose tokens this key cannot open, all expiring before Alice's.
    for n in range(1200):
        await core.store.tokens.save(
            StoredTokens(user_id=10**12 + n, access_token="x", refresh_token="x", scope="",
                         expires_at=alice.expires_at - timedelta(hours=1)),
            clock.now(),
        )  # fmt: skip
    clock.advance(6 * 24 * 3600 + 60)
    core.roles.pace_seconds = 0
    first = await core.roles.tick()  # all are tried (pages of 500); the 1,200 back off
    assert first["refreshed"] == 1
    assert (await core.roles.tick())["refreshed"] == 0  # backed off: not tried again yet
    after = await core.store.tokens.get(ALICE)
    assert after is not None and after.expires_at > alice.expires_at


async def test_metadata_registration_is_retried_when_discord_was_down(
    core: Core, discord_api: FakeDiscord
) -> None:
    assert core.roles is not None
    discord_api.oauth.script("metadata", 503)
    assert not await core.roles.register()
    await core.roles.start(every=0.05)
    try:
        for _ in range(100):
            if core.roles.registered:
                break
            await asyncio.sleep(0.05)
        assert core.roles.registered and discord_api.oauth.metadata
    finally:
        await core.roles.stop()
