"""The action outbox on PostgreSQL (``action_outbox``, ``action_pauses``): twins of
bot/storage/actions.py, with the same names and parameters, run inside the caller's operation
(``queue_action`` from the operation that decides the action). The interface keeps SQLite's
ISO text where it shows moments (``ActionRow``, the pauses of ``ActionStatus``, ``next_due``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bot.clock import to_iso
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.records import ActionRow, ActionStatus, QueuedAction
from connectors.base import Action, Connector

__all__ = [
    "PgActions",
    "action_status",
    "begin_attempt",
    "claim_due",
    "enqueue_action",
    "mark_done",
    "mark_final",
    "mark_paused",
    "mark_retry",
    "queue_action",
    "recover",
]

_COLUMNS = (
    "id, guild_id, connector, action, payload::text, idempotent, discord_user_id, pause_key,"
    " status, attempts, last_error, next_attempt_at, created_at, updated_at, finished_at"
)
_QUEUED = "id, guild_id, connector, action, payload::text, idempotent, discord_user_id, pause_key"
#: The member's role changes of one role ($1 guild, $2 member, $3 connector, $4 role as JSON).
_SAME_ROLE = (
    " guild_id = $1 AND discord_user_id = $2 AND connector = $3"
    " AND action IN ('grant_role', 'remove_role') AND payload->'role_id' = $4::jsonb"
)


def _count(status: str) -> int:
    """The rows a statement changed, from its status ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


def _payload(text: str) -> dict[str, Any]:
    """A stored payload with its keys in the order SQLite keeps them (sorted: jsonb orders
    them its own way)."""
    return json.loads(text, object_pairs_hook=lambda pairs: dict(sorted(pairs)))


def _json_value(value: Any) -> str | None:
    """A payload value as a jsonb parameter, compared as SQLite's json_extract compares it
    (None, a missing value, matches nothing)."""
    return None if value is None else json.dumps(value)


