"""Leases on PostgreSQL: several processes share one database, and each feed channel (and each
action in flight) is worked on by one of them at a time; a lease not renewed runs out and
another process takes the work over. Two stores on one database stand for two processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.clock import to_iso
from bot.storage.postgres.pg_actions import LEASE_SECONDS as ACTION_LEASE
from bot.storage.postgres.pg_outbox import LEASE_SECONDS
from bot.storage.postgres.store import PostgresStore
from bot.storage.records import Batch
from tests.contract import GUILD, NOW
from tests.test_store_contract import Embeds, ingest_custom

CHANNEL = 900


@pytest.fixture
async def two(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a, b = await PostgresStore.open(postgres_url), await PostgresStore.open(postgres_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def at(seconds: float) -> str:
    return to_iso(NOW + timedelta(seconds=seconds))


async def test_one_process_at_a_time_works_on_a_channel(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two
    await a.feed.set_channel(GUILD, CHANNEL, at(0))
    for n in range(2):
        await ingest_custom(a, GUILD, {"event_type": "t", "title": f"e{n}", "id": f"l{n}"})
    assert await a.feed.due_channels(at(0)) == await b.feed.due_channels(at(0)) == [CHANNEL]
    batch = await a.feed.next_work(CHANNEL, at(0), Embeds())
    assert isinstance(batch, Batch)
    assert await b.feed.next_work(CHANNEL, at(1), Embeds()) is None  # a holds it
    assert await b.feed.due_channels(at(1)) == []  # so b does not even start a worker
    assert await a.feed.due_channels(at(1)) == [CHANNEL]
    assert not await b.feed.renew(CHANNEL, at(1))
    # a keeps renewing while its send takes long: b still cannot take the channel
    for second in range(5, 60, 5):
        assert await a.feed.renew(CHANNEL, at(second))
    assert await b.feed.next_work(CHANNEL, at(55 + LEASE_SECONDS - 1), Embeds()) is None
    await a.feed.mark_sent(batch, 5555, at(61))
    assert await a.feed.next_work(CHANNEL, at(62), Embeds()) is None  # done: given up
    await ingest_custom(b, GUILD, {"event_type": "t", "title": "e2", "id": "l2"})
    later = await b.feed.next_work(CHANNEL, at(63), Embeds())  # at once, no expiry needed
    assert isinstance(later, Batch) and [e["title"] for e in later.payload["embeds"]] == ["e2"]


async def test_a_lease_not_renewed_runs_out_and_the_same_batch_is_resent(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    """The holder died mid-send: after the lease ran out the other process sends the stored
    batch again, unchanged and with the same nonce (Discord answers a nonce it saw with the
    message it made), and the dead one's late renewal is refused."""
    a, b = two
    await a.feed.set_channel(GUILD, CHANNEL, at(0))
    await ingest_custom(a, GUILD, {"event_type": "t", "title": "x", "id": "d1"})
    first = await a.feed.next_work(CHANNEL, at(0), Embeds())
    assert isinstance(first, Batch)
    assert await b.feed.next_work(CHANNEL, at(LEASE_SECONDS - 1), Embeds()) is None
    again = await b.feed.next_work(CHANNEL, at(LEASE_SECONDS), Embeds())
    assert isinstance(again, Batch)
    assert (again.id, again.nonce, again.payload) == (first.id, first.nonce, first.payload)
    assert not await a.feed.renew(CHANNEL, at(LEASE_SECONDS + 1))
    assert await a.feed.next_work(CHANNEL, at(LEASE_SECONDS + 1), Embeds()) is None
    await b.feed.mark_sent(again, 7777, at(LEASE_SECONDS + 2))
    await a.feed.mark_sent(first, 7777, at(LEASE_SECONDS + 3))  # its late answer: no harm
    status = await a.feed.status(GUILD)
    assert (status.sent, status.pending) == (1, 0)


async def test_an_attempt_in_flight_stays_with_its_living_process(
    two: tuple[PostgresStore, PostgresStore],
) -> None:
    """A second process starting (recover) or looking (expire) leaves alone what the first
    has in flight and renews; once the first stops renewing, an idempotent action is tried
    again and any other becomes "unknown" (never sent twice); a late renewal is refused."""
    a, b = two
    ids = []
    for n, idempotent in enumerate((True, False)):
        ids.append(
            await a.actions.enqueue(
                guild_id=GUILD, connector="discord", action="grant_role",
                payload={"user_id": 42 + n, "role_id": 7}, idempotent=idempotent,
                pause_key="roles", now=NOW, user_id=42 + n,
            )
        )  # fmt: skip
    claimed = await a.actions.claim_due(NOW, 10)
    assert [q.id for q in claimed] == ids
    for queued in claimed:
        assert await a.actions.begin(queued, NOW)
        assert not await b.actions.begin(queued, NOW)  # in flight already
    assert await b.actions.recover(NOW + timedelta(seconds=1)) == (0, 0)
    for second in range(5, 40, 5):
        for queued in claimed:
            assert await a.actions.renew(queued, NOW + timedelta(seconds=second))
        assert await b.actions.expire(NOW + timedelta(seconds=second)) == (0, 0)
    assert not await b.actions.renew(claimed[0], NOW + timedelta(seconds=36))  # not b's
    # a died after its renewal at 35 s: its leases run out at 35 + LEASE_SECONDS
    end = NOW + timedelta(seconds=35 + ACTION_LEASE - 1)
    assert await b.actions.expire(end) == (0, 0)
    assert await b.actions.expire(end + timedelta(seconds=1)) == (1, 1)
    status = {r.id: r.status for r in (await b.actions.status(GUILD, end, 10)).recent}
    assert status == {ids[0]: "pending", ids[1]: "unknown"}
    assert not await a.actions.renew(claimed[0], end + timedelta(seconds=2))
    [again] = await b.actions.claim_due(end + timedelta(seconds=2), 10)
    assert again.id == ids[0] and again.attempts == 1
    assert await b.actions.begin(again, end + timedelta(seconds=2))
    await b.actions.done(again, end + timedelta(seconds=3))
    assert await b.actions.expire(end + timedelta(hours=1)) == (0, 0)  # done: nothing left
