"""The feed outbox on PostgreSQL: channels (and their pauses), batches and the events waiting
for them, as the feed poster (bot/feed/poster.py) works through them. Twins of
bot/storage/outbox.py: the same names and parameters, with an ``asyncpg.Connection`` and
datetimes for moments; ``PgFeed`` converts the interface's ISO texts at its boundary.

Every step that changes the outbox is one write operation (one transaction of the
group-committing writer); the read-only ones run on the pool.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bot.clock import from_iso, to_iso
from bot.storage.interface import Composer, ProbeDelay, Refusal
from bot.storage.outbox import (
    BACKFILL_MAX_EVENTS,
    CANDIDATES,
    FAILURES_SHOWN,
    TEST_EVENT,
    feed_accepts,
)
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.records import Batch, Edit, FeedChange, FeedFailure, FeedStatus

__all__ = [
    "BACKFILL_MAX_EVENTS",
    "CANDIDATES",
    "FAILURES_SHOWN",
    "TEST_EVENT",
    "PgFeed",
    "due_channels",
    "expire_old",
    "feed_accepts",  # no SQL: the SQLite module's, as it is (the events ingest imports it here)
    "feed_event_types",
    "feed_language",
    "feed_paused_channels",
    "feed_status",
    "isolate",
    "mark_edit_gone",
    "mark_edit_refused",
    "mark_edit_retry",
    "mark_edited",
    "mark_retry",
    "mark_sent",
    "next_work",
    "note_locale",
    "pause",
    "set_feed_channel",
    "set_feed_event_types",
    "set_feed_language",
]


#: How long a process holds a feed channel without renewing its lease. Well under the few
#: minutes in which Discord answers a repeated nonce with the message it already made, so a
#: batch that another process resends after the lease ran out is still posted once.
LEASE_SECONDS = 20
LEASE = timedelta(seconds=LEASE_SECONDS)


async def _take_lease(
    conn: asyncpg.Connection, channel_id: int, holder: str, now: datetime
) -> bool:
    """Take the channel's lease, or renew this holder's; False while another's runs. The row
    lock serializes two processes asking at once: the second sees the first's lease."""
    taken = await conn.fetchval(
        "INSERT INTO feed_leases (channel_id, holder, expires_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (channel_id) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE feed_leases.holder = excluded.holder OR feed_leases.expires_at <= $4"
        " RETURNING true",
        channel_id, holder, now + LEASE, now,
    )  # fmt: skip
    return bool(taken)


def _iso(value: datetime | None) -> str | None:
    return to_iso(value) if value is not None else None


def _due_sql(channels: str) -> str:
    """The next step of each channel of ``channels`` (a query of ``channel_id``s) when it is
    due at $1 (as bot/storage/outbox.py's ``_step_due``): (channel, probe, the oldest unsent
    batch or NULL when the step starts from unbatched events). Not due: paused without a
    probe due, nothing waiting, or the next step waits for its retry time."""
    return (
        "SELECT ch.channel_id, c.status IS NOT DISTINCT FROM 'paused' AS probe, bt.id AS batch_id"
        f" FROM ({channels}) ch"
        " LEFT JOIN feed_channels c ON c.channel_id = ch.channel_id"
        # The unsent batch holding the channel's oldest events (a split batch's halves are newer
        # batches than the rest of the batch split before them: batch ids do not give the order;
        # a batch without events, as SQLite sorts NULL, first).
        " LEFT JOIN LATERAL (SELECT b.id, b.next_attempt_at FROM feed_batches b"
        " WHERE b.channel_id = ch.channel_id AND b.status = 'pending'"
        " ORDER BY (SELECT min(o.id) FROM feed_outbox o WHERE o.batch_id = b.id) NULLS FIRST, b.id"
        " LIMIT 1) bt ON true"
        " LEFT JOIN LATERAL (SELECT o.id, o.next_attempt_at FROM feed_outbox o"
        " WHERE o.channel_id = ch.channel_id AND o.status = 'pending' AND o.batch_id IS NULL"
        " ORDER BY o.id LIMIT 1) ft ON bt.id IS NULL"
        " WHERE (c.status IS DISTINCT FROM 'paused' OR c.next_probe_at <= $1)"
        " AND (bt.id IS NOT NULL OR ft.id IS NOT NULL)"
        " AND (c.status = 'paused'"
        " OR (CASE WHEN bt.id IS NULL THEN ft.next_attempt_at ELSE bt.next_attempt_at END) IS NULL"
        " OR (CASE WHEN bt.id IS NULL THEN ft.next_attempt_at ELSE bt.next_attempt_at END) <= $1)"
    )


_DUE_CHANNELS = (
    _due_sql("SELECT DISTINCT channel_id FROM feed_outbox WHERE status = 'pending'")
    + " ORDER BY ch.channel_id"
)
_DUE_ONE = _due_sql("SELECT $2::bigint AS channel_id")


