"""The links part of the store's contract (``store.links``): linked accounts, proofs and who
wins them, the guild's require-verified setting, link codes, imports, and the playtime and
rewards that follow a link. Runs on every backend that has the parts a test names."""

from datetime import timedelta

import pytest

from bot.storage import Store
from bot.storage.records import AccountTaken, Link
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

SID2, SID3 = "76561198000000002", "76561198000000003"
UUID = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


@part("links")
async def test_a_link_and_its_values(store: Store) -> None:
    links = store.links
    made = await links.link(
        guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW,
        display_name="Alice", status="private_profile",
    )  # fmt: skip
    assert made == Link("steam", SID, "Alice", False, "private_profile", "member", "none")
    again = await links.link(
        guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW
    )  # linking again is fine: the name and status are what it says now
    assert again == Link("steam", SID, None, False, None, "member", "none")
    by_admin = await links.link(
        guild_id=GUILD, discord_user_id=1, source="minecraft", external_id=UUID, now=NOW,
        verified=True, linked_by="admin:42",
    )  # fmt: skip
    assert (by_admin.verified, by_admin.linked_by, by_admin.verified_by) == (
        True, "admin:42", "admin",
    )  # fmt: skip
    await links.link(
        guild_id=GUILD, discord_user_id=1, source="steam", external_id="7656119800000000", now=NOW
    )
    # Ordered by source, then external id (as bytes).
    assert [(x.source, x.external_id) for x in await links.for_member(GUILD, 1)] == [
        ("minecraft", UUID), ("steam", "7656119800000000"), ("steam", SID),
    ]  # fmt: skip
    assert (await links.for_member(GUILD, 1))[0] == by_admin
    assert await links.for_member(GUILD, 2) == [] and await links.for_member(OTHER, 1) == []
    assert await links.count() == 3


@part("links")
async def test_an_account_is_one_members_per_guild(store: Store) -> None:
    links = store.links
    await links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW)
    for user in (2, 3):
        with pytest.raises(AccountTaken) as taken:
            await links.link(
                guild_id=GUILD, discord_user_id=user, source="steam", external_id=SID, now=NOW
            )
        assert taken.value.owner_user_id == 1
    assert [x.external_id for x in await links.for_member(GUILD, 1)] == [SID]
    assert await links.for_member(GUILD, 2) == []
    # The same account in another guild, and the same id of another source, are other links.
    await links.link(guild_id=OTHER, discord_user_id=2, source="steam", external_id=SID, now=NOW)
    await links.link(guild_id=GUILD, discord_user_id=2, source="minecraft", external_id=SID,
                     now=NOW)  # fmt: skip
    moved = await links.link(
        guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID, now=NOW,
        reassign=True, linked_by="admin:9",
    )  # fmt: skip
    assert (moved.linked_by, moved.verified_by) == ("admin:9", "admin")
    assert await links.for_member(GUILD, 1) == []
    assert [(x.source, x.verified_by) for x in await links.for_member(GUILD, 2)] == [
        ("minecraft", "none"), ("steam", "admin"),
    ]  # fmt: skip
    assert await links.count() == 3


@part("links")
async def test_unlink_removes_the_members_links_of_one_source(store: Store) -> None:
    links = store.links
    for external_id in (SID, SID2):
        await links.link(guild_id=GUILD, discord_user_id=1, source="steam",
                         external_id=external_id, now=NOW)  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=1, source="minecraft", external_id=UUID,
                     now=NOW)  # fmt: skip
    await links.link(guild_id=OTHER, discord_user_id=1, source="steam", external_id=SID, now=NOW)
    await links.link(guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID3, now=NOW)
    assert await links.unlink(guild_id=GUILD, discord_user_id=1, source="steam", now=NOW) == 2
    assert await links.unlink(guild_id=GUILD, discord_user_id=1, source="steam", now=NOW) == 0
    assert [x.source for x in await links.for_member(GUILD, 1)] == ["minecraft"]
    assert [x.external_id for x in await links.for_member(OTHER, 1)] == [SID]
    assert [x.external_id for x in await links.for_member(GUILD, 2)] == [SID3]
    assert await links.count() == 3
    # The account is free again in the guild.
    await links.link(guild_id=GUILD, discord_user_id=3, source="steam", external_id=SID, now=NOW)
    assert [x.external_id for x in await links.for_member(GUILD, 3)] == [SID]


