"""The feed in the guild's language: titles, field names and footers are written when a batch is
made, from the event's type and payload; a guild whose feed language is ru gets Russian posts
for every connector's event types, its played-today edits stay Russian, and events stored
before titles were written this way keep their stored title."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from discord.http import HTTPClient

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.feed.poster import FeedPoster
from bot.storage.links import link_account
from bot.storage.playtime import remember_game_name
from connectors.base import WebhookContext
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.test_feed import CHANNEL, MemoryDiscord, set_feed
from tests.test_feed_discord import http, poster
from tests.test_ingest import bm_raw

__all__ = ["http"]  # the fixture, used by name

GUILD_CHANNELS = {CHANNEL: None}
STEAM_ID = "76561198000000001"
PLAYER = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


async def feed_of_everything(core: Core, clock: ManualClock) -> None:
    """One event of every kind the connectors and the core emit, through the one ingest path
    (the kinds that are off by default switched on)."""
    await core.feed_admin.set_event_types(GUILD, core.registry.event_types())
    await core.store.engine.write(
        lambda c: link_account(c, guild_id=GUILD, discord_user_id=42, source="steam",
                               external_id=STEAM_ID, now=clock.now(), display_name="Алиса")
    )  # fmt: skip
    at = to_iso(clock.now())
    steam = [
        {"type": "played", "steam_id": STEAM_ID, "app_id": 219990, "game_name": "Grim Dawn",
         "today": 3900, "total": 90000, "day": at[:10], "at": at},
        {"type": "achievement", "steam_id": STEAM_ID, "app_id": 219990, "game_name": "Grim Dawn",
         "api_name": "ACH_X", "info": {"name": "Slayer"}, "percent": 2.3, "at": at},
        {"type": "session.started", "steam_id": STEAM_ID, "app_id": 440, "game_name": None,
         "started": at, "at": at},
        {"type": "session.ended", "steam_id": STEAM_ID, "app_id": 440, "game_name": None,
         "seconds": 7260, "started": at, "at": at},
    ]  # fmt: skip
    for raw in steam:
        assert (await core.pipeline.ingest("steam", GUILD, raw)).status == "accepted"
    minecraft = core.registry.get("minecraft")
    for body in (
        {"type": "session.started", "player_uuid": PLAYER, "player_name": "Notch",
         "world": "Выживание", "at": at},
        {"type": "session.ended", "player_uuid": PLAYER, "player_name": "Notch",
         "at": to_iso(clock.now() + timedelta(minutes=25))},
        {"type": "achievement.unlocked", "player_uuid": PLAYER, "player_name": "Notch",
         "key": "minecraft:story/mine_diamond", "at": at},
    ):  # fmt: skip
        raw = minecraft.parse_webhook(body, WebhookContext(received_at=clock.now()))
        assert (await core.pipeline.ingest("minecraft", GUILD, raw)).status == "accepted"
    await core.store.engine.write(lambda c: remember_game_name(c, "393380", "Squad", at))
    await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 9 * 3600, 0, "1" * 64))
    await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 22 * 3600, 10, "2" * 64))
    assert await core.feed_admin.send_test(GUILD, 42)  # posted whatever kinds were chosen


async def posted(core: Core, clock: ManualClock) -> list[dict[str, Any]]:
    discord_api = MemoryDiscord()
    poster = FeedPoster(core.store, clock, discord_api)
    while await poster.run_once():
        pass
    return discord_api.embeds()


async def test_every_kind_of_event_in_russian(core: Core, clock: ManualClock) -> None:
    await set_feed(core)
    await core.feed_admin.set_language(GUILD, "ru")
    await feed_of_everything(core, clock)
    embeds = await posted(core, clock)
    titles = [embed["title"].split(" ", 1)[1] for embed in embeds]
    assert titles == [
        "Алиса: Grim Dawn сегодня — 1 ч 5 мин",
        "Алиса: достижение «Slayer» в Grim Dawn",
        "Алиса: начало игры в Приложение Steam 440",
        "Алиса: Приложение Steam 440 — 2 ч 1 мин",
        "Notch: вход · Выживание",
        "Notch: 25 мин в игре · сервер Minecraft",
        "Notch: достижение \\[Diamonds!\\]",
        "Алиса: 10 часов в Squad",
        "Тестовое событие Questlog: лента работает",
    ]
    achievement = embeds[1]
    fields = {f["name"]: f["value"] for f in achievement["fields"]}
    assert fields["Игра"] == "Grim Dawn"
    assert fields["Редкость"] == "редкое: 2,3 % игроков"
    assert fields["Steam"].startswith("[профиль](https://steamcommunity.com/profiles/")
    assert achievement["footer"]["text"] == "Steam · steam.achievement"
    assert embeds[-1]["description"].endswith("Так активность выглядит в этом канале.")
    assert embeds[7]["footer"]["text"] == "Игровое время · playtime.milestone"


async def test_english_by_default_and_the_servers_language_when_questlog_speaks_it(
    core: Core, clock: ManualClock
) -> None:
    await set_feed(core)
    await feed_of_everything(core, clock)
    english = await posted(core, clock)
    assert english[0]["title"].endswith("Алиса played Grim Dawn today: 1 h 5 min")
    assert english[7]["title"].endswith("Алиса reached 10 hours in Squad")
    assert {f["name"] for f in english[1]["fields"]} >= {"Game", "Rarity"}
    # The server's primary language is Russian, and no feed language was chosen.
    assert await core.feed_admin.note_locale(GUILD, "ru")
    assert not await core.feed_admin.note_locale(GUILD, "ru")  # unchanged: no write
    assert await core.feed_admin.language(GUILD) == (None, "ru")
    clock.advance(60)
    await core.feed_admin.send_test(GUILD, 42)
    [test] = await posted(core, clock)
    assert test["title"].endswith("Тестовое событие Questlog: лента работает")
    await core.feed_admin.note_locale(GUILD, "de")  # a language Questlog lacks: English
    assert await core.feed_admin.language(GUILD) == (None, "en")
    await core.feed_admin.set_language(GUILD, "ru")  # chosen: the server's does not matter
    assert await core.feed_admin.language(GUILD) == ("ru", "ru")


async def test_events_stored_before_keep_their_title(core: Core, clock: ManualClock) -> None:
    await set_feed(core)
    await core.feed_admin.set_language(GUILD, "ru")
    await feed_of_everything(core, clock)
    # As if these events had been stored before this release (migration 0022 marks the first
    # id whose title is written in the feed's language).
    await core.store.engine.write(
        lambda c: c.execute(
            "UPDATE meta SET value = (SELECT max(id) + 1 FROM activity_events)"
            " WHERE key = 'titles_rendered_from'"
        )
    )
    embeds = await posted(core, clock)
    assert embeds[0]["title"].endswith("Алиса played Grim Dawn today: 1 h 5 min")  # as stored
    assert embeds[1]["fields"][0]["name"] == "Игра"  # the rest is written in the language


async def test_played_today_edits_stay_russian(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await core.feed_admin.set_language(GUILD, "ru")
    await core.store.engine.write(
        lambda c: link_account(c, guild_id=GUILD, discord_user_id=42, source="steam",
                               external_id=STEAM_ID, now=clock.now(), display_name="Алиса")
    )  # fmt: skip
    day = to_iso(clock.now())[:10]

    async def played(today: int, total: int) -> None:
        raw = {"type": "played", "steam_id": STEAM_ID, "app_id": 393380, "game_name": "Squad",
               "today": today, "total": total, "day": day, "at": to_iso(clock.now())}  # fmt: skip
        await core.pipeline.ingest("steam", GUILD, raw)

    await played(1800, 100_000)
    feed = poster(core, clock, http)
    assert await feed.run_once() == 1
    clock.advance(timedelta(hours=1).total_seconds())
    await played(5400, 103_600)
    assert await feed.run_once() == 0 and feed.edited_messages == 1
    [message] = discord_api.messages[CHANNEL]
    [embed] = message["embeds"]
    assert embed["title"].endswith("Алиса: Squad сегодня — 1 ч 30 мин")
    assert embed["fields"][0]["name"] == "Игра"