async def due_channels(conn: asyncpg.Connection, now: datetime) -> list[int]:
    """Channels whose next step is due (exactly those for which ``next_work`` has work)."""
    return [r["channel_id"] for r in await conn.fetch(_DUE_CHANNELS, now)]


def _event_of(row: asyncpg.Record, rendered_from: int) -> dict[str, Any]:
    return {
        "type": row["type"],
        "title": row["title"],
        "payload": row["payload"],  # the JSON text, as SQLite hands it to the composer
        "actor_user_id": row["actor_user_id"],
        "actor_external_id": row["actor_external_id"],
        "actor_name": row["actor_name"],
        "occurred_at": to_iso(row["occurred_at"]),
        # Stored before titles were written in the feed's language: the stored title stays.
        "stored_title": row["event_id"] < rendered_from,
    }


async def _rendered_from(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval("SELECT value FROM meta WHERE key = 'titles_rendered_from'")
    return int(value) if value is not None else 0


async def _edit_targets(
    conn: asyncpg.Connection, channel_id: int, rows: list[asyncpg.Record]
) -> dict[int, asyncpg.Record]:
    """For each candidate (by outbox id) that updates a feed item: the latest earlier version
    posted to the channel whose message can still be edited (message id, batch id, embed
    index, the batch's payload), in one query for all of them."""
    keyed = [r for r in rows if r["update_key"] is not None]
    if not keyed:
        return {}
    found = await conn.fetch(
        "SELECT q.id, t.message_id, t.batch_id, t.embed_index, t.payload"
        " FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS q(id, guild_id, update_key)"
        " JOIN LATERAL (SELECT o.message_id, o.batch_id, o.embed_index, b.payload::text AS payload"
        " FROM feed_outbox o JOIN activity_events e ON e.id = o.event_id"
        " JOIN feed_batches b ON b.id = o.batch_id"
        " WHERE e.guild_id = q.guild_id AND e.update_key = q.update_key AND o.channel_id = $4"
        " AND o.id < q.id AND o.status = 'sent' AND o.message_id IS NOT NULL"
        " AND o.embed_index IS NOT NULL ORDER BY o.id DESC LIMIT 1) t ON true",
        [r["id"] for r in keyed], [r["guild_id"] for r in keyed],
        [r["update_key"] for r in keyed], channel_id,
    )  # fmt: skip
    return {r["id"]: r for r in found}


def _edit_target(
    found: asyncpg.Record | None, embed: dict[str, Any], composer: Composer
) -> tuple[int, int, int, dict[str, Any]] | None:
    """(message id, batch id, embed index, new message payload) when an earlier version of this
    feed item was posted to the channel and its message can take the new embed in place."""
    if found is None:
        return None
    index = found["embed_index"]
    embeds = list(json.loads(found["payload"]).get("embeds", []))
    if not 0 <= index < len(embeds):
        return None
    embeds[index] = embed
    if not composer.fits(embeds):
        return None  # the new version does not fit that message: it is posted anew
    return found["message_id"], found["batch_id"], index, {"embeds": embeds}


async def _store_batch(
    conn: asyncpg.Connection,
    guild_id: int,
    channel_id: int,
    chosen: list[tuple[int, dict[str, Any]]],
    now: datetime,
    *,
    probe: bool = False,
) -> Batch:
    """Fix a message of (outbox id, embed) pairs as a new batch with its own nonce."""
    payload = {"embeds": [embed for _, embed in chosen]}
    row = await conn.fetchrow(
        "WITH n AS (SELECT nextval(pg_get_serial_sequence('feed_batches', 'id')) AS id)"
        " INSERT INTO feed_batches (id, guild_id, channel_id, nonce, payload, created_at)"
        # Discord nonces are at most 25 characters
        " SELECT n.id, $1, $2, left('ql' || m.value || '-' || n.id, 25), $3::jsonb, $4"
        " FROM n JOIN meta m ON m.key = 'instance_id' RETURNING id, nonce",
        guild_id, channel_id, json.dumps(payload, ensure_ascii=False), now,
    )  # fmt: skip
    if row is None:
        raise LookupError("the database has no instance_id (meta) for feed nonces")
    batch_id, nonce = row["id"], row["nonce"]
    keys = [key for key, _ in chosen]
    await conn.execute(
        "UPDATE feed_outbox o SET batch_id = $1, embed_index = k.n - 1, updated_at = $2"
        " FROM unnest($3::bigint[]) WITH ORDINALITY AS k(id, n) WHERE o.id = k.id",
        batch_id, now, keys,
    )  # fmt: skip
    return Batch(batch_id, guild_id, channel_id, nonce, payload, 0, tuple(keys), probe)


async def next_work(
    conn: asyncpg.Connection, channel_id: int, now: datetime, composer: Composer
) -> Batch | Edit | None:
    """The channel's next step, in order: nothing while it is paused and no probe is due or
    while its next step waits for its retry time; its oldest unsent batch; an edit when the
    oldest pending event updates a posted one; or a new batch fixed from the oldest pending
    events, up to the next event that is an edit."""
    due = await conn.fetchrow(_DUE_ONE, now, channel_id)
    if due is None:
        return None
    probe = bool(due["probe"])
    if due["batch_id"] is not None:
        row = await conn.fetchrow(
            "SELECT b.id, b.guild_id, b.channel_id, b.nonce, b.payload::text AS payload,"
            " b.attempts, ARRAY(SELECT o.id FROM feed_outbox o WHERE o.batch_id = b.id"
            " AND o.status = 'pending' ORDER BY o.embed_index NULLS FIRST, o.id) AS keys"
            " FROM feed_batches b WHERE b.id = $1",
            due["batch_id"],
        )
        return Batch(
            row["id"], row["guild_id"], row["channel_id"], row["nonce"], json.loads(row["payload"]),
            row["attempts"], tuple(row["keys"]), probe,
        )  # fmt: skip
    rows = await conn.fetch(
        "SELECT o.id, o.guild_id, e.type, e.title, e.payload::text AS payload, e.actor_user_id,"
        " e.actor_external_id, e.actor_name, e.occurred_at, e.update_key, o.attempts,"
        " o.next_attempt_at, e.id AS event_id"
        " FROM feed_outbox o JOIN activity_events e ON e.id = o.event_id"
        " WHERE o.channel_id = $1 AND o.status = 'pending' AND o.batch_id IS NULL"
        " ORDER BY o.id LIMIT $2",
        channel_id, CANDIDATES,
    )  # fmt: skip
    if not rows:
        return None
    embeds: list[tuple[int, dict[str, Any]]] = []
    rendered_from = await _rendered_from(conn)
    guild_id = rows[0]["guild_id"]
    language = await feed_language(conn, guild_id)  # one channel holds one guild's feed
    targets = await _edit_targets(conn, channel_id, rows)
    for position, row in enumerate(rows):
        embed = composer.embed(_event_of(row, rendered_from), language)
        target = _edit_target(targets.get(row["id"]), embed, composer)
        if target is not None:
            if position > 0:
                break  # what came before is posted first; the edit follows in order
            message_id, batch_id, index, payload = target
            return Edit(
                row["id"], row["guild_id"], channel_id, message_id, batch_id, index, payload,
                row["attempts"], probe,
            )  # fmt: skip
        embeds.append((row["id"], embed))
    return await _store_batch(conn, guild_id, channel_id, composer.pack(embeds), now, probe=probe)


async def _resume(conn: asyncpg.Connection, channel_id: int, now: datetime) -> bool:
    """Post to a paused channel again; True when it was paused."""
    status = await conn.execute(
        "UPDATE feed_channels SET status = 'ok', code = NULL, reason = NULL,"
        " paused_at = NULL, probes = 0, next_probe_at = NULL, changed_at = $1"
        " WHERE channel_id = $2 AND status = 'paused'",
        now, channel_id,
    )  # fmt: skip
    return _count(status) > 0


def _count(status: str) -> int:
    """The rows a statement touched, from its status string ("UPDATE 3", "INSERT 0 1")."""
    return int(status.rsplit(" ", 1)[-1])


async def mark_sent(conn: asyncpg.Connection, batch: Batch, message_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE feed_batches SET status = 'sent', message_id = $1, sent_at = $2,"
        " attempts = attempts + 1, last_error = NULL WHERE id = $3",
        message_id, now, batch.id,
    )  # fmt: skip
    # Normally the batch's events; when the feed moved while this send was in flight,
    # those of them the new channel has not taken yet (the message is in the old channel).
    await conn.execute(
        "UPDATE feed_outbox o SET status = 'sent', channel_id = $1, batch_id = $2,"
        " embed_index = k.n - 1, message_id = $3, updated_at = $4, attempts = o.attempts + 1"
        " FROM unnest($5::bigint[]) WITH ORDINALITY AS k(id, n)"
        " WHERE o.id = k.id AND o.status = 'pending' AND (o.batch_id = $2 OR o.batch_id IS NULL)",
        batch.channel_id, batch.id, message_id, now, list(batch.keys),
    )  # fmt: skip
    if batch.probe:
        await _resume(conn, batch.channel_id, now)


async def mark_retry(
    conn: asyncpg.Connection,
    batch: Batch,
    reason: str,
    maybe_posted: bool,
    retry_at: datetime,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE feed_batches SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2,"
        " maybe_posted = maybe_posted OR $3 WHERE id = $4",
        reason, retry_at, bool(maybe_posted), batch.id,
    )  # fmt: skip
    await conn.execute(
        "UPDATE feed_outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2,"
        " updated_at = $3 WHERE batch_id = $4",
        reason, retry_at, now, batch.id,
    )  # fmt: skip


async def pause(
    conn: asyncpg.Connection,
    work: Batch | Edit,
    refusal: Refusal,
    now: datetime,
    delay: ProbeDelay,
    retry_at: datetime,
) -> tuple[bool, int | None, datetime | None]:
    """Pause the work's channel (or keep it paused after a failed probe): its events stay
    pending, unchanged, and the next probe is scheduled. ``delay(code, probes)`` gives the
    seconds until the next probe (None: not probed). A probe that failed without a refusal (a
    5xx) of a channel an admin resumed meanwhile is an ordinary retry at ``retry_at`` instead.
    Returns (paused, code, next probe time)."""
    state = await conn.fetchrow(
        "SELECT status, code, reason, probes FROM feed_channels WHERE channel_id = $1",
        work.channel_id,
    )
    paused = state is not None and state["status"] == "paused"
    if not refusal.refused and not paused:
        if isinstance(work, Batch):
            await mark_retry(conn, work, refusal.reason, refusal.maybe_posted, retry_at, now)
        else:
            await mark_edit_retry(conn, work, refusal.reason, retry_at, now)
        return False, None, None
    if refusal.refused:
        code, reason = refusal.code, refusal.reason
    else:  # a probe that failed some other way (a 5xx): still paused for the old reason
        code, reason = state["code"], state["reason"]
    probes = state["probes"] + 1 if paused else 0
    seconds = delay(code, probes)
    next_probe = now + timedelta(seconds=seconds) if seconds is not None else None
    await conn.execute(
        "INSERT INTO feed_channels (channel_id, guild_id, status, code, reason, paused_at, probes,"
        " next_probe_at, changed_at) VALUES ($1, $2, 'paused', $3, $4, $5, $6, $7, $5)"
        " ON CONFLICT (channel_id) DO UPDATE SET status = 'paused', code = excluded.code,"
        " reason = excluded.reason, paused_at = coalesce(feed_channels.paused_at, excluded.paused_at),"
        " probes = excluded.probes, next_probe_at = excluded.next_probe_at,"
        " changed_at = excluded.changed_at",
        work.channel_id, work.guild_id, code, reason, now, probes, next_probe,
    )  # fmt: skip
    if isinstance(work, Batch):
        await conn.execute(
            "UPDATE feed_batches SET attempts = attempts + 1, last_error = $1,"
            " next_attempt_at = NULL, maybe_posted = maybe_posted OR $2 WHERE id = $3",
            refusal.reason, bool(refusal.maybe_posted), work.id,
        )  # fmt: skip
        await conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = $1,"
            " next_attempt_at = NULL, updated_at = $2 WHERE batch_id = $3",
            refusal.reason, now, work.id,
        )  # fmt: skip
    else:
        await conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = $1,"
            " next_attempt_at = NULL, updated_at = $2 WHERE id = $3",
            refusal.reason, now, work.outbox_id,
        )  # fmt: skip
    return True, code, next_probe


