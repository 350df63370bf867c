"""The feed poster: drains each channel's outbox into Discord messages, exactly once.

For every channel with pending events, in order:

1. If the channel has a stored, unsent batch, send it again unchanged (same nonce). Otherwise
   take the oldest pending events that fit one message (10 embeds, 6,000 characters), store the
   batch and attach the events to it in one transaction, *then* send it.
2. Send it with ``nonce`` = the batch's nonce and no mentions allowed. Discord returns the
   message it already created for a nonce it saw in the last few minutes, so a resend after a
   lost response does not post twice.
3. Answer: the batch and its events are marked sent with the message id. A 5xx, a timeout or a
   connection error keeps them pending and backs off with jitter. A 403/404 (no permission,
   channel deleted) marks them failed with the reason and stops posting to that channel until
   an admin fixes it (``reset_channel``). 429s are handled inside discord.py (it waits
   ``retry_after``); the poster does not fight it.

Events that share an ``update_key`` (ActivityEvent) are versions of one feed item. A version
not yet posted is superseded by a newer one when that is stored (bot/ingest.py); a version that
follows a posted one edits that message instead: the stored batch payload gets the new embed in
its place and the whole message is sent with PATCH, which can be repeated safely. A deleted
message makes the version a new post; the edit keeps the channel's order.

The poster is woken in-process when the pipeline stores an event, and also polls, so events
written by another process (the CLI, a second instance) are posted too. Restarting resumes from
the database: nothing lives only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from bot.clock import Clock, from_iso, to_iso
from bot.embeds import CHARS_PER_MESSAGE, build_embed, embed_length, pack
from bot.ingest import insert_event
from bot.storage import Database
from bot.tasks import cancel_task
from connectors.base import ActivityEvent

log = logging.getLogger(__name__)

CANDIDATES = 10  # events read per batch (a message holds at most 10 embeds)


class SendError(Exception):
    """A send or edit failed. ``retryable`` says whether the same batch may be tried again
    later; ``channel_gone`` that Discord refused the channel itself (403 or 404)."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        channel_gone: bool = False,
        message_gone: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.channel_gone = channel_gone
        self.message_gone = message_gone  # an edit's message was deleted (the channel is fine)


