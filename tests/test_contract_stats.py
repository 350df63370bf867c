"""The ``stats`` part of the store's contract (bot/storage/interface.py, StatsStore): member
totals, leaderboards of all time and of local days, days for charts, Linked Roles values, the
summary time zone and the guild's games. Playtime comes in only through interface methods:
Steam lookups (``steam.record_lookup``) and webhook deliveries (``events.ingest``)."""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from bot.clock import to_iso
from bot.ingest.policy import IngestPolicy
from bot.storage import Store
from bot.storage.records import BoardPage, DailyPlaytime, Delivery, RoleValues, Total
from connectors.base import PlaytimeAdded, SetPlaytime
from connectors.registry import Registry
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

SQUAD = "393380"
ALICE, BOB, CAROL, DAVE, ERIN = 11, 22, 33, 44, 55
A_SID, B_SID, C_SID, C_SID2, D_SID = SID, *(f"7656119800000000{n}" for n in range(2, 6))
HOUR = 3600
_REGISTRY = Registry().discover()
_N = itertools.count()


async def link(
    store: Store, user: int, external: str, source: str = "steam", guild: int = GUILD
) -> None:
    await store.links.link(
        guild_id=guild, discord_user_id=user, source=source, external_id=external, now=NOW,
        display_name=f"name-{user}",
    )  # fmt: skip


async def steam_total(store: Store, steam_id: str, seconds: int | None, at: datetime) -> None:
    """Steam's public total for Squad (a lookup's answer: global, every guild's)."""
    await store.steam.record_lookup(
        steam_id, int(SQUAD), seconds=seconds, status="ok" if seconds is not None else "private",
        name="Squad", now=at,
    )  # fmt: skip


async def bm_total(
    store: Store, guild: int, steam_id: str, seconds: int, at: datetime, game: str = SQUAD
) -> None:
    """A BattleMetrics report of the player's total on the guild's server."""
    n = next(_N)
    raw = {"type": "set_playtime", "steam_id": steam_id, "playtime": seconds,
           "game_id": int(game), "name": None, "t": str(n), "s": f"{n:064x}",
           "signed_at": to_iso(at)}  # fmt: skip
    await _ingest(store, guild, "battlemetrics", raw, [SetPlaytime(steam_id, game, seconds, at)])


async def presence(
    store: Store, guild: int, user: int, game: str, seconds: int, at: datetime, idle: int = 0
) -> None:
    """Discord presence adds active seconds (and idle ones beside them) to the member."""
    n = next(_N)
    raw = {"type": "presence.played", "user_id": str(user), "game_id": game, "session": f"s{n}",
           "seq": n, "seconds": seconds, "idle_seconds": idle, "at": to_iso(at)}  # fmt: skip
    effect = PlaytimeAdded(str(user), game, seconds, at, away_seconds=idle)
    await _ingest(store, guild, "discord", raw, [effect])


async def _ingest(store: Store, guild: int, key: str, raw: dict[str, Any], effects: list) -> None:
    connector = _REGISTRY.get(key)
    delivery = Delivery(guild, key, None, f"{key}-{next(_N)}", "{}", to_iso(NOW))
    result = await store.events.ingest(delivery, connector, raw, effects, IngestPolicy())
    assert result.status == "accepted"


async def seed(store: Store) -> None:
    """Alice: Steam 10 h, the guild's BattleMetrics 4 h (10 h counts, not 14 h). Bob: the
    guild's BattleMetrics 6 h; another guild's 900 h are Erin's there. Carol: two Steam
    accounts, 1 h and 2 h (3 h). Dave: linked, nothing played."""
    for user, external in ((ALICE, A_SID), (BOB, B_SID), (CAROL, C_SID), (CAROL, C_SID2)):
        await link(store, user, external)
    await link(store, DAVE, D_SID)
    await link(store, ERIN, B_SID, guild=OTHER)
    await steam_total(store, A_SID, 10 * HOUR, NOW)
    await bm_total(store, GUILD, A_SID, 4 * HOUR, NOW)
    await bm_total(store, GUILD, B_SID, 6 * HOUR, NOW)
    await bm_total(store, OTHER, B_SID, 900 * HOUR, NOW)
    await steam_total(store, C_SID, 1 * HOUR, NOW)
    await steam_total(store, C_SID2, 2 * HOUR, NOW)
    await steam_total(store, D_SID, 0, NOW)


