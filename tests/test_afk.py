"""Active versus away time (issue 18): Minecraft afk.started / afk.ended spans left out of a
session's playtime, an AFK span still open when the player leaves, and a session a server
restart left open closed at the player's last activity (not at the next join)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from bot.core import Core
from tests.conftest import GUILD, MakeEndpoint, sha_headers
from tests.test_ingest import mc_raw

STEVE = "8667ba71-b85a-4004-af54-457a9734eed7"
H = 3600


async def event(core: Core, kind: str, at: datetime, server: str = "survival", **extra: str) -> str:
    raw = mc_raw(core, type=kind, player_uuid=STEVE, server_id=server, at=at.isoformat(), **extra)
    return (await core.pipeline.ingest("minecraft", GUILD, raw)).status


async def seconds(core: Core) -> int:
    row = await core.store.engine.fetchone(
        "SELECT seconds FROM playtime WHERE scope_guild_id = ? AND source = 'minecraft'"
        " AND player_id = ?",
        (GUILD, STEVE),
    )
    return int(row[0]) if row else 0


async def away(core: Core) -> int:
    row = await core.store.engine.fetchone(
        "SELECT away_seconds FROM playtime WHERE scope_guild_id = ? AND source = 'minecraft'"
        " AND player_id = ?",
        (GUILD, STEVE),
    )
    return int(row[0]) if row else 0


async def sessions(core: Core) -> list[tuple[int | None, int, str | None]]:
    rows = await core.store.engine.fetchall(
        "SELECT duration_seconds, idle_seconds, closed_reason FROM sessions"
        " WHERE player_id = ? ORDER BY id",
        (STEVE,),
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_an_afk_span_is_left_out_of_the_session(core: Core) -> None:
    t = core.clock.now()
    await event(core, "session.started", t)
    await event(core, "afk.started", t + timedelta(hours=1))
    await event(core, "afk.started", t + timedelta(hours=1, minutes=30))  # repeated: no effect
    await event(core, "afk.ended", t + timedelta(hours=3))
    await event(core, "session.ended", t + timedelta(hours=5))
    assert await seconds(core) == 3 * H
    assert await away(core) == 2 * H  # kept apart: the total is 5 h
    assert await sessions(core) == [(5 * H, 2 * H, "ended")]


async def test_an_afk_span_still_open_ends_with_the_session(core: Core) -> None:
    t = core.clock.now()
    await event(core, "session.started", t)
    await event(core, "afk.started", t + timedelta(hours=2))
    await event(core, "session.ended", t + timedelta(hours=6))
    assert await seconds(core) == 2 * H
    assert await away(core) == 4 * H
    assert await sessions(core) == [(6 * H, 4 * H, "ended")]


async def test_afk_on_another_server_or_without_a_session_changes_nothing(core: Core) -> None:
    t = core.clock.now()
    await event(core, "afk.started", t)  # no open session: nothing to note
    await event(core, "session.started", t)
    await event(core, "afk.started", t + timedelta(hours=1), server="creative")
    await event(core, "session.ended", t + timedelta(hours=2))
    assert await seconds(core) == 2 * H


async def test_a_restart_left_session_is_closed_at_the_last_activity(core: Core) -> None:
    t = core.clock.now()
    await event(core, "session.started", t)
    await event(
        core, "achievement.unlocked", t + timedelta(hours=2), key="minecraft:story/mine_stone"
    )
    # the server restarts: no session.ended; the player joins again the next day
    await event(core, "session.started", t + timedelta(hours=20))
    assert await seconds(core) == 2 * H  # not 20 h
    assert await sessions(core) == [(2 * H, 0, "last_activity"), (None, 0, None)]
    await event(core, "session.ended", t + timedelta(hours=21))
    assert await seconds(core) == 3 * H


async def test_a_restart_left_session_that_went_afk_counts_until_the_afk_began(
    core: Core,
) -> None:
    t = core.clock.now()
    await event(core, "session.started", t)
    await event(core, "afk.started", t + timedelta(hours=1))
    await event(core, "session.started", t + timedelta(hours=9))
    assert await seconds(core) == 1 * H
    assert await away(core) == 0  # nothing was seen after the AFK began: no time at all


async def test_a_session_with_nothing_but_its_join_credits_nothing_when_superseded(
    core: Core,
) -> None:
    t = core.clock.now()
    await event(core, "session.started", t)
    await event(core, "session.started", t + timedelta(hours=8))
    assert await seconds(core) == 0
    assert (await sessions(core))[0] == (None, 0, "superseded")


async def test_afk_webhooks_are_signed_deduplicated_and_checked(
    core: Core, client: TestClient, make_endpoint: MakeEndpoint
) -> None:
    endpoint = await make_endpoint("minecraft")
    url = f"/webhooks/minecraft/{endpoint.path}"
    at = core.clock.now().isoformat()
    body = json.dumps(
        {"type": "afk.started", "player_uuid": STEVE, "server_id": "survival", "at": at}
    ).encode()
    first = await client.post(url, data=body, headers=sha_headers(endpoint.secret or "", body))
    again = await client.post(url, data=body, headers=sha_headers(endpoint.secret or "", body))
    assert (first.status, (await first.json())["status"]) == (200, "accepted")
    assert (await again.json())["status"] == "duplicate"
    unsigned = await client.post(url, data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status == 401
    bad = json.dumps({"type": "afk.ended", "player_uuid": STEVE}).encode()
    refused = await client.post(url, data=bad, headers=sha_headers(endpoint.secret or "", bad))
    assert refused.status == 422 and (await refused.json())["field"] == "at"
    feed = await core.store.engine.fetchone("SELECT count(*) FROM activity_events")
    assert feed is not None and feed[0] == 0  # AFK is never news by itself


def test_upgrading_to_0032_keeps_open_sessions_open() -> None:
    from bot.storage.engine import apply_migrations
    from tests.conftest import database_at

    conn = database_at(31)
    conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
        " VALUES (1, 'minecraft', 'p', 's', 'minecraft', '2026-12-01T00:00:00.000000Z')"
    )
    assert apply_migrations(conn, up_to=32) == [32]
    assert conn.execute(
        "SELECT last_seen_at, away_since, idle_seconds, closed_reason FROM sessions"
    ).fetchall() == [(None, None, 0, None)]


def test_upgrading_to_0033_counts_earlier_time_as_active_and_rewards_as_active() -> None:
    from bot.storage.engine import apply_migrations
    from bot.storage.rewards import guild_rewards
    from tests.conftest import database_at

    conn = database_at(32)
    conn.execute(
        "INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds, created_at,"
        " updated_at) VALUES (1, 'minecraft', 'u1', 'minecraft', 7200, 'x', 'x')"
    )
    conn.execute(
        "INSERT INTO rewards (guild_id, role_id, hours, created_at)"
        " VALUES (1, 1400000000000000001, 10, '2026-12-01T00:00:00.000000Z')"
    )
    assert apply_migrations(conn) == [33]
    row = conn.execute("SELECT seconds, away_seconds FROM playtime").fetchone()
    assert row == (7200, 0)
    (reward,) = guild_rewards(conn, 1)
    assert reward.counting == "active"
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # only active or total
        conn.execute("UPDATE rewards SET counting = 'afk'")
