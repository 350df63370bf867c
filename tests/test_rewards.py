"""Role rewards (issue 17, second half), through the ingest path, the action worker and the fake
Discord REST API: a grant once when a BattleMetrics report crosses the threshold, backfill on
creation, daily demotion for a period reward, replace mode, a role deleted later paused and
reported, a member who left, the best known total across sources (never a sum), links and
verification, and privacy export and delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.gateway.client import Questlog
from bot.gateway.role_actions import RoleActions
from bot.rewards import RewardRefused
from bot.storage.playtime import record_playtime
from bot.storage.rewards import earned, member_values
from tests.conftest import GUILD, database_at, provide_role_actions
from tests.fakes.discord import FakeDiscord
from tests.test_ingest import bm_raw

HERE = 900000000000000091
GUILD_CHANNELS = {HERE: None}
SQUAD, GRIM = "393380", "219990"
ALICE, BOB, CAROL = 4000000000000000401, 4000000000000000402, 4000000000000000403
ALICE_STEAM, ALICE_ALT = "76561198000000401", "76561198000000411"
BOB_STEAM, CAROL_STEAM = "76561198000000402", "76561198000000403"
VETERAN, ELDER, WEEKLY = 1400000000000000011, 1400000000000000012, 1400000000000000013
H = 3600


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))  # a Wednesday


@pytest.fixture
def roles(core: Core, bot: Questlog, discord_api: FakeDiscord) -> RoleActions:
    return provide_role_actions(
        core, bot, discord_api, {VETERAN: 2, ELDER: 3, WEEKLY: 4},
        {ALICE: "alice", BOB: "bob", CAROL: "carol"},
    )  # fmt: skip


async def link(core: Core, user: int, steam_id: str, verified_by: str | None = None) -> None:
    if verified_by is None:
        await core.store.links.link(
            guild_id=GUILD, discord_user_id=user, source="steam", external_id=steam_id,
            now=core.clock.now(), display_name=f"player-{user % 1000}",
        )  # fmt: skip
    else:
        await core.store.links.verify(
            guild_id=GUILD, discord_user_id=user,
            accounts=[("steam", steam_id, f"player-{user % 1000}")], verified_by=verified_by,
            now=core.clock.now(),
        )  # fmt: skip


async def steam_total(core: Core, steam_id: str, game: str, hours: float) -> None:
    """Steam's lifetime figure for the account (as the sync stores it), sampled."""
    now = core.clock.now()
    await core.store.engine.write(
        lambda c: record_playtime(
            c, scope=0, source="steam", player_id=steam_id, game_id=game,
            seconds=int(hours * H), source_time=now, now_text=to_iso(now),
        )
    )  # fmt: skip


async def bm(core: Core, steam_id: str, hours: float, sig: str) -> Any:
    """A BattleMetrics playtime report for the account (Squad)."""
    core.clock.advance(1)  # type: ignore[attr-defined]
    raw = bm_raw(core, int(hours * H), sig=sig * 64, steam_id=steam_id)
    return await core.pipeline.ingest("battlemetrics", GUILD, raw)