async def isolate(
    conn: asyncpg.Connection, batch: Batch, refused: Mapping[int, str], reason: str, now: datetime
) -> list[int]:
    """Discord refused the batch's body (50035). The embeds it named (``refused``: index ->
    Discord's message) fail alone; the others are re-batched as they were (a new batch and
    nonce: nothing was posted). Without an index, the batch is split in halves, down to the
    one event at fault, which fails with ``reason``. Returns the outbox ids that failed."""
    embeds = batch.payload.get("embeds", [])
    count = min(len(embeds), len(batch.keys))
    named = {i: m for i, m in refused.items() if 0 <= i < count}
    if named:
        failed = named
        groups = [[i for i in range(count) if i not in named]]
    elif count <= 1:
        failed = dict.fromkeys(range(count), reason)
        groups = []
    else:
        half = count // 2
        failed = {}
        groups = [list(range(half)), list(range(half, count))]
    if failed:
        await conn.execute(
            "UPDATE feed_outbox o SET status = 'failed', attempts = o.attempts + 1,"
            " last_error = f.error, batch_id = NULL, embed_index = NULL, updated_at = $1"
            " FROM unnest($2::bigint[], $3::text[]) AS f(id, error) WHERE o.id = f.id",
            now, [batch.keys[i] for i in failed],
            [f"Discord refused this event's embed: {message}" for message in failed.values()],
        )  # fmt: skip
    groups = [g for g in groups if g]
    await conn.execute(
        "UPDATE feed_batches SET status = $1, attempts = attempts + 1, last_error = $2"
        " WHERE id = $3",
        "replaced" if groups else "failed", reason, batch.id,
    )  # fmt: skip
    for group in groups:
        await _store_batch(
            conn, batch.guild_id, batch.channel_id, [(batch.keys[i], embeds[i]) for i in group], now
        )
    return [batch.keys[i] for i in failed]