@part("links", "steam", "events", "stats")
async def test_the_all_time_board_counts_the_larger_source_and_pages(store: Store) -> None:
    await seed(store)
    board = store.stats.leaderboard
    page = await board(GUILD, SQUAD, None)
    assert page == BoardPage([(ALICE, 10 * HOUR), (BOB, 6 * HOUR), (CAROL, 3 * HOUR)], 3, 0)
    assert await board(OTHER, SQUAD, None) == BoardPage([(ERIN, 900 * HOUR)], 1, 0)
    assert await board(GUILD, "730", None) == BoardPage([], 0, 0)  # nobody played it
    assert await board(GUILD, SQUAD, None, 1, 1) == BoardPage([(BOB, 6 * HOUR)], 3, 1)
    assert await board(GUILD, SQUAD, None, 2, 2) == BoardPage([(CAROL, 3 * HOUR)], 3, 2)
    # Past the end: the last page, and where it starts.
    assert await board(GUILD, SQUAD, None, 9, 2) == BoardPage([(CAROL, 3 * HOUR)], 3, 2)
    assert await board(GUILD, SQUAD, None, 3, 1) == BoardPage([(CAROL, 3 * HOUR)], 3, 2)
    assert (await board(GUILD, SQUAD, None, -5, 2)).offset == 0
    # A tie is ranked by member id; a total that grew moves the member up.
    await steam_total(store, D_SID, 6 * HOUR, NOW + timedelta(hours=1))
    page = await board(GUILD, SQUAD, None)
    assert page.rows == [(ALICE, 10 * HOUR), (BOB, 6 * HOUR), (DAVE, 6 * HOUR), (CAROL, 3 * HOUR)]
    await bm_total(store, GUILD, B_SID, 11 * HOUR, NOW + timedelta(hours=1))
    assert (await board(GUILD, SQUAD, None, 0, 1)).rows == [(BOB, 11 * HOUR)]
    # Unlinked: off the board; linked again (by another member): theirs.
    await store.links.unlink(guild_id=GUILD, discord_user_id=BOB, source="steam", now=NOW)
    assert BOB not in dict((await board(GUILD, SQUAD, None)).rows)
    await link(store, DAVE, B_SID)
    assert (await board(GUILD, SQUAD, None, 0, 1)).rows == [(DAVE, 11 * HOUR)]  # the larger