@part("links")
async def test_steam_ids_private_profiles_and_links_elsewhere(store: Store) -> None:
    links = store.links
    assert await links.steam_ids() == [] and await links.count() == 0
    assert not await links.linked_elsewhere(1, GUILD)
    rows = [(GUILD, 1, SID3), (GUILD, 1, SID), (GUILD, 2, SID2), (OTHER, 3, SID), (OTHER, 1, SID2)]
    for guild, user, steam_id in rows:
        await links.link(guild_id=guild, discord_user_id=user, source="steam",
                         external_id=steam_id, now=NOW)  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=1, source="minecraft", external_id=UUID,
                     now=NOW)  # fmt: skip
    # Distinct, Steam only (in no promised order).
    assert sorted(await links.steam_ids()) == [SID, SID2, SID3]
    assert sorted(await links.steam_ids(GUILD)) == [SID, SID2, SID3]
    assert sorted(await links.steam_ids(OTHER)) == [SID, SID2]
    assert sorted(await links.steam_ids(GUILD, 1)) == [SID, SID3]
    assert sorted(await links.steam_ids(None, 1)) == [SID, SID2, SID3]
    assert await links.steam_ids(discord_user_id=3) == [SID]
    assert await links.steam_ids(OTHER, 2) == [] and await links.steam_ids(333) == []
    assert await links.count() == 6

    assert not await links.steam_private(GUILD, 2)
    await links.link(guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID2,
                     now=NOW, status="private_profile")  # fmt: skip
    assert await links.steam_private(GUILD, 2)
    assert not await links.steam_private(OTHER, 2) and not await links.steam_private(GUILD, 1)
    await links.link(guild_id=GUILD, discord_user_id=1, source="minecraft", external_id=UUID,
                     now=NOW, status="private_profile")  # fmt: skip
    assert not await links.steam_private(GUILD, 1)  # only a Steam link's status says so

    assert await links.linked_elsewhere(1, GUILD) and await links.linked_elsewhere(1, OTHER)
    assert not await links.linked_elsewhere(2, GUILD) and await links.linked_elsewhere(2, OTHER)
    assert await links.linked_elsewhere(3, GUILD) and not await links.linked_elsewhere(3, OTHER)
    assert not await links.linked_elsewhere(4, GUILD)