async def mark_edited(conn: asyncpg.Connection, edit: Edit, now: datetime) -> None:
    await conn.execute(
        "UPDATE feed_batches SET payload = $1::jsonb WHERE id = $2",
        json.dumps(edit.payload, ensure_ascii=False), edit.batch_id,
    )  # fmt: skip
    await conn.execute(
        "UPDATE feed_outbox SET status = 'sent', message_id = $1, batch_id = $2,"
        " embed_index = $3, attempts = attempts + 1, last_error = NULL, next_attempt_at = NULL,"
        " updated_at = $4 WHERE id = $5",
        edit.message_id, edit.batch_id, edit.embed_index, now, edit.outbox_id,
    )  # fmt: skip
    if edit.probe:
        await _resume(conn, edit.channel_id, now)


async def mark_edit_retry(
    conn: asyncpg.Connection, edit: Edit, reason: str, retry_at: datetime, now: datetime
) -> None:
    await conn.execute(
        "UPDATE feed_outbox SET attempts = attempts + 1, last_error = $1,"
        " next_attempt_at = $2, updated_at = $3 WHERE id = $4",
        reason, retry_at, now, edit.outbox_id,
    )  # fmt: skip


async def mark_edit_gone(conn: asyncpg.Connection, edit: Edit) -> None:
    # Someone deleted the message: nothing can be edited in it any more, and this version
    # is posted as a new message next.
    await conn.execute(
        "UPDATE feed_outbox SET embed_index = NULL WHERE channel_id = $1 AND message_id = $2",
        edit.channel_id, edit.message_id,
    )  # fmt: skip


