"""The feed poster: drains each channel's outbox into Discord messages, exactly once.

Every channel with work gets a worker of its own, so a long backlog, a slow answer or a long
``retry_after`` in one channel never holds up another. A worker repeats, in order:

1. If the channel has a stored, unsent batch, send it again unchanged (same nonce). Otherwise
   take the oldest pending events that fit one message (10 embeds, 6,000 characters), store the
   batch and attach the events to it in one transaction, *then* send it.
2. Send it with ``nonce`` = the batch's nonce (discord.py >= 2.5 adds ``enforce_nonce``) and no
   mentions allowed. Discord returns the message it already created for a nonce it saw in the
   last few minutes, so a resend after a lost response does not post twice.
3. Answer: the batch and its events are marked sent with the message id. A 5xx, a timeout or a
   connection error keeps them pending and backs off with jitter (429s are handled inside
   discord.py, which waits ``retry_after``). A refusal of the channel itself (403 Missing Access
   or Missing Permissions, 404 Unknown Channel, any other 400 such as 50008) **pauses** the
   channel: nothing is failed, the events wait in order, and the channel is probed (below). A
   400 Invalid Form Body (50035) that names ``embeds.N`` fails just those events with Discord's
   message and re-batches the rest (a batch without an index is split in halves, down to the one
   event at fault), so one bad embed never takes its batch down.

A paused channel (Missing Access, Missing Permissions, other 400s) is probed with backoff from
1 minute doubling to 1 hour, jittered: a probe is the channel's next step as it is (its oldest
stored batch with its stored nonce, unchanged, or the edit that was refused), never a test
message. When Discord accepts it the channel resumes by itself. A deleted channel (Unknown
Channel) is not probed; it waits for ``/feed channel``. Picking a channel (``set_feed_channel``)
resumes it at once; when it is another channel, the backlog moves there in the same
transaction, ahead of anything new: unsent batches are split back into their events, which are
re-batched with new nonces for the new channel. A send in flight to the old channel that Discord
then accepts marks its events posted there (unless the new channel has taken them already).

Events that share an ``update_key`` (ActivityEvent) are versions of one feed item. A version
not yet posted is superseded by a newer one when that is stored (bot/ingest/pipeline.py); a version that
follows a posted one edits that message instead: the stored batch payload gets the new embed in
its place and the whole message is sent with PATCH, which can be repeated safely. A deleted
message makes the version a new post; the edit keeps the channel's order.

The poster is woken in-process when the pipeline stores an event, and also polls, so events
written by another process (the CLI, a second instance) are posted too. Requests are paced
below Discord's global 50 per second. Restarting resumes from the database: nothing lives only
in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from bot.clock import Clock, from_iso, to_iso
from bot.feed.embeds import CHARS_PER_MESSAGE, build_embed, embed_length, pack
from bot.ingest.pipeline import insert_event
from bot.storage.engine import Database
from bot.tasks import cancel_task
from connectors.base import ActivityEvent

log = logging.getLogger(__name__)

CANDIDATES = 10  # events read per batch (a message holds at most 10 embeds)

# Discord's JSON error codes the poster acts on.
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
MISSING_ACCESS = 50001
CANNOT_SEND_HERE = 50008
MISSING_PERMISSIONS = 50013
INVALID_FORM_BODY = 50035

#: What a paused channel's refusal means, worded from Discord's code.
PAUSE_REASONS = {
    MISSING_ACCESS: "Questlog cannot see the channel, or it is no longer in the server"
    " (Missing Access)",
    MISSING_PERMISSIONS: "Questlog lacks Send Messages or Embed Links in the channel"
    " (Missing Permissions)",
    UNKNOWN_CHANNEL: "the channel was deleted (Unknown Channel)",
    CANNOT_SEND_HERE: "Discord does not allow messages in this kind of channel",
}


def pause_reason(code: int | None, detail: str | None = None) -> str:
    """A paused channel's reason in words, from Discord's code (or its message for others)."""
    if code in PAUSE_REASONS:
        return PAUSE_REASONS[code]  # type: ignore[index]
    return f"Discord refused the channel ({detail or f'error {code}'})"


def probed(code: int | None) -> bool:
    """Whether a channel paused for this code is probed (a deleted one is not)."""
    return code != UNKNOWN_CHANNEL


Failure = Literal["retry", "refused", "invalid", "message_gone"]


class SendError(Exception):
    """A send or edit failed, classified for the poster:

    * ``retry``: try the same batch again later (5xx, timeout, lost answer); ``maybe_posted``
      when Discord may have made the message although no answer came;
    * ``refused``: Discord refused the channel (``code``: 50001, 50013, 10003, 50008, ...);
    * ``invalid``: Discord refused the message body (50035); ``embeds`` maps the index of each
      refused embed to Discord's message (empty when Discord named none);
    * ``message_gone``: the message an edit is for was deleted (the channel is fine).
    """

    def __init__(
        self,
        reason: str,
        *,
        failure: Failure = "retry",
        code: int = 0,
        embeds: Mapping[int, str] | None = None,
        maybe_posted: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure
        self.code = code
        self.embeds: dict[int, str] = dict(embeds or {})
        self.maybe_posted = maybe_posted

    @classmethod
    def retry(cls, reason: str, *, maybe_posted: bool = False) -> SendError:
        return cls(reason, failure="retry", maybe_posted=maybe_posted)

    @classmethod
    def refused(cls, code: int, reason: str) -> SendError:
        return cls(reason, failure="refused", code=code)

    @classmethod
    def invalid(cls, reason: str, embeds: Mapping[int, str] | None = None) -> SendError:
        return cls(reason, failure="invalid", code=INVALID_FORM_BODY, embeds=embeds)

    @classmethod
    def message_gone(cls, reason: str) -> SendError:
        return cls(reason, failure="message_gone", code=UNKNOWN_MESSAGE)


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
    keys: tuple[int, ...]  # the outbox rows of its embeds, in order
    probe: bool = False  # the channel is paused and this send probes it


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
    probe: bool = False


@dataclass(frozen=True)
class FeedFailure:
    """An event Discord refused (its embed), with Discord's reason."""

    title: str
    reason: str
    at: str