async def actions(core: Core) -> list[tuple[str, int, int, str]]:
    """(action, member, role, status) of every queued role action, in order."""
    rows = await core.store.engine.fetchall(
        "SELECT action, discord_user_id, json_extract(payload, '$.role_id'), status"
        " FROM action_outbox ORDER BY id"
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def run_actions(core: Core) -> None:
    while await core.actions.run_once():
        pass


async def events(core: Core, kind: str = "reward.granted") -> list[dict[str, Any]]:
    rows = await core.store.engine.fetchall(
        "SELECT actor_user_id, title, payload FROM activity_events WHERE type = ? ORDER BY id",
        (kind,),
    )
    return [{"user": r[0], "title": r[1], "payload": r[2]} for r in rows]


async def test_hours_are_the_best_known_total_across_sources_never_a_sum(core: Core) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await link(core, ALICE, ALICE_ALT)  # a second Steam account: a source's accounts add up
    await steam_total(core, ALICE_STEAM, SQUAD, 60)
    await steam_total(core, ALICE_ALT, SQUAD, 30)
    await steam_total(core, ALICE_STEAM, GRIM, 120)
    await bm(core, ALICE_STEAM, 95, "a")  # BattleMetrics sees the same Squad hours

    def values(c: Any) -> Any:
        return member_values(c, GUILD, [ALICE], None)

    found = (await core.store.engine.read(values))[ALICE]
    assert found == {(SQUAD, "steam"): (90 * H, 0), (GRIM, "steam"): (120 * H, 0),
                     (SQUAD, "battlemetrics"): (95 * H, 0)}  # fmt: skip
    squad = await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100, game_id=SQUAD)
    best = await core.rewards.add(guild_id=GUILD, role_id=ELDER, hours=110)  # best game
    steam_only = await core.rewards.add(
        guild_id=GUILD, role_id=WEEKLY, hours=92, game_id=SQUAD, source="steam"
    )
    won = earned([squad, best, steam_only], {"all": found})
    assert won == {best.id: 120 * H}  # not 185 h of Squad; Steam alone has 90 h
    found[SQUAD, "battlemetrics"] = (101 * H, 0)
    assert earned([squad, best, steam_only], {"all": found}) == {
        squad.id: 101 * H, best.id: 120 * H,
    }  # fmt: skip
    count, top = await core.rewards.preview(guild_id=GUILD, hours=100, game_id=SQUAD)
    assert (count, top) == (0, [])
    count, top = await core.rewards.preview(guild_id=GUILD, hours=90, game_id=SQUAD)
    assert (count, top) == (1, [(ALICE, 95 * H)])


async def test_a_battlemetrics_report_crossing_the_threshold_grants_once_and_announces(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await bm(core, ALICE_STEAM, 80, "a")  # the first report: a baseline, below anyway
    reward = await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100, game_id=SQUAD)
    await core.rewards.settled()
    assert await actions(core) == []  # nobody qualifies yet
    result = await bm(core, ALICE_STEAM, 99.9, "b")
    assert result.actions == 0 and await actions(core) == []
    result = await bm(core, ALICE_STEAM, 100.5, "c")
    assert result.actions == 1
    assert await actions(core) == [("grant_role", ALICE, VETERAN, "pending")]
    [event] = await events(core)
    assert (event["user"], event["title"]) == (ALICE, "player-401 earned a reward for 100 h")
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {VETERAN}
    for n, sig in enumerate("defg"):  # more hours, the same reward: nothing more is sent
        await bm(core, ALICE_STEAM, 101 + n, sig)
    await core.rewards.check_guild(GUILD)
    assert await actions(core) == [("grant_role", ALICE, VETERAN, "done")]
    assert len(await events(core)) == 1
    [summary] = await core.rewards.summaries(GUILD)
    assert (summary.reward.id, summary.holders, summary.waiting) == (reward.id, 1, 0)


async def test_a_new_reward_goes_at_once_to_everyone_already_over_it_silently(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    for user, steam_id, hours in ((ALICE, ALICE_STEAM, 150), (BOB, BOB_STEAM, 101),
                                  (CAROL, CAROL_STEAM, 40)):  # fmt: skip
        await link(core, user, steam_id)
        await steam_total(core, steam_id, SQUAD, hours)
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100, created_by=ALICE)
    await core.rewards.settled()
    assert sorted(await actions(core)) == [
        ("grant_role", ALICE, VETERAN, "pending"), ("grant_role", BOB, VETERAN, "pending"),
    ]  # fmt: skip
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {VETERAN}
    assert discord_api.member_roles[(GUILD, BOB)] == {VETERAN}
    assert (GUILD, CAROL) not in discord_api.member_roles
    assert await events(core) == []  # a backfill is not news
    with pytest.raises(RewardRefused) as twice:
        await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100)
    assert twice.value.msgid == "rewards.refused.duplicate"