async def mark_edit_refused(
    conn: asyncpg.Connection, edit: Edit, message: str, now: datetime
) -> None:
    # The posted message keeps its earlier version; only this one fails.
    await conn.execute(
        "UPDATE feed_outbox SET status = 'failed', attempts = attempts + 1,"
        " last_error = $1, updated_at = $2 WHERE id = $3",
        f"Discord refused this event's embed: {message}", now, edit.outbox_id,
    )  # fmt: skip


async def expire_old(conn: asyncpg.Connection, now: datetime) -> int:
    """Mark pending events older than their guild's maximum age expired (none by default)."""
    status = await conn.execute(
        "UPDATE feed_outbox o SET status = 'expired',"
        " last_error = 'older than the feed maximum age', updated_at = $1 FROM guilds g"
        " WHERE g.guild_id = o.guild_id AND g.feed_max_age_seconds IS NOT NULL"
        " AND o.status = 'pending' AND o.batch_id IS NULL"
        " AND o.created_at < $1::timestamptz - g.feed_max_age_seconds * interval '1 second'",
        now,
    )
    return _count(status)


async def _move_backlog(
    conn: asyncpg.Connection, guild_id: int, channel_id: int, now: datetime
) -> tuple[int, int]:
    """Move the guild's waiting events from any other channel to ``channel_id``, in the same
    transaction as the switch, so nothing new is posted there before them: unsent batches are
    given up and their events get new batches and nonces there. Of versions of one feed item
    only the newest stays. Returns (events moved, given-up batches whose answer was lost, which
    may show in the old channel)."""
    given_up = await conn.fetch(
        "UPDATE feed_batches SET status = 'replaced', last_error = $1"
        " WHERE guild_id = $2 AND status = 'pending' AND channel_id <> $3 RETURNING maybe_posted",
        f"the feed moved to channel {channel_id}", guild_id, channel_id,
    )  # fmt: skip
    maybe_posted = sum(1 for r in given_up if r["maybe_posted"])
    status = await conn.execute(
        "UPDATE feed_outbox SET channel_id = $1, batch_id = NULL, embed_index = NULL,"
        " next_attempt_at = NULL, updated_at = $2"
        " WHERE guild_id = $3 AND status = 'pending' AND channel_id <> $1",
        channel_id, now, guild_id,
    )  # fmt: skip
    moved = _count(status)
    if moved:
        newest: dict[str, int] = {}
        older: list[int] = []
        for row in await conn.fetch(
            "SELECT o.id, e.update_key FROM feed_outbox o JOIN activity_events e"
            " ON e.id = o.event_id WHERE o.channel_id = $1 AND o.status = 'pending'"
            " AND o.batch_id IS NULL AND e.update_key IS NOT NULL ORDER BY o.id",
            channel_id,
        ):
            key = row["update_key"]
            if key in newest:
                older.append(newest[key])
            newest[key] = row["id"]
        if older:
            await conn.execute(
                "UPDATE feed_outbox SET status = 'superseded', updated_at = $1"
                " WHERE id = ANY($2::bigint[])",
                now, older,
            )  # fmt: skip
    return moved, maybe_posted