@part("links")
async def test_a_proof_beats_a_claim_and_the_later_proof_wins(store: Store) -> None:
    links = store.links
    await links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW,
                     display_name="Typed", status="private_profile")  # fmt: skip
    assert await links.notices(GUILD, 1) == []
    first = NOW + timedelta(minutes=1)
    [won] = await links.verify(guild_id=GUILD, discord_user_id=2,
                               accounts=[("steam", SID, None)], verified_by="openid",
                               now=first)  # fmt: skip
    assert won.displaced == 1 and won.changed
    # The name and status the account had stay when the proof brings none.
    assert won.link == Link("steam", SID, "Typed", True, "private_profile", "member", "openid")
    assert await links.for_member(GUILD, 1) == []
    assert await links.for_member(GUILD, 2) == [won.link]
    [notice] = await links.notices(GUILD, 1)
    assert (notice.source, notice.external_id, notice.reason, notice.at) == (
        "steam", SID, "verified_by_other", first,
    )  # fmt: skip

    same = await links.verify(guild_id=GUILD, discord_user_id=2,
                              accounts=[("steam", SID, "Named")], verified_by="openid",
                              now=first)  # fmt: skip
    assert [(o.displaced, o.changed, o.link.display_name) for o in same] == [(None, False, "Named")]
    other_way = await links.verify(guild_id=GUILD, discord_user_id=2,
                                   accounts=[("steam", SID, None)], verified_by="discord",
                                   now=first)  # fmt: skip
    assert [(o.displaced, o.changed, o.link.verified_by) for o in other_way] == [
        (None, True, "discord"),
    ]  # fmt: skip
    assert other_way[0].link.display_name == "Named"

    later = NOW + timedelta(minutes=2)
    outcomes = await links.verify(
        guild_id=GUILD, discord_user_id=3, verified_by="discord", now=later,
        accounts=[("steam", SID, "Third"), ("steam", SID2, None)],
    )  # fmt: skip
    assert [(o.link.external_id, o.displaced, o.changed) for o in outcomes] == [
        (SID, 2, True), (SID2, None, True),
    ]  # fmt: skip
    assert outcomes[1].link == Link("steam", SID2, None, True, None, "member", "discord")
    [lost] = await links.notices(GUILD, 2)
    assert (lost.reason, lost.at) == ("verified_later", later)
    assert len(await links.notices(GUILD, 1)) == 1 and await links.notices(OTHER, 2) == []
    assert [x.external_id for x in await links.for_member(GUILD, 3)] == [SID, SID2]

    # Linking again an account proven one's own keeps the proof.
    relinked = await links.link(guild_id=GUILD, discord_user_id=3, source="steam",
                                external_id=SID, now=later)  # fmt: skip
    assert (relinked.verified, relinked.verified_by) == (True, "discord")


@part("links")
async def test_notices_are_newest_first_and_at_most_ten(store: Store) -> None:
    links = store.links
    for n in range(12):
        steam_id = f"7656119800000{n:04d}"
        await links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=steam_id,
                         now=NOW)  # fmt: skip
        await links.verify(guild_id=GUILD, discord_user_id=2, accounts=[("steam", steam_id, None)],
                           verified_by="openid", now=NOW + timedelta(seconds=n))  # fmt: skip
    notices = await links.notices(GUILD, 1)
    assert [x.external_id for x in notices] == [f"7656119800000{n:04d}" for n in range(11, 1, -1)]
    assert notices[0].at == NOW + timedelta(seconds=11)
    assert {x.reason for x in notices} == {"verified_by_other"}
    assert await links.notices(GUILD, 2) == []


@part("links")
async def test_the_guilds_require_verified_setting(store: Store) -> None:
    links = store.links
    assert not await links.require_verified(GUILD) and await links.unproven_steam(GUILD) == 0
    # Nothing to change: off already (the guild need not exist yet).
    assert await links.set_require_verified(GUILD, False, NOW) == 0
    await links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW)
    await links.link(guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID2, now=NOW,
                     linked_by="admin:1")  # fmt: skip
    await links.verify(guild_id=GUILD, discord_user_id=3, accounts=[("steam", SID3, None)],
                       verified_by="openid", now=NOW)  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=4, source="minecraft", external_id=UUID,
                     now=NOW)  # fmt: skip
    await links.link(guild_id=OTHER, discord_user_id=5, source="steam", external_id=SID, now=NOW)
    assert await links.unproven_steam(GUILD) == 1  # the typed one; an admin's link is proven
    assert await links.unproven_steam(OTHER) == 1
    assert await links.set_require_verified(GUILD, True, NOW) == 1
    assert await links.require_verified(GUILD) and not await links.require_verified(OTHER)
    assert await links.set_require_verified(GUILD, True, NOW) == 0  # already on
    assert await links.unproven_steam(GUILD) == 1  # still linked, only not counting
    await links.link(guild_id=GUILD, discord_user_id=6, source="steam",
                     external_id="76561198000000006", now=NOW)  # fmt: skip
    assert await links.set_require_verified(GUILD, False, NOW) == 2
    assert not await links.require_verified(GUILD)
    assert await links.set_require_verified(OTHER, True, NOW) == 1
    assert await links.require_verified(OTHER)


