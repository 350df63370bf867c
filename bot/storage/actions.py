"""The action outbox in SQLite (``action_outbox``, ``action_pauses``): outbound actions queued
with what causes them, claimed by the action worker (bot/actions), and what became of each
attempt. The functions run inside the caller's transaction; ``enqueue_action`` is meant to be
called from the transaction that decides the action (a threshold crossed, a reward made)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.clock import to_iso
from bot.storage.engine import Database
from bot.storage.records import ActionRow, ActionStatus, QueuedAction
from connectors.base import Action, Connector

_FINAL = ("done", "failed", "unknown")
_COLUMNS = (
    "id, guild_id, connector, action, payload, idempotent, discord_user_id, pause_key, status,"
    " attempts, last_error, next_attempt_at, created_at, updated_at, finished_at"
)


def enqueue_action(
    conn: sqlite3.Connection,
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
    stamp = to_iso(now)
    paused = conn.execute(
        "SELECT 1 FROM action_pauses WHERE guild_id = ? AND pause_key = ?", (guild_id, pause_key)
    ).fetchone()
    cur = conn.execute(
        "INSERT INTO action_outbox (guild_id, connector, action, payload, idempotent,"
        " discord_user_id, pause_key, status, next_attempt_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (guild_id, connector, action, json.dumps(dict(payload), sort_keys=True), int(idempotent),
         user_id, pause_key, "paused" if paused else "pending", stamp, stamp, stamp),
    )  # fmt: skip
    return int(cur.lastrowid or 0)


def queue_action(
    conn: sqlite3.Connection,
    connector: Connector,
    action: Action,
    *,
    guild_id: int,
    pause_key: str,
    now: datetime,
    user_id: int | None = None,
) -> int:
    """Queue one of the connector's actions, in the caller's transaction: its payload is
    validated by the action's model first (SchemaError names the field) and stored as the model
    gives it; whether it is idempotent comes from its ActionSpec."""
    spec = connector.action_spec(action.type)
    payload = connector.validate_action(action).model_dump(mode="json")
    return enqueue_action(
        conn, guild_id=guild_id, connector=connector.key, action=action.type, payload=payload,
        idempotent=spec.idempotent, pause_key=pause_key, now=now, user_id=user_id,
    )  # fmt: skip


def recover(conn: sqlite3.Connection, now: datetime) -> tuple[int, int]:
    """At start-up: attempts a stopped process left in flight. An idempotent action is tried
    again; any other may have been sent, so its outcome is unknown and it is never sent again.
    Returns (tried again, unknown)."""
    stamp = to_iso(now)
    again = conn.execute(  # the attempt counts: it may have happened
        "UPDATE action_outbox SET status = 'pending', attempts = attempts + 1,"
        " next_attempt_at = ?, updated_at = ? WHERE status = 'in_flight' AND idempotent = 1",
        (stamp, stamp),
    ).rowcount
    unknown = conn.execute(
        "UPDATE action_outbox SET status = 'unknown', finished_at = ?, updated_at = ?,"
        " last_error = 'Questlog stopped while it was being sent: it may or may not have"
        " happened, and it is not sent again' WHERE status = 'in_flight'",
        (stamp, stamp),
    ).rowcount
    return again, unknown


def _queued(row: sqlite3.Row | tuple[Any, ...], probe: bool) -> QueuedAction:
    return QueuedAction(
        id=row[0], guild_id=row[1], connector=row[2], action=row[3],
        payload=json.loads(row[4]), idempotent=bool(row[5]), user_id=row[6],
        pause_key=row[7], attempts=row[8], probe=probe,
    )  # fmt: skip


def claim_due(conn: sqlite3.Connection, now: datetime, limit: int) -> list[QueuedAction]:
    """The actions due now, oldest first: pending ones whose key is not paused, and for each
    paused key whose probe is due, its oldest action. Each is marked in flight only when its
    attempt begins (``begin_attempt``), so one claimed but never tried stays as it was."""
    stamp = to_iso(now)
    columns = "id, guild_id, connector, action, payload, idempotent, discord_user_id, pause_key"
    rows = [
        _queued(row, False)
        for row in conn.execute(
            f"SELECT {columns}, attempts FROM action_outbox o WHERE status = 'pending'"
            " AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM action_pauses p"
            " WHERE p.guild_id = o.guild_id AND p.pause_key = o.pause_key)"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (stamp, limit),
        ).fetchall()
    ]
    for guild_id, key in conn.execute(
        "SELECT guild_id, pause_key FROM action_pauses WHERE next_probe_at <= ?", (stamp,)
    ).fetchall():
        row = conn.execute(
            f"SELECT {columns}, attempts FROM action_outbox WHERE guild_id = ? AND pause_key = ?"
            " AND status = 'paused' ORDER BY id LIMIT 1",
            (guild_id, key),
        ).fetchone()
        if row is None:  # nothing waits on it any more
            conn.execute(
                "DELETE FROM action_pauses WHERE guild_id = ? AND pause_key = ?", (guild_id, key)
            )
        else:
            rows.append(_queued(row, True))
    return rows


def begin_attempt(conn: sqlite3.Connection, action: QueuedAction, now: datetime) -> bool:
    """Mark the action in flight before anything is sent (committed first: a process that
    dies now leaves a non-idempotent action "unknown", never sent twice); False when it is no
    longer waiting (forgotten, taken meanwhile, or a role change decided again since)."""
    waiting = "paused" if action.probe else "pending"
    if _superseded(conn, action, to_iso(now)):
        return False
    return (
        conn.execute(
            "UPDATE action_outbox SET status = 'in_flight', updated_at = ? WHERE id = ?"
            " AND status = ?",
            (to_iso(now), action.id, waiting),
        ).rowcount
        > 0
    )


def _resume(conn: sqlite3.Connection, guild_id: int, key: str, stamp: str) -> None:
    conn.execute("DELETE FROM action_pauses WHERE guild_id = ? AND pause_key = ?", (guild_id, key))
    conn.execute(
        "UPDATE action_outbox SET status = 'pending', next_attempt_at = ?, updated_at = ?"
        " WHERE guild_id = ? AND pause_key = ? AND status = 'paused'",
        (stamp, stamp, guild_id, key),
    )


#: Role changes: a later one for the same member and role is the decision that stands.
_ROLE_CHANGES = ("grant_role", "remove_role")


def mark_done(
    conn: sqlite3.Connection,
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
    stamp = to_iso(now)
    conn.execute(
        "UPDATE action_outbox SET status = 'done', attempts = attempts + 1, last_error = ?,"
        " finished_at = ?, updated_at = ? WHERE id = ?",
        (note, stamp, stamp, action.id),
    )
    if already and action.action == "grant_role" and _not_ours(conn, action):
        conn.execute(
            "UPDATE reward_grants SET owned = 0 WHERE guild_id = ? AND discord_user_id = ?"
            " AND role_id = ?",
            (action.guild_id, action.user_id, action.payload.get("role_id")),
        )
    if action.probe and note is None:
        _resume(conn, action.guild_id, action.pause_key, stamp)
    elif action.probe:
        conn.execute(
            "UPDATE action_pauses SET next_probe_at = ? WHERE guild_id = ? AND pause_key = ?",
            (stamp, action.guild_id, action.pause_key),
        )


def _not_ours(conn: sqlite3.Connection, action: QueuedAction) -> bool:
    """Whether a role the member has when Questlog's grant arrives is someone else's: not if
    an earlier attempt of this grant may have given it, nor if the last change of it Questlog
    carried out was a grant (a removal refused or given way since, then earned again)."""
    if action.attempts or action.user_id is None:
        return False
    last = conn.execute(
        "SELECT action FROM action_outbox WHERE guild_id = ? AND discord_user_id = ? AND id <> ?"
        " AND connector = ? AND action IN ('grant_role', 'remove_role') AND status = 'done'"
        " AND last_error IS NULL AND json_extract(payload, '$.role_id') = ?"
        " ORDER BY id DESC LIMIT 1",
        (action.guild_id, action.user_id, action.id, action.connector,
         action.payload.get("role_id")),
    ).fetchone()  # fmt: skip
    return last is None or last[0] != "grant_role"


def _superseded(conn: sqlite3.Connection, action: QueuedAction, stamp: str) -> bool:
    """A role change decided again since it was queued (a later change of the same member's
    role exists, waiting or carried out): finished as done instead of tried, so it can never
    undo the later one (a retry, a restart's recovery, two in one round)."""
    if action.action not in _ROLE_CHANGES or action.user_id is None:
        return False
    later = conn.execute(
        "SELECT 1 FROM action_outbox WHERE guild_id = ? AND discord_user_id = ? AND id > ?"
        " AND connector = ? AND action IN ('grant_role', 'remove_role')"
        " AND json_extract(payload, '$.role_id') = ? LIMIT 1",
        (action.guild_id, action.user_id, action.id, action.connector,
         action.payload.get("role_id")),
    ).fetchone()  # fmt: skip
    if later is None:
        return False
    conn.execute(
        "UPDATE action_outbox SET status = 'done', attempts = attempts + 1,"
        " last_error = 'superseded by a later change', finished_at = ?, updated_at = ?"
        " WHERE id = ?",
        (stamp, stamp, action.id),
    )
    return True


def mark_retry(
    conn: sqlite3.Connection, action: QueuedAction, reason: str, retry_at: datetime, now: datetime
) -> None:
    """A passing failure: tried again at ``retry_at`` (a probe keeps its key paused), unless
    a later decision superseded it meanwhile."""
    stamp = to_iso(now)
    if _superseded(conn, action, stamp):
        return
    status = "paused" if action.probe else "pending"
    conn.execute(
        "UPDATE action_outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
        " next_attempt_at = ?, updated_at = ? WHERE id = ?",
        (status, reason, to_iso(retry_at), stamp, action.id),
    )
    if action.probe:
        conn.execute(
            "UPDATE action_pauses SET next_probe_at = ? WHERE guild_id = ? AND pause_key = ?",
            (to_iso(retry_at), action.guild_id, action.pause_key),
        )


def mark_final(
    conn: sqlite3.Connection, action: QueuedAction, status: str, reason: str, now: datetime
) -> None:
    """``failed`` (it can never work) or ``unknown`` (it may have been sent)."""
    stamp = to_iso(now)
    conn.execute(
        "UPDATE action_outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
        " finished_at = ?, updated_at = ? WHERE id = ?",
        (status, reason, stamp, stamp, action.id),
    )
    if action.probe:  # the next of its key is probed in its place, now
        conn.execute(
            "UPDATE action_pauses SET next_probe_at = ? WHERE guild_id = ? AND pause_key = ?",
            (stamp, action.guild_id, action.pause_key),
        )


def mark_paused(
    conn: sqlite3.Connection,
    action: QueuedAction,
    reason: str,
    now: datetime,
    probe_every: timedelta,
) -> None:
    """A refusal an admin can fix: the action and every other of its key wait (paused), and
    one is tried again after ``probe_every``, doubling with each refused probe (at most a
    day apart). A role change superseded meanwhile is done instead; the key pauses anyway."""
    stamp = to_iso(now)
    superseded = _superseded(conn, action, stamp)
    row = conn.execute(
        "SELECT probes FROM action_pauses WHERE guild_id = ? AND pause_key = ?",
        (action.guild_id, action.pause_key),
    ).fetchone()
    probes = row[0] + 1 if row else 0
    wait = min(probe_every * (2 ** min(probes, 10)), timedelta(days=1))
    conn.execute(
        "INSERT INTO action_pauses (guild_id, pause_key, reason, paused_at, probes, next_probe_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, pause_key) DO UPDATE SET"
        " reason = excluded.reason, probes = excluded.probes,"
        " next_probe_at = excluded.next_probe_at",
        (action.guild_id, action.pause_key, reason, stamp, probes, to_iso(now + wait)),
    )
    if not superseded:
        conn.execute(
            "UPDATE action_outbox SET status = 'paused', attempts = attempts + 1,"
            " last_error = ?, updated_at = ? WHERE id = ?",
            (reason, stamp, action.id),
        )
    conn.execute(
        "UPDATE action_outbox SET status = 'paused', updated_at = ? WHERE guild_id = ?"
        " AND pause_key = ? AND status IN ('pending', 'in_flight')",  # claimed with it, not tried
        (stamp, action.guild_id, action.pause_key),
    )


def _row(row: sqlite3.Row | tuple[Any, ...]) -> ActionRow:
    return ActionRow(
        id=row[0], guild_id=row[1], connector=row[2], action=row[3], payload=json.loads(row[4]),
        idempotent=bool(row[5]), user_id=row[6], pause_key=row[7], status=row[8],
        attempts=row[9], last_error=row[10], next_attempt_at=row[11], created_at=row[12],
        finished_at=row[14],
    )  # fmt: skip


def action_status(
    conn: sqlite3.Connection, guild_id: int | None, now: datetime, limit: int = 20
) -> ActionStatus:
    """Counts per status, the paused keys with their reasons, and the actions an admin looks
    at: every unfinished one and those that ended in the last day (newest first)."""
    where, params = ("WHERE guild_id = ?", (guild_id,)) if guild_id is not None else ("", ())
    counts = dict(
        conn.execute(
            f"SELECT status, count(*) FROM action_outbox {where} GROUP BY status", params
        ).fetchall()
    )
    pauses = conn.execute(
        "SELECT guild_id, pause_key, reason, paused_at, next_probe_at FROM action_pauses"
        + (" WHERE guild_id = ?" if guild_id is not None else "")
        + " ORDER BY paused_at",
        params,
    ).fetchall()
    since = to_iso(now - timedelta(days=1))
    scope = "guild_id = ? AND " if guild_id is not None else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM action_outbox WHERE {scope}(status NOT IN ('done', 'failed',"
        " 'unknown') OR finished_at >= ?) ORDER BY (status IN ('done', 'failed', 'unknown')),"
        " id DESC LIMIT ?",
        (*params, since, limit),
    ).fetchall()
    return ActionStatus(
        counts={str(k): int(v) for k, v in counts.items()},
        pauses=[tuple(p) for p in pauses],
        recent=[_row(r) for r in rows],
    )


class SqliteActions:
    def __init__(self, db: Database) -> None:
        self._db = db

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
        return await self._db.write(
            lambda c: queue_action(
                c, connector, action, guild_id=guild_id, pause_key=pause_key, now=now,
                user_id=user_id,
            )
        )  # fmt: skip

    async def begin(self, action: QueuedAction, now: datetime) -> bool:
        return await self._db.write(lambda c: begin_attempt(c, action, now))

    async def recover(self, now: datetime) -> tuple[int, int]:
        return await self._db.write(lambda c: recover(c, now))

    async def expire(self, now: datetime) -> tuple[int, int]:
        """One server per SQLite file: an attempt in flight is this process's own."""
        return 0, 0

    async def renew(self, action: QueuedAction, now: datetime) -> bool:
        return True

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
        await self._db.write(lambda c: mark_done(c, action, now, note, already=already))

    async def retry(
        self, action: QueuedAction, reason: str, retry_at: datetime, now: datetime
    ) -> None:
        await self._db.write(lambda c: mark_retry(c, action, reason, retry_at, now))

    async def final(self, action: QueuedAction, status: str, reason: str, now: datetime) -> None:
        await self._db.write(lambda c: mark_final(c, action, status, reason, now))

    async def paused(
        self, action: QueuedAction, reason: str, now: datetime, probe_every: timedelta
    ) -> None:
        await self._db.write(lambda c: mark_paused(c, action, reason, now, probe_every))

    async def status(self, guild_id: int | None, now: datetime, limit: int = 20) -> ActionStatus:
        return await self._db.read(lambda c: action_status(c, guild_id, now, limit))

    async def next_due(self) -> str | None:
        """When the next action or probe is due (None: nothing waits)."""
        row = await self._db.fetchone(
            "SELECT min(t) FROM (SELECT min(next_attempt_at) AS t FROM action_outbox"
            " WHERE status = 'pending' UNION ALL SELECT min(next_probe_at) FROM action_pauses)"
        )
        return row[0] if row else None
