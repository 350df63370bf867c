"""Role rewards' contract (``store.rewards``), on every backend: rewards added, listed, summed
up and removed; who earns what (the best source, the best game, replace mode, periods of local
days, links that count); the role actions a check queues; and the checks other parts make
(a link, an unlink, verification, a Steam baseline, an ingest)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.clock import to_iso
from bot.ingest.policy import IngestPolicy
from bot.storage import Store, interface
from bot.storage.records import Delivery, Reward, RewardSummary
from connectors.base import WebhookContext
from connectors.registry import Registry
from connectors.steam.client import OwnedGame
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

H = 3600
SQUAD, GRIM = "393380", "219990"
ALICE, BOB = 4000000000000000401, 4000000000000000402
SID2 = "76561198000000002"
VETERAN, ELDER, WEEKLY = 1400000000000000011, 1400000000000000012, 1400000000000000013


async def add(
    store: Store, hours: int, role: int | None = VETERAN, *, game: str | None = SQUAD,
    period: str = "all", source: str = "any", mode: str = "stack", guild: int = GUILD,
    counting: str = "active", at: Any = NOW, **more: Any,
) -> Reward:  # fmt: skip
    return await store.rewards.add(
        guild_id=guild, role_id=role, hours=hours, game_id=game, period=period, source=source,
        mode=mode, created_by=None, now=at, counting=counting, **more,
    )  # fmt: skip


async def link(
    store: Store, user: int, steam_id: str = SID, guild: int = GUILD, at: Any = NOW
) -> None:
    await store.links.link(
        guild_id=guild, discord_user_id=user, source="steam", external_id=steam_id, now=at,
        display_name=f"player-{user % 1000}",
    )  # fmt: skip


async def play(store: Store, steam_id: str, hours: float, at: Any, game: str = SQUAD) -> None:
    """Steam's lifetime total for the account, as a lookup stores it (what grew after the
    first value is counted on its local day)."""
    await store.steam.record_lookup(
        steam_id, int(game), seconds=int(hours * H), status="ok", name="Squad", now=at
    )


async def role_actions(store: Store, at: Any = NOW) -> list[tuple[str, int, int, str, str]]:
    """(action, member, role, pause key, status) of the guild's actions, oldest first."""
    status = await store.actions.status(GUILD, at, limit=100)
    return [
        (r.action, r.user_id, r.payload["role_id"], r.pause_key, r.status)
        for r in sorted(status.recent, key=lambda r: r.id)
    ]


async def carry_out(store: Store, at: Any = NOW, *, already: bool = False) -> int:
    """Every due action done (as the worker does when Discord says yes)."""
    done = 0
    for action in await store.actions.claim_due(at, 100):
        if await store.actions.begin(action, at):
            await store.actions.done(action, at, already=already)
            done += 1
    return done


@part("rewards")
async def test_rewards_are_added_listed_and_removed(store: Store) -> None:
    rewards = store.rewards
    with pytest.raises(ValueError, match="not a reward"):
        await add(store, 10, period="fortnight")
    with pytest.raises(ValueError, match="not a reward"):
        await add(store, 10, counting="afk")
    assert await rewards.guilds() == [] and await rewards.list(GUILD) == []
    first = await add(store, 10, game=None)
    assert first == Reward(
        id=first.id, guild_id=GUILD, role_id=VETERAN, hours=10, game_id=None, period="all",
        source="any", mode="stack", created_at=to_iso(NOW), created_by=None,
    )  # fmt: skip
    later = NOW + timedelta(minutes=1)
    squad = await rewards.add(
        guild_id=GUILD, role_id=None, hours=20, game_id=SQUAD, period="week", source="steam",
        mode="replace", created_by=77, now=later, squad_group="Veterans",
        squad_permissions="reserve,chat", counting="total",
    )  # fmt: skip
    assert squad == Reward(
        id=squad.id, guild_id=GUILD, role_id=None, hours=20, game_id=SQUAD, period="week",
        source="steam", mode="replace", created_at=to_iso(later), created_by=77,
        squad_group="Veterans", squad_permissions="reserve,chat", counting="total",
    )  # fmt: skip
    elsewhere = await add(store, 5, guild=OTHER)
    assert squad.id > first.id
    assert await rewards.list(GUILD) == [first, squad]
    assert await rewards.list(OTHER) == [elsewhere]
    assert await rewards.guilds() == [GUILD, OTHER]
    assert await rewards.summaries(GUILD) == [
        RewardSummary(first, 0, 0, None, None), RewardSummary(squad, 0, 0, None, None),
    ]  # fmt: skip
    assert await rewards.known_game(GUILD, "minecraft")  # a known name
    assert not await rewards.known_game(GUILD, SQUAD)
    assert await rewards.candidates(GUILD, NOW) == []
    assert await rewards.preview(first, NOW) == (0, [])
    assert await rewards.preview(squad, NOW) == (0, [])
    nothing = await rewards.check(GUILD, [ALICE, BOB], NOW)
    assert (nothing.granted, nothing.removed) == ([], [])
    assert (await rewards.check(GUILD, [], NOW)).queued == 0
    assert await rewards.forget_grants(GUILD, ALICE) == 0
    assert await rewards.remove(GUILD, 999999, take_back=True, now=NOW) is None
    assert await rewards.remove(OTHER, first.id, take_back=True, now=NOW) is None  # not its
    assert await rewards.remove(GUILD, first.id, take_back=True, now=NOW) == []
    assert await rewards.list(GUILD) == [squad]
    assert await rewards.remove(GUILD, first.id, take_back=True, now=NOW) is None
    assert await rewards.remove(GUILD, squad.id, take_back=False, now=NOW) == []
    assert await rewards.guilds() == [OTHER]