class Sender(Protocol):
    async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
        """Post the message; returns its id. Raises SendError."""
        ...

    async def edit(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Batch:
    id: int
    guild_id: int
    channel_id: int
    nonce: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class Edit:
    """A newer version of a posted event: its message is edited with the event's embed in
    place (the whole message is sent again, so the edit can be repeated safely)."""

    outbox_id: int
    guild_id: int
    channel_id: int
    message_id: int
    batch_id: int
    embed_index: int
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class FeedStatus:
    channel_id: int | None
    channel_state: str  # ok | failed | unset
    channel_reason: str | None
    pending: int
    failed: int
    expired: int
    sent: int
    last_error: str | None


# --------------------------------------------------------------------------- SQL operations


def _due_channels(conn: sqlite3.Connection, now: str) -> list[int]:
    rows = conn.execute(
        "SELECT DISTINCT o.channel_id FROM feed_outbox o"
        " LEFT JOIN feed_channels c ON c.channel_id = o.channel_id"
        " WHERE o.status = 'pending' AND (c.status IS NULL OR c.status = 'ok')"
        " AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?)",
        (now,),
    ).fetchall()
    return [r[0] for r in rows]


def _event_of(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    return {
        "type": row[2],
        "title": row[3],
        "payload": row[4],
        "actor_user_id": row[5],
        "actor_external_id": row[6],
        "actor_name": row[7],
        "occurred_at": row[8],
    }


def _edit_target(
    conn: sqlite3.Connection,
    channel_id: int,
    guild_id: int,
    update_key: str,
    outbox_id: int,
    embed: dict[str, Any],
) -> tuple[int, int, int, dict[str, Any]] | None:
    """(message id, batch id, embed index, new message payload) when an earlier version of this
    feed item was posted to the channel and its message can take the new embed in place."""
    row = conn.execute(
        "SELECT o.message_id, o.batch_id, o.embed_index, b.payload FROM feed_outbox o"
        " JOIN activity_events e ON e.id = o.event_id JOIN feed_batches b ON b.id = o.batch_id"
        " WHERE e.guild_id = ? AND e.update_key = ? AND o.channel_id = ? AND o.id < ?"
        " AND o.status = 'sent' AND o.message_id IS NOT NULL AND o.embed_index IS NOT NULL"
        " ORDER BY o.id DESC LIMIT 1",
        (guild_id, update_key, channel_id, outbox_id),
    ).fetchone()
    if row is None:
        return None
    message_id, batch_id, index, stored = row
    embeds = list(json.loads(stored).get("embeds", []))
    if not 0 <= index < len(embeds):
        return None
    embeds[index] = embed
    if sum(embed_length(e) for e in embeds) > CHARS_PER_MESSAGE:
        return None  # the new version does not fit that message: it is posted anew
    return message_id, batch_id, index, {"embeds": embeds}


def _next_work(conn: sqlite3.Connection, channel_id: int, now: str) -> Batch | Edit | None:
    """The channel's next step, in order: its unsent batch (None while that waits for its retry
    time); an edit when the oldest pending event updates a posted one; or a new batch fixed from
    the oldest pending events, up to the next event that is an edit."""
    row = conn.execute(
        "SELECT id, guild_id, channel_id, nonce, payload, attempts, next_attempt_at FROM feed_batches"
        " WHERE channel_id = ? AND status = 'pending' ORDER BY id LIMIT 1",
        (channel_id,),
    ).fetchone()
    if row is not None:
        if row[6] is not None and row[6] > now:
            return None
        return Batch(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5])
    rows = conn.execute(
        "SELECT o.id, o.guild_id, e.type, e.title, e.payload, e.actor_user_id, e.actor_external_id,"
        " e.actor_name, e.occurred_at, e.update_key, o.attempts, o.next_attempt_at"
        " FROM feed_outbox o JOIN activity_events e ON e.id = o.event_id"
        " WHERE o.channel_id = ? AND o.status = 'pending' AND o.batch_id IS NULL"
        " ORDER BY o.id LIMIT ?",
        (channel_id, CANDIDATES),
    ).fetchall()
    if not rows:
        return None
    embeds: list[tuple[int, dict[str, Any]]] = []
    for position, row in enumerate(rows):
        embed = build_embed(_event_of(row))
        target = (
            _edit_target(conn, channel_id, row[1], row[9], row[0], embed)
            if row[9] is not None
            else None
        )
        if target is not None:
            if position > 0:
                break  # what came before is posted first; the edit follows in order
            if row[11] is not None and row[11] > now:
                return None
            message_id, batch_id, index, payload = target
            return Edit(row[0], row[1], channel_id, message_id, batch_id, index, payload, row[10])
        embeds.append((row[0], embed))
    chosen = pack(embeds)
    payload = {"embeds": [embed for _, embed in chosen]}
    instance = conn.execute("SELECT value FROM meta WHERE key = 'instance_id'").fetchone()[0]
    cur = conn.execute(
        "INSERT INTO feed_batches (guild_id, channel_id, nonce, payload, created_at)"
        " VALUES (?, ?, '', ?, ?)",
        (rows[0][1], channel_id, json.dumps(payload, ensure_ascii=False), now),
    )
    batch_id = int(cur.lastrowid or 0)
    nonce = f"ql{instance}-{batch_id}"[:25]  # Discord nonces are at most 25 characters
    conn.execute("UPDATE feed_batches SET nonce = ? WHERE id = ?", (nonce, batch_id))
    conn.executemany(
        "UPDATE feed_outbox SET batch_id = ?, embed_index = ?, updated_at = ? WHERE id = ?",
        [(batch_id, index, now, key) for index, (key, _) in enumerate(chosen)],
    )
    return Batch(batch_id, rows[0][1], channel_id, nonce, payload, 0)


def _mark_sent(batch_id: int, message_id: int, now: str):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE feed_batches SET status = 'sent', message_id = ?, sent_at = ?,"
            " attempts = attempts + 1, last_error = NULL WHERE id = ?",
            (message_id, now, batch_id),
        )
        conn.execute(
            "UPDATE feed_outbox SET status = 'sent', message_id = ?, updated_at = ?,"
            " attempts = attempts + 1 WHERE batch_id = ?",
            (message_id, now, batch_id),
        )

    return op