async def _never_queued(
    conn: asyncpg.Connection, guild_id: int, since: datetime | None, off_by_default: frozenset[str]
) -> list[int]:
    """The guild's stored events (since ``since``) that the feed never queued and would post
    now, oldest first; of the versions of one updated item (a played-today line) the latest."""
    accepted = await conn.fetchval(
        "SELECT feed_event_types::text FROM guilds WHERE guild_id = $1", guild_id
    )
    rows = await conn.fetch(
        "SELECT id, type FROM activity_events e WHERE guild_id = $1"
        " AND ($2::timestamptz IS NULL OR occurred_at >= $2) AND NOT EXISTS"
        " (SELECT 1 FROM feed_outbox o WHERE o.event_id = e.id)"
        " AND (update_key IS NULL OR NOT EXISTS (SELECT 1 FROM activity_events n"
        " WHERE n.guild_id = e.guild_id AND n.update_key = e.update_key AND n.id > e.id))"
        " ORDER BY occurred_at, id",
        guild_id, since,
    )  # fmt: skip
    return [r["id"] for r in rows if feed_accepts(accepted, r["type"], off_by_default)]


async def set_feed_channel(
    conn: asyncpg.Connection,
    guild_id: int,
    channel_id: int,
    now: datetime,
    *,
    max_age: int | None = None,
    backfill_since: datetime | None = None,
    off_by_default: frozenset[str] = frozenset(),
) -> FeedChange:
    """Post the guild's events to ``channel_id`` from now on. A paused channel resumes at once
    (and what waits for its retry time is tried now); events waiting for another channel move
    here, ahead of anything new. Events stored before the guild had a feed were never queued:
    with ``backfill_since`` those that happened since then (at most BACKFILL_MAX_EVENTS, the
    newest) are queued now, in order, once; the others are counted in ``not_posted``."""
    row = await conn.fetchrow("SELECT feed_channel_id FROM guilds WHERE guild_id = $1", guild_id)
    await conn.execute(
        "INSERT INTO guilds (guild_id, feed_channel_id, feed_max_age_seconds, created_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (guild_id) DO UPDATE SET"
        " feed_channel_id = excluded.feed_channel_id,"
        " feed_max_age_seconds = coalesce(excluded.feed_max_age_seconds, guilds.feed_max_age_seconds),"
        " updated_at = excluded.updated_at",
        guild_id, channel_id, max_age, now,
    )  # fmt: skip
    resumed = await _resume(conn, channel_id, now)
    await conn.execute(
        "UPDATE feed_batches SET next_attempt_at = NULL WHERE channel_id = $1"
        " AND status = 'pending'",
        channel_id,
    )
    await conn.execute(
        "UPDATE feed_outbox SET next_attempt_at = NULL WHERE channel_id = $1"
        " AND status = 'pending' AND next_attempt_at IS NOT NULL",
        channel_id,
    )
    moved, maybe_posted = await _move_backlog(conn, guild_id, channel_id, now)
    backfilled = 0
    if backfill_since is not None:
        wanted = await _never_queued(conn, guild_id, backfill_since, off_by_default)
        wanted = wanted[-BACKFILL_MAX_EVENTS:]
        if wanted:
            await conn.execute(
                "INSERT INTO feed_outbox (event_id, guild_id, channel_id, status, created_at,"
                " updated_at) SELECT w.event_id, $2, $3, 'pending', $4, $4"
                " FROM unnest($1::bigint[]) WITH ORDINALITY AS w(event_id, n) ORDER BY w.n",
                wanted, guild_id, channel_id, now,
            )  # fmt: skip
        backfilled = len(wanted)
    not_posted = len(await _never_queued(conn, guild_id, None, off_by_default))
    previous = row["feed_channel_id"] if row else None
    return FeedChange(previous, resumed, moved, maybe_posted, backfilled, not_posted)


async def feed_event_types(conn: asyncpg.Connection, guild_id: int) -> list[str] | None:
    """The event types the guild's feed posts; None means every type."""
    value = await conn.fetchval(
        "SELECT feed_event_types::text FROM guilds WHERE guild_id = $1", guild_id
    )
    return json.loads(value) if value is not None else None


async def set_feed_event_types(
    conn: asyncpg.Connection, guild_id: int, types: list[str] | None, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO guilds (guild_id, feed_event_types, created_at, updated_at)"
        " VALUES ($1, $2::jsonb, $3, $3)"
        " ON CONFLICT (guild_id) DO UPDATE SET feed_event_types = excluded.feed_event_types,"
        " updated_at = excluded.updated_at",
        guild_id, json.dumps(types) if types is not None else None, now,
    )  # fmt: skip


async def feed_language(conn: asyncpg.Connection, guild_id: int) -> tuple[str | None, str | None]:
    """(the feed language chosen with /feed language or None, the Discord server's primary
    language as the bot last saw it or None)."""
    row = await conn.fetchrow(
        "SELECT feed_language, preferred_locale FROM guilds WHERE guild_id = $1", guild_id
    )
    return (row["feed_language"], row["preferred_locale"]) if row else (None, None)


async def set_feed_language(
    conn: asyncpg.Connection, guild_id: int, language: str | None, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO guilds (guild_id, feed_language, created_at, updated_at)"
        " VALUES ($1, $2, $3, $3)"
        " ON CONFLICT (guild_id) DO UPDATE SET feed_language = excluded.feed_language,"
        " updated_at = excluded.updated_at",
        guild_id, language, now,
    )  # fmt: skip


