"""Presence playtime through the fake gateway: discord.py's own websocket client receives
GUILD_CREATE and PRESENCE_UPDATE as Discord sends them, the bot hands them to the tracker, and
the tracker's sessions go through the one ingest path (issue 16)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import pytest
import yarl

from bot.clock import ManualClock
from bot.config import parse_config
from bot.core import Core
from bot.feed.poster import FeedPoster
from bot.gateway.client import DiscordComponent
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import guild_payload, user_payload
from tests.test_gateway import wait_until

ALICE = 4000000000000000201
BOB = 4000000000000000202
FACTORIO = {"name": "Factorio", "type": 0, "application_id": "363409179668398080"}
HADES = {"name": "Hades", "type": 0}  # a Game without an application id
CHESS = {"name": "Chess Tournament", "type": 5}  # Competing
SPOTIFY = {
    "name": "Spotify",
    "type": 2,
    "id": "spotify:1",
    "sync_id": "x",
    "party": {"id": "spotify:1"},
}
CUSTOM = {"name": "Custom Status", "type": 4, "state": "afk for a bit"}
STREAMING = {"name": "Twitch", "type": 1, "url": "https://twitch.tv/x"}


@pytest.fixture
def config_data(tmp_path: Path) -> dict[str, Any]:
    return {
        "database": {"path": str(tmp_path / "questlog.sqlite3")},
        "web": {"port": 0},
        "presence": {
            "enabled": True,
            "min_session_seconds": 120,
            "flush_seconds": 30,
            "max_session_hours": 2,
            "disconnect_grace_seconds": 120,
        },
    }


def member(user_id: int, name: str) -> dict[str, Any]:
    return {
        "user": user_payload(user_id, name),
        "roles": [],
        "joined_at": "2025-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
    }


def presence(user_id: int, status: str, *activities: dict[str, Any]) -> dict[str, Any]:
    return {
        "user": {"id": str(user_id)},
        "guild_id": str(GUILD),
        "status": status,
        "activities": [{"created_at": 1735689600000, **a} for a in activities],
        "client_status": {"desktop": status} if status != "offline" else {},
    }


class Gateway:
    """The bot connected to the fake gateway, with a way to send presences and wait until
    the bot has handled them."""

    def __init__(self, core: Core, fake: FakeDiscord, component: DiscordComponent) -> None:
        self.core, self.fake, self.component = core, fake, component

    async def send(self, *presences: dict[str, Any]) -> None:
        handled = self.core.presence
        assert handled is not None
        for item in presences:
            before = self._seen(item)
            await self.fake.dispatch("PRESENCE_UPDATE", item)
            await wait_until(lambda item=item, before=before: self._seen(item) != before)
        await asyncio.sleep(0.05)  # the listener's task runs after the cache update

    def _seen(self, item: dict[str, Any]) -> Any:
        bot = self.component.bot
        guild = bot.get_guild(GUILD) if bot else None
        found = guild.get_member(int(item["user"]["id"])) if guild else None
        if found is None:
            return None
        return (str(found.status), tuple((a.type, a.name) for a in found.activities))


@contextlib.asynccontextmanager
async def connected(
    core: Core,
    clock: ManualClock,
    fake: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
    presences: list[dict[str, Any]] | None = None,
) -> AsyncIterator[Gateway]:
    """The bot on the fake gateway with presence on; ``presences``: what GUILD_CREATE shows
    (members already playing). Presence is on by the guild's default."""
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url)
    )
    guild = guild_payload(GUILD, {})
    guild["members"] += [member(ALICE, "Alice"), member(BOB, "Bob")]
    guild["presences"] = presences or []
    fake.gateway_guilds[GUILD] = guild
    await core.privacy.set_presence_default(GUILD, True)
    assert core.presence is not None
    await core.presence.start()
    component = DiscordComponent(core, FeedPoster(core.store, clock), fake.token, presence=True)
    await component.start()
    try:
        await wait_until(lambda: core.discord_state == "connected")
        await asyncio.sleep(0.05)
        yield Gateway(core, fake, component)
    finally:
        await component.stop()