async def test_a_period_reward_comes_and_goes_and_only_roles_questlog_gave_are_taken(
    core: Core, clock: ManualClock, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await link(core, BOB, BOB_STEAM)
    await steam_total(core, ALICE_STEAM, SQUAD, 500)  # the first reads: no period's hours
    await steam_total(core, BOB_STEAM, SQUAD, 500)
    discord_api.member_roles[(GUILD, BOB)] = {WEEKLY}  # given by hand, long ago
    await core.rewards.add(guild_id=GUILD, role_id=WEEKLY, hours=10, period="week")
    await core.rewards.settled()
    assert await actions(core) == []  # 500 h all time, none this week
    clock.advance(3600)
    await steam_total(core, ALICE_STEAM, SQUAD, 511)  # 11 h this week
    await core.rewards.check_guild(GUILD)
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {WEEKLY}
    clock.set(datetime(2026, 12, 6, 23, 0, tzinfo=UTC))  # Sunday: still this week
    assert (await core.rewards.check_all()).queued == 0
    clock.set(core.rewards.next_daily(clock.now()))  # Monday 00:05: a new week
    changes = await core.rewards.check_all()
    assert [(r.role_id, user) for r, user in changes.removed] == [(WEEKLY, ALICE)]
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == set()
    assert discord_api.member_roles[(GUILD, BOB)] == {WEEKLY}  # never Questlog's to take
    assert [a[:3] for a in await actions(core)] == [
        ("grant_role", ALICE, WEEKLY), ("remove_role", ALICE, WEEKLY),
    ]  # fmt: skip


async def test_replace_mode_keeps_only_the_highest_tier(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await link(core, BOB, BOB_STEAM)
    await bm(core, ALICE_STEAM, 20, "a")
    await bm(core, BOB_STEAM, 600, "b")
    low = await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=10, game_id=SQUAD,
                                 mode="replace")  # fmt: skip
    await core.rewards.add(guild_id=GUILD, role_id=ELDER, hours=500, game_id=SQUAD,
                           mode="replace")  # fmt: skip
    stacked = await core.rewards.add(guild_id=GUILD, role_id=WEEKLY, hours=15, game_id=SQUAD)
    await core.rewards.settled()
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {VETERAN, WEEKLY}
    assert discord_api.member_roles[(GUILD, BOB)] == {ELDER, WEEKLY}  # not the lower tier
    await bm(core, ALICE_STEAM, 510, "c")  # Alice climbs a tier
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {ELDER, WEEKLY}
    payloads = [e["payload"] for e in await events(core)]
    assert len(payloads) == 1 and f'"reward_id":{low.id + 1}' in payloads[0]
    assert stacked.id not in [r.id for r, _ in (await core.rewards.check_guild(GUILD)).removed]


async def test_a_role_deleted_later_pauses_its_reward_and_shows_without_blocking_others(
    core: Core, clock: ManualClock, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await link(core, BOB, BOB_STEAM)
    await bm(core, ALICE_STEAM, 1, "a")
    await bm(core, BOB_STEAM, 1, "b")
    gone = await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=5, game_id=SQUAD)
    fine = await core.rewards.add(guild_id=GUILD, role_id=ELDER, hours=6, game_id=SQUAD)
    del discord_api.guild_roles[GUILD][VETERAN]  # an admin deleted the role
    await bm(core, ALICE_STEAM, 7, "c")
    await bm(core, BOB_STEAM, 7, "d")
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {ELDER}
    assert discord_api.member_roles[(GUILD, BOB)] == {ELDER}
    by_id = {s.reward.id: s for s in await core.rewards.summaries(GUILD)}
    assert by_id[gone.id].paused_reason == "Unknown Role (10011): the role was deleted"
    assert by_id[gone.id].waiting == 2 and by_id[fine.id].paused_reason is None
    status = await core.store.actions.status(GUILD, clock.now())
    assert [p[1] for p in status.pauses] == [f"reward:{gone.id}"]
    assert status.counts == {"paused": 2, "done": 2}
    await core.rewards.remove(GUILD, gone.id, take_back=True)  # the waiting grants give way
    await run_actions(core)  # and taking back a deleted role has nothing to do
    status = await core.store.actions.status(GUILD, clock.now())
    assert status.pauses == [] and status.counts == {"done": 5}  # one removal: one was tried
    assert discord_api.member_roles[(GUILD, ALICE)] == {ELDER}


async def test_a_member_who_left_is_done_and_gets_the_role_again_when_back(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, CAROL, CAROL_STEAM)
    del discord_api.members[(GUILD, CAROL)]  # Carol left the server
    await bm(core, CAROL_STEAM, 1, "a")
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=2, game_id=SQUAD)
    await bm(core, CAROL_STEAM, 3, "b")
    await run_actions(core)
    assert await actions(core) == [("grant_role", CAROL, VETERAN, "done")]
    row = await core.store.engine.fetchone("SELECT last_error FROM action_outbox")
    assert row[0] == "Unknown Member (10007): they left the server"
    discord_api.add_member(GUILD, CAROL, "carol")  # she is back (GUILD_MEMBER_ADD)
    changes = await core.rewards.member_joined(GUILD, CAROL)
    assert len(changes.granted) == 1
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, CAROL)] == {VETERAN}


