"""The action outbox's contract (``store.actions``), on every backend: queueing (validated,
idempotence from the spec, paused behind a paused key), claiming, attempts and their outcomes,
pauses and their probes, a restart's recovery, role changes superseded by a later decision,
and what /actions status shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, Field

from bot.clock import from_iso, to_iso
from bot.storage import Store
from bot.storage.records import QueuedAction
from connectors.base import Action, ActionSpec, Connector, SchemaError
from connectors.discord.connector import DiscordConnector
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["SID", "store"]  # the fixture, imported

MINUTE = timedelta(minutes=1)
ROLES = DiscordConnector()


class Grant(BaseModel):
    user_id: int
    role_id: int = Field(gt=0)


class Say(BaseModel):
    line: str = Field(min_length=1, max_length=100)


class EchoConnector(Connector):
    key = "echo"
    name = "Echo"
    actions = (
        ActionSpec("grant", "Give a member a role", Grant, "do_grant"),
        ActionSpec("say", "Say a line on a console", Say, "say_line", idempotent=False),
    )


async def enqueue(
    store: Store, payload: dict[str, Any], key: str = "reward:1", *, action: str = "grant",
    idempotent: bool = True, user: int | None = 42, guild: int = GUILD, at: Any = NOW,
) -> int:  # fmt: skip
    return await store.actions.enqueue(
        guild_id=guild, connector="echo", action=action, payload=payload, idempotent=idempotent,
        pause_key=key, now=at, user_id=user,
    )  # fmt: skip


async def rows(store: Store, at: Any = NOW) -> dict[int, tuple[str, int, str | None]]:
    """id -> (status, attempts, last error) of every action of the guild /actions status
    shows (unfinished, or finished in the last day)."""
    status = await store.actions.status(GUILD, at, limit=100)
    return {r.id: (r.status, r.attempts, r.last_error) for r in status.recent}


@part("actions")
async def test_an_action_is_queued_claimed_begun_and_done(store: Store) -> None:
    actions = store.actions
    assert await actions.next_due() is None
    assert await actions.claim_due(NOW, 10) == []
    a = await enqueue(store, {"user_id": 1, "role_id": 5})
    assert a > 0
    assert await actions.next_due() == to_iso(NOW)
    assert await actions.claim_due(NOW - MINUTE, 10) == []  # not due yet
    [claimed] = await actions.claim_due(NOW, 10)
    assert claimed == QueuedAction(
        id=a, guild_id=GUILD, connector="echo", action="grant",
        payload={"role_id": 5, "user_id": 1}, idempotent=True, user_id=42,
        pause_key="reward:1", attempts=0, probe=False,
    )  # fmt: skip
    assert list(claimed.payload) == ["role_id", "user_id"]  # stored with its keys sorted
    assert await actions.claim_due(NOW, 10) == [claimed]  # claimed, not begun: still due
    assert await actions.begin(claimed, NOW)
    assert not await actions.begin(claimed, NOW)  # in flight: no longer waiting
    assert await actions.claim_due(NOW, 10) == []
    assert await actions.next_due() is None
    status = await actions.status(GUILD, NOW)
    assert status.counts == {"in_flight": 1} and status.pauses == []
    later = NOW + 5 * MINUTE
    await actions.done(claimed, later)
    status = await actions.status(GUILD, later)
    assert status.counts == {"done": 1}
    [row] = status.recent
    assert (row.id, row.guild_id, row.connector, row.action, row.payload) == (
        a, GUILD, "echo", "grant", {"role_id": 5, "user_id": 1},
    )  # fmt: skip
    assert (row.idempotent, row.user_id, row.pause_key, row.status, row.attempts) == (
        True, 42, "reward:1", "done", 1,
    )  # fmt: skip
    assert (row.last_error, row.next_attempt_at, row.created_at, row.finished_at) == (
        None, to_iso(NOW), to_iso(NOW), to_iso(later),
    )  # fmt: skip
    # Finished more than a day ago: counted, no longer listed.
    day_later = later + timedelta(days=1, seconds=1)
    status = await actions.status(GUILD, day_later)
    assert status.counts == {"done": 1} and status.recent == []
    assert [r.id for r in (await actions.status(GUILD, later + timedelta(days=1))).recent] == [a]
    other = await actions.status(OTHER, later)
    assert other.counts == {} and other.recent == [] and other.pauses == []
    assert (await actions.status(None, later)).counts == {"done": 1}


@part("actions")
async def test_status_lists_unfinished_first_newest_first_within_its_limit(
    store: Store,
) -> None:
    ids = [await enqueue(store, {"user_id": n, "role_id": 5}, key=f"k{n}") for n in range(4)]
    elsewhere = await enqueue(store, {"user_id": 9, "role_id": 5}, guild=OTHER, user=None)
    claimed = {c.id: c for c in await store.actions.claim_due(NOW, 10)}
    assert set(claimed) == {*ids, elsewhere}
    await store.actions.done(claimed[ids[3]], NOW, "nothing to do")
    await store.actions.final(claimed[ids[1]], "failed", "it can never work", NOW)
    status = await store.actions.status(GUILD, NOW)
    assert [r.id for r in status.recent] == [ids[2], ids[0], ids[3], ids[1]]
    assert status.counts == {"pending": 2, "done": 1, "failed": 1}
    assert [r.id for r in (await store.actions.status(GUILD, NOW, 3)).recent] == [
        ids[2], ids[0], ids[3],
    ]  # fmt: skip
    everywhere = await store.actions.status(None, NOW)
    assert [r.id for r in everywhere.recent][:3] == [elsewhere, ids[2], ids[0]]
    assert everywhere.counts == {"pending": 3, "done": 1, "failed": 1}
    assert (await rows(store))[ids[3]] == ("done", 1, "nothing to do")
    assert (await rows(store))[ids[1]] == ("failed", 1, "it can never work")
    [alone] = (await store.actions.status(OTHER, NOW)).recent
    assert (alone.id, alone.user_id) == (elsewhere, None)


@part("actions")
async def test_queue_validates_the_payload_and_takes_idempotence_from_the_spec(
    store: Store,
) -> None:
    echo = EchoConnector()
    with pytest.raises(SchemaError) as bad:
        await store.actions.queue(
            echo, Action("say", {"line": ""}), guild_id=GUILD, pause_key="s", now=NOW
        )
    assert bad.value.field == "line"
    with pytest.raises(SchemaError) as unknown:
        await store.actions.queue(
            echo, Action("explode", {}), guild_id=GUILD, pause_key="s", now=NOW
        )
    assert unknown.value.field == "type"
    said = await store.actions.queue(
        echo, Action("say", {"line": "hi"}), guild_id=GUILD, pause_key="s", now=NOW
    )
    granted = await store.actions.queue(
        echo, Action("grant", {"user_id": "7", "role_id": 9}), guild_id=GUILD, pause_key="r",
        now=NOW, user_id=7,
    )  # fmt: skip
    assert granted > said
    found = {c.id: c for c in await store.actions.claim_due(NOW, 10)}
    assert set(found) == {said, granted}  # the refused ones were never queued
    assert (found[said].idempotent, found[said].payload, found[said].user_id) == (
        False, {"line": "hi"}, None,
    )  # fmt: skip
    assert (found[granted].idempotent, found[granted].payload, found[granted].user_id) == (
        True, {"role_id": 9, "user_id": 7}, 7,
    )  # fmt: skip


@part("actions")
async def test_a_passing_failure_is_retried_when_due(store: Store) -> None:
    a = await enqueue(store, {"user_id": 1, "role_id": 5})
    [claimed] = await store.actions.claim_due(NOW, 10)
    assert await store.actions.begin(claimed, NOW)
    retry_at = NOW + 30 * MINUTE
    await store.actions.retry(claimed, "Discord answered 503", retry_at, NOW)
    assert (await rows(store))[a] == ("pending", 1, "Discord answered 503")
    [row] = (await store.actions.status(GUILD, NOW)).recent
    assert row.next_attempt_at == to_iso(retry_at) and row.finished_at is None
    assert await store.actions.next_due() == to_iso(retry_at)
    assert await store.actions.claim_due(retry_at - timedelta(microseconds=1), 10) == []
    [again] = await store.actions.claim_due(retry_at, 10)
    assert (again.id, again.attempts, again.probe) == (a, 1, False)
    assert await store.actions.begin(again, retry_at)
    await store.actions.done(again, retry_at)
    assert (await rows(store, retry_at))[a] == ("done", 2, None)


@part("actions")
async def test_claiming_is_oldest_first_and_limited(store: Store) -> None:
    late = await enqueue(store, {"user_id": 1, "role_id": 5}, key="a", at=NOW + MINUTE)
    early = await enqueue(store, {"user_id": 2, "role_id": 5}, key="b", at=NOW)
    third = await enqueue(store, {"user_id": 3, "role_id": 5}, key="c", at=NOW)
    later = NOW + 2 * MINUTE
    assert [c.id for c in await store.actions.claim_due(later, 10)] == [early, third, late]
    assert [c.id for c in await store.actions.claim_due(later, 2)] == [early, third]
    assert [c.id for c in await store.actions.claim_due(NOW, 10)] == [early, third]


@part("actions")
async def test_a_restart_retries_idempotent_attempts_and_never_resends_others(
    store: Store,
) -> None:
    grant = await enqueue(store, {"user_id": 1, "role_id": 5})
    say = await enqueue(store, {"line": "hi"}, key="server:1", action="say", idempotent=False)
    never_begun = await enqueue(store, {"user_id": 2, "role_id": 5}, key="reward:2")
    claimed = {c.id: c for c in await store.actions.claim_due(NOW, 10)}
    assert set(claimed) == {grant, say, never_begun}
    assert await store.actions.begin(claimed[grant], NOW)
    assert await store.actions.begin(claimed[say], NOW)
    restart = NOW + 10 * MINUTE
    assert await store.actions.recover(restart) == (1, 1)
    found = await rows(store, restart)
    assert found[grant] == ("pending", 1, None)
    assert found[say][:2] == ("unknown", 0) and "not sent again" in (found[say][2] or "")
    assert found[never_begun] == ("pending", 0, None)  # claimed, never begun: as it was
    assert await store.actions.recover(restart) == (0, 0)
    status = await store.actions.status(GUILD, restart)
    by_id = {r.id: r for r in status.recent}
    assert by_id[grant].next_attempt_at == to_iso(restart)
    assert by_id[say].finished_at == to_iso(restart)
    assert status.counts == {"pending": 2, "unknown": 1}
    assert [c.id for c in await store.actions.claim_due(restart, 10)] == [never_begun, grant]


@part("actions")
async def test_a_refusal_pauses_its_key_until_a_probe_succeeds(store: Store) -> None:
    actions = store.actions
    a = await enqueue(store, {"user_id": 1, "role_id": 5}, key="reward:1")
    b = await enqueue(store, {"user_id": 2, "role_id": 5}, key="reward:1")
    other = await enqueue(store, {"user_id": 3, "role_id": 6}, key="reward:2")
    claimed = await actions.claim_due(NOW, 10)
    assert [c.id for c in claimed] == [a, b, other]
    assert await actions.begin(claimed[0], NOW)
    every = 10 * MINUTE
    await actions.paused(claimed[0], "Missing Permissions (50013)", NOW, every)
    found = await rows(store)
    assert found[a] == ("paused", 1, "Missing Permissions (50013)")
    assert found[b] == ("paused", 0, None)  # claimed with it, not tried: waits too
    assert found[other] == ("pending", 0, None)
    assert not await actions.begin(claimed[1], NOW)  # paused meanwhile
    status = await actions.status(GUILD, NOW)
    assert status.pauses == [
        (GUILD, "reward:1", "Missing Permissions (50013)", to_iso(NOW), to_iso(NOW + every))
    ]
    assert status.counts == {"paused": 2, "pending": 1}
    late = await enqueue(store, {"user_id": 4, "role_id": 5}, key="reward:1")
    assert (await rows(store))[late] == ("paused", 0, None)  # queued behind the pause
    assert [c.id for c in await actions.claim_due(NOW, 10)] == [other]
    assert await actions.next_due() == to_iso(NOW)  # the other key's action
    first_probe = NOW + every
    due = await actions.claim_due(first_probe, 10)
    assert [(c.id, c.probe, c.attempts) for c in due] == [(other, False, 0), (a, True, 1)]
    probe = due[1]
    assert await actions.begin(probe, first_probe)
    await actions.paused(probe, "still refused", first_probe, every)  # waits twice as long
    [pause] = (await actions.status(GUILD, first_probe)).pauses
    assert pause == (GUILD, "reward:1", "still refused", to_iso(NOW), to_iso(NOW + 3 * every))
    assert (await rows(store, first_probe))[a] == ("paused", 2, "still refused")
    assert [c.id for c in await actions.claim_due(NOW + 3 * every - MINUTE, 10)] == [other]
    fixed = NOW + 3 * every
    due = await actions.claim_due(fixed, 10)
    assert [(c.id, c.probe) for c in due] == [(other, False), (a, True)]
    assert await actions.begin(due[1], fixed)
    await actions.done(due[1], fixed)  # the probe worked: the key resumes
    status = await actions.status(GUILD, fixed)
    assert status.pauses == [] and status.counts == {"done": 1, "pending": 3}
    by_id = {r.id: r for r in status.recent}
    assert by_id[b].next_attempt_at == by_id[late].next_attempt_at == to_iso(fixed)
    assert [c.id for c in await actions.claim_due(fixed, 10)] == [other, b, late]


@part("actions")
async def test_probe_outcomes_that_prove_nothing_probe_the_next_at_once(store: Store) -> None:
    actions = store.actions
    a, b, c = [await enqueue(store, {"user_id": n, "role_id": 5}) for n in (1, 2, 3)]
    claimed = await actions.claim_due(NOW, 10)
    assert await actions.begin(claimed[0], NOW)
    every = 10 * MINUTE
    await actions.paused(claimed[0], "Missing Permissions (50013)", NOW, every)
    at = NOW + every
    [probe] = await actions.claim_due(at, 10)
    assert (probe.id, probe.probe) == (a, True)
    assert await actions.begin(probe, at)
    await actions.done(probe, at, "Unknown Member (10007): they left the server")
    found = await rows(store, at)
    assert found[a] == ("done", 2, "Unknown Member (10007): they left the server")
    assert found[b][0] == found[c][0] == "paused"  # nothing proven
    [pause] = (await actions.status(GUILD, at)).pauses
    assert pause[4] == to_iso(at)
    [probe] = await actions.claim_due(at, 10)  # the next one, at once
    assert (probe.id, probe.probe) == (b, True)
    assert await actions.begin(probe, at)
    await actions.final(probe, "failed", "a payload its model refuses", at)
    assert (await rows(store, at))[b] == ("failed", 1, "a payload its model refuses")
    [probe] = await actions.claim_due(at, 10)
    assert (probe.id, probe.probe) == (c, True)
    retry_at = at + 5 * MINUTE
    assert await actions.begin(probe, at)
    await actions.retry(probe, "Discord answered 503", retry_at, at)  # a probe keeps it paused
    assert (await rows(store, at))[c] == ("paused", 1, "Discord answered 503")
    [pause] = (await actions.status(GUILD, at)).pauses
    assert pause[4] == to_iso(retry_at)
    assert await actions.next_due() == to_iso(retry_at)
    assert await actions.claim_due(at, 10) == []
    [probe] = await actions.claim_due(retry_at, 10)
    assert (probe.id, probe.probe, probe.attempts) == (c, True, 1)


@part("actions")
async def test_a_pause_with_nothing_left_waiting_goes_when_its_probe_is_due(
    store: Store,
) -> None:
    a = await enqueue(store, {"user_id": 1, "role_id": 5}, key="reward:7")
    [claimed] = await store.actions.claim_due(NOW, 10)
    assert await store.actions.begin(claimed, NOW)
    await store.actions.paused(claimed, "Missing Access (50001)", NOW, MINUTE)
    # Finished another way (a removed reward's grants give way; here it fails for good).
    await store.actions.final(claimed, "failed", "gone", NOW)
    assert (await rows(store))[a] == ("failed", 2, "gone")
    assert len((await store.actions.status(GUILD, NOW)).pauses) == 1
    assert await store.actions.claim_due(NOW + MINUTE, 10) == []
    assert (await store.actions.status(GUILD, NOW)).pauses == []
    assert await store.actions.next_due() is None
    later = await enqueue(store, {"user_id": 2, "role_id": 5}, key="reward:7")
    assert (await rows(store))[later] == ("pending", 0, None)  # the key is no longer paused


@part("actions")
async def test_pauses_of_several_keys_are_probed_in_key_order(store: Store) -> None:
    keys = ["reward:2", "reward:10", "Reward:3"]
    ids = [await enqueue(store, {"user_id": 1, "role_id": 5}, key=k) for k in keys]
    for claimed in await store.actions.claim_due(NOW, 10):
        assert await store.actions.begin(claimed, NOW)
        await store.actions.paused(claimed, f"refused {claimed.pause_key}", NOW, MINUTE)
    probes = await store.actions.claim_due(NOW + MINUTE, 10)
    assert [p.pause_key for p in probes] == ["Reward:3", "reward:10", "reward:2"]  # bytes
    assert [p.id for p in probes] == [ids[2], ids[1], ids[0]]
    assert all(p.probe for p in probes)
    status = await store.actions.status(GUILD, NOW)
    assert [p[1] for p in status.pauses] == ["Reward:3", "reward:10", "reward:2"]


@part("actions")
async def test_a_pause_probes_less_often_with_each_refusal_up_to_a_day(store: Store) -> None:
    await enqueue(store, {"user_id": 1, "role_id": 5})
    at = NOW
    waits = []
    for n in range(7):
        [claimed] = await store.actions.claim_due(at, 10)
        assert claimed.probe == (n > 0) and claimed.attempts == n
        assert await store.actions.begin(claimed, at)
        await store.actions.paused(claimed, f"refused {n}", at, timedelta(hours=1))
        [pause] = (await store.actions.status(GUILD, at)).pauses
        assert pause[2:4] == (f"refused {n}", to_iso(NOW))  # paused since the first refusal
        assert await store.actions.claim_due(at, 10) == []
        waits.append((from_iso(pause[4]) - at) / timedelta(hours=1))
        at = from_iso(pause[4])
    assert waits == [1, 2, 4, 8, 16, 24, 24]


@part("actions")
async def test_a_role_change_decided_again_is_superseded_not_sent(store: Store) -> None:
    def change(kind: str, role: int = 5, user: int = 42) -> Action:
        return Action(kind, {"guild_id": GUILD, "user_id": user, "role_id": role})

    async def queue(kind: str, role: int = 5, user: int = 42, key: str = "reward:1") -> int:
        return await store.actions.queue(
            ROLES, change(kind, role, user), guild_id=GUILD, pause_key=key, now=NOW,
            user_id=user,
        )  # fmt: skip

    grant = await queue("grant_role")
    other_role = await queue("grant_role", role=6)
    other_member = await queue("grant_role", user=43)
    removal = await queue("remove_role", key="reward:2")
    claimed = {c.id: c for c in await store.actions.claim_due(NOW, 10)}
    assert set(claimed) == {grant, other_role, other_member, removal}
    assert claimed[grant].payload == {
        "guild_id": GUILD, "reason": None, "role_id": 5, "user_id": 42,
    }  # fmt: skip
    assert not await store.actions.begin(claimed[grant], NOW)  # the removal stands
    found = await rows(store)
    assert found[grant] == ("done", 1, "superseded by a later change")
    for kept in (other_role, other_member, removal):
        assert await store.actions.begin(claimed[kept], NOW)
    # A retry or a pause of a change superseded meanwhile finishes it instead.
    again = await queue("grant_role", key="reward:3")
    await store.actions.retry(claimed[removal], "503", NOW + MINUTE, NOW)
    assert (await rows(store))[removal] == ("done", 1, "superseded by a later change")
    [waiting] = await store.actions.claim_due(NOW, 10)
    assert waiting.id == again
    assert await store.actions.begin(waiting, NOW)
    last = await queue("remove_role", key="reward:3")
    await store.actions.paused(waiting, "Missing Permissions", NOW, MINUTE)
    found = await rows(store)
    assert found[again] == ("done", 1, "superseded by a later change")
    assert found[last] == ("paused", 0, None)  # the key pauses anyway
    assert [p[1] for p in (await store.actions.status(GUILD, NOW)).pauses] == ["reward:3"]
    # Only a later change of the same role, by the same connector, supersedes one.
    mine = await queue("grant_role", role=7, key="reward:4")
    await store.actions.enqueue(
        guild_id=GUILD, connector="echo", action="remove_role",
        payload={"guild_id": GUILD, "user_id": 42, "role_id": 7}, idempotent=True,
        pause_key="e", now=NOW, user_id=42,
    )  # fmt: skip
    await store.actions.enqueue(
        guild_id=GUILD, connector="discord", action="remove_role",
        payload={"guild_id": GUILD, "user_id": 42, "role_id": "7"}, idempotent=True,
        pause_key="e", now=NOW, user_id=42,
    )  # fmt: skip
    claimed = {c.id: c for c in await store.actions.claim_due(NOW, 10)}
    assert await store.actions.begin(claimed[mine], NOW)