@dataclass(frozen=True)
class FeedStatus:
    channel_id: int | None
    channel_state: str  # ok | paused | unset
    channel_reason: str | None  # a paused channel's reason, in words
    pause_code: int | None
    paused_since: str | None
    next_probe_at: str | None  # None while paused: waits for /feed channel
    pending: int
    failed: int
    expired: int
    sent: int
    last_error: str | None
    failures: tuple[FeedFailure, ...] = ()  # the latest refused events


@dataclass(frozen=True)
class FeedChange:
    """What ``set_feed_channel`` did."""

    previous_channel: int | None
    resumed: bool  # the channel was paused and posts again now
    moved: int  # waiting events that moved here from another channel
    maybe_posted: int  # given-up batches whose answer was lost: they may show in the old channel


# --------------------------------------------------------------------------- SQL operations


def _due_channels(conn: sqlite3.Connection, now: str) -> list[int]:
    """Channels whose next step is due (exactly those for which ``_next_work`` has work)."""
    rows = conn.execute(
        "SELECT DISTINCT o.channel_id FROM feed_outbox o"
        " LEFT JOIN feed_channels c ON c.channel_id = o.channel_id"
        " WHERE o.status = 'pending'"
        " AND (c.status IS NULL OR c.status = 'ok' OR c.next_probe_at <= ?)",
        (now,),
    ).fetchall()
    return [r[0] for r in rows if _step_due(conn, r[0], now) is not None]


def _probing(conn: sqlite3.Connection, channel_id: int, now: str) -> bool | None:
    """False for a channel that takes messages, True for a paused one due for a probe, None
    for a paused one that is not (not yet, or never: a deleted channel)."""
    state = conn.execute(
        "SELECT status, next_probe_at FROM feed_channels WHERE channel_id = ?", (channel_id,)
    ).fetchone()
    if state is None or state[0] != "paused":
        return False
    return True if state[1] is not None and state[1] <= now else None


