"""/link steam and /links with verified linking: the buttons, a typed id Discord knows, who
wins, and the notices a member who lost a link finds in /links."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestClient

from bot.core import Core
from bot.gateway.client import Questlog
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import PLAYER_ID, answers, command_interaction, run_command
from tests.fakes.steam import SAPHYEL_ID, FakeSteam
from tests.fakes.steam_openid import FakeSteamOpenID
from tests.test_oauth_flows import PUBLIC, browse, sign_in_config

HERE = 900000000000000031
GUILD_CHANNELS = {HERE: None}
OTHER = 4000000000000000077


@pytest.fixture
async def openid() -> Any:
    async with FakeSteamOpenID() as fake:
        yield fake


@pytest.fixture
def config_data(
    tmp_path: Path, discord_api: FakeDiscord, steam: FakeSteam, openid: FakeSteamOpenID, clock: Any
) -> dict[str, Any]:
    discord_api.oauth.add_user(PLAYER_ID, "player", steam=[(SAPHYEL_ID, "Saphyel", True, False)])
    discord_api.oauth.add_user(OTHER, "other", steam=[])
    discord_api.oauth.browser_user = PLAYER_ID
    return sign_in_config(tmp_path, discord_api, openid, steam, clock)


async def run(
    bot: Questlog, fake: FakeDiscord, group: str | None, command: str, *, user: int = PLAYER_ID,
    locale: str = "en-US", **options: Any,
) -> dict[str, Any]:  # fmt: skip
    opts = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    interaction = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group=group, command=command, options=opts,
        user_id=user, locale=locale,
    )  # fmt: skip
    await run_command(bot, interaction)
    [*_, last] = answers(fake, interaction)
    return last["data"]


def buttons(data: dict[str, Any]) -> dict[str, str]:
    return {
        b["label"]: b["url"]
        for row in data.get("components", [])
        for b in row["components"]
        if b.get("style") == 5
    }


async def test_link_steam_without_a_profile_offers_both_sign_ins(
    bot: Questlog, core: Core, client: TestClient, discord_api: FakeDiscord
) -> None:
    data = await run(bot, discord_api, "link", "steam", locale="ru")
    found = buttons(data)
    assert set(found) == {"Подтвердить через Discord", "Войти через Steam"}
    assert found["Подтвердить через Discord"].startswith(PUBLIC + "/oauth/discord/start?s=")
    state = parse_qs(urlsplit(found["Подтвердить через Discord"]).query)["s"][0]
    outcome, stored = await core.store.oauth.peek(state, ("discord",), core.clock.now())
    assert outcome == "ok" and stored is not None
    assert (stored.guild_id, stored.user_id, stored.language) == (GUILD, PLAYER_ID, "ru")
    # The member clicks it and approves: the Steam account is linked, verified.
    page = await browse(client, found["Подтвердить через Discord"])
    assert page.status == 200
    listed = await run(bot, discord_api, None, "links")
    assert "Saphyel" in listed["content"] and "verified with Discord" in listed["content"]
    assert buttons(listed) == {}  # nothing left to verify


async def test_a_typed_id_that_discord_knows_becomes_verified(
    bot: Questlog, core: Core, client: TestClient, discord_api: FakeDiscord
) -> None:
    data = await run(bot, discord_api, "link", "steam")
    await browse(client, buttons(data)["Verify with Discord"])  # connected once
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=PLAYER_ID, source="steam")
    typed = await run(bot, discord_api, "link", "steam", profile=SAPHYEL_ID)
    assert "Verified" in typed["content"] and buttons(typed) == {}
    [link] = await core.accounts.links(GUILD, PLAYER_ID)
    assert link.verified_by == "discord"


async def test_an_unverified_link_shows_buttons_and_loses_to_a_proof(
    bot: Questlog, core: Core, client: TestClient, discord_api: FakeDiscord
) -> None:
    # Another member claims Saphyel's account by typing it (not verified) ...
    typed = await run(bot, discord_api, "link", "steam", user=OTHER, profile=SAPHYEL_ID)
    assert "Not verified yet" in typed["content"]
    assert set(buttons(typed)) == {"Verify with Discord", "Sign in through Steam"}
    listed = await run(bot, discord_api, None, "links", user=OTHER)
    assert "not verified" in listed["content"] and buttons(listed)
    # ... then its owner proves it: the proof wins, and the claimant is told in /links.
    data = await run(bot, discord_api, "link", "steam")
    await browse(client, buttons(data)["Verify with Discord"])
    assert [x.external_id for x in await core.accounts.links(GUILD, PLAYER_ID)] == [SAPHYEL_ID]
    assert await core.accounts.links(GUILD, OTHER) == []
    told = await run(bot, discord_api, None, "links", user=OTHER, locale="ru")
    assert f"Ваша привязка Steam `{SAPHYEL_ID}` удалена" in told["content"]
    # A typed claim of a verified account is refused, as before.
    again = await run(bot, discord_api, "link", "steam", user=OTHER, profile=SAPHYEL_ID)
    assert "already linked to another member" in again["content"]


async def test_the_later_of_two_proofs_wins(
    bot: Questlog, core: Core, client: TestClient, discord_api: FakeDiscord
) -> None:
    data = await run(bot, discord_api, "link", "steam")
    await browse(client, buttons(data)["Verify with Discord"])
    # Discord now reports the account verified for OTHER too (the account changed hands).
    discord_api.oauth.add_user(OTHER, "other", steam=[(SAPHYEL_ID, "Saphyel", True, False)])
    discord_api.oauth.browser_user = OTHER
    theirs = await run(bot, discord_api, "link", "steam", user=OTHER)
    await browse(client, buttons(theirs)["Verify with Discord"])
    assert [x.external_id for x in await core.accounts.links(GUILD, OTHER)] == [SAPHYEL_ID]
    told = await run(bot, discord_api, None, "links")
    assert "moved to another member" in told["content"]


async def test_without_oauth_keys_link_steam_says_which_key_to_set(
    bot: Questlog, core: Core, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core.identity, "public_problem", lambda: "[web] public_url")
    data = await run(bot, discord_api, "link", "steam")
    assert "[web] public_url" in data["content"] and buttons(data) == {}


async def test_typing_your_own_verified_account_again_keeps_it_verified(
    bot: Questlog, core: Core, client: TestClient, discord_api: FakeDiscord, openid: Any
) -> None:
    openid.browser_steam_id = SAPHYEL_ID
    data = await run(bot, discord_api, "link", "steam")
    await browse(client, buttons(data)["Sign in through Steam"])
    [link] = await core.accounts.links(GUILD, PLAYER_ID)
    assert link.verified_by == "openid"
    await core.store.tokens.drop(PLAYER_ID)  # no Discord token: the typed id is not "proven"
    await run(bot, discord_api, "link", "steam", profile=SAPHYEL_ID)
    [again] = await core.accounts.links(GUILD, PLAYER_ID)
    assert again.verified_by == "openid"  # still proven: typing it again takes nothing away