async def note_locale(conn: asyncpg.Connection, guild_id: int, locale: str, now: datetime) -> bool:
    """Remember the Discord server's primary language; True when it changed."""
    status = await conn.execute(
        "INSERT INTO guilds (guild_id, preferred_locale, created_at, updated_at)"
        " VALUES ($1, $2, $3, $3) ON CONFLICT (guild_id) DO UPDATE SET"
        " preferred_locale = excluded.preferred_locale, updated_at = excluded.updated_at"
        " WHERE guilds.preferred_locale IS DISTINCT FROM excluded.preferred_locale",
        guild_id, locale, now,
    )  # fmt: skip
    return _count(status) > 0


async def feed_status(conn: asyncpg.Connection, guild_id: int) -> FeedStatus:
    """What /feed status shows: the channel's state, the counts, the last error and the
    latest events Discord refused."""
    channel_id = await conn.fetchval(
        "SELECT feed_channel_id FROM guilds WHERE guild_id = $1", guild_id
    )
    counts = {
        r["status"]: r["count"]
        for r in await conn.fetch(
            "SELECT status, count(*) AS count FROM feed_outbox WHERE guild_id = $1 GROUP BY status",
            guild_id,
        )
    }
    state = None
    if channel_id:
        state = await conn.fetchrow(
            "SELECT status, code, reason, paused_at, next_probe_at FROM feed_channels"
            " WHERE channel_id = $1",
            channel_id,
        )
    paused = state is not None and state["status"] == "paused"
    error = await conn.fetchval(
        "SELECT last_error FROM feed_outbox WHERE guild_id = $1 AND last_error IS NOT NULL"
        " ORDER BY updated_at DESC LIMIT 1",
        guild_id,
    )
    failures = await conn.fetch(
        "SELECT e.title, o.last_error, o.updated_at FROM feed_outbox o"
        " JOIN activity_events e ON e.id = o.event_id"
        " WHERE o.guild_id = $1 AND o.status = 'failed' ORDER BY o.updated_at DESC, o.id DESC"
        " LIMIT $2",
        guild_id, FAILURES_SHOWN,
    )  # fmt: skip
    return FeedStatus(
        channel_id=channel_id,
        channel_state=("paused" if paused else "ok") if channel_id else "unset",
        pause_detail=state["reason"] if paused else None,
        pause_code=state["code"] if paused else None,
        paused_since=_iso(state["paused_at"]) if paused else None,
        next_probe_at=_iso(state["next_probe_at"]) if paused else None,
        pending=counts.get("pending", 0),
        failed=counts.get("failed", 0),
        expired=counts.get("expired", 0),
        sent=counts.get("sent", 0),
        last_error=error,
        failures=tuple(
            FeedFailure(r["title"], r["last_error"] or "", to_iso(r["updated_at"]))
            for r in failures
        ),
    )