@part("rewards", "actions", "links", "steam")
async def test_a_member_earns_a_reward_once_and_loses_it_with_the_link(store: Store) -> None:
    rewards = store.rewards
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    reward = await add(store, 40)
    assert await rewards.known_game(GUILD, SQUAD)  # played in the guild
    assert await rewards.preview(reward, NOW) == (1, [(ALICE, 50 * H)])
    assert await rewards.candidates(GUILD, NOW) == [ALICE]
    changes = await rewards.check(GUILD, [BOB, ALICE, ALICE], NOW)
    assert changes.granted == [(reward, ALICE, 50 * H)] and changes.removed == []
    key = f"reward:{reward.id}"
    assert await role_actions(store) == [("grant_role", ALICE, VETERAN, key, "pending")]
    [row] = (await store.actions.status(GUILD, NOW)).recent
    assert (row.connector, row.idempotent) == ("discord", True)
    assert row.payload == {
        "guild_id": GUILD, "reason": f"Questlog reward #{reward.id}: 40 h",
        "role_id": VETERAN, "user_id": ALICE,
    }  # fmt: skip
    assert await rewards.summaries(GUILD) == [RewardSummary(reward, 1, 1, None, None)]
    assert (await rewards.check(GUILD, [ALICE], NOW)).queued == 0  # held: nothing again
    assert await carry_out(store) == 1
    assert await rewards.summaries(GUILD) == [RewardSummary(reward, 1, 0, None, None)]
    assert await rewards.candidates(GUILD, NOW) == [ALICE]
    later = NOW + timedelta(hours=1)
    assert await store.links.unlink(
        guild_id=GUILD, discord_user_id=ALICE, source="steam", now=later
    ) == 1  # fmt: skip
    assert (await role_actions(store, later))[1:] == [
        ("remove_role", ALICE, VETERAN, key, "pending")
    ]
    assert await rewards.summaries(GUILD) == [RewardSummary(reward, 0, 1, None, None)]
    assert await rewards.candidates(GUILD, later) == []
    assert await rewards.preview(reward, later) == (0, [])


@part("rewards", "actions", "links", "steam")
async def test_the_best_game_source_and_replace_mode_decide(store: Store) -> None:
    await link(store, ALICE)
    await link(store, BOB, SID2)
    await play(store, SID, 50, NOW)
    await play(store, SID, 30, NOW, game=GRIM)
    await play(store, SID2, 12, NOW)
    low = await add(store, 10, mode="replace")
    high = await add(store, 40, ELDER, mode="replace")
    best = await add(store, 45, WEEKLY, game=None)  # the member's best game
    grim = await add(store, 31, 1400000000000000099, game=GRIM)
    bm_only = await add(store, 5, 1400000000000000098, source="battlemetrics")
    total = await add(store, 5, 1400000000000000097, source="steam", counting="total")
    changes = await store.rewards.check(GUILD, [ALICE, BOB], NOW)
    assert changes.granted == [
        (high, ALICE, 50 * H), (best, ALICE, 50 * H), (total, ALICE, 50 * H),
        (low, BOB, 12 * H), (total, BOB, 12 * H),
    ]  # fmt: skip
    assert grim.id and bm_only.id and changes.removed == []
    count, top = await store.rewards.preview(low, NOW)
    assert (count, top) == (2, [(ALICE, 50 * H), (BOB, 12 * H)])
    assert await store.rewards.preview(low, NOW, 1) == (2, [(ALICE, 50 * H)])
    assert await store.rewards.candidates(GUILD, NOW) == [ALICE, BOB]
    # Bob climbs past the higher tier: the lower one goes, its role with it.
    assert await carry_out(store) == 5
    await play(store, SID2, 41, NOW + timedelta(hours=1))
    changes = await store.rewards.check(GUILD, [BOB], NOW + timedelta(hours=1))
    assert changes.granted == [(high, BOB, 41 * H)] and changes.removed == [(low, BOB)]
    assert (await role_actions(store))[5:] == [
        ("grant_role", BOB, ELDER, f"reward:{high.id}", "pending"),
        ("remove_role", BOB, VETERAN, f"reward:{low.id}", "pending"),
    ]


