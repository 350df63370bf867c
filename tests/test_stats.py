from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.services.leaderboards import Period, PlaytimeStats, period_days
from bot.storage.links import link_account
from bot.storage.playtime import add_playtime, record_playtime
from bot.storage.records import DayRange
from tests.conftest import GUILD, OTHER_GUILD

ALICE, BOB, CAROL = 11, 22, 33
A_STEAM, B_STEAM = "76561198000000011", "76561198000000022"
C_MC = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
UTC_TZ = ZoneInfo("UTC")


async def seed(core: Core, clock: ManualClock) -> None:
    start = datetime(2025, 3, 3, 10, tzinfo=UTC)  # a Monday
    clock.set(start)

    def op(c):
        now = to_iso(start)
        for user, source, external in (
            (ALICE, "steam", A_STEAM),
            (BOB, "steam", B_STEAM),
            (CAROL, "minecraft", C_MC),
        ):
            link_account(
                c,
                guild_id=GUILD,
                discord_user_id=user,
                source=source,
                external_id=external,
                now=start,
            )
        # Alice: Steam says 10 h, BattleMetrics (this guild) 4 h -> 10 h, not 14 h.
        record_playtime(
            c,
            scope=0,
            source="steam",
            player_id=A_STEAM,
            game_id="393380",
            seconds=10 * 3600,
            source_time=start,
            now_text=now,
        )
        record_playtime(
            c,
            scope=GUILD,
            source="battlemetrics",
            player_id=A_STEAM,
            game_id="393380",
            seconds=3 * 3600,
            source_time=start,
            now_text=now,
        )
        record_playtime(
            c,
            scope=GUILD,
            source="battlemetrics",
            player_id=A_STEAM,
            game_id="393380",
            seconds=4 * 3600,
            source_time=start + timedelta(hours=1),
            now_text=now,
        )
        # Bob: BattleMetrics 2 h -> 6 h today; another guild's data never counts here.
        record_playtime(
            c,
            scope=GUILD,
            source="battlemetrics",
            player_id=B_STEAM,
            game_id="393380",
            seconds=2 * 3600,
            source_time=start,
            now_text=now,
        )
        record_playtime(
            c,
            scope=GUILD,
            source="battlemetrics",
            player_id=B_STEAM,
            game_id="393380",
            seconds=6 * 3600,
            source_time=start + timedelta(hours=2),
            now_text=now,
        )
        record_playtime(
            c,
            scope=OTHER_GUILD,
            source="battlemetrics",
            player_id=B_STEAM,
            game_id="393380",
            seconds=900 * 3600,
            source_time=start,
            now_text=now,
        )
        # Carol: Minecraft sessions on different days (two of them in February).
        for days_ago, seconds in ((5, 3600), (21, 600)):
            add_playtime(
                c,
                scope=GUILD,
                source="minecraft",
                player_id=C_MC,
                game_id="minecraft",
                delta=seconds,
                at=start - timedelta(days=days_ago),
                now_text=now,
            )
        add_playtime(
            c,
            scope=GUILD,
            source="minecraft",
            player_id=C_MC,
            game_id="minecraft",
            delta=5400,
            at=start - timedelta(days=1),
            now_text=now,
        )
        add_playtime(
            c,
            scope=GUILD,
            source="minecraft",
            player_id=C_MC,
            game_id="minecraft",
            delta=1800,
            at=start,
            now_text=now,
        )

    await core.store.engine.write(op)


async def test_member_totals_and_games(core: Core, clock: ManualClock) -> None:
    await seed(core, clock)
    totals = await core.store.stats.member_totals(GUILD, ALICE)
    assert [(t.game_id, t.source, t.seconds) for t in totals] == [
        ("393380", "steam", 36000),
        ("393380", "battlemetrics", 14400),
    ]
    assert await core.store.stats.guild_games(GUILD) == [
        ("393380", None),
        ("minecraft", "Minecraft"),
    ]


async def test_leaderboard_periods(core: Core, clock: ManualClock) -> None:
    await seed(core, clock)
    now = clock.now()
    stats = core.store.stats

    def day(period: Period) -> DayRange | None:
        return period_days(period, now, UTC_TZ)

    all_time = await stats.leaderboard(GUILD, "393380", None)
    assert all_time.rows == [(ALICE, 36000), (BOB, 21600)]  # max of sources; other guild ignored
    assert all_time.total == 2
    today = await stats.leaderboard(GUILD, "393380", day("today"))
    assert today.rows == [
        (BOB, 14400),
        (ALICE, 3600),
    ]  # increases sampled today (first reports are baselines)
    mc_week = await stats.leaderboard(GUILD, "minecraft", day("week"))
    assert mc_week.rows == [(CAROL, 1800)]  # Sunday's session is last week
    mc_month = await stats.leaderboard(GUILD, "minecraft", day("month"))
    assert mc_month.rows == [(CAROL, 7200)]
    mc_7d = await stats.leaderboard(GUILD, "minecraft", day("7d"))
    assert mc_7d.rows == [(CAROL, 7200 + 3600)]  # Sunday, Monday, and a session in February
    mc_30d = await stats.leaderboard(GUILD, "minecraft", day("30d"))
    assert mc_30d.rows == [(CAROL, 7200 + 3600 + 600)]
    # One page at a time, with the number of ranked members.
    second = await stats.leaderboard(GUILD, "393380", None, offset=1, limit=1)
    assert (second.rows, second.total, second.offset) == ([(BOB, 21600)], 2, 1)
    past = await stats.leaderboard(GUILD, "393380", None, offset=5, limit=1)  # the last page
    assert (past.rows, past.total, past.offset) == ([(BOB, 21600)], 2, 1)


def test_period_days_use_the_community_time_zone() -> None:
    now = datetime(2025, 3, 5, 1, 30, tzinfo=UTC)  # Wednesday 01:30 UTC = Tuesday 20:30 in New York
    ny = ZoneInfo("America/New_York")
    tuesday = date(2025, 3, 4)
    assert period_days("today", now, ny) == (tuesday, tuesday)
    assert period_days("7d", now, ny) == (date(2025, 2, 26), tuesday)  # 7 days with today
    assert period_days("30d", now, ny) == (date(2025, 2, 3), tuesday)
    assert period_days("365d", now, ny) == (date(2024, 3, 5), tuesday)
    assert period_days("week", now, ny) == (date(2025, 3, 3), date(2025, 3, 9))
    assert period_days("month", now, ny) == (date(2025, 3, 1), date(2025, 3, 31))
    december = datetime(2025, 12, 31, 12, tzinfo=UTC)
    assert period_days("month", december, ny) == (date(2025, 12, 1), date(2025, 12, 31))
    assert period_days("all", now, ny) is None


async def test_chart_days_fill_every_day(core: Core, clock: ManualClock) -> None:
    await seed(core, clock)
    days, names = await PlaytimeStats(core.store, UTC_TZ).daily_games(
        GUILD, CAROL, "7d", clock.now()
    )
    assert [(d.isoformat(), games) for d, games in days[-4:]] == [
        ("2025-02-28", {}),
        ("2025-03-01", {}),
        ("2025-03-02", {"minecraft": 5400}),
        ("2025-03-03", {"minecraft": 1800}),
    ]
    assert len(days) == 7 and names == {"minecraft": "Minecraft"}
