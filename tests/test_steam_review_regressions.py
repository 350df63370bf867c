"""Regressions for defects an independent review of the Steam sync found (each failed before
its fix): lookups swallowing the sync's news, non-Steam game ids, failed achievement checks,
unlocks of the first session after linking, and an absurd unlocktime."""

from __future__ import annotations

import pytest

from bot.clock import ManualClock
from bot.core import Core
from bot.services.get_playtime import PlaytimeQuery
from tests.conftest import GUILD
from tests.fakes.steam import GRIM_DAWN_APP, SAPHYEL_ID, FakeSteam
from tests.test_steam_achievements import achievement_events, played, unlock
from tests.test_steam_sync import config_data, link, play

__all__ = ["config_data"]


async def count(core: Core, sql: str, params: tuple = ()) -> int:
    return (await core.store.engine.fetchone(sql, params))[0]


async def test_a_get_playtime_lookup_does_not_swallow_the_days_line(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()  # baseline
    play(steam, SAPHYEL_ID, GRIM_DAWN_APP, 50)
    clock.advance(300)
    # a game server asks get-playtime (is_need_update) when the player joins/leaves
    await core.playtime.lookup(GUILD, PlaytimeQuery([SAPHYEL_ID], GRIM_DAWN_APP, True))
    clock.advance(300)
    await core.steam_sync.sync_now()
    n = await count(core, "SELECT count(*) FROM activity_events WHERE type='steam.game_played'")
    assert n == 1


async def test_a_non_steam_game_id_does_not_wedge_the_sync(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.run_once()
    clock.advance(400)
    await core.steam_sync.run_once()  # baseline read happens
    reads = steam.calls["GetOwnedGames"]
    # player launches a non-Steam shortcut: Steam reports a 64-bit gameid
    steam.summaries[SAPHYEL_ID]["gameid"] = "13830825449347514368"
    steam.summaries[SAPHYEL_ID]["gameextrainfo"] = "Some emulator"
    errors = []
    clock.advance(400)
    for _ in range(5):
        clock.advance(5)
        try:
            await core.steam_sync.run_once()
        except Exception as exc:  # what _run would log and retry every 5 s
            errors.append(repr(exc))
    assert not errors
    play(steam, SAPHYEL_ID, GRIM_DAWN_APP, 5)
    clock.advance(86_400 * 1.05)
    await core.steam_sync.run_once()
    assert steam.calls["GetOwnedGames"] > reads  # library reads go on


async def test_a_failed_achievement_check_is_retried_after_the_next_read(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()  # library baseline
    await played(core, clock, steam)  # game grew: achievements baseline
    unlock(steam, "ACH_NEW", "New one", 5.0, 1_740_830_000)
    play(steam, SAPHYEL_ID, GRIM_DAWN_APP, 10)
    steam.fail_next("GetPlayerAchievements", [503, 503, 503])
    clock.advance(600)
    await core.steam_sync.sync_now()  # library stored, achievements deferred
    for _ in range(3):  # later reads: nothing played, so never re-checked
        clock.advance(3600)
        await core.steam_sync.sync_now()
    assert len(await achievement_events(core)) == 1


async def test_unlocks_of_the_first_session_after_linking_are_announced(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()  # library baseline (silent, correct)
    # the player now plays and unlocks an achievement in this session
    unlock(steam, "ACH_NEW", "New one", 5.0, int(clock.now().timestamp()) + 60)
    await played(core, clock, steam)
    assert len(await achievement_events(core)) == 1


@pytest.mark.parametrize("lookup", [False, True])
async def test_a_milestone_is_announced_whoever_sees_the_crossing_first(
    core: Core, clock: ManualClock, steam: FakeSteam, lookup: bool
) -> None:
    for g in steam.players[SAPHYEL_ID]:
        if g["appid"] == GRIM_DAWN_APP:
            g["playtime_forever"] = 595
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()  # baseline at 9 h 55 min
    play(steam, SAPHYEL_ID, GRIM_DAWN_APP, 10)  # 10 h 05 min
    clock.advance(300)
    if lookup:
        await core.playtime.lookup(GUILD, PlaytimeQuery([SAPHYEL_ID], GRIM_DAWN_APP, True))
    clock.advance(300)
    await core.steam_sync.sync_now()
    n = await count(core, "SELECT count(*) FROM activity_events WHERE type='playtime.milestone'")
    assert n == 1


async def test_an_absurd_unlocktime_is_stored_without_a_time(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()
    await played(core, clock, steam)
    unlock(steam, "ACH_ODD", "Odd", 5.0, 99_999_999_999_999)
    await played(core, clock, steam)
    [(title, _, _)] = await achievement_events(core)
    assert title == "Saphyel unlocked Odd in Grim Dawn"