async def test_unlinking_takes_the_reward_away_and_verification_counts_only_proven_links(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await link(core, BOB, BOB_STEAM, verified_by="openid")
    for steam_id in (ALICE_STEAM, BOB_STEAM):
        await steam_total(core, steam_id, SQUAD, 200)
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100)
    await core.rewards.settled()
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {VETERAN}
    await core.store.links.set_require_verified(GUILD, True, core.clock.now())
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == set()  # an unproven claim
    assert discord_api.member_roles[(GUILD, BOB)] == {VETERAN}
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=BOB, source="steam")
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, BOB)] == set()
    await link(core, BOB, BOB_STEAM, verified_by="openid")  # linked again: back at once
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, BOB)] == {VETERAN}


async def test_export_and_delete_include_rewards(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await steam_total(core, ALICE_STEAM, SQUAD, 200)
    reward = await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100, created_by=ALICE)
    await core.rewards.settled()
    exported = await core.store.privacy.export(GUILD, ALICE)
    [held] = exported["rewards_held"]
    assert (held["reward_id"], held["role_id"], held["hours"]) == (reward.id, VETERAN, 100)
    assert [r["reward_id"] for r in exported["rewards_created"]] == [reward.id]
    report = await core.store.privacy.forget(GUILD, ALICE, core.clock.now(), drop_tokens=False)
    assert report.removed["reward_grants"] == 1 and report.removed["rewards"] == 1
    for table, column in (("reward_grants", "discord_user_id"), ("rewards", "created_by"),
                          ("action_outbox", "discord_user_id")):  # fmt: skip
        row = await core.store.engine.fetchone(
            f"SELECT count(*) FROM {table} WHERE {column} = ?", (ALICE,)
        )
        assert row[0] == 0, table
    [kept] = await core.rewards.rewards(GUILD)  # the reward itself stays, nameless
    assert kept.id == reward.id and kept.created_by is None


async def test_the_daily_check_is_just_after_the_communitys_midnight(core: Core) -> None:
    now = datetime(2026, 12, 2, 23, 59, tzinfo=UTC)
    assert core.rewards.next_daily(now) == datetime(2026, 12, 3, 0, 5, tzinfo=UTC)
    assert core.rewards.next_daily(now + timedelta(minutes=2)) == datetime(
        2026, 12, 4, 0, 5, tzinfo=UTC
    )


def test_upgrading_adds_empty_reward_tables_and_the_member_index() -> None:
    from bot.storage.engine import apply_migrations

    conn = database_at(27)
    conn.execute(
        "INSERT INTO member_playtime (guild_id, game_id, discord_user_id, source, seconds)"
        " VALUES (1, '393380', 7, 'steam', 3600)"
    )
    assert apply_migrations(conn, up_to=28) == [28]
    assert conn.execute("SELECT count(*) FROM rewards").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM reward_grants").fetchone() == (0,)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT game_id FROM member_playtime"
        " WHERE guild_id = 1 AND discord_user_id = 7"
    ).fetchall()
    assert "member_playtime_member" in " ".join(str(row[-1]) for row in plan)
    assert conn.execute("SELECT seconds FROM member_playtime").fetchone() == (3600,)