@part("links", "steam", "events", "stats")
async def test_boards_of_days_sum_the_growth_on_those_local_days(store: Store) -> None:
    await seed(store)  # first reports: baselines, no one day's
    board = store.stats.leaderboard
    assert await store.stats.use_timezone("UTC")
    march_3 = datetime(2025, 3, 3, 10, tzinfo=NOW.tzinfo)  # a Monday
    await steam_total(store, A_SID, 10 * HOUR + 1800, march_3)  # +30 min on Monday
    await bm_total(store, GUILD, A_SID, 4 * HOUR + 2400, march_3)  # +40 min: the larger
    await bm_total(store, GUILD, B_SID, 7 * HOUR, march_3 + timedelta(days=6))  # +1 h Sunday
    await steam_total(store, C_SID, 1 * HOUR + 600, march_3 + timedelta(days=7))  # next Monday
    await steam_total(store, C_SID2, 2 * HOUR + 600, march_3 + timedelta(days=7))
    await steam_total(store, D_SID, 300, datetime(2025, 4, 1, 0, 5, tzinfo=NOW.tzinfo))

    async def rows(first: date, last: date, offset: int = 0, limit: int = 10) -> Any:
        return (await board(GUILD, SQUAD, (first, last), offset, limit)).rows

    monday = march_3.date()
    assert await rows(monday, monday) == [(ALICE, 2400)]
    week = (monday, monday + timedelta(days=6))  # a whole week's summary
    assert await rows(*week) == [(BOB, HOUR), (ALICE, 2400)]
    march = (date(2025, 3, 1), date(2025, 3, 31))  # a whole month's summary
    assert await rows(*march) == [(BOB, HOUR), (ALICE, 2400), (CAROL, 1200)]
    # Rolling windows: whole months and weeks, and the days around them.
    assert await rows(date(2025, 2, 20), date(2025, 4, 1)) == [
        (BOB, HOUR), (ALICE, 2400), (CAROL, 1200), (DAVE, 300),
    ]  # fmt: skip
    assert await rows(monday + timedelta(days=1), monday + timedelta(days=7)) == [
        (BOB, HOUR), (CAROL, 1200),
    ]  # fmt: skip
    assert await rows(date(2025, 4, 1), date(2025, 4, 30)) == [(DAVE, 300)]
    assert await rows(date(2025, 3, 1), date(2025, 3, 2)) == []  # nothing grew then
    assert await board(GUILD, SQUAD, (monday, monday - timedelta(days=1))) == BoardPage([], 0, 0)
    # Pages of a range, and the last page past the end.
    assert await board(GUILD, SQUAD, march, 1, 1) == BoardPage([(ALICE, 2400)], 3, 1)
    assert await board(GUILD, SQUAD, march, 7, 2) == BoardPage([(CAROL, 1200)], 3, 2)
    # Another guild ranks its own links only.
    assert (await board(OTHER, SQUAD, week)).rows == []
    await bm_total(store, OTHER, B_SID, 901 * HOUR, march_3)
    assert (await board(OTHER, SQUAD, week)).rows == [(ERIN, HOUR)]
    assert (await board(GUILD, SQUAD, (monday, monday))).rows == [(ALICE, 2400)]


@part("links", "steam", "events", "stats")
async def test_a_guild_that_requires_proof_ranks_proven_steam_links_only(store: Store) -> None:
    await seed(store)
    assert await store.stats.use_timezone("UTC")
    await steam_total(store, A_SID, 11 * HOUR, NOW + timedelta(minutes=1))
    await bm_total(store, GUILD, B_SID, 7 * HOUR, NOW + timedelta(minutes=1))
    day = (NOW.date(), NOW.date())
    assert [u for u, _ in (await store.stats.leaderboard(GUILD, SQUAD, day)).rows] == [ALICE, BOB]
    assert (await store.stats.leaderboard(GUILD, SQUAD, None)).rows == [
        (ALICE, 11 * HOUR), (BOB, 7 * HOUR), (CAROL, 3 * HOUR),
    ]  # fmt: skip
    await store.links.set_require_verified(GUILD, True, NOW)
    assert await store.stats.leaderboard(GUILD, SQUAD, day) == BoardPage([], 0, 0)
    assert await store.stats.leaderboard(GUILD, SQUAD, None) == BoardPage([], 0, 0)
    assert await store.stats.guild_daily(GUILD, NOW.date(), NOW.date()) == []
    await store.links.verify(
        guild_id=GUILD, discord_user_id=BOB, accounts=[("steam", B_SID, "Bob")],
        verified_by="openid", now=NOW,
    )  # fmt: skip
    assert (await store.stats.leaderboard(GUILD, SQUAD, day)).rows == [(BOB, HOUR)]
    assert (await store.stats.leaderboard(GUILD, SQUAD, None)).rows == [(BOB, 7 * HOUR)]
    values = await store.stats.role_values(GUILD, BOB, "2025-03-01", "2025-03-01")
    assert (values.steam_verified, values.steam_name, values.hours_total) == (True, "Bob", 7)
    alice = await store.stats.role_values(GUILD, ALICE, "2025-03-01", "2025-03-01")
    assert alice == RoleValues(0, 0, None, False, None)  # her typed link does not count
    await store.links.set_require_verified(GUILD, False, NOW)
    assert (await store.stats.leaderboard(GUILD, SQUAD, day)).rows == [(ALICE, HOUR), (BOB, HOUR)]


