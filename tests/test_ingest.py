"""The ingest pipeline: dedupe, effects, outbox, scoping (no HTTP)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from bot.clock import ManualClock, to_iso
from bot.config import Config
from bot.core import Core
from bot.storage.playtime import record_playtime
from bot.storage.records import GLOBAL_SCOPE
from connectors.base import WebhookContext
from tests.conftest import GUILD, OTHER_GUILD

STEAM_ID = "76561198000000001"


def bm_raw(
    core: Core,
    playtime: int,
    at_offset: float = 0,
    sig: str = "a" * 64,
    game: int = 393380,
    steam_id: str = STEAM_ID,
) -> dict[str, Any]:
    signed_at = core.clock.now() + timedelta(seconds=at_offset)
    context = WebhookContext(
        signed_at=signed_at,
        signed_at_text=to_iso(signed_at),
        signature=sig,
        received_at=core.clock.now(),
    )
    body = {"steam_id": steam_id, "playtime": str(playtime), "game_id": game}
    return core.registry.get("battlemetrics").parse_webhook(body, context)


def mc_raw(core: Core, **body: Any) -> dict[str, Any]:
    return core.registry.get("minecraft").parse_webhook(
        body, WebhookContext(received_at=core.clock.now())
    )


async def set_feed(
    core: Core, guild: int, channel: int | None, types: list[str] | None = None
) -> None:
    now = to_iso(core.clock.now())
    await core.store.engine.write(
        lambda c: c.execute(
            "INSERT INTO guilds (guild_id, feed_channel_id, feed_event_types, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET"
            " feed_channel_id = excluded.feed_channel_id, feed_event_types = excluded.feed_event_types",
            (guild, channel, json.dumps(types) if types is not None else None, now, now),
        )
    )


async def count(core: Core, sql: str, params: tuple[Any, ...] = ()) -> int:
    return (await core.store.engine.fetchone(sql, params))[0]


async def test_duplicate_is_detected_across_restarts(config: Config, clock: ManualClock) -> None:
    raw = {"event_type": "raid.won", "title": "Raid won", "id": "raid-42"}
    first = await Core.start(config, clock)
    try:
        parsed = first.registry.get("custom").parse_webhook(
            raw, WebhookContext(received_at=clock.now())
        )
        assert (await first.pipeline.ingest("custom", GUILD, parsed)).status == "accepted"
    finally:
        await first.stop()
    clock.advance(3600)
    second = await Core.start(config, clock)
    try:
        parsed = second.registry.get("custom").parse_webhook(
            raw, WebhookContext(received_at=clock.now())
        )
        assert (await second.pipeline.ingest("custom", GUILD, parsed)).status == "duplicate"
        assert await count(second, "SELECT count(*) FROM raw_events") == 1
        assert await count(second, "SELECT count(*) FROM activity_events") == 1
        assert second.metrics.get("questlog_ingest_total", source="custom", result="duplicate") == 1
    finally:
        await second.stop()


async def test_fifty_identical_events_at_once_make_one(core: Core) -> None:
    await set_feed(core, GUILD, 555)
    raw = mc_raw(
        core,
        type="session.started",
        player_uuid="069a79f4-44e9-4726-a5be-fca90e38aaf5",
        server_id="s1",
        at="2025-03-01T12:00:00Z",
    )
    results = await asyncio.gather(
        *(core.pipeline.ingest("minecraft", GUILD, dict(raw)) for _ in range(50))
    )
    assert sorted(r.status for r in results) == ["accepted"] + ["duplicate"] * 49
    assert await count(core, "SELECT count(*) FROM raw_events") == 1
    assert await count(core, "SELECT count(*) FROM activity_events") == 1
    assert await count(core, "SELECT count(*) FROM feed_outbox") == 1
    assert await count(core, "SELECT count(*) FROM sessions") == 1


async def test_same_event_in_two_guilds_is_two_events(core: Core) -> None:
    raw = mc_raw(
        core,
        type="session.started",
        player_uuid="069a79f4-44e9-4726-a5be-fca90e38aaf5",
        at="2025-03-01T12:00:00Z",
    )
    assert (await core.pipeline.ingest("minecraft", GUILD, raw)).status == "accepted"
    assert (await core.pipeline.ingest("minecraft", OTHER_GUILD, raw)).status == "accepted"
    rows = await core.store.engine.fetchall(
        "SELECT guild_id FROM activity_events ORDER BY guild_id"
    )
    assert [r[0] for r in rows] == [GUILD, OTHER_GUILD]


async def test_battlemetrics_newer_delivery_wins_and_older_never_overwrites(core: Core) -> None:
    assert (
        await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 7200, 0, "1" * 64))
    ).details["playtime_updated"]
    newer = await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 9000, 60, "2" * 64))
    assert newer.details["playtime_updated"] is True
    older = await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 8000, 30, "3" * 64))
    assert older.status == "accepted" and older.details["playtime_updated"] is False
    row = await core.store.engine.fetchone(
        "SELECT seconds FROM playtime WHERE scope_guild_id = ? AND source = 'battlemetrics' AND player_id = ?",
        (GUILD, STEAM_ID),
    )
    assert row[0] == 9000
    samples = await core.store.engine.fetchall(
        "SELECT delta_seconds, total_seconds FROM playtime_samples"
    )
    assert [tuple(s) for s in samples] == [(1800, 9000)]  # the first report is a silent baseline
    # Scoped to the guild of the endpoint: the other guild sees nothing.
    assert (
        await count(core, "SELECT count(*) FROM playtime WHERE scope_guild_id = ?", (OTHER_GUILD,))
        == 0
    )


async def test_milestone_announced_once_when_crossed(core: Core) -> None:
    await set_feed(core, GUILD, 555)
    await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 9 * 3600, 0, "1" * 64))
    crossed = await core.pipeline.ingest(
        "battlemetrics", GUILD, bm_raw(core, 11 * 3600, 10, "2" * 64)
    )
    assert len(crossed.event_ids) == 1
    event = await core.store.engine.fetchone("SELECT type, title, payload FROM activity_events")
    assert event[0] == "playtime.milestone"
    assert "10 h" in event[1]  # [general] milestone_hours: 10, 50, 100, 500, 1000
    assert json.loads(event[2])["hours"] == 10
    again = await core.pipeline.ingest(
        "battlemetrics", GUILD, bm_raw(core, 12 * 3600, 20, "3" * 64)
    )
    assert again.event_ids == []
    assert await count(core, "SELECT count(*) FROM feed_outbox") == 1


async def test_minecraft_session_pair_becomes_playtime(core: Core) -> None:
    uuid = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
    await core.pipeline.ingest(
        "minecraft",
        GUILD,
        mc_raw(
            core,
            type="session.started",
            player_uuid=uuid,
            player_name="Notch",
            server_id="s1",
            world="survival",
            at="2025-03-01T12:00:00Z",
        ),
    )
    ended = await core.pipeline.ingest(
        "minecraft",
        GUILD,
        mc_raw(
            core,
            type="session.ended",
            player_uuid=uuid,
            player_name="Notch",
            server_id="s1",
            at="2025-03-01T13:30:00+00:00",
            duration_seconds=999,
        ),
    )
    assert ended.details["duration_seconds"] == 5400  # from the pair, not the hint
    total = await core.store.engine.fetchone(
        "SELECT seconds FROM playtime WHERE scope_guild_id = ? AND source = 'minecraft' AND game_id = 'minecraft'",
        (GUILD,),
    )
    assert total[0] == 5400
    session = await core.store.engine.fetchone(
        "SELECT server_id, duration_seconds, closed_reason FROM sessions"
    )
    assert tuple(session) == ("s1", 5400, "ended")
    title = await core.store.engine.fetchone(
        "SELECT title FROM activity_events WHERE type = 'minecraft.session.ended'"
    )
    assert title[0] == "Notch played 1 h 30 min on s1"


async def test_session_end_without_start_uses_duration(core: Core) -> None:
    uuid = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
    result = await core.pipeline.ingest(
        "minecraft",
        GUILD,
        mc_raw(
            core,
            type="session.ended",
            player_uuid=uuid,
            at="2025-03-01T13:00:00Z",
            duration_seconds=600,
        ),
    )
    assert result.details["duration_seconds"] == 600
    session = await core.store.engine.fetchone("SELECT started_at, ended_at FROM sessions")
    assert tuple(session) == ("2025-03-01T12:50:00.000000Z", "2025-03-01T13:00:00.000000Z")


async def test_achievement_title_uses_display_name_and_link(core: Core) -> None:
    uuid = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
    now = to_iso(core.clock.now())
    await core.store.engine.write(
        lambda c: c.execute(
            "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, verified, created_at, updated_at)"
            " VALUES (?, 4242, 'minecraft', ?, 1, ?, ?)",
            (GUILD, uuid, now, now),
        )
    )
    await core.pipeline.ingest(
        "minecraft",
        GUILD,
        mc_raw(
            core,
            type="achievement.unlocked",
            player_uuid=uuid,
            player_name="Notch",
            key="minecraft:story/mine_diamond",
            at="2025-03-01T12:30:00Z",
        ),
    )
    row = await core.store.engine.fetchone(
        "SELECT title, actor_user_id, external_id FROM activity_events"
    )
    assert tuple(row) == (
        "Notch made the advancement [Diamonds!]",
        4242,
        "minecraft:story/mine_diamond",
    )


async def test_outbox_respects_feed_channel_and_event_filter(core: Core) -> None:
    uuid = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
    started = mc_raw(core, type="session.started", player_uuid=uuid, at="2025-03-01T12:00:00Z")
    await core.pipeline.ingest("minecraft", GUILD, started)  # no feed channel yet
    assert await count(core, "SELECT count(*) FROM feed_outbox") == 0
    await set_feed(core, GUILD, 777, ["minecraft.achievement", "custom.*"])
    await core.pipeline.ingest(
        "minecraft",
        GUILD,
        mc_raw(core, type="session.started", player_uuid=uuid, at="2025-03-01T14:00:00Z"),
    )
    await core.pipeline.ingest(
        "minecraft",
        GUILD,
        mc_raw(
            core,
            type="achievement.unlocked",
            player_uuid=uuid,
            key="minecraft:story/root",
            at="2025-03-01T14:01:00Z",
        ),
    )
    custom = core.registry.get("custom").parse_webhook(
        {"event_type": "boss.killed", "title": "Boss down"},
        WebhookContext(received_at=core.clock.now()),
    )
    await core.pipeline.ingest("custom", GUILD, custom)
    rows = await core.store.engine.fetchall(
        "SELECT e.type, o.channel_id, o.status FROM feed_outbox o JOIN activity_events e ON e.id = o.event_id ORDER BY o.id"
    )
    assert [tuple(r) for r in rows] == [
        ("minecraft.achievement", 777, "pending"),
        ("custom.boss.killed", 777, "pending"),
    ]


async def test_on_event_wakes_the_poster(core: Core) -> None:
    woken: list[int] = []
    core.pipeline.on_event = lambda: woken.append(1)
    custom = core.registry.get("custom").parse_webhook(
        {"event_type": "x", "title": "X"}, WebhookContext(received_at=core.clock.now())
    )
    await core.pipeline.ingest("custom", GUILD, custom)
    await core.pipeline.ingest("custom", GUILD, custom)
    assert woken == [1]


async def test_milestones_follow_the_best_total_across_sources(core: Core) -> None:
    """Steam already knows 12 h: BattleMetrics crossing 10 h later announces nothing; crossing
    50 h (beyond Steam) does, once; a first report is a silent baseline however high."""
    await set_feed(core, GUILD, 555)
    now = to_iso(core.clock.now())
    await core.store.engine.write(
        lambda c: record_playtime(
            c,
            scope=GLOBAL_SCOPE,
            source="steam",
            player_id=STEAM_ID,
            game_id="393380",
            seconds=12 * 3600,
            source_time=core.clock.now(),
            now_text=now,
        )
    )
    await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 9 * 3600, 0, "1" * 64))
    quiet = await core.pipeline.ingest(
        "battlemetrics", GUILD, bm_raw(core, 11 * 3600, 10, "2" * 64)
    )
    assert quiet.event_ids == []  # the best total was already past 10 h
    loud = await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 51 * 3600, 20, "3" * 64))
    assert len(loud.event_ids) == 1
    other = STEAM_ID[:-1] + "9"
    first = await core.pipeline.ingest(
        "battlemetrics", GUILD, bm_raw(core, 600 * 3600, 30, "4" * 64, steam_id=other)
    )
    assert first.event_ids == []  # a veteran's first report: silent


async def test_a_second_start_supersedes_the_open_session(core: Core) -> None:
    # A server that crashed sends no session.ended; the next join closes the stale session
    # without counting its time, and the end pairs with the newest start.
    uuid = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
    for kind, at in (
        ("session.started", "2025-03-01T12:00:00Z"),
        ("session.started", "2025-03-01T13:00:00Z"),
        ("session.ended", "2025-03-01T13:30:00Z"),
    ):
        await core.pipeline.ingest(
            "minecraft",
            GUILD,
            mc_raw(core, type=kind, player_uuid=uuid, server_id="s1", at=at),
        )
    rows = await core.store.engine.fetchall(
        "SELECT started_at, duration_seconds, closed_reason FROM sessions ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("2025-03-01T12:00:00.000000Z", None, "superseded"),
        ("2025-03-01T13:00:00.000000Z", 1800, "ended"),
    ]
    total = await core.store.engine.fetchone(
        "SELECT seconds FROM playtime WHERE source = 'minecraft' AND player_id = ?", (uuid,)
    )
    assert total[0] == 1800