async def test_a_role_the_member_had_already_is_never_taken_away(
    core: Core, clock: ManualClock, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, BOB, BOB_STEAM)
    await steam_total(core, BOB_STEAM, SQUAD, 500)
    discord_api.member_roles[(GUILD, BOB)] = {WEEKLY}  # given by hand
    await core.rewards.add(guild_id=GUILD, role_id=WEEKLY, hours=10, period="week")
    clock.advance(3600)
    await steam_total(core, BOB_STEAM, SQUAD, 520)  # Bob earns it this week
    await core.rewards.check_guild(GUILD)
    await run_actions(core)
    row = await core.store.engine.fetchone("SELECT status, last_error FROM action_outbox")
    assert tuple(row) == ("done", "the member already had the role")
    owned = await core.store.engine.fetchone("SELECT owned FROM reward_grants")
    assert owned[0] == 0
    clock.set(datetime(2026, 12, 7, 0, 5, tzinfo=UTC))  # a new week: he no longer earns it
    changes = await core.rewards.check_all()
    assert len(changes.removed) == 1 and len(await actions(core)) == 1  # no removal queued
    assert discord_api.member_roles[(GUILD, BOB)] == {WEEKLY}


async def test_a_grant_in_flight_when_the_member_unlinks_cannot_undo_the_removal(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    import asyncio

    await link(core, ALICE, ALICE_STEAM)
    await steam_total(core, ALICE_STEAM, SQUAD, 200)
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100)
    await core.rewards.settled()
    discord_api.member_delay = 0.3  # the grant reads the member first: in flight meanwhile
    discord_api.role_failures.append(503)  # and then fails, to be tried again
    attempt = asyncio.create_task(core.actions.run_once())
    await asyncio.sleep(0.1)
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam")
    await attempt
    discord_api.member_delay = 0
    assert await actions(core) == [
        ("grant_role", ALICE, VETERAN, "done"), ("remove_role", ALICE, VETERAN, "pending"),
    ]  # fmt: skip
    row = await core.store.engine.fetchone("SELECT last_error FROM action_outbox WHERE id = 1")
    assert row[0] == "superseded by a later change"
    core.clock.advance(3600)  # type: ignore[attr-defined]
    await run_actions(core)
    assert discord_api.member_roles.get((GUILD, ALICE), set()) == set()