@part("rewards", "actions", "links", "steam")
async def test_a_period_reward_counts_local_days_and_goes_when_they_pass(store: Store) -> None:
    await link(store, ALICE)
    await link(store, ALICE, SID2)  # a second Steam account: a source's accounts add up
    await play(store, SID, 50, NOW)  # the first values: no one day's
    await play(store, SID2, 10, NOW)
    weekly = await add(store, 3, WEEKLY, period="7d")
    shared = await add(store, 1, WEEKLY, game=None, period="week")  # the same role
    assert (await store.rewards.check(GUILD, [ALICE], NOW)).queued == 0  # no day counted yet
    later = NOW + timedelta(hours=2)
    await play(store, SID, 52, later)
    assert await store.rewards.preview(weekly, later) == (0, [])
    await play(store, SID2, 11.5, later)
    assert await store.rewards.preview(weekly, later) == (1, [(ALICE, int(3.5 * H))])
    assert await store.rewards.candidates(GUILD, later) == [ALICE]
    changes = await store.rewards.check(GUILD, [ALICE], later)
    assert changes.granted == [(weekly, ALICE, int(3.5 * H)), (shared, ALICE, int(3.5 * H))]
    assert await role_actions(store, later) == [
        ("grant_role", ALICE, WEEKLY, f"reward:{weekly.id}", "pending")
    ]  # one role, granted once
    assert await carry_out(store, later) == 1
    # 2025-03-01 is a Saturday: the calendar week ends the next day, the 7 days later.
    monday = NOW + timedelta(days=2)
    assert await store.rewards.candidates(GUILD, monday) == [ALICE]  # holds grants
    changes = await store.rewards.check(GUILD, [ALICE], monday)
    assert changes.granted == [] and changes.removed == [(shared, ALICE)]
    assert (await store.actions.status(GUILD, monday)).counts == {"done": 1}  # role kept
    week_later = NOW + timedelta(days=7)
    assert await store.rewards.preview(weekly, week_later) == (0, [])
    changes = await store.rewards.check(GUILD, [ALICE], week_later)
    assert changes.granted == [] and changes.removed == [(weekly, ALICE)]
    assert await role_actions(store, week_later) == [
        ("remove_role", ALICE, WEEKLY, f"reward:{weekly.id}", "pending")
    ]  # (the grant, done over a day ago, is no longer listed)
    assert await store.rewards.candidates(GUILD, week_later) == []


@part("rewards", "actions", "links", "steam")
async def test_a_role_the_member_had_before_is_never_taken_away(store: Store) -> None:
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    later = NOW + timedelta(hours=1)
    await play(store, SID, 52, later)
    daily = await add(store, 1, period="today")
    assert len((await store.rewards.check(GUILD, [ALICE], later)).granted) == 1
    assert await carry_out(store, later, already=True) == 1  # Discord: they had it already
    tomorrow = NOW + timedelta(days=1)
    changes = await store.rewards.check(GUILD, [ALICE], tomorrow)
    assert changes.removed == [(daily, ALICE)]
    assert [a[0] for a in await role_actions(store, tomorrow)] == ["grant_role"]  # no removal
    # Questlog's own grant, carried out: taken away when no longer earned.
    await play(store, SID, 54, tomorrow)
    assert len((await store.rewards.check(GUILD, [ALICE], tomorrow)).granted) == 1
    assert await carry_out(store, tomorrow) == 1
    next_day = tomorrow + timedelta(days=1)
    assert (await store.rewards.check(GUILD, [ALICE], next_day)).removed == [(daily, ALICE)]
    assert [a[0] for a in await role_actions(store, tomorrow)] == [
        "grant_role", "grant_role", "remove_role",
    ]  # fmt: skip