async def feed_paused_channels(conn: asyncpg.Connection) -> int:
    """Paused channels that have events waiting (for /metrics and questlog status)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM feed_channels c WHERE c.status = 'paused' AND EXISTS"
            " (SELECT 1 FROM feed_outbox o WHERE o.status = 'pending'"
            " AND o.channel_id = c.channel_id)"
        )
    )


def _later(text: str | None) -> datetime | None:
    return from_iso(text) if text is not None else None


class PgFeed:
    """The feed part of the store on PostgreSQL (times in and out are ISO texts, as on
    SQLite)."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        #: This process's name on its leases (each store its own: a process, or a test's).
        self.holder = secrets.token_hex(8)

    async def due_channels(self, now: str) -> list[int]:
        """Due channels, leaving out those another process holds a live lease on."""
        at = from_iso(now)

        async def fn(conn: asyncpg.Connection) -> list[int]:
            leased = await conn.fetch(
                "SELECT channel_id FROM feed_leases WHERE holder <> $1 AND expires_at > $2",
                self.holder, at,
            )  # fmt: skip
            held = {r[0] for r in leased}
            return [c for c in await due_channels(conn, at) if c not in held]

        return await self._db.read(fn)

    async def next_work(self, channel_id: int, now: str, composer: Composer) -> Batch | Edit | None:
        """The channel's next step under this process's lease (taken or renewed here, in the
        same transaction); None while another process's lease on it runs. No work: the lease
        is given up, so another process can start on the channel at once."""
        at = from_iso(now)

        async def op(conn: asyncpg.Connection) -> Batch | Edit | None:
            if not await _take_lease(conn, channel_id, self.holder, at):
                return None
            work = await next_work(conn, channel_id, at, composer)
            if work is None:
                await conn.execute(
                    "DELETE FROM feed_leases WHERE channel_id = $1 AND holder = $2",
                    channel_id, self.holder,
                )  # fmt: skip
            return work

        return await self._db.write(op)

    async def renew(self, channel_id: int, now: str) -> bool:
        at = from_iso(now)

        async def op(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                "UPDATE feed_leases SET expires_at = $3 WHERE channel_id = $1 AND holder = $2",
                channel_id, self.holder, at + LEASE,
            )  # fmt: skip
            return status != "UPDATE 0"

        return await self._db.write(op)

    async def mark_sent(self, batch: Batch, message_id: int, now: str) -> None:
        at = from_iso(now)
        await self._db.write(lambda c: mark_sent(c, batch, message_id, at))

    async def mark_retry(
        self, batch: Batch, reason: str, maybe_posted: bool, retry_at: str, now: str
    ) -> None:
        retry, at = from_iso(retry_at), from_iso(now)
        await self._db.write(lambda c: mark_retry(c, batch, reason, maybe_posted, retry, at))

    async def pause(
        self, work: Batch | Edit, refusal: Refusal, now: str, delay: ProbeDelay, retry_at: str
    ) -> tuple[bool, int | None, str | None]:
        at, retry = from_iso(now), from_iso(retry_at)
        paused, code, next_probe = await self._db.write(
            lambda c: pause(c, work, refusal, at, delay, retry)
        )
        return paused, code, _iso(next_probe)

    async def isolate(
        self, batch: Batch, refused: Mapping[int, str], reason: str, now: str
    ) -> list[int]:
        at = from_iso(now)
        return await self._db.write(lambda c: isolate(c, batch, refused, reason, at))

    async def mark_edited(self, edit: Edit, now: str) -> None:
        at = from_iso(now)
        await self._db.write(lambda c: mark_edited(c, edit, at))

    async def mark_edit_retry(self, edit: Edit, reason: str, retry_at: str, now: str) -> None:
        retry, at = from_iso(retry_at), from_iso(now)
        await self._db.write(lambda c: mark_edit_retry(c, edit, reason, retry, at))

    async def mark_edit_gone(self, edit: Edit) -> None:
        await self._db.write(lambda c: mark_edit_gone(c, edit))

    async def mark_edit_refused(self, edit: Edit, message: str, now: str) -> None:
        at = from_iso(now)
        await self._db.write(lambda c: mark_edit_refused(c, edit, message, at))

    async def expire_old(self, now: str) -> int:
        at = from_iso(now)
        return await self._db.write(lambda c: expire_old(c, at))

    async def set_channel(
        self,
        guild_id: int,
        channel_id: int,
        now: str,
        *,
        max_age: int | None = None,
        backfill_since: str | None = None,
        off_by_default: frozenset[str] = frozenset(),
    ) -> FeedChange:
        at, since = from_iso(now), _later(backfill_since)
        return await self._db.write(
            lambda c: set_feed_channel(
                c, guild_id, channel_id, at, max_age=max_age, backfill_since=since,
                off_by_default=off_by_default,
            )
        )  # fmt: skip

    async def event_types(self, guild_id: int) -> list[str] | None:
        return await self._db.read(lambda c: feed_event_types(c, guild_id))

    async def set_event_types(self, guild_id: int, types: list[str] | None, now: str) -> None:
        at = from_iso(now)
        await self._db.write(lambda c: set_feed_event_types(c, guild_id, types, at))

    async def language(self, guild_id: int) -> tuple[str | None, str | None]:
        return await self._db.read(lambda c: feed_language(c, guild_id))

    async def set_language(self, guild_id: int, language: str | None, now: str) -> None:
        at = from_iso(now)
        await self._db.write(lambda c: set_feed_language(c, guild_id, language, at))

    async def note_locale(self, guild_id: int, locale: str, now: str) -> bool:
        at = from_iso(now)
        return await self._db.write(lambda c: note_locale(c, guild_id, locale, at))

    async def channel(self, guild_id: int) -> int | None:
        """The guild's feed channel, None when it has none."""

        async def fn(conn: asyncpg.Connection) -> int | None:
            value = await conn.fetchval(
                "SELECT feed_channel_id FROM guilds WHERE guild_id = $1", guild_id
            )
            return value if value else None

        return await self._db.read(fn)

    async def status(self, guild_id: int) -> FeedStatus:
        return await self._db.read(lambda c: feed_status(c, guild_id))

    async def counts(self) -> dict[str, int]:
        """Pending and failed events and paused channels, over every guild (for /metrics and
        questlog status). Counted from the tables (SQLite keeps trigger-maintained counters,
        which on PostgreSQL would make every ingest wait on one row)."""

        async def fn(conn: asyncpg.Connection) -> dict[str, int]:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'pending') AS pending,"
                " count(*) FILTER (WHERE status = 'failed') AS failed"
                " FROM feed_outbox WHERE status IN ('pending', 'failed')"
            )
            return {
                "pending": int(row["pending"]),
                "failed": int(row["failed"]),
                "paused_channels": await feed_paused_channels(conn),
            }

        return await self._db.read(fn)