async def test_removing_a_reward_still_takes_back_what_waited_behind_a_pause(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await link(core, BOB, BOB_STEAM)
    await bm(core, ALICE_STEAM, 1, "a")
    await bm(core, BOB_STEAM, 1, "b")
    reward = await core.rewards.add(
        guild_id=GUILD, role_id=WEEKLY, hours=5, game_id=SQUAD, period="week"
    )
    await bm(core, ALICE_STEAM, 7, "c")  # Alice earns it: granted
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {WEEKLY}
    discord_api.no_manage_roles.add(GUILD)  # an admin took Manage Roles away
    await bm(core, BOB_STEAM, 7, "d")  # Bob's grant is refused: the reward pauses
    await run_actions(core)
    [summary] = await core.rewards.summaries(GUILD)
    assert summary.paused_reason is not None and "50013" in summary.paused_reason
    discord_api.no_manage_roles.discard(GUILD)
    holders = await core.rewards.remove(GUILD, reward.id, take_back=True)
    assert holders == [ALICE, BOB]
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == set()  # taken back
    assert WEEKLY not in discord_api.member_roles.get((GUILD, BOB), set())  # never given
    assert (await core.store.actions.status(GUILD, core.clock.now())).pauses == []


def test_the_feed_writes_a_reward_in_the_guilds_language() -> None:
    from bot.feed.embeds import build_embed
    from bot.feed.titles import write_title
    from bot.i18n import texts

    event = {
        "type": "reward.granted", "actor_name": "Alice", "actor_user_id": ALICE,
        "payload": {"reward_id": 1, "role_id": VETERAN, "hours": 100, "game_id": SQUAD,
                    "game_name": "Squad", "period": "all", "seconds": 101 * H},
    }  # fmt: skip
    assert write_title(texts("en"), event) == "Alice earned a reward for 100 hours in Squad"
    assert write_title(texts("ru"), event) == "Alice получает награду за 100 часов в Squad"
    weekly = {**event, "payload": {**event["payload"], "game_id": None, "game_name": None,
                                   "period": "week", "hours": 21}}  # fmt: skip
    assert (
        write_title(texts("ru"), weekly) == "Alice получает награду за 21 час игры на этой неделе"
    )
    assert write_title(texts("en"), weekly) == "Alice earned a reward for 21 hours played this week"
    embed = build_embed({**event, "title": "stored", "occurred_at": "2026-12-02T12:00:00Z"})
    assert {"name": "Role", "value": f"<@&{VETERAN}>", "inline": True} in embed["fields"]
    assert embed["description"] == f"<@{ALICE}>"


def test_upgrading_to_0029_keeps_grants_owned_and_indexes_a_keys_actions() -> None:
    from bot.storage.engine import apply_migrations

    conn = database_at(28)
    conn.execute(
        "INSERT INTO reward_grants (reward_id, discord_user_id, guild_id, role_id, seconds,"
        " granted_at) VALUES (1, 7, 1, 9, 3600, '2026-12-01T00:00:00.000000Z')"
    )
    assert apply_migrations(conn, up_to=29) == [29]
    assert conn.execute("SELECT owned FROM reward_grants").fetchone() == (1,)
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(action_outbox)")}
    assert "action_outbox_key" in indexes


async def test_a_role_passed_between_two_rewards_stays_questlogs(
    core: Core, clock: ManualClock, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await steam_total(core, ALICE_STEAM, SQUAD, 90)
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=10, period="week")
    clock.advance(3600)
    await steam_total(core, ALICE_STEAM, SQUAD, 101)  # 11 h this week, 101 h in all
    await core.rewards.check_guild(GUILD)
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {VETERAN}
    clock.set(datetime(2026, 12, 7, 0, 5, tzinfo=UTC))  # a new week: the weekly one goes...
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100)  # ...this one holds it
    await core.rewards.settled()
    await run_actions(core)
    assert [a[0] for a in await actions(core)] == ["grant_role"]  # nothing more was sent
    owned = await core.store.engine.fetchall("SELECT reward_id, owned FROM reward_grants")
    assert [tuple(r) for r in owned] == [(2, 1)]
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam")
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == set()  # Questlog's, so taken back


async def test_earned_again_while_the_removal_was_refused_the_role_stays_questlogs(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await steam_total(core, ALICE_STEAM, SQUAD, 200)
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100)
    await core.rewards.settled()
    await run_actions(core)
    discord_api.no_manage_roles.add(GUILD)
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam")
    await run_actions(core)  # the removal is refused: paused
    await link(core, ALICE, ALICE_STEAM)  # linked again: the role never left
    discord_api.no_manage_roles.discard(GUILD)
    core.clock.advance(86400)  # type: ignore[attr-defined]
    await run_actions(core)
    assert [a[0] for a in await actions(core)] == ["grant_role", "remove_role"]
    owned = await core.store.engine.fetchone("SELECT owned FROM reward_grants")
    assert owned[0] == 1 and discord_api.member_roles[(GUILD, ALICE)] == {VETERAN}
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam")
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == set()


async def test_a_grant_left_in_flight_by_a_crash_never_undoes_a_later_removal(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await steam_total(core, ALICE_STEAM, SQUAD, 200)
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100)
    await core.rewards.settled()
    await core.store.engine.write(  # the process dies while the grant is being sent
        lambda c: c.execute("UPDATE action_outbox SET status = 'in_flight'")
    )
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam")
    await core.store.actions.recover(core.clock.now())  # the next start
    await run_actions(core)
    assert discord_api.member_roles.get((GUILD, ALICE), set()) == set()
    rows = await core.store.engine.fetchall("SELECT action, status, last_error FROM action_outbox")
    assert [tuple(r) for r in rows] == [
        ("grant_role", "done", "superseded by a later change"),
        ("remove_role", "done", None),
    ]