def _mark_retry(batch: Batch, reason: str, retry_at: str, now: str):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE feed_batches SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
            " WHERE id = ?",
            (reason, retry_at, batch.id),
        )
        conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
            " updated_at = ? WHERE batch_id = ?",
            (reason, retry_at, now, batch.id),
        )

    return op


def _channel_failed(
    conn: sqlite3.Connection, channel_id: int, guild_id: int, reason: str, now: str
) -> None:
    """Everything waiting for this channel fails with the same reason; posting stops."""
    conn.execute(
        "UPDATE feed_outbox SET status = 'failed', last_error = ?, updated_at = ?"
        " WHERE channel_id = ? AND status = 'pending'",
        (reason, now, channel_id),
    )
    conn.execute(
        "UPDATE feed_batches SET status = 'failed', last_error = ?"
        " WHERE channel_id = ? AND status = 'pending'",
        (reason, channel_id),
    )
    conn.execute(
        "INSERT INTO feed_channels (channel_id, guild_id, status, reason, changed_at)"
        " VALUES (?, ?, 'failed', ?, ?) ON CONFLICT (channel_id) DO UPDATE SET"
        " status = 'failed', reason = excluded.reason, changed_at = excluded.changed_at",
        (channel_id, guild_id, reason, now),
    )


def _mark_edited(edit: Edit, now: str):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE feed_batches SET payload = ? WHERE id = ?",
            (json.dumps(edit.payload, ensure_ascii=False), edit.batch_id),
        )
        conn.execute(
            "UPDATE feed_outbox SET status = 'sent', message_id = ?, batch_id = ?,"
            " embed_index = ?, attempts = attempts + 1, last_error = NULL, next_attempt_at = NULL,"
            " updated_at = ? WHERE id = ?",
            (edit.message_id, edit.batch_id, edit.embed_index, now, edit.outbox_id),
        )

    return op


def _mark_edit_failed(edit: Edit, exc: SendError, retry_at: str | None, now: str):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        if exc.message_gone:
            # Someone deleted the message: nothing can be edited in it any more, and this
            # version is posted as a new message on the next pass.
            conn.execute(
                "UPDATE feed_outbox SET embed_index = NULL WHERE channel_id = ? AND message_id = ?",
                (edit.channel_id, edit.message_id),
            )
        elif exc.retryable:
            conn.execute(
                "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = ?, updated_at = ? WHERE id = ?",
                (exc.reason, retry_at, now, edit.outbox_id),
            )
        elif exc.channel_gone:
            _channel_failed(conn, edit.channel_id, edit.guild_id, exc.reason, now)
        else:
            conn.execute(
                "UPDATE feed_outbox SET status = 'failed', attempts = attempts + 1,"
                " last_error = ?, updated_at = ? WHERE id = ?",
                (exc.reason, now, edit.outbox_id),
            )

    return op


def _mark_failed(batch: Batch, reason: str, now: str, *, channel_gone: bool):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE feed_batches SET status = 'failed', attempts = attempts + 1, last_error = ?"
            " WHERE id = ?",
            (reason, batch.id),
        )
        if channel_gone:
            _channel_failed(conn, batch.channel_id, batch.guild_id, reason, now)
        else:
            conn.execute(
                "UPDATE feed_outbox SET status = 'failed', last_error = ?, updated_at = ?"
                " WHERE batch_id = ?",
                (reason, now, batch.id),
            )

    return op


def expire_old(conn: sqlite3.Connection, now_text: str) -> int:
    """Mark pending events older than their guild's maximum age expired (none by default)."""
    expired = 0
    for guild_id, max_age in conn.execute(
        "SELECT guild_id, feed_max_age_seconds FROM guilds WHERE feed_max_age_seconds IS NOT NULL"
    ).fetchall():
        cutoff = to_iso(from_iso(now_text) - timedelta(seconds=max_age))
        expired += conn.execute(
            "UPDATE feed_outbox SET status = 'expired', last_error = 'older than the feed maximum age',"
            " updated_at = ? WHERE guild_id = ? AND status = 'pending' AND batch_id IS NULL"
            " AND created_at < ?",
            (now_text, guild_id, cutoff),
        ).rowcount
    return expired