@part("links")
async def test_import_links_says_what_became_of_each_row(store: Store) -> None:
    links = store.links
    await links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW)
    rows = [(1, "steam", SID), (2, "steam", SID), (2, "steam", SID2), (3, "minecraft", UUID),
            (4, "steam", SID2)]  # fmt: skip
    outcomes = await links.import_links(GUILD, rows, NOW, linked_by="import")
    assert outcomes == ["unchanged", "taken", "linked", "linked", "taken"]
    [imported] = await links.for_member(GUILD, 2)
    assert imported == Link("steam", SID2, None, False, None, "import", "admin")
    assert [x.external_id for x in await links.for_member(GUILD, 1)] == [SID]
    again = await links.import_links(GUILD, [(5, "steam", SID), (1, "minecraft", UUID)], NOW,
                                     linked_by="cli", reassign=True)  # fmt: skip
    assert again == ["linked", "linked"]
    assert await links.for_member(GUILD, 1) == [
        Link("minecraft", UUID, None, False, None, "cli", "admin")
    ]
    assert await links.for_member(GUILD, 3) == []
    assert [x.external_id for x in await links.for_member(GUILD, 5)] == [SID]
    assert await links.import_links(OTHER, [], NOW, linked_by="import") == []
    assert await links.count() == 3


@part("links")
async def test_link_codes(store: Store) -> None:
    links = store.links
    ask = dict(guild_id=GUILD, discord_user_id=4, source="minecraft", now=NOW)
    expires = NOW + timedelta(minutes=10)
    assert await links.add_code(code="OLDCODE1", expires=expires, **ask)
    assert await links.add_code(code="NEWCODE1", expires=expires, **ask)  # the old one ends
    assert await links.add_code(code="STEAMCD1", expires=expires, **{**ask, "source": "steam"})
    # A code is one guild's: another guild may hand out the same one.
    assert await links.add_code(code="OLDCODE1", expires=expires, **{**ask, "guild_id": OTHER})
    assert not await links.add_code(code="NEWCODE1", expires=expires,
                                    **{**ask, "discord_user_id": 5})  # fmt: skip
    confirm = dict(guild_id=GUILD, source="minecraft", external_id=UUID, display_name="Notch")
    assert await links.confirm_code(code="OLDCODE1", now=NOW, **confirm) == "unknown_code"
    # The code of another source does not link this one.
    assert await links.confirm_code(code="STEAMCD1", now=NOW, **confirm) == "unknown_code"
    assert await links.confirm_code(code="NEWCODE1", now=expires, **confirm) == "expired_code"
    # Another member held the account (unproven): typing the code moves it to the one who asked.
    await links.link(guild_id=GUILD, discord_user_id=7, source="minecraft", external_id=UUID,
                     now=NOW, status="x")  # fmt: skip
    just_before = expires - timedelta(microseconds=1)
    assert await links.confirm_code(code="newcode1", now=just_before, **confirm) == "linked"
    assert await links.for_member(GUILD, 7) == []
    assert await links.for_member(GUILD, 4) == [
        Link("minecraft", UUID, "Notch", True, "x", "member", "minecraft_code")
    ]
    later = NOW + timedelta(hours=1)
    assert await links.confirm_code(code="NEWCODE1", now=later, **confirm) == "linked"  # retry
    other_player = {**confirm, "external_id": "853c80ef-3c37-49fd-aa49-938b674adae6"}
    assert await links.confirm_code(code="NEWCODE1", now=NOW, **other_player) == "unknown_code"
    assert len(await links.for_member(GUILD, 4)) == 1
    # A used code is still taken; a new code for the member leaves the used one as it was.
    assert not await links.add_code(code="NEWCODE1", expires=expires, **ask)
    assert await links.add_code(code="THIRD001", expires=expires, **ask)
    assert await links.confirm_code(code="NEWCODE1", now=NOW, **confirm) == "linked"
    assert await links.confirm_code(code="THIRD001", now=NOW, **other_player) == "linked"
    assert [x.external_id for x in await links.for_member(GUILD, 4)] == [
        "069a79f4-44e9-4726-a5be-fca90e38aaf5", "853c80ef-3c37-49fd-aa49-938b674adae6",
    ]  # fmt: skip
    assert await links.count() == 2