@part("rewards", "actions", "links", "steam")
async def test_a_change_not_sent_yet_gives_way_to_the_next(store: Store) -> None:
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    later = NOW + timedelta(hours=1)
    await play(store, SID, 52, later)
    daily = await add(store, 1, period="today")
    key = f"reward:{daily.id}"
    assert len((await store.rewards.check(GUILD, [ALICE], later)).granted) == 1
    tomorrow = NOW + timedelta(days=1)
    changes = await store.rewards.check(GUILD, [ALICE], tomorrow)
    assert changes.removed == [(daily, ALICE)]
    # The grant never went out: it gives way, and nothing is queued (the role is not on).
    assert await role_actions(store, tomorrow) == [("grant_role", ALICE, VETERAN, key, "done")]
    [row] = (await store.actions.status(GUILD, tomorrow)).recent
    assert row.last_error == "superseded by a later change" and row.attempts == 0
    # A grant carried out, then a removal refused (paused), then earned again: the removal
    # gives way and the role Questlog gave is still on.
    await play(store, SID, 54, tomorrow)
    assert len((await store.rewards.check(GUILD, [ALICE], tomorrow)).granted) == 1
    assert await carry_out(store, tomorrow) == 1
    next_day = tomorrow + timedelta(days=1)
    assert len((await store.rewards.check(GUILD, [ALICE], next_day)).removed) == 1
    [removal] = await store.actions.claim_due(next_day, 10)
    assert removal.action == "remove_role" and await store.actions.begin(removal, next_day)
    await store.actions.paused(removal, "Missing Permissions", next_day, timedelta(minutes=10))
    [summary] = await store.rewards.summaries(GUILD)
    assert (summary.holders, summary.waiting, summary.paused_reason, summary.paused_since) == (
        0, 1, "Missing Permissions", to_iso(next_day),
    )  # fmt: skip
    await play(store, SID, 56, next_day)
    assert len((await store.rewards.check(GUILD, [ALICE], next_day)).granted) == 1
    assert [a[:2] + a[4:] for a in await role_actions(store, next_day)] == [
        ("grant_role", ALICE, "done"), ("grant_role", ALICE, "done"),
        ("remove_role", ALICE, "done"),
    ]  # fmt: skip
    [summary] = await store.rewards.summaries(GUILD)
    assert (summary.holders, summary.waiting) == (1, 0)


@part("rewards", "actions", "links", "steam")
async def test_removing_a_reward_takes_back_its_role_unless_another_holds_it(
    store: Store,
) -> None:
    await link(store, ALICE)
    await link(store, BOB, SID2)
    await play(store, SID, 50, NOW)
    await play(store, SID2, 50, NOW)
    first = await add(store, 10)
    second = await add(store, 40)  # the same role
    doomed = await add(store, 20, ELDER)
    changes = await store.rewards.check(GUILD, [ALICE, BOB], NOW)
    assert len(changes.granted) == 6
    assert [a[:2] + a[3:4] for a in await role_actions(store)] == [
        ("grant_role", ALICE, f"reward:{first.id}"), ("grant_role", ALICE, f"reward:{doomed.id}"),
        ("grant_role", BOB, f"reward:{first.id}"), ("grant_role", BOB, f"reward:{doomed.id}"),
    ]  # fmt: skip
    # Alice's grants go out; Bob's wait.
    for action in await store.actions.claim_due(NOW, 10):
        if action.user_id == ALICE:
            assert await store.actions.begin(action, NOW)
            await store.actions.done(action, NOW)
    assert await store.rewards.remove(GUILD, doomed.id, take_back=True, now=NOW) == [ALICE, BOB]
    found = await role_actions(store)
    assert found[3] == ("grant_role", BOB, ELDER, f"reward:{doomed.id}", "done")  # never sent
    assert found[4:] == [("remove_role", ALICE, ELDER, f"reward:{doomed.id}", "pending")]
    status = await store.actions.status(GUILD, NOW, limit=100)
    assert [r.last_error for r in status.recent if r.status == "done"] == [
        "the reward was removed", None, None,
    ]  # fmt: skip
    # The first reward's role is still held through the second: nothing taken; Bob's grant
    # not sent yet comes again under the second reward.
    assert await store.rewards.remove(GUILD, first.id, take_back=True, now=NOW) == [ALICE, BOB]
    found = await role_actions(store)
    assert found[2] == ("grant_role", BOB, VETERAN, f"reward:{first.id}", "done")
    assert found[5:] == [("grant_role", BOB, VETERAN, f"reward:{second.id}", "pending")]
    assert await store.rewards.list(GUILD) == [second]
    assert await store.rewards.summaries(GUILD) == [RewardSummary(second, 2, 1, None, None)]
    # Without take_back, the holders keep the role.
    assert await store.rewards.remove(GUILD, second.id, take_back=False, now=NOW) == [
        ALICE, BOB,
    ]  # fmt: skip
    assert len(await role_actions(store)) == 6
    assert await store.rewards.summaries(GUILD) == []