def set_feed_channel(
    conn: sqlite3.Connection,
    guild_id: int,
    channel_id: int,
    now_text: str,
    *,
    max_age: int | None = None,
) -> None:
    """Post the guild's events to ``channel_id`` from now on (and forget an old refusal)."""
    conn.execute(
        "INSERT INTO guilds (guild_id, feed_channel_id, feed_max_age_seconds, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET"
        " feed_channel_id = excluded.feed_channel_id,"
        " feed_max_age_seconds = coalesce(excluded.feed_max_age_seconds, guilds.feed_max_age_seconds),"
        " updated_at = excluded.updated_at",
        (guild_id, channel_id, max_age, now_text, now_text),
    )
    reset_channel(conn, channel_id, now_text)


def feed_event_types(conn: sqlite3.Connection, guild_id: int) -> list[str] | None:
    """The event types the guild's feed posts; None means every type."""
    row = conn.execute(
        "SELECT feed_event_types FROM guilds WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    return json.loads(row[0]) if row and row[0] is not None else None


def set_feed_event_types(
    conn: sqlite3.Connection, guild_id: int, types: list[str] | None, now_text: str
) -> None:
    conn.execute(
        "INSERT INTO guilds (guild_id, feed_event_types, created_at, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (guild_id) DO UPDATE SET feed_event_types = excluded.feed_event_types,"
        " updated_at = excluded.updated_at",
        (guild_id, json.dumps(types) if types is not None else None, now_text, now_text),
    )


def queue_sample_event(
    conn: sqlite3.Connection, guild_id: int, actor_user_id: int, now_text: str
) -> bool:
    """Queue a sample event for the guild's feed (/feed test); False when no channel is set."""
    guild = conn.execute(
        "SELECT feed_channel_id FROM guilds WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    if not guild or not guild[0]:
        return False
    event = ActivityEvent(
        type="feed.test",
        title="Questlog test event: the feed works",
        occurred_at=from_iso(now_text),
        source="questlog",
        payload={"description": "This is what activity looks like in this channel."},
        actor_user_id=actor_user_id,
    )
    insert_event(conn, event, guild_id, None, now_text)
    return True


def reset_channel(conn: sqlite3.Connection, channel_id: int, now_text: str) -> None:
    """An admin fixed the channel (permissions, or picked a new one): post to it again."""
    conn.execute(
        "UPDATE feed_channels SET status = 'ok', reason = NULL, changed_at = ? WHERE channel_id = ?",
        (now_text, channel_id),
    )


def feed_status(conn: sqlite3.Connection, guild_id: int) -> FeedStatus:
    """What /feed status shows: pending, failed, expired and sent counts and the last error."""
    guild = conn.execute(
        "SELECT feed_channel_id FROM guilds WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    channel_id = guild[0] if guild else None
    counts = dict(
        conn.execute(
            "SELECT status, count(*) FROM feed_outbox WHERE guild_id = ? GROUP BY status",
            (guild_id,),
        ).fetchall()
    )
    state = None
    if channel_id:
        state = conn.execute(
            "SELECT status, reason FROM feed_channels WHERE channel_id = ?", (channel_id,)
        ).fetchone()
    error = conn.execute(
        "SELECT last_error FROM feed_outbox WHERE guild_id = ? AND last_error IS NOT NULL"
        " ORDER BY updated_at DESC LIMIT 1",
        (guild_id,),
    ).fetchone()
    return FeedStatus(
        channel_id=channel_id,
        channel_state=(state[0] if state else "ok") if channel_id else "unset",
        channel_reason=state[1] if state else None,
        pending=counts.get("pending", 0),
        failed=counts.get("failed", 0),
        expired=counts.get("expired", 0),
        sent=counts.get("sent", 0),
        last_error=error[0] if error else None,
    )


# --------------------------------------------------------------------------- the poster


class FeedPoster:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        sender: Sender | None = None,
        *,
        poll_seconds: float = 2.0,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sender = sender
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._draining: set[int] = set()  # one drain per channel, ever
        self.sent_messages = 0
        self.edited_messages = 0

    def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="questlog-feed-poster")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("feed poster pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_seconds)
            self._wakeup.clear()

    async def run_once(self) -> int:
        """One pass: expire old events, then drain every due channel (channels in parallel).
        Returns the number of messages sent."""
        sender = self.sender  # the bot may hand over a new client (or none) between passes
        if sender is None:
            return 0
        now = to_iso(self.clock.now())
        expired = await self.db.write(lambda c: expire_old(c, now))
        if expired:
            log.info("feed: %d pending events expired", expired)
        channels = [
            c
            for c in await self.db.read(lambda c: _due_channels(c, now))
            if c not in self._draining
        ]
        results = await asyncio.gather(
            *(self._drain(sender, channel) for channel in channels), return_exceptions=True
        )
        for channel, result in zip(channels, results, strict=True):
            if isinstance(result, BaseException):
                log.error("feed: draining channel %s failed: %r", channel, result)
        return sum(r for r in results if isinstance(r, int))

    async def _drain(self, sender: Sender, channel_id: int) -> int:
        self._draining.add(channel_id)
        try:
            return await self._drain_channel(sender, channel_id)
        finally:
            self._draining.discard(channel_id)

    async def _drain_channel(self, sender: Sender, channel_id: int) -> int:
        sent = 0
        while True:
            now = to_iso(self.clock.now())
            batch = await self.db.write(lambda c, now=now: _next_work(c, channel_id, now))
            if batch is None:
                return sent
            if isinstance(batch, Edit):
                if not await self._edit(sender, batch):
                    return sent
                continue
            try:
                message_id = await sender.send(channel_id, batch.payload, batch.nonce)
            except SendError as exc:
                await self._failed(batch, exc)
                return sent
            except Exception as exc:  # e.g. the HTTP session closing while the bot reconnects
                log.warning("feed: sending batch %s failed unexpectedly: %r", batch.id, exc)
                await self._failed(
                    batch, SendError(f"unexpected error: {type(exc).__name__}", retryable=True)
                )
                return sent
            await self.db.write(_mark_sent(batch.id, message_id, to_iso(self.clock.now())))
            sent += 1
            self.sent_messages += 1

    async def _edit(self, sender: Sender, edit: Edit) -> bool:
        """Edit a posted message with a newer version of one of its events; True when the
        channel may go on (edited, or the message was deleted and the version will be posted)."""
        try:
            await sender.edit(edit.channel_id, edit.message_id, edit.payload)
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, SendError)
                else SendError(f"unexpected error: {type(exc).__name__}", retryable=True)
            )
            now = self.clock.now()
            retry_at = None
            if error.message_gone:
                log.info(
                    "feed: message %s in channel %s was deleted; posting the update anew",
                    edit.message_id,
                    edit.channel_id,
                )
            elif error.retryable:
                retry_at = to_iso(now + timedelta(seconds=self._backoff(edit.attempts)))
                log.warning(
                    "feed: editing message %s in channel %s failed (%s); retrying",
                    edit.message_id,
                    edit.channel_id,
                    error.reason,
                )
            else:
                log.error(
                    "feed: channel %s refused an edit of message %s: %s",
                    edit.channel_id,
                    edit.message_id,
                    error.reason,
                )
            await self.db.write(_mark_edit_failed(edit, error, retry_at, to_iso(now)))
            return error.message_gone
        await self.db.write(_mark_edited(edit, to_iso(self.clock.now())))
        self.edited_messages += 1
        return True

    def _backoff(self, attempts: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** min(attempts, 16))
        return delay * random.uniform(0.5, 1.5)

    async def _failed(self, batch: Batch, exc: SendError) -> None:
        now = self.clock.now()
        if exc.retryable:
            delay = self._backoff(batch.attempts)
            retry_at = to_iso(now + timedelta(seconds=delay))
            log.warning(
                "feed: channel %s unavailable (%s); retrying batch %s in %.0f s",
                batch.channel_id,
                exc.reason,
                batch.id,
                delay,
            )
            await self.db.write(_mark_retry(batch, exc.reason, retry_at, to_iso(now)))
        else:
            log.error(
                "feed: channel %s refused batch %s: %s", batch.channel_id, batch.id, exc.reason
            )
            await self.db.write(
                _mark_failed(batch, exc.reason, to_iso(now), channel_gone=exc.channel_gone)
            )