def _int_value(value: Any) -> int | None:
    """A payload value compared with an integer column, as SQLite's affinity compares it."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


async def enqueue_action(
    conn: asyncpg.Connection,
    *,
    guild_id: int,
    connector: str,
    action: str,
    payload: Mapping[str, Any],
    idempotent: bool,
    pause_key: str,
    now: datetime,
    user_id: int | None = None,
) -> int:
    """Queue an action (already validated by its connector's model); its id. While its pause
    key is paused it waits as paused."""
    new_id = await conn.fetchval(
        "INSERT INTO action_outbox (guild_id, connector, action, payload, idempotent,"
        " discord_user_id, pause_key, status, next_attempt_at, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, CASE WHEN EXISTS (SELECT 1 FROM"
        # FOR KEY SHARE: a process lifting the pause waits until this is committed, then
        # resumes it with the rest (deleting the pause first, updating after).
        " action_pauses WHERE guild_id = $1 AND pause_key = $7 FOR KEY SHARE)"
        " THEN 'paused' ELSE 'pending'"
        " END, $8, $8, $8) RETURNING id",
        guild_id, connector, action, json.dumps(dict(payload), sort_keys=True), bool(idempotent),
        user_id, pause_key, now,
    )  # fmt: skip
    return int(new_id or 0)


async def queue_action(
    conn: asyncpg.Connection,
    connector: Connector,
    action: Action,
    *,
    guild_id: int,
    pause_key: str,
    now: datetime,
    user_id: int | None = None,
) -> int:
    """Queue one of the connector's actions, in the caller's operation: its payload is
    validated by the action's model first (SchemaError names the field) and stored as the model
    gives it; whether it is idempotent comes from its ActionSpec."""
    spec = connector.action_spec(action.type)
    payload = connector.validate_action(action).model_dump(mode="json")
    return await enqueue_action(
        conn, guild_id=guild_id, connector=connector.key, action=action.type, payload=payload,
        idempotent=spec.idempotent, pause_key=pause_key, now=now, user_id=user_id,
    )  # fmt: skip


#: How long an attempt in flight stays this process's without a renewal: well under a
#: minute, so an attempt whose process died is sorted out soon (an idempotent one tried again,
#: any other "unknown", never sent twice).
LEASE_SECONDS = 20
LEASE = timedelta(seconds=LEASE_SECONDS)
_LEFT = (
    "status = 'in_flight' AND NOT EXISTS (SELECT 1 FROM action_leases l"
    " WHERE l.action_id = action_outbox.id AND l.expires_at > $1)"
)


async def recover(conn: asyncpg.Connection, now: datetime) -> tuple[int, int]:
    """Attempts left in flight by a process that stopped or died: those without a live lease
    (another process's attempts keep theirs renewed). An idempotent action is tried again; any
    other may have been sent, so its outcome is unknown and it is never sent again. Returns
    (tried again, unknown)."""
    again = await conn.execute(  # the attempt counts: it may have happened
        "UPDATE action_outbox SET status = 'pending', attempts = attempts + 1,"
        f" next_attempt_at = $1, updated_at = $1 WHERE {_LEFT} AND idempotent",
        now,
    )
    unknown = await conn.execute(
        "UPDATE action_outbox SET status = 'unknown', finished_at = $1, updated_at = $1,"
        " last_error = 'Questlog stopped while it was being sent: it may or may not have"
        f" happened, and it is not sent again' WHERE {_LEFT}",
        now,
    )
    await conn.execute(
        "DELETE FROM action_leases l USING action_outbox o WHERE o.id = l.action_id"
        " AND o.status <> 'in_flight'"
    )
    return _count(again), _count(unknown)


async def _take_lease(conn: asyncpg.Connection, action_id: int, holder: str, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO action_leases (action_id, holder, expires_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (action_id) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at",
        action_id, holder, now + LEASE,
    )  # fmt: skip


async def _release(conn: asyncpg.Connection, action_id: int, holder: str) -> None:
    await conn.execute(
        "DELETE FROM action_leases WHERE action_id = $1 AND holder = $2", action_id, holder
    )


def _queued(row: asyncpg.Record | tuple[Any, ...], probe: bool) -> QueuedAction:
    return QueuedAction(
        id=row[0], guild_id=row[1], connector=row[2], action=row[3], payload=_payload(row[4]),
        idempotent=bool(row[5]), user_id=row[6], pause_key=row[7], attempts=row[8],
        probe=probe,
    )  # fmt: skip


async def claim_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[QueuedAction]:
    """The actions due now, oldest first: pending ones whose key is not paused, and for each
    paused key whose probe is due, its oldest action. Each is marked in flight only when its
    attempt begins (``begin_attempt``), so one claimed but never tried stays as it was."""
    rows = [
        _queued(row, False)
        for row in await conn.fetch(
            f"SELECT {_QUEUED}, attempts FROM action_outbox o WHERE status = 'pending'"
            " AND next_attempt_at <= $1 AND NOT EXISTS (SELECT 1 FROM action_pauses p"
            " WHERE p.guild_id = o.guild_id AND p.pause_key = o.pause_key)"
            " ORDER BY next_attempt_at, id LIMIT $2",
            now,
            None if limit < 0 else limit,  # SQLite's negative LIMIT: no limit
        )
    ]
    probes = await conn.fetch(
        "SELECT p.guild_id AS key_guild, p.pause_key AS key, o.* FROM action_pauses p"
        " LEFT JOIN LATERAL (SELECT"
        f" {_QUEUED}, attempts FROM action_outbox WHERE guild_id = p.guild_id"
        " AND pause_key = p.pause_key AND status = 'paused' ORDER BY id LIMIT 1) o ON true"
        ' WHERE p.next_probe_at <= $1 ORDER BY p.guild_id, p.pause_key COLLATE "C"',
        now,
    )
    idle = [(row["key_guild"], row["key"]) for row in probes if row["id"] is None]
    if idle:  # nothing waits on them any more
        await conn.execute(
            "DELETE FROM action_pauses p USING unnest($1::bigint[], $2::text[]) AS k (g, key)"
            " WHERE p.guild_id = k.g AND p.pause_key = k.key",
            [g for g, _ in idle],
            [key for _, key in idle],
        )
        # An action queued behind one of them by another process while this looked is
        # committed by now (it held the pause row): it waits no more.
        await conn.execute(
            "UPDATE action_outbox o SET status = 'pending', next_attempt_at = $3, updated_at = $3"
            " FROM unnest($1::bigint[], $2::text[]) AS k (g, key)"
            " WHERE o.guild_id = k.g AND o.pause_key = k.key AND o.status = 'paused'",
            [g for g, _ in idle],
            [key for _, key in idle],
            now,
        )
    rows += [_queued(tuple(row)[2:], True) for row in probes if row["id"] is not None]
    return rows


async def begin_attempt(conn: asyncpg.Connection, action: QueuedAction, now: datetime) -> bool:
    """Mark the action in flight before anything is sent (committed first: a process that
    dies now leaves a non-idempotent action "unknown", never sent twice); False when it is no
    longer waiting (forgotten, taken meanwhile, or a role change decided again since)."""
    waiting = "paused" if action.probe else "pending"
    if await _superseded(conn, action, now):
        return False
    status = await conn.execute(
        "UPDATE action_outbox SET status = 'in_flight', updated_at = $1 WHERE id = $2"
        " AND status = $3",
        now,
        action.id,
        waiting,
    )
    return _count(status) > 0


async def _resume(conn: asyncpg.Connection, guild_id: int, key: str, now: datetime) -> None:
    await conn.execute(
        "DELETE FROM action_pauses WHERE guild_id = $1 AND pause_key = $2", guild_id, key
    )
    await conn.execute(
        "UPDATE action_outbox SET status = 'pending', next_attempt_at = $1, updated_at = $1"
        " WHERE guild_id = $2 AND pause_key = $3 AND status = 'paused'",
        now,
        guild_id,
        key,
    )


#: Role changes: a later one for the same member and role is the decision that stands.
_ROLE_CHANGES = ("grant_role", "remove_role")


async def mark_done(
    conn: asyncpg.Connection,
    action: QueuedAction,
    now: datetime,
    note: str | None = None,
    *,
    already: bool = False,
) -> None:
    """It happened (or there was nothing to do: ``note`` says why). A probe that succeeds
    lifts its key's pause; one with nothing to do proves nothing, and the next of its key is
    probed at once. ``already``: a role the member had before Questlog granted it, which its
    reward grants then do not own (Questlog never takes it away), when this was the grant's
    first attempt."""
    await conn.execute(
        "UPDATE action_outbox SET status = 'done', attempts = attempts + 1, last_error = $1,"
        " finished_at = $2, updated_at = $2 WHERE id = $3",
        note,
        now,
        action.id,
    )
    if already and action.action == "grant_role" and await _not_ours(conn, action):
        await conn.execute(
            "UPDATE reward_grants SET owned = false WHERE guild_id = $1 AND discord_user_id = $2"
            " AND role_id = $3",
            action.guild_id,
            action.user_id,
            _int_value(action.payload.get("role_id")),
        )
    if action.probe and note is None:
        await _resume(conn, action.guild_id, action.pause_key, now)
    elif action.probe:
        await conn.execute(
            "UPDATE action_pauses SET next_probe_at = $1 WHERE guild_id = $2 AND pause_key = $3",
            now,
            action.guild_id,
            action.pause_key,
        )


async def _not_ours(conn: asyncpg.Connection, action: QueuedAction) -> bool:
    """Whether a role the member has when Questlog's grant arrives is someone else's: not if
    an earlier attempt of this grant may have given it, nor if the last change of it Questlog
    carried out was a grant (a removal refused or given way since, then earned again)."""
    if action.attempts or action.user_id is None:
        return False
    last = await conn.fetchval(
        f"SELECT action FROM action_outbox WHERE {_SAME_ROLE} AND id <> $5 AND status = 'done'"
        " AND last_error IS NULL ORDER BY id DESC LIMIT 1",
        action.guild_id, action.user_id, action.connector,
        _json_value(action.payload.get("role_id")), action.id,
    )  # fmt: skip
    return last is None or last != "grant_role"


async def _superseded(conn: asyncpg.Connection, action: QueuedAction, now: datetime) -> bool:
    """A role change decided again since it was queued (a later change of the same member's
    role exists, waiting or carried out): finished as done instead of tried, so it can never
    undo the later one (a retry, a restart's recovery, two in one round)."""
    if action.action not in _ROLE_CHANGES or action.user_id is None:
        return False
    later = await conn.fetchval(
        f"SELECT 1 FROM action_outbox WHERE {_SAME_ROLE} AND id > $5 LIMIT 1",
        action.guild_id, action.user_id, action.connector,
        _json_value(action.payload.get("role_id")), action.id,
    )  # fmt: skip
    if later is None:
        return False
    await conn.execute(
        "UPDATE action_outbox SET status = 'done', attempts = attempts + 1,"
        " last_error = 'superseded by a later change', finished_at = $1, updated_at = $1"
        " WHERE id = $2",
        now,
        action.id,
    )
    return True


async def mark_retry(
    conn: asyncpg.Connection, action: QueuedAction, reason: str, retry_at: datetime, now: datetime
) -> None:
    """A passing failure: tried again at ``retry_at`` (a probe keeps its key paused), unless
    a later decision superseded it meanwhile."""
    if await _superseded(conn, action, now):
        return
    status = "paused" if action.probe else "pending"
    await conn.execute(
        "UPDATE action_outbox SET status = $1, attempts = attempts + 1, last_error = $2,"
        " next_attempt_at = $3, updated_at = $4 WHERE id = $5",
        status, reason, retry_at, now, action.id,
    )  # fmt: skip
    if action.probe:
        await conn.execute(
            "UPDATE action_pauses SET next_probe_at = $1 WHERE guild_id = $2 AND pause_key = $3",
            retry_at,
            action.guild_id,
            action.pause_key,
        )


async def mark_final(
    conn: asyncpg.Connection, action: QueuedAction, status: str, reason: str, now: datetime
) -> None:
    """``failed`` (it can never work) or ``unknown`` (it may have been sent)."""
    await conn.execute(
        "UPDATE action_outbox SET status = $1, attempts = attempts + 1, last_error = $2,"
        " finished_at = $3, updated_at = $3 WHERE id = $4",
        status,
        reason,
        now,
        action.id,
    )
    if action.probe:  # the next of its key is probed in its place, now
        await conn.execute(
            "UPDATE action_pauses SET next_probe_at = $1 WHERE guild_id = $2 AND pause_key = $3",
            now,
            action.guild_id,
            action.pause_key,
        )


async def mark_paused(
    conn: asyncpg.Connection,
    action: QueuedAction,
    reason: str,
    now: datetime,
    probe_every: timedelta,
) -> None:
    """A refusal an admin can fix: the action and every other of its key wait (paused), and
    one is tried again after ``probe_every``, doubling with each refused probe (at most a
    day apart). A role change superseded meanwhile is done instead; the key pauses anyway."""
    superseded = await _superseded(conn, action, now)
    had = await conn.fetchval(
        "SELECT probes FROM action_pauses WHERE guild_id = $1 AND pause_key = $2",
        action.guild_id,
        action.pause_key,
    )
    probes = had + 1 if had is not None else 0
    wait = min(probe_every * (2 ** min(probes, 10)), timedelta(days=1))
    await conn.execute(
        "INSERT INTO action_pauses (guild_id, pause_key, reason, paused_at, probes, next_probe_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guild_id, pause_key) DO UPDATE SET"
        " reason = excluded.reason, probes = excluded.probes,"
        " next_probe_at = excluded.next_probe_at",
        action.guild_id, action.pause_key, reason, now, probes, now + wait,
    )  # fmt: skip
    if not superseded:
        await conn.execute(
            "UPDATE action_outbox SET status = 'paused', attempts = attempts + 1,"
            " last_error = $1, updated_at = $2 WHERE id = $3",
            reason,
            now,
            action.id,
        )
    await conn.execute(
        "UPDATE action_outbox SET status = 'paused', updated_at = $1 WHERE guild_id = $2"
        " AND pause_key = $3 AND status IN ('pending', 'in_flight')",  # claimed with it, not tried
        now,
        action.guild_id,
        action.pause_key,
    )


def _iso(at: datetime | None) -> str | None:
    return None if at is None else to_iso(at)


def _row(row: asyncpg.Record) -> ActionRow:
    return ActionRow(
        id=row[0], guild_id=row[1], connector=row[2], action=row[3], payload=_payload(row[4]),
        idempotent=bool(row[5]), user_id=row[6], pause_key=row[7], status=row[8],
        attempts=row[9], last_error=row[10], next_attempt_at=to_iso(row[11]),
        created_at=to_iso(row[12]), finished_at=_iso(row[14]),
    )  # fmt: skip


async def action_status(
    conn: asyncpg.Connection, guild_id: int | None, now: datetime, limit: int = 20
) -> ActionStatus:
    """Counts per status, the paused keys with their reasons, and the actions an admin looks
    at: every unfinished one and those that ended in the last day (newest first)."""
    scoped = guild_id is not None
    params: tuple[Any, ...] = (guild_id,) if scoped else ()
    counts = await conn.fetch(
        "SELECT status, count(*) FROM action_outbox"
        + (" WHERE guild_id = $1" if scoped else "")
        + " GROUP BY status",
        *params,
    )
    pauses = await conn.fetch(
        "SELECT guild_id, pause_key, reason, paused_at, next_probe_at FROM action_pauses"
        + (" WHERE guild_id = $1" if scoped else "")
        + ' ORDER BY paused_at, guild_id, pause_key COLLATE "C"',
        *params,
    )
    n = len(params)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM action_outbox WHERE "
        + ("guild_id = $1 AND " if scoped else "")
        + f"(status NOT IN ('done', 'failed', 'unknown') OR finished_at >= ${n + 1})"
        + f" ORDER BY (status IN ('done', 'failed', 'unknown')), id DESC LIMIT ${n + 2}",
        *params,
        now - timedelta(days=1),
        None if limit < 0 else limit,  # SQLite's negative LIMIT: no limit
    )
    return ActionStatus(
        counts={str(r[0]): int(r[1]) for r in counts},
        pauses=[(p[0], p[1], p[2], to_iso(p[3]), to_iso(p[4])) for p in pauses],
        recent=[_row(r) for r in rows],
    )


async def _next_due(conn: asyncpg.Connection) -> str | None:
    found = await conn.fetchval(
        "SELECT least((SELECT min(next_attempt_at) FROM action_outbox WHERE status = 'pending'),"
        " (SELECT min(next_probe_at) FROM action_pauses))"
    )
    return _iso(found)


class PgActions:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        #: This process's name on its leases (each store its own).
        self.holder = secrets.token_hex(8)

    async def enqueue(
        self,
        *,
        guild_id: int,
        connector: str,
        action: str,
        payload: Mapping[str, Any],
        idempotent: bool,
        pause_key: str,
        now: datetime,
        user_id: int | None = None,
    ) -> int:
        return await self._db.write(
            lambda c: enqueue_action(
                c, guild_id=guild_id, connector=connector, action=action, payload=payload,
                idempotent=idempotent, pause_key=pause_key, now=now, user_id=user_id,
            )
        )  # fmt: skip

    async def queue(
        self,
        connector: Connector,
        action: Action,
        *,
        guild_id: int,
        pause_key: str,
        now: datetime,
        user_id: int | None = None,
    ) -> int:
        # Validated before it is queued: a payload its model refuses never reaches the writer.
        connector.validate_action(action)
        return await self._db.write(
            lambda c: queue_action(
                c, connector, action, guild_id=guild_id, pause_key=pause_key, now=now,
                user_id=user_id,
            )
        )  # fmt: skip

    async def begin(self, action: QueuedAction, now: datetime) -> bool:
        """In flight, under this process's lease (in the same transaction)."""

        async def op(conn: asyncpg.Connection) -> bool:
            if not await begin_attempt(conn, action, now):
                return False
            await _take_lease(conn, action.id, self.holder, now)
            return True

        return await self._db.write(op)

    async def recover(self, now: datetime) -> tuple[int, int]:
        return await self._db.write(lambda c: recover(c, now))

    async def expire(self, now: datetime) -> tuple[int, int]:
        return await self._db.write(lambda c: recover(c, now))

    async def renew(self, action: QueuedAction, now: datetime) -> bool:
        async def op(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                "UPDATE action_leases SET expires_at = $3 WHERE action_id = $1 AND holder = $2",
                action.id, self.holder, now + LEASE,
            )  # fmt: skip
            return status != "UPDATE 0"

        return await self._db.write(op)

    async def _marked(
        self, action: QueuedAction, mark: Callable[[asyncpg.Connection], Awaitable[None]]
    ) -> None:
        """An attempt's outcome recorded, and its lease given up, in one transaction."""

        async def op(conn: asyncpg.Connection) -> None:
            await mark(conn)
            await _release(conn, action.id, self.holder)

        await self._db.write(op)

    async def claim_due(self, now: datetime, limit: int) -> list[QueuedAction]:
        return await self._db.write(lambda c: claim_due(c, now, limit))

    async def done(
        self,
        action: QueuedAction,
        now: datetime,
        note: str | None = None,
        *,
        already: bool = False,
    ) -> None:
        await self._marked(action, lambda c: mark_done(c, action, now, note, already=already))

    async def retry(
        self, action: QueuedAction, reason: str, retry_at: datetime, now: datetime
    ) -> None:
        await self._marked(action, lambda c: mark_retry(c, action, reason, retry_at, now))

    async def final(self, action: QueuedAction, status: str, reason: str, now: datetime) -> None:
        await self._marked(action, lambda c: mark_final(c, action, status, reason, now))

    async def paused(
        self, action: QueuedAction, reason: str, now: datetime, probe_every: timedelta
    ) -> None:
        await self._marked(action, lambda c: mark_paused(c, action, reason, now, probe_every))

    async def status(self, guild_id: int | None, now: datetime, limit: int = 20) -> ActionStatus:
        return await self._db.read(lambda c: action_status(c, guild_id, now, limit))

    async def next_due(self) -> str | None:
        """When the next action or probe is due (None: nothing waits)."""
        return await self._db.read(_next_due)