@part("rewards", "actions", "links", "steam")
async def test_a_member_who_came_back_is_granted_again(store: Store) -> None:
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    reward = await add(store, 40)
    assert len((await store.rewards.check(GUILD, [ALICE], NOW)).granted) == 1
    assert await carry_out(store) == 1
    assert await store.rewards.forget_grants(GUILD, ALICE) == 1
    assert await store.rewards.forget_grants(GUILD, ALICE) == 0
    assert await store.rewards.summaries(GUILD) == [RewardSummary(reward, 0, 0, None, None)]
    changes = await store.rewards.check(GUILD, [ALICE], NOW)
    assert changes.granted == [(reward, ALICE, 50 * H)]
    assert [a[0] + ":" + a[4] for a in await role_actions(store)] == [
        "grant_role:done", "grant_role:pending",
    ]  # fmt: skip


@part("rewards", "actions", "links", "steam")
async def test_links_that_do_not_count_earn_nothing(store: Store) -> None:
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    later = NOW + timedelta(hours=1)
    await play(store, SID, 52, later)
    ever = await add(store, 40)
    daily = await add(store, 1, ELDER, period="today")
    assert len((await store.rewards.check(GUILD, [ALICE], later)).granted) == 2
    assert await store.links.set_require_verified(GUILD, True, later) == 1
    assert await store.rewards.summaries(GUILD) == [
        RewardSummary(ever, 0, 0, None, None), RewardSummary(daily, 0, 0, None, None),
    ]  # fmt: skip
    assert await store.rewards.candidates(GUILD, later) == []
    assert await store.rewards.preview(daily, later) == (0, [])
    await store.links.verify(
        guild_id=GUILD, discord_user_id=ALICE, accounts=[("steam", SID, "alice")],
        verified_by="openid", now=later,
    )  # fmt: skip
    assert [(s.holders, s.waiting) for s in await store.rewards.summaries(GUILD)] == [
        (1, 1), (1, 1),
    ]  # fmt: skip
    assert await store.rewards.preview(daily, later) == (1, [(ALICE, 2 * H)])


@part("rewards", "actions", "links", "steam")
async def test_a_steam_baseline_checks_every_guild_that_links_the_account(
    store: Store,
) -> None:
    await link(store, ALICE)
    await link(store, BOB, guild=OTHER)
    here = await add(store, 40)
    there = await add(store, 10, ELDER, guild=OTHER)
    too_high = await add(store, 60, WEEKLY, guild=OTHER)
    assert await store.steam.enrol(NOW, lambda steam_id: NOW) == (1, 0)
    growth = interface.Growth(observer=None, midnight=NOW)  # type: ignore[arg-type]
    await store.steam.apply_library(
        SID, [OwnedGame(int(SQUAD), 50 * 60, "Squad")], NOW, soon=NOW, later=NOW,
        growth=growth,
    )  # fmt: skip
    assert await store.rewards.summaries(GUILD) == [RewardSummary(here, 1, 1, None, None)]
    assert [(s.holders, s.waiting) for s in await store.rewards.summaries(OTHER)] == [
        (1, 1), (0, 0),
    ]  # fmt: skip
    assert too_high.id and there.id
    everywhere = await store.actions.status(None, NOW)
    assert sorted((r.guild_id, r.user_id, r.payload["role_id"]) for r in everywhere.recent) == [
        (GUILD, ALICE, VETERAN), (OTHER, BOB, ELDER),
    ]  # fmt: skip


def _bm_report(steam_id: str, hours: float, n: int) -> tuple[Any, Any, Delivery]:
    connector = Registry().discover().get("battlemetrics")
    at = NOW + timedelta(minutes=n)
    context = WebhookContext(
        signed_at=at, signed_at_text=to_iso(at), signature=f"{n:064d}", received_at=at
    )
    body = {"steam_id": steam_id, "playtime": str(int(hours * H)), "game_id": int(SQUAD)}
    raw = connector.parse_webhook(body, context)
    return connector, raw, Delivery(GUILD, "battlemetrics", None, f"bm-{n}", "{}", to_iso(at))