async def test_removing_a_reward_hands_an_unsent_grant_to_one_with_the_same_role(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await steam_total(core, ALICE_STEAM, SQUAD, 200)
    first = await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=100)
    await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=50, game_id=SQUAD)
    await core.rewards.settled()
    assert len(await actions(core)) == 1  # one grant of the role, under the first reward
    await core.rewards.remove(GUILD, first.id, take_back=True)
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == {VETERAN}
    [(reward_id,)] = await core.store.engine.fetchall("SELECT reward_id FROM reward_grants")
    assert reward_id == first.id + 1


async def test_a_removal_refused_before_its_reward_was_removed_still_goes(
    core: Core, clock: ManualClock, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await steam_total(core, ALICE_STEAM, SQUAD, 90)
    weekly = await core.rewards.add(guild_id=GUILD, role_id=WEEKLY, hours=10, period="week")
    clock.advance(3600)
    await steam_total(core, ALICE_STEAM, SQUAD, 101)
    await core.rewards.check_guild(GUILD)
    await run_actions(core)
    discord_api.no_manage_roles.add(GUILD)
    clock.set(datetime(2026, 12, 7, 0, 5, tzinfo=UTC))
    await core.rewards.check_all()  # the week is over: the removal is refused, paused
    await run_actions(core)
    assert [a[3] for a in await actions(core)] == ["done", "paused"]
    discord_api.no_manage_roles.discard(GUILD)
    await core.rewards.remove(GUILD, weekly.id, take_back=False)  # keep what was given...
    await run_actions(core)
    assert discord_api.member_roles[(GUILD, ALICE)] == set()  # ...but this was taken already


async def test_a_reset_total_still_earns_a_period_reward_at_once(
    core: Core, roles: RoleActions, discord_api: FakeDiscord
) -> None:
    await link(core, ALICE, ALICE_STEAM)
    await bm(core, ALICE_STEAM, 50, "a")
    await bm(core, ALICE_STEAM, 58, "b")  # 8 h this week
    await bm(core, ALICE_STEAM, 1, "c")  # the server reset its totals
    await core.rewards.add(guild_id=GUILD, role_id=WEEKLY, hours=12, game_id=SQUAD, period="week")
    await core.rewards.settled()
    result = await bm(core, ALICE_STEAM, 5, "d")  # 12 h this week, 5 h "in all"
    assert result.actions == 1


async def test_a_reward_counts_active_time_unless_it_counts_the_total(
    core: Core, roles: RoleActions
) -> None:
    from tests.test_afk import STEVE, event

    await core.store.links.link(
        guild_id=GUILD, discord_user_id=ALICE, source="minecraft", external_id=STEVE,
        now=core.clock.now(), display_name="Steve",
    )  # fmt: skip
    active = await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=3, game_id="minecraft")
    total = await core.rewards.add(
        guild_id=GUILD, role_id=ELDER, hours=3, game_id="minecraft", counting="total"
    )
    await core.rewards.add(
        guild_id=GUILD, role_id=WEEKLY, hours=3, game_id="minecraft", period="7d",
        counting="total",
    )  # fmt: skip
    assert (active.counting, total.counting) == ("active", "total")
    await core.rewards.settled()
    t = core.clock.now() - timedelta(hours=5)
    await event(core, "session.started", t)
    await event(core, "afk.started", t + timedelta(hours=1))
    await event(core, "afk.ended", t + timedelta(hours=3))
    await event(core, "session.ended", t + timedelta(hours=4))  # 2 h active, 4 h in all
    await core.rewards.settled()
    await core.rewards.check_guild(GUILD)
    granted = {(member, role) for _, member, role, _ in await actions(core)}
    assert granted == {(ALICE, ELDER), (ALICE, WEEKLY)}  # not VETERAN: 2 h of active time
    assert await core.rewards.preview(guild_id=GUILD, hours=3, game_id="minecraft") == (0, [])
    assert await core.rewards.preview(
        guild_id=GUILD, hours=3, game_id="minecraft", counting="total"
    ) == (1, [(ALICE, 4 * H)])
    with pytest.raises(RewardRefused):
        await core.rewards.add(guild_id=GUILD, role_id=VETERAN, hours=9, counting="afk")
    [listed] = [r for r in await core.store.rewards.list(GUILD) if r.id == total.id]
    assert listed.counting == "total"  # stored, not only returned