def _oldest_batch(conn: sqlite3.Connection, channel_id: int) -> sqlite3.Row | None:
    """The unsent batch holding the channel's oldest events (a split batch's halves are newer
    batches than the rest of the batch split before them, so batch ids do not give the order)."""
    return conn.execute(
        "SELECT b.id, b.guild_id, b.channel_id, b.nonce, b.payload, b.attempts, b.next_attempt_at"
        " FROM feed_batches b WHERE b.channel_id = ? AND b.status = 'pending'"
        " ORDER BY (SELECT min(o.id) FROM feed_outbox o WHERE o.batch_id = b.id) LIMIT 1",
        (channel_id,),
    ).fetchone()


def _step_due(
    conn: sqlite3.Connection, channel_id: int, now: str
) -> tuple[bool, sqlite3.Row | None] | None:
    """Whether the channel's next step is due: None when it is not (paused without a probe
    due, nothing waiting, or the next step waits for its retry time); otherwise (probe, the
    oldest unsent batch or None when the next step starts from unbatched events)."""
    probe = _probing(conn, channel_id, now)
    if probe is None:
        return None
    batch = _oldest_batch(conn, channel_id)
    if batch is not None:
        wait = batch[6]
    else:
        first = conn.execute(
            "SELECT next_attempt_at FROM feed_outbox WHERE channel_id = ? AND status = 'pending'"
            " AND batch_id IS NULL ORDER BY id LIMIT 1",
            (channel_id,),
        ).fetchone()
        if first is None:
            return None
        wait = first[0]
    if wait is not None and wait > now and not probe:
        return None
    return probe, batch


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


def _store_batch(
    conn: sqlite3.Connection,
    guild_id: int,
    channel_id: int,
    chosen: list[tuple[int, dict[str, Any]]],
    now: str,
    *,
    probe: bool = False,
) -> Batch:
    """Fix a message of (outbox id, embed) pairs as a new batch with its own nonce."""
    payload = {"embeds": [embed for _, embed in chosen]}
    instance = conn.execute("SELECT value FROM meta WHERE key = 'instance_id'").fetchone()[0]
    cur = conn.execute(
        "INSERT INTO feed_batches (guild_id, channel_id, nonce, payload, created_at)"
        " VALUES (?, ?, '', ?, ?)",
        (guild_id, channel_id, json.dumps(payload, ensure_ascii=False), now),
    )
    batch_id = int(cur.lastrowid or 0)
    nonce = f"ql{instance}-{batch_id}"[:25]  # Discord nonces are at most 25 characters
    conn.execute("UPDATE feed_batches SET nonce = ? WHERE id = ?", (nonce, batch_id))
    conn.executemany(
        "UPDATE feed_outbox SET batch_id = ?, embed_index = ?, updated_at = ? WHERE id = ?",
        [(batch_id, index, now, key) for index, (key, _) in enumerate(chosen)],
    )
    keys = tuple(key for key, _ in chosen)
    return Batch(batch_id, guild_id, channel_id, nonce, payload, 0, keys, probe)


def _next_work(conn: sqlite3.Connection, channel_id: int, now: str) -> Batch | Edit | None:
    """The channel's next step, in order: nothing while it is paused and no probe is due or
    while its next step waits for its retry time; its oldest unsent batch; an edit when the
    oldest pending event updates a posted one; or a new batch fixed from the oldest pending
    events, up to the next event that is an edit."""
    due = _step_due(conn, channel_id, now)
    if due is None:
        return None
    probe, row = due
    if row is not None:
        keys = conn.execute(
            "SELECT id FROM feed_outbox WHERE batch_id = ? AND status = 'pending'"
            " ORDER BY embed_index",
            (row[0],),
        ).fetchall()
        return Batch(
            row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], tuple(k[0] for k in keys),
            probe,
        )  # fmt: skip
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
            message_id, batch_id, index, payload = target
            return Edit(
                row[0], row[1], channel_id, message_id, batch_id, index, payload, row[10], probe
            )
        embeds.append((row[0], embed))
    return _store_batch(conn, rows[0][1], channel_id, pack(embeds), now, probe=probe)