@part("links", "steam", "stats")
async def test_playtime_follows_the_link(store: Store) -> None:
    links, stats = store.links, store.stats
    await store.steam.record_lookup(SID, 393380, seconds=7200, status="ok", name="Squad", now=NOW)
    await store.steam.record_lookup(SID, 10, seconds=0, status="ok", name=None, now=NOW)
    assert await stats.guild_games(GUILD) == []
    await links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW)
    # The linked account brings its games and its playtime to the guild.
    assert sorted(await stats.guild_games(GUILD)) == [("10", None), ("393380", "Squad")]
    totals = await stats.member_totals(GUILD, 1)
    assert sorted((t.game_id, t.source, t.seconds) for t in totals) == [
        ("10", "steam", 0), ("393380", "steam", 7200),
    ]  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID, now=NOW,
                     reassign=True)  # fmt: skip
    assert (await stats.leaderboard(GUILD, "393380", None)).rows == [(2, 7200)]
    assert [t.seconds for t in await stats.member_totals(GUILD, 1) if t.seconds] == []

    # Unproven while the guild requires proof: out of the summaries, and back when proven.
    assert await links.set_require_verified(GUILD, True, NOW) == 1
    assert (await stats.leaderboard(GUILD, "393380", None)).rows == []
    await links.verify(guild_id=GUILD, discord_user_id=3, accounts=[("steam", SID, None)],
                       verified_by="openid", now=NOW)  # fmt: skip
    assert (await stats.leaderboard(GUILD, "393380", None)).rows == [(3, 7200)]
    await links.link(
        guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID, now=NOW, reassign=True
    )  # the member's own typed link: does not count
    assert (await stats.leaderboard(GUILD, "393380", None)).rows == []
    assert await links.unlink(guild_id=GUILD, discord_user_id=2, source="steam", now=NOW) == 1
    assert await links.set_require_verified(GUILD, False, NOW) == 0  # none unproven left
    assert (await stats.leaderboard(GUILD, "393380", None)).rows == []

    await links.link(guild_id=GUILD, discord_user_id=4, source="steam", external_id=SID, now=NOW)
    assert (await stats.leaderboard(GUILD, "393380", None)).rows == [(4, 7200)]
    assert await links.unlink(guild_id=GUILD, discord_user_id=4, source="steam", now=NOW) == 1
    assert (await stats.leaderboard(GUILD, "393380", None)).rows == []
    assert [t.seconds for t in await stats.member_totals(GUILD, 4) if t.seconds] == []


@part("links", "steam", "rewards")
async def test_rewards_follow_the_link(store: Store) -> None:
    links = store.links
    await store.steam.record_lookup(SID, 393380, seconds=7200, status="ok", name="Squad", now=NOW)
    reward = await store.rewards.add(
        guild_id=GUILD, role_id=None, hours=1, game_id=None, period="all", source="any",
        mode="stack", created_by=None, now=NOW, squad_group="Regulars",
    )  # fmt: skip

    async def holders() -> int:
        [summary] = await store.rewards.summaries(GUILD)
        assert summary.reward.id == reward.id
        return summary.holders

    assert await holders() == 0
    await links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW)
    assert await holders() == 1 and await store.rewards.candidates(GUILD, NOW) == [1]
    await links.link(guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID, now=NOW,
                     reassign=True)  # fmt: skip
    assert await holders() == 1 and await store.rewards.candidates(GUILD, NOW) == [2]
    assert await links.set_require_verified(GUILD, True, NOW) == 1
    assert await holders() == 0
    assert await links.set_require_verified(GUILD, False, NOW) == 1
    assert await holders() == 1
    assert await links.unlink(guild_id=GUILD, discord_user_id=2, source="steam", now=NOW) == 1
    assert await holders() == 0
    assert await links.import_links(GUILD, [(3, "steam", SID)], NOW, linked_by="import") == [
        "linked"
    ]
    assert await holders() == 1