@part("links", "steam", "events", "stats")
async def test_member_totals_are_every_linked_accounts_largest_first(store: Store) -> None:
    await seed(store)
    totals = store.stats.member_totals
    assert await totals(GUILD, ALICE) == [
        Total(SQUAD, "steam", 10 * HOUR),
        Total(SQUAD, "battlemetrics", 4 * HOUR),
    ]
    await bm_total(store, GUILD, A_SID, 2 * HOUR, NOW, game="730")
    await steam_total(store, A_SID, None, NOW + timedelta(hours=1))  # private now: no value
    assert await totals(GUILD, ALICE) == [
        Total(SQUAD, "battlemetrics", 4 * HOUR),
        Total("730", "battlemetrics", 2 * HOUR),
    ]
    assert await totals(GUILD, ALICE, "730") == [Total("730", "battlemetrics", 2 * HOUR)]
    assert await totals(GUILD, CAROL) == [  # two accounts of a source: each its own total
        Total(SQUAD, "steam", 2 * HOUR),
        Total(SQUAD, "steam", 1 * HOUR),
    ]
    assert await totals(GUILD, BOB) == [Total(SQUAD, "battlemetrics", 6 * HOUR)]
    assert await totals(OTHER, ERIN) == [Total(SQUAD, "battlemetrics", 900 * HOUR)]
    assert await totals(GUILD, DAVE) == [Total(SQUAD, "steam", 0)]
    assert await totals(GUILD, 999) == [] and await totals(OTHER, ALICE) == []
    assert await totals(GUILD, BOB, "730") == []


@part("links", "events", "stats")
async def test_away_time_is_beside_the_active_time(store: Store) -> None:
    for user in (ALICE, BOB):
        await link(store, user, str(user), source="discord")
    assert await store.stats.use_timezone("UTC")
    await presence(store, GUILD, ALICE, "game-1", 1800, NOW, idle=600)
    await presence(store, GUILD, ALICE, "game-1", 1200, NOW + timedelta(days=1), idle=60)
    await presence(store, GUILD, BOB, "game-1", 4000, NOW)
    assert await store.stats.member_totals(GUILD, ALICE) == [Total("game-1", "discord", 3000, 660)]
    page = await store.stats.leaderboard(GUILD, "game-1", None)
    assert page == BoardPage([(BOB, 4000), (ALICE, 3000)], 2, 0, {ALICE: 660})
    day = await store.stats.leaderboard(GUILD, "game-1", (NOW.date(), NOW.date()))
    assert day == BoardPage([(BOB, 4000), (ALICE, 1800)], 2, 0, {ALICE: 600})
    later = (NOW.date() + timedelta(days=1),) * 2
    assert await store.stats.leaderboard(GUILD, "game-1", later) == BoardPage(
        [(ALICE, 1200)], 1, 0, {ALICE: 60}
    )
    assert await store.stats.daily(GUILD, ALICE, NOW.date(), later[0]) == [
        DailyPlaytime(NOW.date(), "discord", "game-1", 1800),
        DailyPlaytime(later[0], "discord", "game-1", 1200),
    ]