def _resume(conn: sqlite3.Connection, channel_id: int, now: str) -> bool:
    """Post to a paused channel again; True when it was paused."""
    return (
        conn.execute(
            "UPDATE feed_channels SET status = 'ok', code = NULL, reason = NULL,"
            " paused_at = NULL, probes = 0, next_probe_at = NULL, changed_at = ?"
            " WHERE channel_id = ? AND status = 'paused'",
            (now, channel_id),
        ).rowcount
        > 0
    )


def _mark_sent(batch: Batch, message_id: int, now: str):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE feed_batches SET status = 'sent', message_id = ?, sent_at = ?,"
            " attempts = attempts + 1, last_error = NULL WHERE id = ?",
            (message_id, now, batch.id),
        )
        # Normally the batch's events; when the feed moved while this send was in flight,
        # those of them the new channel has not taken yet (the message is in the old channel).
        conn.executemany(
            "UPDATE feed_outbox SET status = 'sent', channel_id = ?, batch_id = ?,"
            " embed_index = ?, message_id = ?, updated_at = ?, attempts = attempts + 1"
            " WHERE id = ? AND status = 'pending' AND (batch_id = ? OR batch_id IS NULL)",
            [
                (batch.channel_id, batch.id, index, message_id, now, key, batch.id)
                for index, key in enumerate(batch.keys)
            ],
        )
        if batch.probe:
            _resume(conn, batch.channel_id, now)

    return op


def _mark_retry(batch: Batch, exc: SendError, retry_at: str, now: str):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE feed_batches SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
            " maybe_posted = max(maybe_posted, ?) WHERE id = ?",
            (exc.reason, retry_at, int(exc.maybe_posted), batch.id),
        )
        conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
            " updated_at = ? WHERE batch_id = ?",
            (exc.reason, retry_at, now, batch.id),
        )

    return op


def _pause(
    conn: sqlite3.Connection,
    work: Batch | Edit,
    exc: SendError,
    now: str,
    delay: Any,
    retry_at: str,
) -> tuple[bool, int | None, str | None]:
    """Pause the work's channel (or keep it paused after a failed probe): its events stay
    pending, unchanged, and the next probe is scheduled. ``delay(probes)`` gives the seconds
    until the next probe. A probe that failed without a refusal (a 5xx) of a channel an admin
    resumed meanwhile is an ordinary retry at ``retry_at`` instead. Returns (paused, code, next
    probe time)."""
    state = conn.execute(
        "SELECT status, code, reason, probes FROM feed_channels WHERE channel_id = ?",
        (work.channel_id,),
    ).fetchone()
    paused = state is not None and state[0] == "paused"
    if exc.failure != "refused" and not paused:
        if isinstance(work, Batch):
            _mark_retry(work, exc, retry_at, now)(conn)
        else:
            _mark_edit_retry(work, exc, retry_at, now)(conn)
        return False, None, None
    if exc.failure == "refused":
        code, reason = exc.code, exc.reason
    else:  # a probe that failed some other way (a 5xx): still paused for the old reason
        code, reason = state[1], state[2]
    probes = state[3] + 1 if paused else 0
    next_probe = to_iso(from_iso(now) + timedelta(seconds=delay(probes))) if probed(code) else None
    conn.execute(
        "INSERT INTO feed_channels (channel_id, guild_id, status, code, reason, paused_at, probes,"
        " next_probe_at, changed_at) VALUES (?, ?, 'paused', ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (channel_id) DO UPDATE SET status = 'paused', code = excluded.code,"
        " reason = excluded.reason, paused_at = coalesce(feed_channels.paused_at, excluded.paused_at),"
        " probes = excluded.probes, next_probe_at = excluded.next_probe_at,"
        " changed_at = excluded.changed_at",
        (work.channel_id, work.guild_id, code, reason, now, probes, next_probe, now),
    )
    if isinstance(work, Batch):
        conn.execute(
            "UPDATE feed_batches SET attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = NULL, maybe_posted = max(maybe_posted, ?) WHERE id = ?",
            (exc.reason, int(exc.maybe_posted), work.id),
        )
        conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = NULL, updated_at = ? WHERE batch_id = ?",
            (exc.reason, now, work.id),
        )
    else:
        conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = NULL, updated_at = ? WHERE id = ?",
            (exc.reason, now, work.outbox_id),
        )
    return True, code, next_probe


