"""The squad_lists part of the store's contract (``store.squad_lists``): who holds a reward
with a Squad group, by the Steam ids that count in the guild, and since when each list has
looked as it does (for Last-Modified)."""

from datetime import timedelta

from bot.storage import Store
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

SID2, SID3, SID4 = "76561198000000002", "76561198000000003", "76561198000000004"
UUID = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
H = 3600


async def squad_reward(
    store: Store, hours: int, group: str | None, permissions: str | None, guild: int = GUILD
) -> None:
    await store.rewards.add(
        guild_id=guild, role_id=None if group else 1400000000000000001, hours=hours,
        game_id=None, period="all", source="any", mode="stack", created_by=None, now=NOW,
        squad_group=group, squad_permissions=permissions,
    )  # fmt: skip


@part("squad_lists", "rewards")
async def test_no_squad_rewards_no_list(store: Store) -> None:
    assert await store.squad_lists.admins(GUILD) == ({}, [])
    await squad_reward(store, 1, None, None)  # a role reward only
    assert await store.squad_lists.admins(GUILD) == ({}, [])
    await squad_reward(store, 1, "Regulars", None)
    assert await store.squad_lists.admins(GUILD) == ({"Regulars": set()}, [])
    assert await store.squad_lists.admins(OTHER) == ({}, [])


@part("squad_lists", "rewards", "links", "steam")
async def test_the_admins_are_the_counting_steam_links_of_the_holders(store: Store) -> None:
    links, steam = store.links, store.steam
    for steam_id, hours in ((SID, 50), (SID2, 150), (SID3, 20), (SID4, 5)):
        await steam.record_lookup(steam_id, 393380, seconds=hours * H, status="ok", name="Squad",
                                  now=NOW)  # fmt: skip
    await links.verify(guild_id=GUILD, discord_user_id=1, accounts=[("steam", SID, "Alice")],
                       verified_by="openid", now=NOW)  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID2, now=NOW,
                     display_name="Bob")  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=3, source="steam", external_id=SID3, now=NOW)
    await links.link(guild_id=GUILD, discord_user_id=4, source="steam", external_id=SID4, now=NOW,
                     display_name="Dave")  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=2, source="minecraft", external_id=UUID,
                     now=NOW, display_name="BobMC")  # fmt: skip
    await links.link(guild_id=OTHER, discord_user_id=9, source="steam", external_id=SID2, now=NOW,
                     display_name="Elsewhere")  # fmt: skip
    await squad_reward(store, 10, "Regulars", "reserve")
    await squad_reward(store, 100, "Veterans", "reserve,,cameraman")
    await squad_reward(store, 15, "Regulars", "balance")  # the same group: permissions join
    await squad_reward(store, 1, None, None)  # a role only: no group
    await squad_reward(store, 1, "Theirs", "reserve", guild=OTHER)
    await store.rewards.check(GUILD, [1, 2, 3, 4], NOW)
    await store.rewards.check(OTHER, [9], NOW)

    groups, admins = await store.squad_lists.admins(GUILD)
    assert groups == {"Regulars": {"reserve", "balance"}, "Veterans": {"reserve", "cameraman"}}
    # One row per account and group (two rewards give Regulars), by Steam id then group.
    assert admins == [
        (SID, "Regulars", "Alice"), (SID2, "Regulars", "Bob"), (SID2, "Veterans", "Bob"),
        (SID3, "Regulars", None),
    ]  # fmt: skip
    assert await store.squad_lists.admins(OTHER) == (
        {"Theirs": {"reserve"}}, [(SID2, "Theirs", "Elsewhere")],
    )  # fmt: skip

    # Only proven Steam ids while the guild requires verification.
    await links.set_require_verified(GUILD, True, NOW)
    assert (await store.squad_lists.admins(GUILD))[1] == [(SID, "Regulars", "Alice")]
    await links.set_require_verified(GUILD, False, NOW)
    await links.unlink(guild_id=GUILD, discord_user_id=3, source="steam", now=NOW)
    assert [a[0] for a in (await store.squad_lists.admins(GUILD))[1]] == [SID, SID2, SID2]


@part("squad_lists", "endpoints")
async def test_since_when_a_list_looks_as_it_does(store: Store) -> None:
    made = [
        await store.endpoints.create(path=f"squad-list-{n}", kind="squad_admins", guild_id=GUILD,
                                     secret=None, read_secret=None, game_id=None, now=NOW)
        for n in range(2)
    ]  # fmt: skip
    first, second = (e.id for e in made if e is not None)
    lists = store.squad_lists
    assert await lists.changed_at(first, '"a"', NOW) == NOW
    later = NOW + timedelta(minutes=1)
    assert await lists.changed_at(first, '"a"', later) == NOW  # unchanged since
    assert await lists.changed_at(second, '"a"', later) == later  # each endpoint its own
    even_later = NOW + timedelta(minutes=2, microseconds=5)
    assert await lists.changed_at(first, '"b"', even_later) == even_later
    assert await lists.changed_at(first, '"b"', even_later + timedelta(hours=1)) == even_later
    back = NOW + timedelta(hours=2)
    assert await lists.changed_at(first, '"a"', back) == back  # back to an older look: changed
    assert await lists.changed_at(second, '"a"', back) == later
