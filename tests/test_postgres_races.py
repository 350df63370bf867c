"""Two processes writing about the same thing at the same moment, on PostgreSQL: what SQLite's
single writer serialized by itself must stay serialized when two connections each hold an open
transaction (two processes' group commits). Each case opens both transactions, lets the first
write, starts the second (which must wait), then commits the first and checks the outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from bot.storage.postgres import pg_actions, pg_links, pg_playtime, pg_rewards
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.records import AccountTaken

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
G = 111
SID = "76561198000000001"


@pytest.fixture
async def pair(postgres_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    db = PgDatabase(postgres_url)
    await db.open()  # the schema
    await db.close()
    a, b = await asyncpg.connect(postgres_url), await asyncpg.connect(postgres_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def overlapping(
    a: asyncpg.Connection, b: asyncpg.Connection, first: Any, second: Any
) -> tuple[Any, Any]:
    """``first(a)`` in a's open transaction, then ``second(b)`` in b's, which must wait for a
    to commit; returns both results (``second``'s exception, when it raised)."""
    await a.execute("BEGIN")
    await b.execute("BEGIN")
    done = await first(a)
    later: asyncio.Task[Any] = asyncio.create_task(second(b))
    await asyncio.sleep(0.3)
    assert not later.done(), "the second process did not wait for the first"
    await a.execute("COMMIT")
    try:
        result: Any = await asyncio.wait_for(later, 10)
    except Exception as exc:
        await b.execute("ROLLBACK")
        return done, exc
    await b.execute("COMMIT")
    return done, result


async def steam_seconds(conn: asyncpg.Connection, seconds: int, at: datetime) -> Any:
    return await pg_playtime.record_playtime(
        conn, scope=0, source="steam", player_id=SID, game_id="393380", seconds=seconds,
        source_time=at, now=at,
    )  # fmt: skip


async def credited(conn: asyncpg.Connection) -> list[tuple[int, int]]:
    rows = await conn.fetch("SELECT discord_user_id, seconds FROM member_playtime ORDER BY 1")
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_two_members_linking_one_account(pair: Any) -> None:
    a, b = pair
    await steam_seconds(a, 3600, NOW)
    await pg_links.link_account(  # the guild exists
        a, guild_id=G, discord_user_id=9, source="minecraft", external_id="u", now=NOW
    )

    def link(user: int) -> Any:
        return lambda c: pg_links.link_account(
            c, guild_id=G, discord_user_id=user, source="steam", external_id=SID, now=NOW
        )

    _, second = await overlapping(a, b, link(1), link(2))
    assert isinstance(second, AccountTaken) and second.owner_user_id == 1
    assert await credited(a) == [(1, 3600)]


async def test_one_member_linking_from_two_processes_is_counted_once(pair: Any) -> None:
    a, b = pair
    await steam_seconds(a, 3600, NOW)

    def link(c: asyncpg.Connection) -> Any:
        return pg_links.link_account(
            c, guild_id=G, discord_user_id=1, source="steam", external_id=SID, now=NOW
        )

    await overlapping(a, b, link, link)
    assert await credited(a) == [(1, 3600)]


async def test_an_older_first_report_never_overwrites_a_newer_one(pair: Any) -> None:
    a, b = pair
    newer, older = await overlapping(
        a, b,
        lambda c: steam_seconds(c, 100, NOW),
        lambda c: steam_seconds(c, 50, NOW - timedelta(hours=1)),
    )  # fmt: skip
    assert newer.applied and not older.applied
    assert await a.fetchval("SELECT seconds FROM playtime") == 100


async def test_hours_reported_while_a_member_unlinks_are_not_credited_to_them(pair: Any) -> None:
    a, b = pair
    await pg_links.link_account(
        a, guild_id=G, discord_user_id=1, source="steam", external_id=SID, now=NOW
    )
    await steam_seconds(a, 3600, NOW)
    await overlapping(
        a, b,
        lambda c: pg_links.unlink_accounts(c, G, 1, "steam", NOW),
        lambda c: steam_seconds(c, 7200, NOW + timedelta(hours=1)),
    )  # fmt: skip
    assert await credited(a) == [(1, 0)]


async def test_hours_reported_while_a_member_links_are_all_credited(pair: Any) -> None:
    a, b = pair
    await steam_seconds(a, 3600, NOW)
    await overlapping(
        a, b,
        lambda c: pg_links.link_account(
            c, guild_id=G, discord_user_id=1, source="steam", external_id=SID, now=NOW
        ),
        lambda c: steam_seconds(c, 7200, NOW + timedelta(hours=1)),
    )  # fmt: skip
    assert await credited(a) == [(1, 7200)]


async def test_a_reward_granted_by_two_checks_at_once_is_granted_once(pair: Any) -> None:
    a, b = pair
    await pg_rewards.add_reward(
        a, guild_id=G, role_id=5, hours=1, game_id=None, period="all", source="any",
        mode="stack", created_by=None, now=NOW,
    )  # fmt: skip
    await a.execute("INSERT INTO member_playtime VALUES ($1, 'g', 7, 'steam', 7200, 0)", G)
    await a.execute("BEGIN")
    await b.execute("BEGIN")
    first = await pg_rewards.check_members(a, G, [7], NOW)
    later = asyncio.create_task(pg_rewards.check_members(b, G, [7], NOW))
    await asyncio.sleep(0.3)
    await a.execute("COMMIT")
    second = await asyncio.wait_for(later, 10)  # no unique violation failing its batch
    await b.execute("COMMIT")
    assert len(first.granted) == 1 and second.granted == []
    grants = await a.fetchval("SELECT count(*) FROM action_outbox WHERE action = 'grant_role'")
    assert grants == 1


async def test_an_action_queued_while_its_pause_is_lifted_is_resumed(pair: Any) -> None:
    a, b = pair
    await a.execute(
        "INSERT INTO action_pauses VALUES ($1, 'reward:1', 'no permission', $2, 0, $2)", G, NOW
    )

    async def queue(c: asyncpg.Connection, user: int) -> int:
        return await pg_actions.enqueue_action(
            c, guild_id=G, connector="discord", action="grant_role",
            payload={"guild_id": G, "user_id": user, "role_id": 5}, idempotent=True,
            pause_key="reward:1", now=NOW,
        )  # fmt: skip

    await queue(a, 1)
    [probe] = [q for q in await pg_actions.claim_due(a, NOW, 10) if q.probe]
    assert await pg_actions.begin_attempt(a, probe, NOW)
    await overlapping(
        a, b, lambda c: queue(c, 2), lambda c: pg_actions.mark_done(c, probe, NOW)
    )  # the probe worked: the key resumes, with what was queued meanwhile
    assert await a.fetchval("SELECT count(*) FROM action_pauses") == 0
    statuses = [r[0] for r in await a.fetch("SELECT status FROM action_outbox ORDER BY id")]
    assert statuses == ["done", "pending"]
