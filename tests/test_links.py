from __future__ import annotations

import pytest

from bot.clock import ManualClock
from bot.core import Core
from bot.services.accounts import LinkConflict, LinkError, parse_steam_input
from tests.conftest import GUILD, OTHER_GUILD

SID = "76561198109613067"


@pytest.mark.parametrize(
    ("text", "steam_id", "vanity"),
    [
        (SID, SID, None),
        (f"  {SID} ", SID, None),
        (f"https://steamcommunity.com/profiles/{SID}/", SID, None),
        (f"steamcommunity.com/profiles/{SID}", SID, None),
        ("https://steamcommunity.com/id/Saphyel/", None, "Saphyel"),
        ("http://www.steamcommunity.com/id/robinwalker?l=en", None, "robinwalker"),
        ("robinwalker", None, "robinwalker"),
    ],
)
def test_parse_steam_input_forms(text: str, steam_id: str | None, vanity: str | None) -> None:
    parsed = parse_steam_input(text)
    assert (parsed.steam_id, parsed.vanity) == (steam_id, vanity)


@pytest.mark.parametrize(
    "text", ["", "a", "https://steamcommunity.com/profiles/123/", "two words", "<@123>"]
)
def test_parse_steam_input_rejects(text: str) -> None:
    with pytest.raises(LinkError):
        parse_steam_input(text)


async def test_one_account_one_member_per_guild(core: Core, clock: ManualClock) -> None:
    def link(guild: int, user: int, **kw: object):
        return core.accounts.link(
            guild_id=guild, discord_user_id=user, source="steam", external_id=SID, **kw
        )

    await link(GUILD, 1)
    await link(GUILD, 1)  # linking again is fine
    with pytest.raises(LinkConflict) as info:
        await link(GUILD, 2)
    assert info.value.owner_user_id == 1
    await link(OTHER_GUILD, 2)  # links are per guild
    await link(GUILD, 2, reassign=True)  # an admin moves it
    assert await core.accounts.links(GUILD, 1) == []
    [moved] = await core.accounts.links(GUILD, 2)
    assert (moved.external_id, moved.verified) == (SID, False)
    removed = await core.accounts.unlink(guild_id=GUILD, discord_user_id=2, source="steam")
    assert removed == 1