class Embeds:
    @staticmethod
    def embed(event: Any, language: tuple[str | None, str | None]) -> dict[str, Any]:
        return {"type": event["type"], "title": event["title"]}

    @staticmethod
    def pack(embeds: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return embeds[:10]

    @staticmethod
    def fits(embeds: list[dict[str, Any]]) -> bool:
        return True


@part("rewards", "actions", "links", "events", "feed")
async def test_an_ingest_that_crosses_the_threshold_grants_and_announces(store: Store) -> None:
    await link(store, ALICE)
    await store.feed.set_channel(GUILD, 900, to_iso(NOW))
    reward = await add(store, 100, source="battlemetrics")
    ignored = await add(store, 1, ELDER, game=GRIM)  # another game: not checked
    policy = IngestPolicy()
    connector, raw, delivery = _bm_report(SID, 80, 1)  # a first report: below anyway
    first = await store.events.ingest(delivery, connector, raw, connector.effects(raw), policy)
    assert first.status == "accepted" and first.actions == 0
    connector, raw, delivery = _bm_report(SID, 120, 2)
    crossed = await store.events.ingest(delivery, connector, raw, connector.effects(raw), policy)
    assert crossed.actions == 1 and len(crossed.event_ids) >= 1
    assert await store.rewards.summaries(GUILD) == [
        RewardSummary(reward, 1, 1, None, None), RewardSummary(ignored, 0, 0, None, None),
    ]  # fmt: skip
    connector, raw, delivery = _bm_report(SID, 130, 3)
    again = await store.events.ingest(delivery, connector, raw, connector.effects(raw), policy)
    assert again.actions == 0  # held already
    assert await role_actions(store, NOW + timedelta(minutes=3)) == [
        ("grant_role", ALICE, VETERAN, f"reward:{reward.id}", "pending")
    ]
    batch = await store.feed.next_work(900, to_iso(NOW + timedelta(minutes=3)), Embeds())
    assert batch is not None
    embeds = [e for e in batch.payload["embeds"] if e["type"] == "reward.granted"]
    assert embeds == [{"type": "reward.granted", "title": "player-401 earned a reward for 100 h"}]


@part("rewards", "actions", "links", "steam")
async def test_a_grant_in_flight_or_left_by_a_crash_never_undoes_a_later_removal(
    store: Store,
) -> None:
    await link(store, ALICE)
    await link(store, BOB, SID2)
    await play(store, SID, 50, NOW)
    await play(store, SID2, 50, NOW)
    reward = await add(store, 40)
    key = f"reward:{reward.id}"
    assert len((await store.rewards.check(GUILD, [ALICE, BOB], NOW)).granted) == 2
    alice, bob = await store.actions.claim_due(NOW, 10)
    assert (alice.user_id, bob.user_id) == (ALICE, BOB)
    assert await store.actions.begin(alice, NOW) and await store.actions.begin(bob, NOW)
    for user in (ALICE, BOB):  # both unlink while their grants are being sent
        await store.links.unlink(guild_id=GUILD, discord_user_id=user, source="steam", now=NOW)
    assert await role_actions(store) == [
        ("grant_role", ALICE, VETERAN, key, "in_flight"),
        ("grant_role", BOB, VETERAN, key, "in_flight"),
        ("remove_role", ALICE, VETERAN, key, "pending"),
        ("remove_role", BOB, VETERAN, key, "pending"),
    ]
    # Alice's grant fails and would be retried: the removal decided since stands.
    await store.actions.retry(alice, "Discord answered 503", NOW + timedelta(minutes=1), NOW)
    # Bob's was cut off by a crash: tried again after the restart, it gives way too. (The
    # restart comes half a minute later: with several processes, an attempt is left behind
    # once its lease, renewed while it runs, has run out.)
    restart = NOW + timedelta(seconds=30)
    assert await store.actions.recover(restart) == (1, 0)
    due = await store.actions.claim_due(restart, 10)  # oldest due first: the removals
    assert [(a.user_id, a.action, a.attempts) for a in due] == [
        (ALICE, "remove_role", 0), (BOB, "remove_role", 0), (BOB, "grant_role", 1),
    ]  # fmt: skip
    assert not await store.actions.begin(due[2], restart)
    for removal in due[:2]:
        assert await store.actions.begin(removal, NOW)
        await store.actions.done(removal, NOW)
    status = await store.actions.status(GUILD, NOW)
    assert sorted((r.action, r.user_id, r.status, r.last_error) for r in status.recent) == [
        ("grant_role", ALICE, "done", "superseded by a later change"),
        ("grant_role", BOB, "done", "superseded by a later change"),
        ("remove_role", ALICE, "done", None), ("remove_role", BOB, "done", None),
    ]  # fmt: skip


@part("rewards", "actions", "links", "steam")
async def test_a_reward_without_a_role_is_granted_without_actions(store: Store) -> None:
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    squad = await add(store, 40, None, squad_group="Veterans", squad_permissions="reserve")
    assert squad.role_id is None
    changes = await store.rewards.check(GUILD, [ALICE], NOW)
    assert changes.granted == [(squad, ALICE, 50 * H)] and changes.queued == 1
    assert await role_actions(store) == []
    assert await store.rewards.summaries(GUILD) == [RewardSummary(squad, 1, 0, None, None)]
    assert await store.rewards.candidates(GUILD, NOW) == [ALICE]
    await store.links.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam", now=NOW)
    assert await store.rewards.summaries(GUILD) == [RewardSummary(squad, 0, 0, None, None)]
    assert await role_actions(store) == []


@part("rewards", "actions", "links", "steam")
async def test_a_role_the_member_had_keeps_its_owner_through_another_reward(
    store: Store,
) -> None:
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    later = NOW + timedelta(hours=1)
    await play(store, SID, 52, later)
    daily = await add(store, 1, period="today")
    assert len((await store.rewards.check(GUILD, [ALICE], later)).granted) == 1
    assert await carry_out(store, later, already=True) == 1  # the member had it already
    ever = await add(store, 40, at=later)  # the same role, earned too: not Questlog's either
    assert (await store.rewards.check(GUILD, [ALICE], later)).granted == [(ever, ALICE, 52 * H)]
    tomorrow = NOW + timedelta(days=1)
    assert (await store.rewards.check(GUILD, [ALICE], tomorrow)).removed == [(daily, ALICE)]
    await store.links.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam", now=tomorrow)
    assert [a[0] for a in await role_actions(store, tomorrow)] == ["grant_role"]  # none taken
    assert await store.rewards.summaries(GUILD) == [
        RewardSummary(daily, 0, 0, None, None), RewardSummary(ever, 0, 0, None, None),
    ]  # fmt: skip


@part("rewards", "actions", "links", "steam")
async def test_a_grant_questlog_made_before_stays_questlogs_when_the_member_has_it(
    store: Store,
) -> None:
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    await add(store, 40)
    assert len((await store.rewards.check(GUILD, [ALICE], NOW)).granted) == 1
    assert await carry_out(store) == 1
    assert await store.rewards.forget_grants(GUILD, ALICE) == 1  # left and came back
    assert len((await store.rewards.check(GUILD, [ALICE], NOW)).granted) == 1
    # "already had it": but the last change of it Questlog made was its own grant.
    assert await carry_out(store, already=True) == 1
    await store.links.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam", now=NOW)
    assert [a[0] for a in await role_actions(store)] == ["grant_role", "grant_role", "remove_role"]
    assert await carry_out(store) == 1  # the removal
    # A grant tried before (it may have given the role itself) is Questlog's as well.
    await link(store, ALICE)
    [grant] = await store.actions.claim_due(NOW, 10)
    assert grant.action == "grant_role" and grant.attempts == 0
    assert await store.actions.begin(grant, NOW)
    await store.actions.retry(grant, "503", NOW, NOW)
    [grant] = await store.actions.claim_due(NOW, 10)
    assert grant.attempts == 1 and await store.actions.begin(grant, NOW)
    await store.actions.done(grant, NOW, already=True)
    await store.links.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam", now=NOW)
    assert [a[0] for a in await role_actions(store)][-1] == "remove_role"


@part("rewards", "actions", "links", "steam")
async def test_removing_a_reward_lifts_its_pause_and_its_removals_still_go(
    store: Store,
) -> None:
    await link(store, ALICE)
    await link(store, BOB, SID2)
    await play(store, SID, 50, NOW)
    await play(store, SID2, 50, NOW)
    reward = await add(store, 40)
    key = f"reward:{reward.id}"
    await store.rewards.check(GUILD, [ALICE], NOW)
    assert await carry_out(store) == 1  # Alice has it
    await store.rewards.check(GUILD, [BOB], NOW)
    [bob] = await store.actions.claim_due(NOW, 10)
    assert await store.actions.begin(bob, NOW)
    await store.actions.paused(bob, "Missing Permissions (50013)", NOW, timedelta(minutes=10))
    [summary] = await store.rewards.summaries(GUILD)
    assert (summary.holders, summary.waiting, summary.paused_reason) == (
        2, 1, "Missing Permissions (50013)",
    )  # fmt: skip
    assert await store.rewards.remove(GUILD, reward.id, take_back=True, now=NOW) == [ALICE, BOB]
    status = await store.actions.status(GUILD, NOW)
    assert status.pauses == []
    assert await role_actions(store) == [
        ("grant_role", ALICE, VETERAN, key, "done"),
        ("grant_role", BOB, VETERAN, key, "done"),
        ("remove_role", ALICE, VETERAN, key, "pending"),
        ("remove_role", BOB, VETERAN, key, "pending"),  # tried once: it may have been given
    ]
    # A removal refused before its reward was removed still goes, without take_back.
    again = await add(store, 40)
    await store.rewards.check(GUILD, [ALICE], NOW)  # her removal not sent gives way
    assert await carry_out(store) == 1  # Bob's removal
    await store.links.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam", now=NOW)
    [removal] = await store.actions.claim_due(NOW, 10)
    assert await store.actions.begin(removal, NOW)
    await store.actions.paused(removal, "Missing Permissions", NOW, timedelta(minutes=10))
    assert await store.rewards.remove(GUILD, again.id, take_back=False, now=NOW) == []
    assert (await store.actions.status(GUILD, NOW)).pauses == []
    assert [r.id for r in await store.actions.claim_due(NOW, 10)] == [removal.id]


def _report(steam_id: str, hours: float, n: int) -> tuple[Any, Any, Any]:
    connector, raw, delivery = _bm_report(steam_id, hours, n)
    return delivery, connector, raw


@part("rewards", "actions", "links", "events")
async def test_a_reset_total_still_earns_a_period_reward_at_once(store: Store) -> None:
    await link(store, ALICE)
    policy = IngestPolicy()

    async def report(hours: float, n: int) -> Any:
        delivery, connector, raw = _report(SID, hours, n)
        return await store.events.ingest(delivery, connector, raw, connector.effects(raw), policy)

    await report(50, 1)
    await report(58, 2)  # 8 h today
    await report(1, 3)  # the server reset its totals
    weekly = await add(store, 12, WEEKLY, period="week")
    assert (await report(5, 4)).actions == 1  # 12 h this week, 5 h "in all"
    assert await store.rewards.preview(weekly, NOW + timedelta(minutes=4)) == (1, [(ALICE, 12 * H)])
    assert (await report(6, 5)).actions == 0  # held


@part("rewards", "actions", "links", "events", "feed")
async def test_a_reward_counts_active_time_unless_it_counts_the_total(store: Store) -> None:
    steve = "8667ba71-b85a-4004-af54-457a9734eed7"
    await store.feed.set_channel(GUILD, 900, to_iso(NOW))
    await store.links.link(
        guild_id=GUILD, discord_user_id=ALICE, source="minecraft", external_id=steve, now=NOW,
        display_name="Steve",
    )  # fmt: skip
    active = await add(store, 3, VETERAN, game="minecraft")
    total = await add(store, 3, ELDER, game="minecraft", counting="total")
    weekly = await add(store, 3, WEEKLY, game="minecraft", period="7d", counting="total")
    connector = Registry().discover().get("minecraft")
    t = NOW - timedelta(hours=5)
    for n, (kind, at) in enumerate(
        [("session.started", t), ("afk.started", t + timedelta(hours=1)),
         ("afk.ended", t + timedelta(hours=3)), ("session.ended", t + timedelta(hours=4))]
    ):  # fmt: skip
        body = {"type": kind, "player_uuid": steve, "server_id": "survival", "at": to_iso(at)}
        raw = connector.parse_webhook(body, WebhookContext(received_at=NOW))
        delivery = Delivery(GUILD, "minecraft", None, f"mc-{n}", "{}", to_iso(NOW))
        await store.events.ingest(delivery, connector, raw, connector.effects(raw), IngestPolicy())
    assert (await store.rewards.check(GUILD, [ALICE], NOW)).queued == 0  # the ingest did
    batch = await store.feed.next_work(900, to_iso(NOW), Embeds())
    assert batch is not None
    titles = [e["title"] for e in batch.payload["embeds"] if e["type"] == "reward.granted"]
    assert titles == ["Steve earned a reward for 3 h in Minecraft"] * 2
    granted = {(a[1], a[2]) for a in await role_actions(store)}
    assert granted == {(ALICE, ELDER), (ALICE, WEEKLY)}  # not VETERAN: 2 h of active time
    assert await store.rewards.preview(active, NOW) == (0, [])
    assert await store.rewards.preview(total, NOW) == (1, [(ALICE, 4 * H)])
    assert await store.rewards.preview(weekly, NOW) == (1, [(ALICE, 4 * H)])


@part("rewards", "links", "steam", "stats")
async def test_a_periods_days_are_the_communitys_local_days(store: Store) -> None:
    assert await store.stats.use_timezone("Europe/Moscow")
    await link(store, ALICE)
    await play(store, SID, 50, NOW)
    late = NOW + timedelta(hours=10)  # 22:00 UTC: already the next day in Moscow (UTC+3)
    await play(store, SID, 52, late)
    daily = await add(store, 1, period="today")
    morning = NOW + timedelta(hours=20)  # the next day in both zones
    assert await store.rewards.preview(daily, morning) == (1, [(ALICE, 2 * H)])
    assert await store.rewards.preview(daily, late) == (1, [(ALICE, 2 * H)])
    assert await store.rewards.candidates(GUILD, morning) == [ALICE]
    assert await store.stats.use_timezone("UTC")  # the days are counted again
    assert await store.rewards.preview(daily, morning) == (0, [])
    assert await store.rewards.preview(daily, late) == (1, [(ALICE, 2 * H)])
    assert await store.rewards.candidates(GUILD, morning) == []