@part("links", "steam", "events", "stats")
async def test_days_of_a_member_and_of_the_guild(store: Store) -> None:
    await seed(store)
    assert await store.stats.use_timezone("UTC")
    day1, day2 = NOW + timedelta(days=1), NOW + timedelta(days=2)
    await steam_total(store, A_SID, 10 * HOUR + 600, day1)
    await bm_total(store, GUILD, A_SID, 4 * HOUR + 900, day1)
    await bm_total(store, GUILD, A_SID, 4 * HOUR + 1000, day2)
    await bm_total(store, GUILD, A_SID, 2 * HOUR, NOW, game="730")
    await bm_total(store, GUILD, A_SID, 3 * HOUR, day2, game="730")
    await steam_total(store, C_SID2, 3 * HOUR, day2)
    await bm_total(store, OTHER, B_SID, 901 * HOUR, day2)
    d1, d2 = day1.date(), day2.date()
    daily = await store.stats.daily(GUILD, ALICE, d1, d2)
    assert sorted(daily, key=lambda d: (d.day, d.source, d.game_id)) == [
        DailyPlaytime(d1, "battlemetrics", SQUAD, 900),
        DailyPlaytime(d1, "steam", SQUAD, 600),
        DailyPlaytime(d2, "battlemetrics", SQUAD, 100),
        DailyPlaytime(d2, "battlemetrics", "730", HOUR),
    ]
    assert await store.stats.daily(GUILD, ALICE, d2, d2, "730") == [
        DailyPlaytime(d2, "battlemetrics", "730", HOUR)
    ]
    assert await store.stats.daily(GUILD, ALICE, d1, d1, SQUAD) == [
        DailyPlaytime(d1, "steam", SQUAD, 600),
        DailyPlaytime(d1, "battlemetrics", SQUAD, 900),
    ]  # the links' sources in order: Steam, then the guild's BattleMetrics
    assert (
        await store.stats.daily(GUILD, ALICE, d2 + timedelta(days=1), d2 + timedelta(days=9)) == []
    )
    assert await store.stats.daily(GUILD, ERIN, d1, d2) == []  # linked elsewhere only
    everything = await store.stats.guild_daily(GUILD, d1, d2)
    assert sorted(everything) == [
        (d1, SQUAD, ALICE, "battlemetrics", 900),
        (d1, SQUAD, ALICE, "steam", 600),
        (d2, SQUAD, ALICE, "battlemetrics", 100),
        (d2, SQUAD, CAROL, "steam", HOUR),
        (d2, "730", ALICE, "battlemetrics", HOUR),
    ]
    assert await store.stats.guild_daily(GUILD, d1, d1) == [
        (d1, SQUAD, ALICE, "steam", 600),
        (d1, SQUAD, ALICE, "battlemetrics", 900),
    ]
    assert await store.stats.guild_daily(OTHER, d1, d2) == [
        (d2, SQUAD, ERIN, "battlemetrics", HOUR)
    ]
    assert (
        await store.stats.guild_daily(GUILD, d2 + timedelta(days=1), d2 + timedelta(days=9)) == []
    )


@part("links", "steam", "events", "stats")
async def test_the_summary_time_zone_decides_the_days_and_a_change_recounts_them(
    store: Store,
) -> None:
    await seed(store)
    late = datetime(2025, 3, 31, 22, 30, tzinfo=NOW.tzinfo)  # March 31 in UTC, April 1 in Moscow
    await steam_total(store, A_SID, 11 * HOUR, late)
    assert await store.stats.use_timezone("UTC")  # none was set: counted
    assert not await store.stats.use_timezone("UTC")
    march, april = (date(2025, 3, 1), date(2025, 3, 31)), (date(2025, 4, 1), date(2025, 4, 30))
    march_31 = date(2025, 3, 31)
    assert (await store.stats.leaderboard(GUILD, SQUAD, march)).rows == [(ALICE, HOUR)]
    assert await store.stats.daily(GUILD, ALICE, march_31, march_31) == [
        DailyPlaytime(march_31, "steam", SQUAD, HOUR)
    ]
    assert await store.stats.use_timezone("Europe/Moscow")  # another zone: recounted
    assert not await store.stats.use_timezone("Europe/Moscow")
    assert (await store.stats.leaderboard(GUILD, SQUAD, march)).rows == []
    assert (await store.stats.leaderboard(GUILD, SQUAD, april)).rows == [(ALICE, HOUR)]
    april_week = (date(2025, 3, 31), date(2025, 4, 6))  # Monday to Sunday: the week's row
    assert (await store.stats.leaderboard(GUILD, SQUAD, april_week)).rows == [(ALICE, HOUR)]
    prior_week = (date(2025, 3, 24), date(2025, 3, 30))
    assert (await store.stats.leaderboard(GUILD, SQUAD, prior_week)).rows == []
    assert await store.stats.daily(GUILD, ALICE, march_31, march_31) == []
    [day] = await store.stats.daily(GUILD, ALICE, date(2025, 4, 1), date(2025, 4, 1))
    assert (day.day, day.seconds) == (date(2025, 4, 1), HOUR)
    # New growth is counted in the zone set: 21:30 UTC is already April 2 in Moscow.
    await steam_total(store, A_SID, 12 * HOUR, late + timedelta(hours=23))
    [day] = await store.stats.daily(GUILD, ALICE, date(2025, 4, 2), date(2025, 4, 2))
    assert day.seconds == HOUR
    assert (await store.stats.leaderboard(GUILD, SQUAD, april)).rows == [(ALICE, 2 * HOUR)]
    assert (await store.stats.leaderboard(GUILD, SQUAD, None)).rows[0] == (ALICE, 12 * HOUR)
    with pytest.raises(ZoneInfoNotFoundError):
        await store.stats.use_timezone("Not/A_Zone")
    assert not await store.stats.use_timezone("Europe/Moscow")  # unchanged by the failure
    # Zones whose days do not start on a UTC hour (Kathmandu: UTC+5:45).
    assert await store.stats.use_timezone("Asia/Kathmandu")
    [day, next_day] = await store.stats.daily(GUILD, ALICE, march_31, date(2025, 4, 30))
    assert (day.day, next_day.day) == (date(2025, 4, 1), date(2025, 4, 2))


