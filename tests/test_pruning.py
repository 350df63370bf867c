"""Pruning (bot/storage/retention.py, bot/pruning/): what goes after its window, what stays for
ever, and that nothing a member sees changes."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.feed.poster import FeedPoster
from bot.storage.engine import apply_migrations, vacuum_file
from bot.storage.links import link_account
from bot.storage.records import RetentionPolicy
from tests.conftest import GUILD, MakeEndpoint, bm_headers, iso_ms, sha_headers
from tests.test_feed import MemoryDiscord, set_feed

DAY = timedelta(days=1)
SID = "76561198000000042"


def mc_event(n: int, at: str, kind: str = "session.started") -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "player_uuid": f"00000000-0000-4000-8000-{n:012d}",
        "player_name": f"Steve{n}",
        "server_id": "survival",
        "at": at,
    }
    if kind == "session.ended":
        event["duration_seconds"] = 1800
    return event


async def post_mc(
    client: TestClient, endpoint: Any, event: dict[str, Any], timestamp: str | None = None
) -> Any:
    body = json.dumps(event).encode()
    response = await client.post(
        f"/webhooks/minecraft/{endpoint.path}",
        data=body,
        headers=sha_headers(endpoint.secret, body, timestamp),
    )
    return response.status, await response.json()


async def post_bm(client: TestClient, endpoint: Any, seconds: int, t: str) -> Any:
    body = json.dumps({"steam_id": SID, "playtime": str(seconds), "game_id": 393380}).encode()
    response = await client.post(
        f"/set-playtime/bm/{endpoint.path}/",
        data=body,
        headers=bm_headers(endpoint.secret, body, t),
    )
    return response.status, await response.json()


def rows(core: Core, sql: str, *params: Any) -> Any:
    return core.store.engine.fetchall(sql, params)


async def test_a_new_database_reclaims_pages_incrementally(core: Core) -> None:
    assert (await core.store.retention.space())["auto_vacuum"] == 2


async def test_payloads_go_dedupe_stays_and_a_pruned_retry_is_still_a_duplicate(
    core: Core, client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    mc = await make_endpoint("minecraft")
    bm = await make_endpoint("playtime")
    start = clock.now()
    plain = mc_event(1, iso_ms(start))
    stamped = mc_event(2, iso_ms(start))
    assert (await post_mc(client, mc, plain))[0] == 200
    assert (await post_mc(client, mc, stamped, str(int(start.timestamp()))))[0] == 200
    bm_t = iso_ms(start)
    assert (await post_bm(client, bm, 3600, bm_t))[0] == 200

    clock.advance(29 * DAY.total_seconds())
    report = await core.pruner.run_once()
    assert report.changed["raw_payloads_blanked"] == 0  # inside the window: nothing yet
    # BattleMetrics retries with its original signature: acknowledged while its row is kept.
    assert await post_bm(client, bm, 3600, bm_t) == (200, {"status": "duplicate"})

    clock.advance(2 * DAY.total_seconds())
    fresh = mc_event(3, iso_ms(clock.now()))
    assert (await post_mc(client, mc, fresh))[0] == 200  # today's: untouched
    report = await core.pruner.run_once()
    kept = await rows(
        core, "SELECT source, payload, timestamped FROM raw_events WHERE id <= 3 ORDER BY id"
    )
    # Both Minecraft deliveries keep a blanked dedupe row (a sender may sign a retry afresh,
    # and the key has no time in it); the BattleMetrics report, which is only ever retried
    # with its original time, is gone: such a late retry is refused as stale.
    assert [tuple(r) for r in kept] == [("minecraft", "", None), ("minecraft", "", None)]
    assert report.changed["raw_events"] == 1 and report.changed["raw_payloads_blanked"] == 2

    status, answer = await post_mc(client, mc, plain)  # the same delivery, a month late
    assert (status, answer["status"]) == (200, "duplicate")
    resigned = str(int(clock.now().timestamp()))
    assert await post_mc(client, mc, stamped, resigned) == (200, {"status": "duplicate"})
    assert (await post_bm(client, bm, 3600, bm_t))[0] == 401  # stale, its row pruned

    clock.advance(60 * DAY.total_seconds())  # past the feed history: the events go
    report = await core.pruner.run_once()
    assert report.changed["activity_events"] == 2
    kept = await rows(core, "SELECT source, payload FROM raw_events ORDER BY id")
    assert [tuple(r) for r in kept] == [("minecraft", "")] * 3
    status, answer = await post_mc(client, mc, plain)  # three months late: still a duplicate
    assert (status, answer["status"]) == (200, "duplicate")


async def test_feed_history_goes_after_its_window_but_not_what_is_pending(
    core: Core, client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    await set_feed(core)
    mc = await make_endpoint("minecraft")
    for n in range(12):
        stamp = str(int(clock.now().timestamp()))
        await post_mc(client, mc, mc_event(n, iso_ms(clock.now())), stamp)
    discord = MemoryDiscord()
    await FeedPoster(core.store, clock, discord).run_once()  # two batches, every row sent
    clock.advance(3600)
    late = mc_event(99, iso_ms(clock.now()))
    await post_mc(client, mc, late, str(int(clock.now().timestamp())))  # stays pending
    counts = """SELECT (SELECT count(*) FROM activity_events), (SELECT count(*) FROM feed_outbox),
        (SELECT count(*) FROM feed_batches), (SELECT count(*) FROM raw_events)"""
    assert tuple((await rows(core, counts))[0]) == (13, 13, 2, 13)

    clock.advance(89 * DAY.total_seconds())
    await core.pruner.run_once()
    assert tuple((await rows(core, counts))[0]) == (13, 13, 2, 13)  # referenced: kept

    clock.advance(1 * DAY.total_seconds())
    report = await core.pruner.run_once()
    # The twelve posted events went, outbox rows first, with their batches and raw events;
    # the one still waiting for Discord stays with everything it needs. (The newest batch
    # stays too: its id must not be handed out again, it is part of a Discord nonce.)
    assert tuple((await rows(core, counts))[0]) == (1, 1, 1, 13)  # dedupe rows stay
    assert report.changed["outbox_rows"] == 12 and report.changed["activity_events"] == 12
    assert report.changed["feed_batches"] == 1
    [(pending,)] = await rows(core, "SELECT status FROM feed_outbox")
    assert pending == "pending"
    await FeedPoster(core.store, clock, discord).run_once()
    assert len(discord.embeds()) == 13  # the survivor is still posted
    [(batch,)] = await rows(core, "SELECT max(id) FROM feed_batches")
    assert batch == 3  # a new id, not one handed out before


async def test_charts_and_leaderboards_are_identical_after_pruning(
    core: Core, client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    bm = await make_endpoint("playtime")
    mc = await make_endpoint("minecraft")
    start = clock.now()
    now = start
    links = [(SID, "steam", 1)] + [
        (mc_event(d, "")["player_uuid"], "minecraft", 2) for d in range(40)
    ]
    await core.store.engine.write(
        lambda c: [
            link_account(c, guild_id=GUILD, discord_user_id=user, source=source,
                         external_id=external, now=now)
            for external, source, user in links
        ]
    )  # fmt: skip
    for day in range(40):
        await post_bm(client, bm, 3600 * (day + 1), iso_ms(clock.now()))
        await post_mc(client, mc, mc_event(day, iso_ms(clock.now())))
        clock.advance(1800)
        ended = mc_event(day, iso_ms(clock.now()), "session.ended")
        await post_mc(client, mc, ended)
        clock.advance(DAY.total_seconds() - 1800)

    async def views() -> Any:
        stats = core.store.stats
        since, today = start.date(), clock.now().date()
        return (
            await stats.daily(GUILD, 1, since, today),
            await stats.daily(GUILD, 2, since, today),
            (await stats.leaderboard(GUILD, "393380", None)).rows,
            (await stats.leaderboard(GUILD, "393380", (since, today))).rows,
            await stats.member_totals(GUILD, 1),
            await rows(core, "SELECT * FROM playtime ORDER BY 1, 2, 3, 4"),
            await rows(core, "SELECT * FROM playtime_daily ORDER BY 1, 2, 3, 4, 5"),
            await rows(core, "SELECT * FROM playtime_periods ORDER BY 1, 2, 3, 4, 5"),
            await rows(core, "SELECT * FROM sessions ORDER BY id"),
            await rows(core, "SELECT * FROM milestones ORDER BY 1, 2, 3, 4, 5"),
        )

    before = [[tuple(r) if isinstance(r, sqlite3.Row) else r for r in v] for v in await views()]
    assert before[2]  # the leaderboard has rows to compare
    report = await core.pruner.run_once()
    assert report.changed["raw_events"] > 0  # something was pruned
    after = [[tuple(r) if isinstance(r, sqlite3.Row) else r for r in v] for v in await views()]
    assert after == before


async def test_old_samples_roll_up_into_one_row_per_day_with_the_same_totals(
    core: Core, clock: ManualClock
) -> None:
    start = clock.now() - timedelta(days=400)
    samples = []
    for day in range(5):
        for hour in range(6):
            at = to_iso(start + timedelta(days=day, hours=hour * 3))
            for player in ("a", "b"):
                samples.append((GUILD, "minecraft", player, "minecraft", at, 60 + hour, hour, 0))
    young = to_iso(clock.now() - timedelta(days=10))
    samples += [(GUILD, "minecraft", "a", "minecraft", young, 5, 1, 0)] * 3
    await core.store.engine.write(
        lambda c: c.executemany(
            "INSERT INTO playtime_samples (scope_guild_id, source, player_id, game_id, at,"
            " delta_seconds, away_seconds, total_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            samples,
        )
    )
    per_day = """SELECT player_id, substr(at, 1, 10), sum(delta_seconds), sum(away_seconds),
        count(*) FROM playtime_samples GROUP BY 1, 2 ORDER BY 1, 2"""
    before = [tuple(r) for r in await rows(core, per_day)]
    core.pruner.step_rows = 7  # days split across steps are still summed right
    report = await core.pruner.run_once()
    after = [tuple(r) for r in await rows(core, per_day)]
    assert [r[:4] for r in after] == [r[:4] for r in before]  # the same seconds per day
    assert sum(r[3] for r in after) == 2 * 5 * 15 + 3  # away time too (issue 18)
    old_counts = [r[4] for r in after if r[1] < young[:10]]
    groups = [r for r in before if r[1] < young[:10]]
    assert old_counts == [1] * len(groups)  # 60 samples: one row per player and day
    assert [r[4] for r in after if r[1] == young[:10]] == [3]  # younger than a year: untouched
    assert report.steps > 5


async def test_pruning_frees_space_in_short_steps(
    core: Core, clock: ManualClock, tmp_path: Path
) -> None:
    big = "x" * 3000
    connector = core.registry.get("custom")
    from connectors.base import WebhookContext

    for n in range(600):
        body = {"event_type": "test", "title": "t", "id": f"e{n}", "description": big}
        raw = connector.parse_webhook(body, WebhookContext(received_at=clock.now()))
        await core.pipeline.ingest("custom", GUILD, raw)
    await core.store.engine.checkpoint()
    clock.advance(91 * DAY.total_seconds())
    body = {"event_type": "test", "title": "today", "id": "fresh"}
    await core.pipeline.ingest(
        "custom", GUILD, connector.parse_webhook(body, WebhookContext(received_at=clock.now()))
    )
    core.pruner.step_rows = 100
    dry = await core.store.retention.pending(clock.now(), core.pruner.policy)
    assert dry["raw_payloads_blanked"] == 600 and dry["activity_events"] == 600
    report = await core.pruner.run_once()
    await core.store.engine.checkpoint()
    assert report.changed["activity_events"] == 600
    assert report.changed["raw_payloads_blanked"] == 600
    assert report.bytes_after < report.bytes_before / 4, report.summary()
    assert report.free_pages_left == 0
    assert report.steps >= 12  # 100 rows a step
    assert await core.store.retention.pending(clock.now(), core.pruner.policy) == dict.fromkeys(
        dry, 0
    )


def test_an_existing_database_keeps_its_mode_until_vacuumed(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, up_to=19)  # an older release's file: auto_vacuum off
    conn.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    check.close()
    vacuum_file(path)
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    check.close()


async def test_policy_windows_come_from_the_config(core: Core) -> None:
    assert core.pruner.policy == RetentionPolicy(raw_payload_days=30, feed_history_days=90)


async def insert_samples(core: Core, samples: list[tuple[Any, ...]]) -> None:
    await core.store.engine.write(
        lambda c: c.executemany(
            "INSERT INTO playtime_samples (scope_guild_id, source, player_id, game_id, at,"
            " delta_seconds, total_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
            samples,
        )
    )


async def test_a_future_dated_sample_does_not_hold_the_roll_up(
    core: Core, clock: ManualClock
) -> None:
    old = to_iso(clock.now() - timedelta(days=400))
    await insert_samples(
        core,
        [(GUILD, "minecraft", "a", "mc", old, 60, 0),
         (GUILD, "minecraft", "a", "mc", "9998-01-01T00:00:00.000000Z", 5, 0)]
        + [(GUILD, "minecraft", "a", "mc", old, 60, 0)] * 6,
    )  # fmt: skip
    dry = await core.store.retention.pending(clock.now(), core.pruner.policy)
    report = await core.pruner.run_once()
    assert report.changed["samples_rolled_up"] == dry["samples_rolled_up"] == 6
    [(seconds,)] = await rows(
        core, "SELECT sum(delta_seconds) FROM playtime_samples WHERE at = ?", old
    )
    assert seconds == 7 * 60


async def test_the_roll_up_keeps_local_days_for_a_rebuild_in_the_summary_zone(
    core: Core, clock: ManualClock
) -> None:
    """Samples at 03:00Z and 20:00Z fall on two Los Angeles days: rolled up per local day, a
    rebuild of playtime_daily in that zone gives the same days."""
    from bot.pruning import Pruner

    day = (clock.now() - timedelta(days=400)).strftime("%Y-%m-%d")
    await insert_samples(
        core,
        [(GUILD, "minecraft", "a", "mc", f"{day}T03:00:00.000000Z", 1800, 0),
         (GUILD, "minecraft", "a", "mc", f"{day}T03:30:00.000000Z", 600, 0),
         (GUILD, "minecraft", "a", "mc", f"{day}T20:00:00.000000Z", 1800, 0)],
    )  # fmt: skip
    zone = "America/Los_Angeles"
    assert await core.store.stats.use_timezone(zone)
    days = "SELECT day, seconds FROM playtime_daily ORDER BY day"
    before = [tuple(r) for r in await rows(core, days)]
    assert len(before) == 2
    pruner = Pruner(core.store, clock, RetentionPolicy(timezone=zone))
    assert (await pruner.run_once()).changed["samples_rolled_up"] == 1
    assert await core.store.stats.use_timezone("UTC") and await core.store.stats.use_timezone(zone)
    assert [tuple(r) for r in await rows(core, days)] == before


async def test_an_event_kept_while_pending_goes_once_it_is_sent(
    core: Core, client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    await set_feed(core)
    mc = await make_endpoint("minecraft")
    await post_mc(client, mc, mc_event(1, iso_ms(clock.now())))  # waits: nothing posts it
    clock.advance(100 * DAY.total_seconds())
    await post_mc(client, mc, mc_event(2, iso_ms(clock.now())))
    report = await core.pruner.run_once()
    assert report.changed["activity_events"] == 0  # still pending: kept
    await FeedPoster(core.store, clock, MemoryDiscord()).run_once()  # the channel is back
    clock.advance(1 * DAY.total_seconds())
    await post_mc(client, mc, mc_event(3, iso_ms(clock.now())))
    dry = await core.store.retention.pending(clock.now(), core.pruner.policy)
    report = await core.pruner.run_once()
    assert report.changed["activity_events"] == dry["activity_events"] == 1
    assert report.changed["outbox_rows"] == dry["outbox_rows"] == 1


async def test_the_dry_run_says_what_the_prune_does(
    core: Core, client: TestClient, clock: ManualClock, make_endpoint: MakeEndpoint
) -> None:
    await set_feed(core)
    mc = await make_endpoint("minecraft")
    bm = await make_endpoint("playtime")
    for n in range(30):
        await post_mc(client, mc, mc_event(n, iso_ms(clock.now())))
        await post_bm(client, bm, 3600 + n * 60, iso_ms(clock.now()))
        clock.advance(3600)
    await FeedPoster(core.store, clock, MemoryDiscord()).run_once()
    done: Counter[str] = Counter()
    for step, days in enumerate([40, 30, 30, 30]):  # each window passes in turn
        clock.advance(days * DAY.total_seconds())
        await post_mc(client, mc, mc_event(100 + step, iso_ms(clock.now())))
        dry = await core.store.retention.pending(clock.now(), core.pruner.policy)
        report = await core.pruner.run_once()
        for name, count in report.changed.items():
            assert dry[name] == count, (name, dry, dict(report.changed))
        done.update(report.changed)
    assert done["activity_events"] == 30 and done["raw_events"] == 30  # every BM report went
    # The 30 Minecraft rows and the two extra ones older than 30 days keep blanked keys.
    assert done["raw_payloads_blanked"] == 32, done