def _isolate(conn: sqlite3.Connection, batch: Batch, exc: SendError, now: str) -> list[int]:
    """Discord refused the batch's body (50035). The embeds it named fail alone, with its
    message; the others are re-batched as they were (a new batch and nonce: nothing was
    posted). Without an index, the batch is split in halves, down to the one event at fault.
    Returns the outbox ids that failed."""
    embeds = batch.payload.get("embeds", [])
    count = min(len(embeds), len(batch.keys))
    named = {i: m for i, m in exc.embeds.items() if 0 <= i < count}
    if named:
        failed = named
        groups = [[i for i in range(count) if i not in named]]
    elif count <= 1:
        failed = dict.fromkeys(range(count), exc.reason)
        groups = []
    else:
        half = count // 2
        failed = {}
        groups = [list(range(half)), list(range(half, count))]
    for index, message in failed.items():
        conn.execute(
            "UPDATE feed_outbox SET status = 'failed', attempts = attempts + 1, last_error = ?,"
            " batch_id = NULL, embed_index = NULL, updated_at = ? WHERE id = ?",
            (f"Discord refused this event's embed: {message}", now, batch.keys[index]),
        )
    groups = [g for g in groups if g]
    conn.execute(
        "UPDATE feed_batches SET status = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
        ("replaced" if groups else "failed", exc.reason, batch.id),
    )
    for group in groups:
        _store_batch(
            conn, batch.guild_id, batch.channel_id, [(batch.keys[i], embeds[i]) for i in group], now
        )
    return [batch.keys[i] for i in failed]


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
        if edit.probe:
            _resume(conn, edit.channel_id, now)

    return op


def _mark_edit_retry(edit: Edit, exc: SendError, retry_at: str, now: str):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = ?, updated_at = ? WHERE id = ?",
            (exc.reason, retry_at, now, edit.outbox_id),
        )

    return op


def _mark_edit_gone(edit: Edit):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        # Someone deleted the message: nothing can be edited in it any more, and this version
        # is posted as a new message next.
        conn.execute(
            "UPDATE feed_outbox SET embed_index = NULL WHERE channel_id = ? AND message_id = ?",
            (edit.channel_id, edit.message_id),
        )

    return op