@pytest.fixture
async def gateway(
    core: Core, clock: ManualClock, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    async with connected(core, clock, discord_api, monkeypatch) as gw:
        yield gw


async def seconds(core: Core, user: int = ALICE, game: str | None = None) -> int:
    sql = (
        "SELECT coalesce(sum(seconds), 0) FROM playtime WHERE source = 'discord' AND player_id = ?"
    )
    params: tuple[Any, ...] = (str(user),)
    if game is not None:
        sql += " AND game_id = ?"
        params += (game,)
    return int((await core.store.engine.fetchone(sql, params))[0])


async def sessions(core: Core) -> list[tuple[Any, ...]]:
    rows = await core.store.engine.fetchall(
        "SELECT player_id, game_id, duration_seconds, idle_seconds, closed_reason FROM sessions"
        " WHERE source = 'discord' ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def play(gw: Gateway, clock: ManualClock, minutes: float, *, flush: bool = True) -> None:
    """Time passes (flushed every 30 s, as the tracker's loop would)."""
    assert gw.core.presence is not None
    for _ in range(int(minutes * 2)):
        clock.advance(30)
        if flush:
            await gw.core.presence.flush()


async def test_a_session_starts_counts_and_stops(gateway: Gateway, clock: ManualClock) -> None:
    core = gateway.core
    assert gateway.fake.identified[0]["intents"] & (1 << 8)  # presences asked for
    await gateway.send(presence(ALICE, "online", FACTORIO))
    await play(gateway, clock, 10)
    assert await seconds(core) == 600  # flushed as it went
    await gateway.send(presence(ALICE, "online"))
    factorio = "discord:app:363409179668398080"
    assert await sessions(core) == [(str(ALICE), factorio, 600, 0, "ended")]
    assert await seconds(core, game=factorio) == 600
    name = await core.store.engine.fetchone("SELECT name FROM games WHERE game_id = ?", (factorio,))
    assert name[0] == "Factorio"
    [link] = [x for x in await core.accounts.links(GUILD, ALICE) if x.source == "discord"]
    assert link.external_id == str(ALICE) and link.verified_by == "discord"
    totals = await core.store.stats.member_totals(GUILD, ALICE)
    assert [(t.source, t.seconds) for t in totals] == [("discord", 600)]  # its own source
    board = await core.stats.leaderboard(GUILD, factorio, "all", clock.now())
    assert board.rows == [(ALICE, 600)]
    week = await core.stats.leaderboard(GUILD, factorio, "7d", clock.now())
    assert week.rows == [(ALICE, 600)]
    events = await core.store.engine.fetchall(
        "SELECT type FROM activity_events WHERE guild_id = ? ORDER BY id", (GUILD,)
    )
    assert [r[0] for r in events] == ["discord.session.started", "discord.session.ended"]
    assert "discord.session.started" in core.pipeline.policy.off_by_default  # quiet feed


async def test_idle_pauses_and_online_resumes(gateway: Gateway, clock: ManualClock) -> None:
    await gateway.send(presence(ALICE, "online", FACTORIO))
    await play(gateway, clock, 5)
    await gateway.send(presence(ALICE, "idle", FACTORIO))
    await play(gateway, clock, 4)
    await gateway.send(presence(ALICE, "dnd", FACTORIO))  # do not disturb still plays
    await play(gateway, clock, 1)
    await gateway.send(presence(ALICE, "offline"))
    [(_, _, duration, idle, reason)] = await sessions(gateway.core)
    assert (duration, idle, reason) == (600, 240, "ended")
    assert await seconds(gateway.core) == 360  # duration minus idle
    away = await gateway.core.store.engine.fetchone(
        "SELECT sum(away_seconds) FROM playtime WHERE source = 'discord'"
    )
    assert tuple(away) == (240,)  # the idle time counts in the total only


async def test_idle_time_is_flushed_apart_while_the_session_runs(
    gateway: Gateway, clock: ManualClock
) -> None:
    await gateway.send(presence(ALICE, "online", FACTORIO))
    await play(gateway, clock, 5)
    await gateway.send(presence(ALICE, "idle", FACTORIO))
    await play(gateway, clock, 6)  # still running: the flushes carry the idle time apart
    core = gateway.core
    row = await core.store.engine.fetchone(
        "SELECT sum(seconds), sum(away_seconds) FROM playtime WHERE source = 'discord'"
    )
    assert tuple(row) == (300, 360)
    factorio = "discord:app:363409179668398080"
    for period in ("all", "7d"):
        board = await core.stats.leaderboard(GUILD, factorio, period, clock.now())
        assert board.rows == [(ALICE, 300)]  # ranked by active time
        assert board.away == {ALICE: 360}
    totals = await core.store.stats.member_totals(GUILD, ALICE)
    assert [(t.seconds, t.away) for t in totals] == [(300, 360)]


async def test_two_games_are_two_sessions_and_other_activities_are_ignored(
    gateway: Gateway, clock: ManualClock
) -> None:
    await gateway.send(presence(ALICE, "online", FACTORIO, CHESS, SPOTIFY, CUSTOM, STREAMING))
    await play(gateway, clock, 3)
    await gateway.send(presence(ALICE, "online", CHESS, SPOTIFY))  # Factorio closed
    await play(gateway, clock, 2)
    await gateway.send(presence(ALICE, "online", SPOTIFY, CUSTOM))
    found = {game: duration for _, game, duration, _, _ in await sessions(gateway.core)}
    assert found == {"discord:app:363409179668398080": 180, "discord:name:chess tournament": 300}
    assert await seconds(gateway.core) == 480


async def test_a_short_session_leaves_nothing_and_a_long_one_is_capped(
    gateway: Gateway, clock: ManualClock
) -> None:
    core = gateway.core
    await gateway.send(presence(ALICE, "online", HADES))
    await play(gateway, clock, 1.5)  # 90 s: under the 120 s minimum
    await gateway.send(presence(ALICE, "online"))
    assert await sessions(core) == [] and await seconds(core) == 0
    raw = await core.store.engine.fetchone("SELECT count(*) FROM raw_events")
    assert raw[0] == 0
    await gateway.send(presence(ALICE, "online", HADES))
    await play(gateway, clock, 180)  # three hours, capped at two
    assert await seconds(core) == 7200
    assert [s[4] for s in await sessions(core)] == ["ended"]  # closed when the cap was reached
    await play(gateway, clock, 10)
    assert await seconds(core) == 7200  # still running: not reopened until the game goes
    await gateway.send(presence(ALICE, "online"))
    await gateway.send(presence(ALICE, "online", HADES))
    await play(gateway, clock, 5)
    assert await seconds(core) == 7200 + 300


async def test_consent_rules(gateway: Gateway, clock: ManualClock) -> None:
    core = gateway.core
    await core.privacy.set_presence(GUILD, BOB, False)  # Bob opts out of the default
    await gateway.send(presence(ALICE, "online", FACTORIO), presence(BOB, "online", FACTORIO))
    await play(gateway, clock, 5)
    assert await seconds(core, ALICE) == 300 and await seconds(core, BOB) == 0
    await core.privacy.set_presence_default(GUILD, False)  # the default off: Alice stops
    await play(gateway, clock, 5)
    assert await seconds(core, ALICE) == 300
    await core.privacy.set_presence(GUILD, BOB, True)  # Bob's own choice counts
    await gateway.send(presence(BOB, "online", HADES))
    await play(gateway, clock, 5)
    assert await seconds(core, BOB) == 300
    await core.privacy.set_collecting(GUILD, BOB, False)  # /privacy off stops presence too
    await play(gateway, clock, 5)
    assert await seconds(core, BOB) == 300
    assert not await core.store.presence.consent(GUILD, BOB)


async def test_a_long_disconnect_is_not_counted_and_a_short_one_is(
    gateway: Gateway, clock: ManualClock
) -> None:
    core = gateway.core
    tracker = core.presence
    assert tracker is not None
    await gateway.send(presence(ALICE, "online", FACTORIO))
    await play(gateway, clock, 5)
    await gateway.fake.drop_gateway()  # the bot resumes on its own
    await wait_until(lambda: bool(tracker.lost_shards) or gateway.fake.gateway_connections > 1)
    await wait_until(lambda: core.discord_state == "connected" and not tracker.lost_shards)
    await play(gateway, clock, 1)
    assert await seconds(core) == 360  # a blip: the session went on
    tracker.gateway_lost()  # away for ten minutes
    clock.advance(600)
    await tracker.gateway_back({GUILD: [_member_playing(ALICE)]})
    await play(gateway, clock, 3)  # a new session from what Discord shows now
    assert await seconds(core) == 360 + 180  # the ten minutes away do not count
    assert [s[4] for s in await sessions(core)] == ["ended", None]  # closed when it dropped
    tracker.gateway_lost()  # away for a minute: within the grace, it counts
    clock.advance(60)
    await tracker.gateway_back({GUILD: [_member_playing(ALICE)]})
    await play(gateway, clock, 1)
    assert await seconds(core) == 540 + 60 + 60


async def test_the_cap_bounds_the_whole_session_idle_time_included(
    gateway: Gateway, clock: ManualClock
) -> None:
    core = gateway.core
    await gateway.send(presence(ALICE, "online", FACTORIO))
    await play(gateway, clock, 60)
    await gateway.send(presence(ALICE, "idle", FACTORIO))  # the game left running, idle
    await play(gateway, clock, 600)  # ten hours more: the cap is two hours in all
    row = await core.store.engine.fetchone(
        "SELECT sum(seconds), sum(away_seconds) FROM playtime WHERE source = 'discord'"
    )
    assert tuple(row) == (3600, 3600)  # the total never grows past the cap
    assert [s[4] for s in await sessions(core)] == ["ended"]  # closed at the cap


async def test_a_bot_that_fails_as_a_whole_loses_every_shard(core: Core) -> None:
    from bot.gateway.client import Questlog

    tracker = core.presence
    assert tracker is not None
    component = DiscordComponent(core, FeedPoster(core.store, core.clock), "token")
    component.bot = Questlog(core, presence=True, shard_count=3, shard_ids=[1, 2])
    component._shards_lost()  # closing the bot sends no per-shard events
    assert tracker.lost_shards == [1, 2]
    tracker.reshard(4)  # the next login is told to use four shards
    assert tracker.lost_shards == [0, 1, 2, 3]
    await component._close_bot()


async def test_a_dropped_shard_stops_counting_only_its_own_guilds(
    core: Core, clock: ManualClock
) -> None:
    tracker = core.presence
    assert tracker is not None
    other = GUILD + (1 << 22)  # the next shard of two
    tracker.shard_of = lambda guild_id: (guild_id >> 22) % 2
    dropped = tracker.shard_of(other)
    assert tracker.shard_of(GUILD) != dropped
    for guild in (GUILD, other):
        await core.privacy.set_presence_default(guild, True)
        await tracker.update(guild, _member_playing(ALICE))

    async def minutes(n: int) -> None:
        for _ in range(n * 2):
            clock.advance(30)
            await tracker.flush()

    await minutes(5)
    tracker.gateway_lost(dropped)
    assert tracker.lost_shards == [dropped]
    await minutes(10)  # longer than the grace (120 s)
    await tracker.update(other, _member_playing(BOB))  # nothing arrives on a dropped shard
    await tracker.gateway_back({other: [_member_playing(ALICE)]}, dropped)
    assert tracker.lost_shards == []
    await minutes(3)
    rows = await core.store.engine.fetchall(
        "SELECT scope_guild_id, sum(seconds) FROM playtime WHERE source = 'discord'"
        " GROUP BY scope_guild_id ORDER BY scope_guild_id"
    )
    assert {r[0]: r[1] for r in rows} == {GUILD: 18 * 60, other: 8 * 60}
    reasons = await core.store.engine.fetchall(
        "SELECT guild_id, closed_reason FROM sessions WHERE source = 'discord' ORDER BY id"
    )
    assert [tuple(r) for r in reasons] == [(GUILD, None), (other, "ended"), (other, None)]


def _member_playing(user: int) -> Any:
    from bot.presence import MemberPresence, PlayedGame

    return MemberPresence(user, "online", (PlayedGame("Factorio", "363409179668398080"),))


async def test_a_crash_loses_at_most_one_flush_and_the_session_is_closed_at_restart(
    gateway: Gateway, clock: ManualClock, config_data: dict[str, Any]
) -> None:
    core = gateway.core
    await gateway.send(presence(ALICE, "online", FACTORIO))
    clock.advance(150)
    await core.presence.flush()  # type: ignore[union-attr]
    clock.advance(30)
    await core.presence.flush()  # type: ignore[union-attr]
    clock.advance(25)  # 205 s played; the process dies before the next flush
    assert await seconds(core) == 180
    assert 205 - await seconds(core) <= 30
    core.presence = None  # the crash: the open session is never written
    restarted = await Core.start(parse_config(config_data, env={}), clock)
    try:
        assert restarted.presence is not None
        await restarted.presence.start()
        assert [s[4] for s in await sessions(restarted)] == ["interrupted"]
        assert await seconds(restarted) == 180
    finally:
        await restarted.stop()


async def test_members_already_playing_are_picked_up_at_start(
    core: Core, clock: ManualClock, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    playing = [presence(ALICE, "online", FACTORIO), presence(BOB, "online", SPOTIFY)]
    async with connected(core, clock, discord_api, monkeypatch, playing) as gw:
        await play(gw, clock, 5)
        assert await seconds(core) == 300 and await seconds(core, BOB) == 0


async def test_refused_intents_run_on_without_presence(
    core: Core, clock: ManualClock, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(discord_api.gateway_url)
    )
    discord_api.privileged_intents = False  # the Developer Portal switches are off
    discord_api.gateway_guilds[GUILD] = guild_payload(GUILD, {})
    component = DiscordComponent(
        core, FeedPoster(core.store, clock), discord_api.token, presence=True, backoff_base=0.01
    )
    with caplog.at_level(logging.INFO):
        await component.start()
        try:
            await wait_until(lambda: core.discord_state == "connected")
            intents = [i["intents"] for i in discord_api.identified]
            assert intents[0] & (1 << 8) and intents[-1] == discord.Intents(guilds=True).value
            assert len(intents) == 2  # refused once, then straight on without them
            assert component.bot is not None and component.bot.tracker is None
        finally:
            await component.stop()
    hints = [r for r in caplog.records if "Privileged Gateway Intents" in r.getMessage()]
    assert len(hints) == 1 and "4014" in hints[0].getMessage()


async def test_an_activity_lands_under_the_game_of_the_same_name(core: Core) -> None:
    from bot.storage.playtime import remember_game_name

    now = core.clock.now()
    await core.store.engine.write(lambda c: remember_game_name(c, "427520", "Factorio", "x"))
    assert await core.store.presence.game("363409179668398080", "factorio", now) == "427520"
    # Learnt for the application: kept even if the name changes later.
    assert await core.store.presence.game("363409179668398080", "Factorio: Space Age", now) == (
        "427520"
    )
    assert await core.store.presence.game(None, "Ёлки Палки", now) == "discord:name:ёлки палки"
    await core.store.engine.write(lambda c: remember_game_name(c, "999", "Ёлки Палки", "x"))
    assert await core.store.presence.game(None, "ёлки палки", now) == "999"  # beyond ASCII case
    assert await core.store.presence.game("42", "Unknown Thing", now) == "discord:app:42"


def test_upgrading_gives_every_session_no_idle_time() -> None:
    import sqlite3

    from bot.storage.engine import apply_migrations

    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, up_to=24)
    conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, game_id, started_at, ended_at,"
        " duration_seconds, closed_reason) VALUES (1, 'minecraft', 'p', 'minecraft', 'a', 'b',"
        " 600, 'ended')"
    )
    assert apply_migrations(conn, up_to=25) == [25]
    assert conn.execute("SELECT duration_seconds, idle_seconds FROM sessions").fetchall() == [
        (600, 0)
    ]
    assert conn.execute("SELECT count(*) FROM presence_games").fetchone() == (0,)


async def test_who_stopped_while_the_bot_was_away_is_closed_on_reconnection(
    gateway: Gateway, clock: ManualClock
) -> None:
    core, tracker = gateway.core, gateway.core.presence
    assert tracker is not None
    await gateway.send(presence(ALICE, "online", FACTORIO), presence(BOB, "online", HADES))
    await play(gateway, clock, 5)
    tracker.gateway_lost()
    clock.advance(60)  # within the grace; Bob stopped meanwhile: the cache no longer shows him
    await tracker.gateway_back({GUILD: [_member_playing(ALICE)]})
    await play(gateway, clock, 5)
    assert await seconds(core, BOB) == 300 + 60  # up to the reconnection, no further
    assert await seconds(core, ALICE) == 300 + 60 + 300


async def test_leaving_the_server_ends_the_session(gateway: Gateway, clock: ManualClock) -> None:
    await gateway.send(presence(ALICE, "online", FACTORIO))
    await play(gateway, clock, 5)
    await gateway.fake.dispatch(
        "GUILD_MEMBER_REMOVE", {"guild_id": str(GUILD), "user": user_payload(ALICE, "Alice")}
    )
    await wait_until(lambda: not gateway.core.presence.sessions)  # type: ignore[union-attr]
    await play(gateway, clock, 5)
    assert await seconds(gateway.core) == 300


async def test_consent_given_mid_game_counts_from_then_and_off_writes_the_session(
    gateway: Gateway, clock: ManualClock
) -> None:
    core = gateway.core
    await core.privacy.set_presence(GUILD, ALICE, False)
    await gateway.send(presence(ALICE, "online", FACTORIO))
    await play(gateway, clock, 5)
    assert await seconds(core) == 0
    await core.privacy.set_presence(GUILD, ALICE, True)  # while playing: no update needed
    await play(gateway, clock, 5)
    assert await seconds(core) == 300
    await core.privacy.set_collecting(GUILD, ALICE, False)  # /privacy off: closed and written
    [(_, _, duration, _, reason)] = await sessions(core)
    assert (duration, reason) == (300, "ended")
    await play(gateway, clock, 5)
    assert await seconds(core) == 300


async def test_a_forget_while_playing_leaves_nothing_and_opens_nothing(
    gateway: Gateway, clock: ManualClock
) -> None:
    core = gateway.core
    await gateway.send(presence(ALICE, "online", FACTORIO))
    await play(gateway, clock, 5)
    assert await seconds(core) == 300
    done = await core.privacy.forget(GUILD, ALICE, by_member=True)
    assert done.report.removed["playtime"] >= 1
    await play(gateway, clock, 5)
    rows = await core.store.engine.fetchall(
        "SELECT 'playtime' FROM playtime WHERE player_id = ? UNION ALL"
        " SELECT 'session' FROM sessions WHERE player_id = ? UNION ALL"
        " SELECT 'link' FROM account_links WHERE discord_user_id = ?",
        (str(ALICE), str(ALICE), ALICE),
    )
    assert rows == []  # her open session was dropped unwritten
    # A stale flush that races the forget is withheld: her presence link is gone.
    stale = {"type": "presence.played", "session": "s", "seq": 9, "user_id": str(ALICE),
             "game_id": "x", "game_name": "X", "seconds": 60, "at": "2025-03-01T00:00:00Z"}  # fmt: skip
    result = await core.pipeline.ingest("discord", GUILD, stale)
    assert result.details == {"withheld": True}


async def test_refused_intents_tell_members_presence_is_not_collected(
    core: Core, clock: ManualClock, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(discord_api.gateway_url)
    )
    discord_api.privileged_intents = False
    discord_api.gateway_guilds[GUILD] = guild_payload(GUILD, {})
    assert core.privacy.presence_running
    component = DiscordComponent(
        core, FeedPoster(core.store, clock), discord_api.token, presence=True, backoff_base=0.01
    )
    await component.start()
    try:
        await wait_until(lambda: core.discord_state == "connected")
        assert not core.privacy.presence_running
    finally:
        await component.stop()


async def test_a_refresh_under_way_brings_no_forgotten_tokens_back(core: Core) -> None:
    from bot.storage.records import StoredTokens

    now = core.clock.now()
    assert not await core.store.tokens.refreshed(
        StoredTokens(ALICE, "a", "r", "identify", now), now
    )
    assert await core.store.tokens.get(ALICE) is None


async def test_a_member_back_in_the_server_gets_their_rewards_again(gateway: Gateway) -> None:
    """With the Server Members intent (asked for with presence), GUILD_MEMBER_ADD reaches the
    bot: a member who left lost their roles, so their grants are made again."""
    core = gateway.core
    steam_id = "76561198000000201"
    await core.store.links.link(
        guild_id=GUILD, discord_user_id=ALICE, source="steam", external_id=steam_id,
        now=core.clock.now(),
    )  # fmt: skip
    await core.store.engine.write(
        lambda c: c.execute(
            "INSERT INTO member_playtime (guild_id, game_id, discord_user_id, source, seconds)"
            " VALUES (?, '393380', ?, 'steam', ?)",
            (GUILD, ALICE, 200 * 3600),
        )
    )
    await core.rewards.add(guild_id=GUILD, role_id=1400000000000000031, hours=100)
    await core.rewards.settled()

    async def grants() -> int:
        row = await core.store.engine.fetchone(
            "SELECT count(*) FROM action_outbox WHERE action = 'grant_role'"
        )
        return int(row[0])

    assert await grants() == 1
    await gateway.fake.dispatch(  # she leaves (her roles go with her), then comes back
        "GUILD_MEMBER_REMOVE", {"guild_id": str(GUILD), "user": user_payload(ALICE, "Alice")}
    )
    await wait_until(lambda: gateway.component.bot.get_guild(GUILD).get_member(ALICE) is None)  # type: ignore[union-attr]
    await gateway.fake.dispatch(
        "GUILD_MEMBER_ADD",
        {**member(ALICE, "Alice"), "guild_id": str(GUILD), "joined_at": "2026-12-02T12:00:00Z"},
    )
    for _ in range(100):
        if await grants() == 2:
            break
        await asyncio.sleep(0.02)
    assert await grants() == 2