@part("links", "steam", "events", "stats")
async def test_role_values_of_a_member(store: Store) -> None:
    await seed(store)
    assert await store.stats.use_timezone("UTC")
    values = store.stats.role_values
    assert await values(GUILD, ALICE, "2025-03-01", "2025-03-30") == RoleValues(
        hours_total=10, hours_30d=0, last_played=None, steam_verified=False, steam_name="name-11"
    )
    grew = NOW + timedelta(days=2, minutes=7)
    await steam_total(store, A_SID, 12 * HOUR, grew)  # +2 h on Steam
    await bm_total(store, GUILD, A_SID, 5 * HOUR, NOW + timedelta(days=1))  # +1 h, earlier
    got = await values(GUILD, ALICE, "2025-03-01", "2025-03-30")
    assert (got.hours_total, got.hours_30d, got.last_played) == (12, 2, grew)
    assert (await values(GUILD, ALICE, "2025-03-02", "2025-03-02")).hours_30d == 1
    assert (await values(GUILD, ALICE, "2025-04-01", "2025-04-30")).hours_30d == 0
    carol = await values(GUILD, CAROL, "2025-03-01", "2025-03-30")
    assert (carol.hours_total, carol.last_played) == (3, None)  # her two accounts add up
    assert await values(GUILD, 999, "2025-03-01", "2025-03-30") == RoleValues(
        0, 0, None, False, None
    )
    await store.links.verify(
        guild_id=GUILD, discord_user_id=ALICE, accounts=[("steam", A_SID, "Proven Alice")],
        verified_by="discord", now=NOW,
    )  # fmt: skip
    proven = await values(GUILD, ALICE, "2025-03-01", "2025-03-30")
    assert (proven.steam_verified, proven.steam_name) == (True, "Proven Alice")