def _mark_edit_invalid(edit: Edit, exc: SendError, now: str):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        # The posted message keeps its earlier version; only this one fails.
        message = exc.embeds.get(edit.embed_index) or exc.reason
        conn.execute(
            "UPDATE feed_outbox SET status = 'failed', attempts = attempts + 1,"
            " last_error = ?, updated_at = ? WHERE id = ?",
            (f"Discord refused this event's embed: {message}", now, edit.outbox_id),
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


def _move_backlog(
    conn: sqlite3.Connection, guild_id: int, channel_id: int, now: str
) -> tuple[int, int]:
    """Move the guild's waiting events from any other channel to ``channel_id``, in the same
    transaction as the switch, so nothing new is posted there before them: unsent batches are
    given up and their events get new batches and nonces there. Of versions of one feed item
    only the newest stays. Returns (events moved, given-up batches whose answer was lost, which
    may show in the old channel)."""
    maybe_posted = conn.execute(
        "SELECT count(*) FROM feed_batches WHERE guild_id = ? AND status = 'pending'"
        " AND channel_id != ? AND maybe_posted = 1",
        (guild_id, channel_id),
    ).fetchone()[0]
    conn.execute(
        "UPDATE feed_batches SET status = 'replaced', last_error = ?"
        " WHERE guild_id = ? AND status = 'pending' AND channel_id != ?",
        (f"the feed moved to channel {channel_id}", guild_id, channel_id),
    )
    moved = conn.execute(
        "UPDATE feed_outbox SET channel_id = ?, batch_id = NULL, embed_index = NULL,"
        " next_attempt_at = NULL, updated_at = ?"
        " WHERE guild_id = ? AND status = 'pending' AND channel_id != ?",
        (channel_id, now, guild_id, channel_id),
    ).rowcount
    if moved:
        newest: dict[str, int] = {}
        older: list[int] = []
        for outbox_id, key in conn.execute(
            "SELECT o.id, e.update_key FROM feed_outbox o JOIN activity_events e"
            " ON e.id = o.event_id WHERE o.channel_id = ? AND o.status = 'pending'"
            " AND o.batch_id IS NULL AND e.update_key IS NOT NULL ORDER BY o.id",
            (channel_id,),
        ).fetchall():
            if key in newest:
                older.append(newest[key])
            newest[key] = outbox_id
        conn.executemany(
            "UPDATE feed_outbox SET status = 'superseded', updated_at = ? WHERE id = ?",
            [(now, key) for key in older],
        )
    return moved, maybe_posted


def set_feed_channel(
    conn: sqlite3.Connection,
    guild_id: int,
    channel_id: int,
    now_text: str,
    *,
    max_age: int | None = None,
) -> FeedChange:
    """Post the guild's events to ``channel_id`` from now on. A paused channel resumes at once
    (and what waits for its retry time is tried now); events waiting for another channel move
    here, ahead of anything new."""
    row = conn.execute(
        "SELECT feed_channel_id FROM guilds WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    conn.execute(
        "INSERT INTO guilds (guild_id, feed_channel_id, feed_max_age_seconds, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET"
        " feed_channel_id = excluded.feed_channel_id,"
        " feed_max_age_seconds = coalesce(excluded.feed_max_age_seconds, guilds.feed_max_age_seconds),"
        " updated_at = excluded.updated_at",
        (guild_id, channel_id, max_age, now_text, now_text),
    )
    resumed = _resume(conn, channel_id, now_text)
    conn.execute(
        "UPDATE feed_batches SET next_attempt_at = NULL WHERE channel_id = ? AND status = 'pending'",
        (channel_id,),
    )
    conn.execute(
        "UPDATE feed_outbox SET next_attempt_at = NULL WHERE channel_id = ? AND status = 'pending'"
        " AND next_attempt_at IS NOT NULL",
        (channel_id,),
    )
    moved, maybe_posted = _move_backlog(conn, guild_id, channel_id, now_text)
    return FeedChange(row[0] if row else None, resumed, moved, maybe_posted)


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


FAILURES_SHOWN = 5


def feed_status(conn: sqlite3.Connection, guild_id: int) -> FeedStatus:
    """What /feed status shows: the channel's state, the counts, the last error and the
    latest events Discord refused."""
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
            "SELECT status, code, reason, paused_at, next_probe_at FROM feed_channels"
            " WHERE channel_id = ?",
            (channel_id,),
        ).fetchone()
    paused = state is not None and state[0] == "paused"
    error = conn.execute(
        "SELECT last_error FROM feed_outbox WHERE guild_id = ? AND last_error IS NOT NULL"
        " ORDER BY updated_at DESC LIMIT 1",
        (guild_id,),
    ).fetchone()
    failures = conn.execute(
        "SELECT e.title, o.last_error, o.updated_at FROM feed_outbox o"
        " JOIN activity_events e ON e.id = o.event_id"
        " WHERE o.guild_id = ? AND o.status = 'failed' ORDER BY o.updated_at DESC, o.id DESC"
        " LIMIT ?",
        (guild_id, FAILURES_SHOWN),
    ).fetchall()
    return FeedStatus(
        channel_id=channel_id,
        channel_state=("paused" if paused else "ok") if channel_id else "unset",
        channel_reason=pause_reason(state[1], state[2]) if paused else None,
        pause_code=state[1] if paused else None,
        paused_since=state[3] if paused else None,
        next_probe_at=state[4] if paused else None,
        pending=counts.get("pending", 0),
        failed=counts.get("failed", 0),
        expired=counts.get("expired", 0),
        sent=counts.get("sent", 0),
        last_error=error[0] if error else None,
        failures=tuple(FeedFailure(r[0], r[1] or "", r[2]) for r in failures),
    )


def feed_paused_channels(conn: sqlite3.Connection) -> int:
    """Paused channels that have events waiting (for /metrics and questlog status)."""
    return conn.execute(
        "SELECT count(*) FROM feed_channels c WHERE c.status = 'paused' AND EXISTS"
        " (SELECT 1 FROM feed_outbox o WHERE o.status = 'pending' AND o.channel_id = c.channel_id)"
    ).fetchone()[0]


