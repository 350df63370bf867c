"""The Steam sync against the fake Steam Web API: baseline, deltas into samples and one daily
feed line per game (edited as the day goes on), private profiles, 429s, a revoked key, and the
schedule (staggered, persisted across restarts, stretched to the budget)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from discord.http import HTTPClient

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.services.get_playtime import PlaytimeQuery
from bot.services.status import status_report
from bot.steam_sync.plan import first_slot, make_plan
from bot.storage.links import link_account
from tests.conftest import GUILD, OTHER_GUILD, steam_config_data
from tests.fakes.discord import FakeDiscord
from tests.fakes.steam import MODERN_ID, PRIVATE_ID, SAPHYEL_ID, FakeSteam
from tests.process import cli, write_config
from tests.test_feed import CHANNEL, set_feed, statuses
from tests.test_feed_discord import http, poster

__all__ = ["http"]  # the fixture, used by name

GUILD_CHANNELS = {CHANNEL: None}
GRIM_DAWN = 219990  # Saphyel's one game in the fixture library
ALICE, BOB = 501, 502


@pytest.fixture
def config_data(tmp_path: Any, steam: FakeSteam) -> dict[str, Any]:
    return steam_config_data(tmp_path, steam, max_concurrency=4)


async def link(core: Core, steam_id: str, guild: int = GUILD, user: int = ALICE) -> None:
    now = core.clock.now()
    await core.store.engine.write(
        lambda c: link_account(
            c,
            guild_id=guild,
            discord_user_id=user,
            source="steam",
            external_id=steam_id,
            now=now,
            display_name="Saphyel",
        )
    )


def play(steam: FakeSteam, steam_id: str, app_id: int, minutes: int) -> None:
    """The player played ``minutes`` more of the game (Steam's playtime_forever grows)."""
    for game in steam.players[steam_id]:
        if game["appid"] == app_id:
            game["playtime_forever"] += minutes
            return
    raise AssertionError(f"{steam_id} does not own {app_id}")


async def sync_all(core: Core) -> int:
    return await core.steam_sync.sync_now()


async def events(core: Core) -> list[tuple[Any, ...]]:
    rows = await core.store.engine.fetchall(
        "SELECT guild_id, type, title, update_key FROM activity_events ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def test_first_sync_is_a_silent_baseline(core: Core, steam: FakeSteam) -> None:
    await link(core, SAPHYEL_ID)
    assert await sync_all(core) == 1
    row = await core.store.engine.fetchone(
        "SELECT seconds FROM playtime WHERE scope_guild_id = 0 AND source = 'steam'"
        " AND player_id = ? AND game_id = ?",
        (SAPHYEL_ID, str(GRIM_DAWN)),
    )
    assert row is not None and row[0] > 0
    assert await events(core) == []
    assert (await core.store.engine.fetchone("SELECT count(*) FROM playtime_samples"))[0] == 0
    name = await core.store.engine.fetchone(
        "SELECT name FROM games WHERE game_id = ?", (str(GRIM_DAWN),)
    )
    assert name is not None and name[0] == "Grim Dawn"


async def test_a_delta_becomes_a_sample_and_one_line_per_guild_and_day(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID, GUILD, ALICE)
    await link(core, SAPHYEL_ID, OTHER_GUILD, BOB)
    await sync_all(core)
    play(steam, SAPHYEL_ID, GRIM_DAWN, 50)
    clock.advance(600)
    await sync_all(core)
    assert steam.calls["GetOwnedGames"] == 2  # once per sync, not once per guild
    samples = await core.store.engine.fetchall("SELECT delta_seconds FROM playtime_samples")
    assert [r[0] for r in samples] == [3000]
    found = await events(core)
    assert {(g, t) for g, t, _, _ in found} == {
        (GUILD, "steam.game_played"),
        (OTHER_GUILD, "steam.game_played"),
    }
    assert all("Grim Dawn today: 50 min" in title for _, _, title, _ in found)
    day_key = f"steam.game_played:{SAPHYEL_ID}:{GRIM_DAWN}:2025-03-01"
    assert {k for _, _, _, k in found} == {day_key}
    # More play the same day: another version of the same line, with the day's total.
    play(steam, SAPHYEL_ID, GRIM_DAWN, 30)
    clock.advance(600)
    await sync_all(core)
    latest = (await events(core))[-1]
    assert "1 h 20 min" in latest[2] and latest[3] == day_key
    # Nothing changed: nothing stored.
    clock.advance(600)
    await sync_all(core)
    assert len(await events(core)) == 4
    # The next day starts a new line.
    clock.advance(86_400)
    play(steam, SAPHYEL_ID, GRIM_DAWN, 5)
    await sync_all(core)
    assert (await events(core))[-1][3] == f"steam.game_played:{SAPHYEL_ID}:{GRIM_DAWN}:2025-03-02"


async def test_same_day_updates_edit_the_feed_message(
    core: Core, clock: ManualClock, steam: FakeSteam, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await link(core, SAPHYEL_ID)
    await sync_all(core)
    feed = poster(core, clock, http)
    play(steam, SAPHYEL_ID, GRIM_DAWN, 50)
    clock.advance(600)
    await sync_all(core)
    assert await feed.run_once() == 1
    for minutes in (10, 10):
        play(steam, SAPHYEL_ID, GRIM_DAWN, minutes)
        clock.advance(600)
        await sync_all(core)
        assert await feed.run_once() == 0
    [message] = discord_api.messages[CHANNEL]
    [embed] = message["embeds"]
    assert "Grim Dawn today: 1 h 10 min" in embed["title"]
    assert await core.store.engine.read(statuses) == {"sent": 3}


async def test_private_profile_marks_the_link_and_nothing_fails(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, PRIVATE_ID)
    await link(core, SAPHYEL_ID, user=BOB)
    assert await sync_all(core) == 1
    status = await core.store.engine.fetchone(
        "SELECT status FROM account_links WHERE external_id = ?", (PRIVATE_ID,)
    )
    assert status is not None and status[0] == "private_profile"
    account = await core.store.engine.fetchone(
        "SELECT state, private_since FROM steam_accounts WHERE steam_id = ?", (PRIVATE_ID,)
    )
    assert account is not None and account[0] == "private" and account[1] == to_iso(clock.now())
    # The player makes the library public: the mark goes, and that sync is the baseline.
    steam.private.discard(PRIVATE_ID)
    steam.players[PRIVATE_ID] = [dict(g) for g in steam.players[SAPHYEL_ID]]
    clock.advance(600)
    await sync_all(core)
    status = await core.store.engine.fetchone(
        "SELECT status FROM account_links WHERE external_id = ?", (PRIVATE_ID,)
    )
    assert status is not None and status[0] is None
    assert await events(core) == []


async def test_rate_limits_back_off_and_recover(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID)
    steam.fail_next("GetOwnedGames", [429] * 3)  # every attempt of the client's retries
    await core.steam_sync.run_once()  # enrolled, with a first slot within the interval
    clock.advance(300)
    assert await core.steam_sync.run_once() == 0
    assert await core.steam_sync.run_once() == 0
    account = await core.store.engine.fetchone(
        "SELECT state, failures, next_sync_at FROM steam_accounts WHERE steam_id = ?",
        (SAPHYEL_ID,),
    )
    assert account is not None and account[0] == "rate_limited" and account[1] == 1
    assert account[2] > to_iso(clock.now())  # backed off, not retried in a loop
    clock.advance(3 * 3600)
    assert await core.steam_sync.run_once() == 1
    state = await core.store.engine.fetchone("SELECT state, failures FROM steam_accounts")
    assert state is not None and tuple(state) == ("ok", 0)


async def test_a_refused_key_pauses_the_sync_and_a_probe_resumes_it(
    core: Core, clock: ManualClock, steam: FakeSteam, caplog: pytest.LogCaptureFixture
) -> None:
    await link(core, SAPHYEL_ID)
    await link(core, MODERN_ID, user=BOB)
    good_key = steam.api_key
    steam.api_key = "0" * 32  # the key was revoked: Steam answers the HTML 403 page
    sync = core.steam_sync
    with caplog.at_level(logging.INFO, logger="bot.steam_sync.sync"):
        assert await sync_all(core) == 0
        owned = steam.calls["GetOwnedGames"]
        summaries = steam.calls["GetPlayerSummaries"]
        status = await sync.status()
        assert status.state == "invalid_key"
        assert status.key_refused_since == clock.now()
        assert status.next_probe_at == clock.now() + timedelta(minutes=5)
        await sync.save_key_state()  # what the server's loop does after each pass
        key = await core.store.steam.key_state()
        assert key["steam_key_refused_since"] == to_iso(clock.now())
        report = await status_report(core.store, core.config, clock.now())  # questlog status
        assert report["steam_sync"] == (
            f"paused: key refused since {to_iso(clock.now())},"
            f" next probe at {to_iso(clock.now() + timedelta(minutes=5))}"
        )
        # Paused: no library is read, and get-playtime does not ask Steam either.
        clock.advance(60)
        assert await sync.run_once() == 0
        assert await sync.probe_key() is None  # not due yet
        answer = await core.playtime.lookup(
            GUILD, PlaytimeQuery([SAPHYEL_ID], GRIM_DAWN, refresh=True)
        )
        assert answer[0]["steam_status"] == "invalid_key"
        assert steam.calls["GetOwnedGames"] == owned
        assert steam.calls["GetPlayerSummaries"] == summaries
        # Probes: one one-id call each, 5 min after the refusal, then 10, 20 ... at most 60.
        waits, last = [], status.key_refused_since
        for _ in range(6):
            probe_at = (await sync.status()).next_probe_at
            assert probe_at is not None
            waits.append((probe_at - last).total_seconds())
            clock.set(probe_at)
            last = probe_at
            assert await sync.probe_key() is False
        assert waits == [300, 600, 1200, 2400, 3600, 3600]
        assert steam.calls["GetPlayerSummaries"] == summaries + 6
        assert steam.calls["GetOwnedGames"] == owned
        refused_lines = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refused_lines) == 1 and refused_lines[0].levelno == logging.ERROR
        # The key works again: the next probe resumes the sync by itself, no restart.
        steam.api_key = good_key
        clock.set((await sync.status()).next_probe_at)  # type: ignore[arg-type]
        assert await sync.probe_key() is True
    status = await sync.status()
    assert status.state == "running" and status.key_refused_since is None
    assert any("accepted the API key again" in r.getMessage() for r in caplog.records)
    await sync.save_key_state()
    assert await core.store.steam.key_state() == {}
    assert await sync_all(core) == 2


async def test_new_accounts_are_staggered_and_the_schedule_survives_a_restart(
    core: Core, clock: ManualClock, steam: FakeSteam, config: Any
) -> None:
    ids = [f"7656119{8_100_000_000 + n:010d}" for n in range(40)]
    for n, steam_id in enumerate(ids):
        steam.players[steam_id] = [dict(g) for g in steam.players[SAPHYEL_ID]]
        await link(core, steam_id, user=1000 + n)
    slots = sorted(first_slot(steam_id, 300) for steam_id in ids)
    assert await core.steam_sync.run_once() == sum(1 for s in slots if s == 0)
    synced = 0
    for _ in range(28):  # 280 s: the first accounts are due again only after 285 s
        clock.advance(10)
        synced += await core.steam_sync.run_once()
    expected = sum(1 for s in slots if 0 < s <= 280)
    assert synced == expected and expected >= 30  # spread over the interval, not a burst
    assert steam.calls["GetOwnedGames"] == sum(1 for s in slots if s <= 280)  # each once
    restarted = await Core.start(config, clock)
    try:
        assert await restarted.steam_sync.run_once() == 0  # nobody is due again yet
    finally:
        await restarted.stop()


def test_the_plan_stays_within_the_budget() -> None:
    small = make_plan(100, 5, 300, 80_000)
    assert (small.summary_interval, small.active_interval, small.sweep_interval) == (
        300,
        300,
        86_400,
    )
    for accounts, in_game in [(1_000, 100), (10_000, 0), (10_000, 1_000), (10_000, 10_000)]:
        plan = make_plan(accounts, in_game, 300, 80_000)  # the sync's share of 100,000
        assert plan.projected_calls <= 80_000
        assert plan.sweep_interval == 86_400  # everyone at least once a day
    busy = make_plan(10_000, 1_000, 300, 80_000)
    assert busy.active_interval > 300  # stretched: 1,000 players at once do not fit every 5 min


async def test_status_reports_the_plan(core: Core, steam: FakeSteam) -> None:
    await link(core, SAPHYEL_ID)
    await sync_all(core)
    status = await core.steam_sync.status()
    assert (status.state, status.accounts, status.in_game) == ("running", 1, 0)
    assert status.calls_today == 1
    assert status.plan.projected_calls == 288 + 1  # summaries every 5 min, one daily sweep


async def test_players_in_a_game_are_read_every_interval_and_once_after_leaving(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    sync = core.steam_sync
    await link(core, SAPHYEL_ID)
    await sync.sync_now()  # the baseline
    reads = steam.calls["GetOwnedGames"]
    await sync.run_once()  # not in a game: the next read is the daily sweep
    for _ in range(3):
        clock.advance(300)
        await sync.run_once()
    assert steam.calls["GetOwnedGames"] == reads
    steam.summaries[SAPHYEL_ID]["gameid"] = str(GRIM_DAWN)  # starts playing
    clock.advance(300)
    await sync.run_once()  # summaries see it: a read within one active interval
    play(steam, SAPHYEL_ID, GRIM_DAWN, 5)
    clock.advance(300)
    await sync.run_once()
    assert steam.calls["GetOwnedGames"] == reads + 1
    assert "5 min" in (await events(core))[-1][2]  # caught within two intervals
    play(steam, SAPHYEL_ID, GRIM_DAWN, 7)
    del steam.summaries[SAPHYEL_ID]["gameid"]  # ...and leaves
    clock.advance(300)
    await sync.run_once()  # the summaries show it left: read at once, for the last minutes
    assert steam.calls["GetOwnedGames"] == reads + 2
    assert "12 min" in (await events(core))[-1][2]
    for _ in range(5):
        clock.advance(300)
        await sync.run_once()
    assert steam.calls["GetOwnedGames"] == reads + 2  # back to the daily sweep
    clock.advance(86_400 * 1.05)  # the sweep's slot, with its jitter of up to 5 %
    await sync.run_once()
    assert steam.calls["GetOwnedGames"] == reads + 3


async def test_summaries_ask_100_accounts_per_call(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    for n in range(250):
        steam_id = f"7656119{8_200_000_000 + n:010d}"
        steam.players[steam_id] = []
        await link(core, steam_id, user=2000 + n)
    await core.steam_sync.run_once()
    assert steam.calls["GetPlayerSummaries"] == 3
    clock.advance(60)
    await core.steam_sync.run_once()
    assert steam.calls["GetPlayerSummaries"] == 3  # not again before the summary interval


async def test_links_are_enrolled_at_once_when_announced_and_otherwise_within_30_s(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    sync = core.steam_sync
    await sync.run_once()
    await link(core, SAPHYEL_ID)
    await sync.run_once()  # the links are re-read at most every 30 s...
    assert (await sync.status()).accounts == 0
    sync.links_changed()  # ...or at once when /link announces a change
    await sync.run_once()
    assert (await sync.status()).accounts == 1
    await link(core, MODERN_ID, user=BOB)
    clock.advance(31)
    await sync.run_once()
    assert (await sync.status()).accounts == 2


async def test_leaving_a_game_pulls_the_next_read_in(core: Core, clock: ManualClock) -> None:
    """With a stretched active interval, a player who leaves is read at the next summary pass
    instead of at the far-off next active read."""
    await link(core, SAPHYEL_ID)
    plan = make_plan(10_000, 1_000, 300, 80_000)  # active interval ~35 min
    await core.store.steam.enrol(clock.now(), lambda steam_id: clock.now())
    now = clock.now()
    later = to_iso(now + timedelta(seconds=plan.active_interval))
    await core.store.engine.write(
        lambda c: c.execute(
            "UPDATE steam_accounts SET in_game_app = ?, next_sync_at = ?",
            (GRIM_DAWN, later),
        )
    )
    observer, active = core.steam_sync.observer, plan.active_interval
    await core.store.steam.seen([SAPHYEL_ID], {SAPHYEL_ID: GRIM_DAWN}, now, active, observer, {})
    row = await core.store.engine.fetchone("SELECT next_sync_at, in_game_since FROM steam_accounts")
    assert row is not None and row[0] == later  # still playing: the active read stands
    await core.store.steam.seen([SAPHYEL_ID], {}, now, active, observer, {})
    row = await core.store.engine.fetchone("SELECT next_sync_at, in_game_app FROM steam_accounts")
    assert row is not None and tuple(row) == (to_iso(now), None)


async def test_cli_sync_reads_libraries_from_another_process(
    tmp_path: Any, steam: FakeSteam
) -> None:
    config = write_config(
        tmp_path, steam={"api_key": steam.api_key, "api_base_url": steam.base_url}
    )
    nothing = await asyncio.to_thread(
        cli, "sync", "--config", str(config), cwd=tmp_path, check=False
    )
    assert nothing.returncode == 1 and "no database at" in nothing.stderr  # never created
    await asyncio.to_thread(
        cli, "feed", "set", "--guild", str(GUILD), "--channel", "5", "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    missing = await asyncio.to_thread(
        cli, "sync", "--config", str(config), cwd=tmp_path, check=False
    )
    assert missing.returncode == 1 and "no linked Steam account" in missing.stderr
    now = "2025-03-01T12:00:00.000000Z"
    with sqlite3.connect(tmp_path / "data" / "q.sqlite3") as conn:
        conn.executemany(
            "INSERT INTO account_links (guild_id, discord_user_id, source, external_id,"
            " created_at, updated_at) VALUES (?, ?, 'steam', ?, ?, ?)",
            [(GUILD, ALICE, SAPHYEL_ID, now, now), (GUILD, BOB, PRIVATE_ID, now, now)],
        )
    done = await asyncio.to_thread(
        cli, "sync", "--member", str(ALICE), "--json", "--config", str(config), cwd=tmp_path
    )
    assert json.loads(done.stdout) == {
        "accounts": 1,
        "ok": 1,
        "private": 0,
        "deferred": 0,
        "busy": 0,
    }
    assert steam.calls["GetOwnedGames"] == 1


async def test_sessions_are_stored_and_posted_only_where_turned_on(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    off = core.pipeline.policy.off_by_default
    assert off == {  # from the EventSpecs
        "steam.session.started", "steam.session.ended",
        "discord.session.started", "discord.session.ended",
    }  # fmt: skip
    await set_feed(core)  # GUILD posts the default types: sessions are off
    await link(core, SAPHYEL_ID, GUILD, ALICE)
    await link(core, SAPHYEL_ID, OTHER_GUILD, BOB)
    now_text = to_iso(clock.now())
    await core.store.feed.set_channel(OTHER_GUILD, 77, now_text)
    await core.store.feed.set_event_types(OTHER_GUILD, sorted(off), now_text)
    sync = core.steam_sync
    await sync.sync_now()  # learns the game's name
    steam.summaries[SAPHYEL_ID]["gameid"] = str(GRIM_DAWN)
    await sync.run_once()
    clock.advance(3900)
    del steam.summaries[SAPHYEL_ID]["gameid"]
    await sync.run_once()
    session = await core.store.engine.fetchone(
        "SELECT game_id, duration_seconds, closed_reason FROM sessions WHERE source = 'steam'"
    )
    assert session is not None and tuple(session) == (str(GRIM_DAWN), 3900, "ended")
    found = await core.store.engine.fetchall(
        "SELECT e.guild_id, e.title, o.channel_id FROM activity_events e LEFT JOIN feed_outbox o"
        " ON o.event_id = e.id WHERE e.type LIKE 'steam.session.%' ORDER BY e.id"
    )
    by_guild = {(r[0], r[1], r[2]) for r in found}
    assert (OTHER_GUILD, "Saphyel started playing Grim Dawn", 77) in by_guild
    assert (OTHER_GUILD, "Saphyel played Grim Dawn for 1 h 5 min", 77) in by_guild
    # Stored for GUILD too (history), but not queued for its feed.
    assert {(g, c) for g, _, c in by_guild if g == GUILD} == {(GUILD, None)}


async def test_steam_crossing_a_milestone_is_announced_once_per_guild(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, SAPHYEL_ID, GUILD, ALICE)
    await link(core, SAPHYEL_ID, OTHER_GUILD, BOB)
    minutes = steam.players[SAPHYEL_ID][0]["playtime_forever"]
    target = next(h for h in (10, 50, 100, 500, 1000) if h * 60 > minutes)
    await sync_all(core)  # baseline: thresholds already passed stay quiet
    play(steam, SAPHYEL_ID, GRIM_DAWN, target * 60 - minutes + 1)
    clock.advance(600)
    await sync_all(core)
    rows = await core.store.engine.fetchall(
        "SELECT guild_id, title FROM activity_events WHERE type = 'playtime.milestone'"
    )
    assert sorted((r[0], r[1]) for r in rows) == [
        (GUILD, f"Saphyel reached {target} h in Grim Dawn"),
        (OTHER_GUILD, f"Saphyel reached {target} h in Grim Dawn"),
    ]
    play(steam, SAPHYEL_ID, GRIM_DAWN, 5)
    clock.advance(600)
    await sync_all(core)
    again = await core.store.engine.fetchone(
        "SELECT count(*) FROM activity_events WHERE type = 'playtime.milestone'"
    )
    assert again is not None and again[0] == 2


async def test_a_429_storm_on_summaries_backs_off_exponentially_and_recovers(
    core: Core, clock: ManualClock, steam: FakeSteam, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.steam_sync.sync.random.uniform", lambda a, b: 1.0)  # no jitter here
    sync = core.steam_sync
    await link(core, SAPHYEL_ID)
    steam.fail_next("GetPlayerSummaries", [429] * 9)  # three passes, three attempts each
    asked = []
    for _ in range(60):  # ten simulated minutes in 10 s steps
        before = steam.calls["GetPlayerSummaries"]
        await sync.run_once()
        if steam.calls["GetPlayerSummaries"] > before:
            asked.append(clock.monotonic())
        clock.advance(10)
    # After each failed pass the wait doubles (60 s, 120 s, 240 s), then the normal interval.
    gaps = [b - a for a, b in pairwise(asked)]
    assert gaps[:3] == [60, 120, 240]
    clock.advance(3600)
    await sync.run_once()
    assert steam.pending_failures("GetPlayerSummaries") == []
    status = await sync.status()
    assert status.state == "running"  # no crash, no stop: only a bad key stops the sync


async def test_the_scheduler_runs_a_service_per_connector_that_can_sync(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.scheduler import Scheduler

    syncing = [k for k in core.registry.keys() if core.registry.get(k).capabilities.can_sync]
    assert syncing == ["steam"]
    assert core.scheduler.services == {"steam": core.steam_sync}
    with caplog.at_level("WARNING"):
        bare = Scheduler(core.registry, {})
    assert bare.services == {} and "can sync, but the core has no sync service" in caplog.text
    with pytest.raises(LookupError):
        await bare.sync_now("steam")


async def test_a_new_lastlogoff_without_a_visible_game_pulls_a_read_in(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    sync = core.steam_sync
    await link(core, SAPHYEL_ID)
    await sync.sync_now()
    steam.summaries[SAPHYEL_ID]["lastlogoff"] = 1_740_800_000
    await sync.run_once()  # first value seen: only remembered
    reads = steam.calls["GetOwnedGames"]
    clock.advance(300)
    await sync.run_once()
    assert steam.calls["GetOwnedGames"] == reads  # unchanged: nothing to read
    steam.summaries[SAPHYEL_ID]["lastlogoff"] = 1_740_803_000  # was online, left again
    clock.advance(300)
    await sync.run_once()
    assert steam.calls["GetOwnedGames"] == reads + 1


async def test_sync_now_has_a_cooldown_per_guild(core: Core, clock: ManualClock) -> None:
    sync = core.steam_sync
    assert sync.sync_now_cooldown == 600
    assert sync.claim_sync_now(GUILD) is None
    assert sync.claim_sync_now(OTHER_GUILD) is None  # another server is not held back
    clock.advance(100)
    assert sync.claim_sync_now(GUILD) == clock.now() + timedelta(seconds=500)
    clock.advance(500)
    assert sync.claim_sync_now(GUILD) is None
    sync.sync_now_cooldown = 0
    assert sync.claim_sync_now(GUILD) is None and sync.claim_sync_now(GUILD) is None