@part("links", "steam", "events", "stats")
async def test_the_guilds_games_their_names_and_version(store: Store) -> None:
    assert await store.stats.guild_games(GUILD) == []
    assert await store.stats.game_names([]) == {}
    version = await store.stats.games_version()
    await link(store, ALICE, A_SID)
    await store.steam.record_lookup(
        A_SID, 730, seconds=60, status="ok", name=None, now=NOW
    )  # a Steam game without a known name
    assert await store.stats.guild_games(GUILD) == [("730", None)]
    assert await store.stats.guild_games(OTHER) == []
    assert (after_game := await store.stats.games_version()) != version
    await store.steam.record_lookup(A_SID, 730, seconds=90, status="ok", name=None, now=NOW)
    assert await store.stats.games_version() == after_game  # more playtime: the same list
    await store.steam.record_lookup(
        A_SID, 730, seconds=120, status="ok", name="Counter-Strike 2", now=NOW
    )
    assert (named := await store.stats.games_version()) != after_game
    await store.steam.record_lookup(
        A_SID, 730, seconds=150, status="ok", name="Counter-Strike 2", now=NOW
    )
    assert await store.stats.games_version() == named  # the same name again changes nothing
    await bm_total(store, GUILD, A_SID, 60, NOW, game="440")
    await steam_total(store, A_SID, 60, NOW)
    assert await store.stats.guild_games(GUILD) == [
        ("393380", "Squad"),
        ("440", None),
        ("730", "Counter-Strike 2"),
    ]
    # Linking an account brings its Steam games to the guild.
    await link(store, ERIN, A_SID, guild=OTHER)
    assert [g for g, _ in await store.stats.guild_games(OTHER)] == ["393380", "730"]
    assert await store.stats.game_names(["730", "393380", "440", "minecraft", "nope"]) == {
        "730": "Counter-Strike 2",
        "393380": "Squad",
        "minecraft": "Minecraft",
    }


@part("links", "steam", "events", "stats")
async def test_boards_match_a_reference_on_random_growth(store: Store) -> None:
    """Members with one or two Steam accounts, Steam and the guild's BattleMetrics growing on
    random days in a zone whose days start at :45 (UTC+5:45); every board and page against
    one computed the plain way."""
    rng = random.Random(5)
    assert await store.stats.use_timezone("Asia/Kathmandu")
    accounts = {
        m: [f"7656119800010{m:03d}{n}" for n in range(rng.choice((1, 2)))] for m in range(12)
    }
    for member, ids in accounts.items():
        for steam_id in ids:
            await link(store, member + 1, steam_id)
    grown: list[tuple[int, str, datetime, int]] = []  # member, source, when, seconds
    start = datetime(2025, 1, 20, 3, tzinfo=NOW.tzinfo)
    for member, ids in accounts.items():
        for steam_id in ids:
            for source in ("steam", "battlemetrics"):
                total, at = rng.randrange(0, 9000), start
                for n in range(rng.randrange(1, 5)):
                    if n:  # the first report is a baseline
                        delta = rng.randrange(60, 7200)
                        total += delta
                        grown.append((member + 1, source, at, delta))
                    if source == "steam":
                        await steam_total(store, steam_id, total, at)
                    else:
                        await bm_total(store, GUILD, steam_id, total, at)
                    at += timedelta(days=rng.randrange(0, 20), minutes=rng.randrange(0, 1440))
    zone = ZoneInfo("Asia/Kathmandu")

    def reference(span: tuple[date, date]) -> list[tuple[int, int]]:
        per: dict[int, dict[str, int]] = {}
        for member, source, at, delta in grown:
            if span[0] <= at.astimezone(zone).date() <= span[1]:
                per.setdefault(member, {}).setdefault(source, 0)
                per[member][source] += delta
        board = [(m, max(s.values())) for m, s in per.items() if max(s.values()) > 0]
        return sorted(board, key=lambda item: (-item[1], item[0]))

    spans = [
        (date(2025, 2, 1), date(2025, 2, 28)),
        (date(2025, 1, 27), date(2025, 2, 2)),
        (date(2025, 1, 15), date(2025, 3, 20)),
        (date(2025, 3, 1), date(2025, 3, 31)),
    ]
    spans += [
        (last - timedelta(days=rng.choice((0, 6, 29, 44))), last)
        for last in (date(2025, 1, 25) + timedelta(days=rng.randrange(0, 60)) for _ in range(8))
    ]
    for span in spans:
        expected = reference(span)
        got: list[tuple[int, int]] = []
        for offset in range(0, max(len(expected), 1), 5):
            page = await store.stats.leaderboard(GUILD, "393380", span, offset, 5)
            assert (page.total, page.offset) == (len(expected), offset)
            got += page.rows
        assert got == expected, span
