"""Steam achievements in the sync: baseline per game, new unlocks exactly once (across restarts),
names, icons and rarity from the cached schema and percentages, and the client's parsing."""

from __future__ import annotations

from typing import Any

import pytest

from bot.clock import ManualClock
from bot.core import Core
from bot.feed.embeds import build_embed
from connectors.steam import SteamClient
from tests.fakes.steam import GRIM_DAWN_APP, SAPHYEL_ID, FakeSteam
from tests.test_steam_sync import config_data, link, play

__all__ = ["config_data"]  # the fixture, used by name


def unlock(steam: FakeSteam, name: str, display: str, percent: Any, when: int) -> None:
    """The game gains an achievement and the player unlocks it."""
    steam.schemas[GRIM_DAWN_APP].append(
        {
            "name": name,
            "defaultvalue": 0,
            "displayName": display,
            "hidden": 0,
            "description": f"Do {display}",
            "icon": f"https://cdn.example/{name}.jpg",
            "icongray": f"https://cdn.example/{name}_gray.jpg",
        }
    )
    steam.percentages[GRIM_DAWN_APP][name] = percent
    steam.achievements[(SAPHYEL_ID, GRIM_DAWN_APP)].append(
        {"apiname": name, "achieved": 1, "unlocktime": when}
    )


async def achievement_events(core: Core) -> list[tuple[Any, ...]]:
    rows = await core.store.engine.fetchall(
        "SELECT title, payload, occurred_at FROM activity_events WHERE type = 'steam.achievement'"
        " ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def played(core: Core, clock: ManualClock, steam: FakeSteam, minutes: int = 10) -> None:
    play(steam, SAPHYEL_ID, GRIM_DAWN_APP, minutes)
    clock.advance(600)
    await core.steam_sync.sync_now()


async def test_new_unlocks_are_announced_once_with_name_icon_and_rarity(
    core: Core, clock: ManualClock, steam: FakeSteam, config: Any
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()  # library baseline: no achievement calls yet
    assert steam.calls["GetPlayerAchievements"] == 0
    await played(core, clock, steam)  # the game grew: its existing unlocks are the baseline
    assert steam.calls["GetPlayerAchievements"] == 1
    assert await achievement_events(core) == []

    unlock(steam, "ACH002", "Slayer of Rares", 1.5, 1_740_830_000)
    await played(core, clock, steam)
    [(title, payload, occurred_at)] = await achievement_events(core)
    assert title == "Saphyel unlocked Slayer of Rares in Grim Dawn"
    assert '"rarity":"rare: 1.5 % of players"' in payload
    assert occurred_at.startswith("2025-03-01T")  # Steam's unlocktime

    await played(core, clock, steam)  # nothing new
    assert len(await achievement_events(core)) == 1
    restarted = await Core.start(config, clock)
    try:
        play(steam, SAPHYEL_ID, GRIM_DAWN_APP, 10)
        await restarted.steam_sync.sync_now()
        assert len(await achievement_events(restarted)) == 1  # exactly once across restarts
    finally:
        await restarted.stop()


def unlock_later(steam: FakeSteam, name: str, when: int = 0) -> None:
    steam.achievements[(SAPHYEL_ID, GRIM_DAWN_APP)].append(
        {"apiname": name, "achieved": 1, "unlocktime": when}
    )


async def test_schema_and_percentages_are_cached(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()
    await played(core, clock, steam)
    unlock(steam, "ACH002", "Two", 50.0, 0)
    unlock(steam, "ACH003", "Three", "0.04", 0)  # percent as a string, as newer answers send
    steam.achievements[(SAPHYEL_ID, GRIM_DAWN_APP)].pop()  # ACH003 is not unlocked yet
    await played(core, clock, steam)
    unlock_later(steam, "ACH003")
    await played(core, clock, steam)
    calls = ("GetSchemaForGame", "GetGlobalAchievementPercentagesForApp")
    assert [steam.calls[c] for c in calls] == [1, 1]  # two announcements, one fetch of each
    titles = [t for t, _, _ in await achievement_events(core)]
    assert titles == ["Saphyel unlocked Two in Grim Dawn", "Saphyel unlocked Three in Grim Dawn"]
    assert '"rarity":"rare: 0.04 % of players"' in (await achievement_events(core))[-1][1]
    # Two days on, a game update adds ACH004: the schema is fetched again because it does not
    # know the name, the percentages because they are older than a day.
    clock.advance(2 * 86_400)
    unlock(steam, "ACH004", "Four", 12.0, 0)
    await played(core, clock, steam)
    assert [steam.calls[c] for c in calls] == [2, 2]
    assert (await achievement_events(core))[-1][0] == "Saphyel unlocked Four in Grim Dawn"


async def test_a_game_without_stats_is_fine(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID)
    await core.steam_sync.sync_now()
    del steam.schemas[GRIM_DAWN_APP]  # GetPlayerAchievements now answers 400 "no stats"
    await played(core, clock, steam)
    assert steam.calls["GetPlayerAchievements"] == 1
    assert await achievement_events(core) == []
    status = await core.store.engine.fetchone("SELECT state FROM steam_accounts")
    assert status is not None and status[0] == "ok"
    await played(core, clock, steam)  # remembered: not asked again for a week
    assert steam.calls["GetPlayerAchievements"] == 1
    clock.advance(8 * 86_400)
    await played(core, clock, steam)
    assert steam.calls["GetPlayerAchievements"] == 2


def test_achievement_embed_shows_icon_game_and_rarity() -> None:
    embed = build_embed(
        {
            "type": "steam.achievement",
            "title": "Saphyel unlocked Monster Slayer in Grim Dawn",
            "payload": {
                "game_id": GRIM_DAWN_APP,
                "game_name": "Grim Dawn",
                "description": "Eradicate 25 Heroic Monsters",
                "icon": "https://cdn.example/a.jpg",
                "rarity": "rare: 2.3 % of players",
            },
            "actor_user_id": 42,
            "occurred_at": "2025-03-01T12:00:00.000000Z",
        }
    )
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Game"] == "Grim Dawn" and fields["Rarity"] == "rare: 2.3 % of players"
    assert embed["thumbnail"] == {"url": "https://cdn.example/a.jpg"}
    assert "Eradicate 25 Heroic Monsters" in embed["description"]
    assert embed["url"] == f"https://store.steampowered.com/app/{GRIM_DAWN_APP}/"


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([{"name": "A", "percent": 2.5}], {"A": 2.5}),
        ([{"name": "A", "percent": "2.5"}], {"A": 2.5}),
        ([{"name": "A", "percent": "n/a"}, {"name": "B", "percent": 101}], {}),
    ],
)
async def test_percentages_accept_numbers_and_numeric_strings(
    steam: FakeSteam, entries: list[dict[str, Any]], expected: dict[str, float]
) -> None:
    steam.percentages[7] = {e["name"]: e["percent"] for e in entries}
    async with SteamClient(steam.api_key, base_url=steam.base_url) as client:
        assert await client.get_global_achievement_percentages(7) == expected


async def test_player_achievements_parse_the_fixture_and_no_stats(steam: FakeSteam) -> None:
    async with SteamClient(steam.api_key, base_url=steam.base_url) as client:
        [first] = await client.get_player_achievements(SAPHYEL_ID, GRIM_DAWN_APP)
        assert (first.api_name, first.achieved, first.unlock_time) == ("ACH001", True, 1546119922)
        assert await client.get_player_achievements(SAPHYEL_ID, 70) == []  # no stats: HTTP 400
        schema = await client.get_schema_for_game(GRIM_DAWN_APP)
        assert schema["ACH001"].display_name == "Monster Slayer"