# --------------------------------------------------------------------------- the poster


@dataclass
class _Pacer:
    """Spaces requests at least ``1 / per_second`` apart, in the order they asked (Discord's
    global limit is 50 requests per second for a bot; the feed stays below it)."""

    per_second: float
    _next: float = field(default=0.0)

    async def wait(self) -> None:
        if self.per_second <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + 1.0 / self.per_second
        if slot > now:
            await asyncio.sleep(slot - now)


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
        probe_first: float = 60.0,
        probe_max: float = 3600.0,
        requests_per_second: float = 40.0,
        min_dispatch_seconds: float = 0.05,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sender = sender
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.probe_first = probe_first
        self.probe_max = probe_max
        self.min_dispatch_seconds = min_dispatch_seconds
        self._pacer = _Pacer(requests_per_second)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._workers: dict[int, asyncio.Task[int]] = {}  # one per channel with work
        self._generation = 0  # counts wake-ups; a worker that missed one looks again
        self._seen: dict[int, int] = {}  # channel -> generation its worker last looked at
        self._expired_at = -math.inf
        self.sent_messages = 0
        self.edited_messages = 0

    def wake(self) -> None:
        self._generation += 1
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="questlog-feed-poster")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                if started - self._expired_at >= self.poll_seconds:
                    self._expired_at = started
                    await self._expire()
                await self._dispatch()
            except Exception:
                log.exception("feed poster pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_seconds)
            self._wakeup.clear()
            # Wake-ups come with every stored event: look at most every min_dispatch_seconds.
            rest = self.min_dispatch_seconds - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def run_once(self) -> int:
        """Expire old events, start a worker for every due channel, and wait until every worker
        has run out of work. Returns the number of messages sent."""
        if self.sender is None:
            return 0
        await self._expire()
        await self._dispatch()
        results = await asyncio.gather(*self._workers.values(), return_exceptions=True)
        return sum(r for r in results if isinstance(r, int))

    async def _expire(self) -> None:
        now = to_iso(self.clock.now())
        expired = await self.db.write(lambda c: expire_old(c, now))
        if expired:
            log.info("feed: %d pending events expired", expired)

    async def _dispatch(self) -> None:
        """A worker for every channel with due work that has none yet."""
        if self.sender is None:
            return
        now = to_iso(self.clock.now())
        for channel in await self.db.read(lambda c: _due_channels(c, now)):
            if channel not in self._workers:
                task = asyncio.create_task(self._drain(channel), name=f"questlog-feed-{channel}")
                self._workers[channel] = task
                task.add_done_callback(lambda t, c=channel: self._worker_done(c, t))

    def _worker_done(self, channel: int, task: asyncio.Task[int]) -> None:
        if self._workers.get(channel) is task:
            del self._workers[channel]
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("feed: the worker of channel %s failed: %r", channel, error)
        if self._seen.pop(channel, self._generation) != self._generation:
            self._wakeup.set()  # an event came while it was finishing: look again

    async def _drain(self, channel_id: int) -> int:
        sent = 0
        while True:
            sender = self.sender  # the bot may hand over a new client (or none) at any time
            if sender is None:
                return sent
            self._seen[channel_id] = self._generation
            now = to_iso(self.clock.now())
            work = await self.db.write(lambda c, now=now: _next_work(c, channel_id, now))
            if work is None:
                return sent
            await self._pacer.wait()
            if isinstance(work, Edit):
                if not await self._edit(sender, work):
                    return sent
                continue
            try:
                message_id = await sender.send(channel_id, work.payload, work.nonce)
            except Exception as exc:
                if not await self._send_failed(work, self._classify(exc, work)):
                    return sent
                continue
            await self.db.write(_mark_sent(work, message_id, to_iso(self.clock.now())))
            if work.probe:
                log.info("feed: channel %s takes messages again; posting resumes", channel_id)
            sent += 1
            self.sent_messages += 1

    @staticmethod
    def _classify(exc: Exception, work: Batch | Edit) -> SendError:
        if isinstance(exc, SendError):
            return exc
        # e.g. the HTTP session closing while the bot reconnects
        log.warning("feed: a request for channel %s failed unexpectedly: %r", work.channel_id, exc)
        return SendError.retry(f"unexpected error: {type(exc).__name__}", maybe_posted=True)

    def _backoff(self, attempts: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** min(attempts, 16))
        return delay * random.uniform(0.5, 1.5)

    def _probe_delay(self, probes: int) -> float:
        """1 minute, doubling to 1 hour, each within ±10 % so channels do not probe in step."""
        delay = min(self.probe_max, self.probe_first * 2 ** min(probes, 16))
        return delay * random.uniform(0.9, 1.1)

    async def _pause(self, work: Batch | Edit, exc: SendError) -> None:
        """A refusal pauses the channel; a failed probe keeps it paused."""
        now = self.clock.now()
        retry_at = to_iso(now + timedelta(seconds=self._backoff(work.attempts)))
        paused, code, next_probe = await self.db.write(
            lambda c: _pause(c, work, exc, to_iso(now), self._probe_delay, retry_at)
        )
        if not paused:
            log.warning(
                "feed: channel %s unavailable (%s); retrying at %s", work.channel_id, exc.reason,
                retry_at,
            )  # fmt: skip
        elif work.probe:
            log.info(
                "feed: channel %s still refuses (%s); next probe at %s",
                work.channel_id,
                exc.reason,
                next_probe or "never",
            )
        else:
            log.warning(
                "feed: channel %s paused: %s (%s); %s",
                work.channel_id,
                pause_reason(code, exc.reason),
                exc.reason,
                f"probing from {next_probe}" if next_probe else "waiting for /feed channel",
            )

    async def _send_failed(self, batch: Batch, exc: SendError) -> bool:
        """Record a failed send; True when the channel may go on at once."""
        now = self.clock.now()
        if exc.failure == "invalid":
            failed = await self.db.write(lambda c: _isolate(c, batch, exc, to_iso(now)))
            log.warning(
                "feed: Discord refused %d of the %d events of batch %s (%s); posting the rest",
                len(failed),
                len(batch.keys),
                batch.id,
                exc.reason,
            )
            return True
        if exc.failure == "refused" or batch.probe:
            await self._pause(batch, exc)
            return False
        delay = self._backoff(batch.attempts)
        retry_at = to_iso(now + timedelta(seconds=delay))
        log.warning(
            "feed: channel %s unavailable (%s); retrying batch %s in %.0f s",
            batch.channel_id,
            exc.reason,
            batch.id,
            delay,
        )
        await self.db.write(_mark_retry(batch, exc, retry_at, to_iso(now)))
        return False

    async def _edit(self, sender: Sender, edit: Edit) -> bool:
        """Edit a posted message with a newer version of one of its events; True when the
        channel may go on (edited, refused alone, or the message was deleted and the version
        will be posted)."""
        try:
            await sender.edit(edit.channel_id, edit.message_id, edit.payload)
        except Exception as raised:
            exc = self._classify(raised, edit)
            now = self.clock.now()
            if exc.failure == "message_gone":
                log.info(
                    "feed: message %s in channel %s was deleted; posting the update anew",
                    edit.message_id,
                    edit.channel_id,
                )
                await self.db.write(_mark_edit_gone(edit))
                return True
            if exc.failure == "invalid":
                log.warning(
                    "feed: Discord refused an update of message %s (%s)",
                    edit.message_id,
                    exc.reason,
                )
                await self.db.write(_mark_edit_invalid(edit, exc, to_iso(now)))
                return True
            if exc.failure == "refused" or edit.probe:
                await self._pause(edit, exc)
                return False
            retry_at = to_iso(now + timedelta(seconds=self._backoff(edit.attempts)))
            log.warning(
                "feed: editing message %s in channel %s failed (%s); retrying",
                edit.message_id,
                edit.channel_id,
                exc.reason,
            )
            await self.db.write(_mark_edit_retry(edit, exc, retry_at, to_iso(now)))
            return False
        await self.db.write(_mark_edited(edit, to_iso(self.clock.now())))
        if edit.probe:
            log.info("feed: channel %s takes messages again; posting resumes", edit.channel_id)
        self.edited_messages += 1
        return True
