"""The feed outbox in SQLite: channels (and their pauses), batches and the events waiting for
them, as the feed poster (bot/feed/poster.py) works through them.

Every function here runs inside one transaction of the group-committing writer (or on the
reader, for the read-only ones); ``SqliteFeed`` is the async face the rest of the code uses.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from bot.clock import from_iso, to_iso
from bot.storage.engine import Database
from bot.storage.interface import Composer, ProbeDelay, Refusal
from bot.storage.records import Batch, Edit, FeedChange, FeedFailure, FeedStatus

CANDIDATES = 10  # events read per batch (a message holds at most 10 embeds)
FAILURES_SHOWN = 5


def due_channels(conn: sqlite3.Connection, now: str) -> list[int]:
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


def _event_of(row: sqlite3.Row | tuple[Any, ...], rendered_from: int) -> dict[str, Any]:
    return {
        "type": row[2],
        "title": row[3],
        "payload": row[4],
        "actor_user_id": row[5],
        "actor_external_id": row[6],
        "actor_name": row[7],
        "occurred_at": row[8],
        # Stored before titles were written in the feed's language: the stored title stays.
        "stored_title": row[12] < rendered_from,
    }


def _rendered_from(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'titles_rendered_from'").fetchone()
    return int(row[0]) if row else 0


def _edit_target(
    conn: sqlite3.Connection,
    channel_id: int,
    guild_id: int,
    update_key: str,
    outbox_id: int,
    embed: dict[str, Any],
    composer: Composer,
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
    if not composer.fits(embeds):
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


def next_work(
    conn: sqlite3.Connection, channel_id: int, now: str, composer: Composer
) -> Batch | Edit | None:
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
        " e.actor_name, e.occurred_at, e.update_key, o.attempts, o.next_attempt_at, e.id"
        " FROM feed_outbox o JOIN activity_events e ON e.id = o.event_id"
        " WHERE o.channel_id = ? AND o.status = 'pending' AND o.batch_id IS NULL"
        " ORDER BY o.id LIMIT ?",
        (channel_id, CANDIDATES),
    ).fetchall()
    if not rows:
        return None
    embeds: list[tuple[int, dict[str, Any]]] = []
    rendered_from = _rendered_from(conn)
    language = feed_language(conn, rows[0][1])  # one channel holds one guild's feed
    for position, row in enumerate(rows):
        embed = composer.embed(_event_of(row, rendered_from), language)
        target = (
            _edit_target(conn, channel_id, row[1], row[9], row[0], embed, composer)
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
    return _store_batch(conn, rows[0][1], channel_id, composer.pack(embeds), now, probe=probe)


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


def mark_sent(conn: sqlite3.Connection, batch: Batch, message_id: int, now: str) -> None:
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


def mark_retry(
    conn: sqlite3.Connection, batch: Batch, reason: str, maybe_posted: bool, retry_at: str, now: str
) -> None:
    conn.execute(
        "UPDATE feed_batches SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
        " maybe_posted = max(maybe_posted, ?) WHERE id = ?",
        (reason, retry_at, int(maybe_posted), batch.id),
    )
    conn.execute(
        "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
        " updated_at = ? WHERE batch_id = ?",
        (reason, retry_at, now, batch.id),
    )


def pause(
    conn: sqlite3.Connection,
    work: Batch | Edit,
    refusal: Refusal,
    now: str,
    delay: ProbeDelay,
    retry_at: str,
) -> tuple[bool, int | None, str | None]:
    """Pause the work's channel (or keep it paused after a failed probe): its events stay
    pending, unchanged, and the next probe is scheduled. ``delay(code, probes)`` gives the
    seconds until the next probe (None: not probed). A probe that failed without a refusal (a
    5xx) of a channel an admin resumed meanwhile is an ordinary retry at ``retry_at`` instead.
    Returns (paused, code, next probe time)."""
    state = conn.execute(
        "SELECT status, code, reason, probes FROM feed_channels WHERE channel_id = ?",
        (work.channel_id,),
    ).fetchone()
    paused = state is not None and state[0] == "paused"
    if not refusal.refused and not paused:
        if isinstance(work, Batch):
            mark_retry(conn, work, refusal.reason, refusal.maybe_posted, retry_at, now)
        else:
            mark_edit_retry(conn, work, refusal.reason, retry_at, now)
        return False, None, None
    if refusal.refused:
        code, reason = refusal.code, refusal.reason
    else:  # a probe that failed some other way (a 5xx): still paused for the old reason
        code, reason = state[1], state[2]
    probes = state[3] + 1 if paused else 0
    seconds = delay(code, probes)
    next_probe = to_iso(from_iso(now) + timedelta(seconds=seconds)) if seconds is not None else None
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
            (refusal.reason, int(refusal.maybe_posted), work.id),
        )
        conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = NULL, updated_at = ? WHERE batch_id = ?",
            (refusal.reason, now, work.id),
        )
    else:
        conn.execute(
            "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = NULL, updated_at = ? WHERE id = ?",
            (refusal.reason, now, work.outbox_id),
        )
    return True, code, next_probe


def isolate(
    conn: sqlite3.Connection, batch: Batch, refused: Mapping[int, str], reason: str, now: str
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
    for index, message in failed.items():
        conn.execute(
            "UPDATE feed_outbox SET status = 'failed', attempts = attempts + 1, last_error = ?,"
            " batch_id = NULL, embed_index = NULL, updated_at = ? WHERE id = ?",
            (f"Discord refused this event's embed: {message}", now, batch.keys[index]),
        )
    groups = [g for g in groups if g]
    conn.execute(
        "UPDATE feed_batches SET status = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
        ("replaced" if groups else "failed", reason, batch.id),
    )
    for group in groups:
        _store_batch(
            conn, batch.guild_id, batch.channel_id, [(batch.keys[i], embeds[i]) for i in group], now
        )
    return [batch.keys[i] for i in failed]


def mark_edited(conn: sqlite3.Connection, edit: Edit, now: str) -> None:
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


def mark_edit_retry(
    conn: sqlite3.Connection, edit: Edit, reason: str, retry_at: str, now: str
) -> None:
    conn.execute(
        "UPDATE feed_outbox SET attempts = attempts + 1, last_error = ?,"
        " next_attempt_at = ?, updated_at = ? WHERE id = ?",
        (reason, retry_at, now, edit.outbox_id),
    )


def mark_edit_gone(conn: sqlite3.Connection, edit: Edit) -> None:
    # Someone deleted the message: nothing can be edited in it any more, and this version
    # is posted as a new message next.
    conn.execute(
        "UPDATE feed_outbox SET embed_index = NULL WHERE channel_id = ? AND message_id = ?",
        (edit.channel_id, edit.message_id),
    )


def mark_edit_refused(conn: sqlite3.Connection, edit: Edit, message: str, now: str) -> None:
    # The posted message keeps its earlier version; only this one fails.
    conn.execute(
        "UPDATE feed_outbox SET status = 'failed', attempts = attempts + 1,"
        " last_error = ?, updated_at = ? WHERE id = ?",
        (f"Discord refused this event's embed: {message}", now, edit.outbox_id),
    )


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


TEST_EVENT = "feed.test"


def feed_accepts(types_json: str | None, event_type: str, off_by_default: frozenset[str]) -> bool:
    """Whether a guild's feed (its event types setting) posts events of ``event_type``. The
    sample of ``/feed test`` always goes: an admin asked for it."""
    if event_type == TEST_EVENT:
        return True
    if types_json is None:
        return event_type not in off_by_default
    try:
        enabled = json.loads(types_json)
    except ValueError:
        return True
    if event_type in enabled:
        return True
    prefix = event_type.split(".", 1)[0]
    return f"{prefix}.*" in enabled


BACKFILL_MAX_EVENTS = 500
BACKFILL_MAX_HOURS = 72


def _never_queued(
    conn: sqlite3.Connection, guild_id: int, since: str | None, off_by_default: frozenset[str]
) -> list[int]:
    """The guild's stored events (since ``since``) that the feed never queued and would post
    now, oldest first; of the versions of one updated item (a played-today line) the latest."""
    types = conn.execute(
        "SELECT feed_event_types FROM guilds WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    rows = conn.execute(
        "SELECT id, type FROM activity_events e WHERE guild_id = ?"
        " AND occurred_at >= coalesce(?, '') AND NOT EXISTS"
        " (SELECT 1 FROM feed_outbox o WHERE o.event_id = e.id)"
        " AND (update_key IS NULL OR NOT EXISTS (SELECT 1 FROM activity_events n"
        " WHERE n.guild_id = e.guild_id AND n.update_key = e.update_key AND n.id > e.id))"
        " ORDER BY occurred_at, id",
        (guild_id, since),
    ).fetchall()
    accepted = types[0] if types else None
    return [
        event_id
        for event_id, event_type in rows
        if feed_accepts(accepted, event_type, off_by_default)
    ]


def set_feed_channel(
    conn: sqlite3.Connection,
    guild_id: int,
    channel_id: int,
    now_text: str,
    *,
    max_age: int | None = None,
    backfill_since: str | None = None,
    off_by_default: frozenset[str] = frozenset(),
) -> FeedChange:
    """Post the guild's events to ``channel_id`` from now on. A paused channel resumes at once
    (and what waits for its retry time is tried now); events waiting for another channel move
    here, ahead of anything new. Events stored before the guild had a feed were never queued:
    with ``backfill_since`` those that happened since then (at most BACKFILL_MAX_EVENTS, the
    newest) are queued now, in order, once; the others are counted in ``not_posted``."""
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
    backfilled = 0
    if backfill_since is not None:
        wanted = _never_queued(conn, guild_id, backfill_since, off_by_default)
        wanted = wanted[-BACKFILL_MAX_EVENTS:]
        conn.executemany(
            "INSERT INTO feed_outbox (event_id, guild_id, channel_id, status, created_at,"
            " updated_at) VALUES (?, ?, ?, 'pending', ?, ?)",
            [(event_id, guild_id, channel_id, now_text, now_text) for event_id in wanted],
        )
        backfilled = len(wanted)
    not_posted = len(_never_queued(conn, guild_id, None, off_by_default))
    return FeedChange(row[0] if row else None, resumed, moved, maybe_posted, backfilled, not_posted)


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


def feed_language(conn: sqlite3.Connection, guild_id: int) -> tuple[str | None, str | None]:
    """(the feed language chosen with /feed language or None, the Discord server's primary
    language as the bot last saw it or None)."""
    row = conn.execute(
        "SELECT feed_language, preferred_locale FROM guilds WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def set_feed_language(
    conn: sqlite3.Connection, guild_id: int, language: str | None, now_text: str
) -> None:
    conn.execute(
        "INSERT INTO guilds (guild_id, feed_language, created_at, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (guild_id) DO UPDATE SET feed_language = excluded.feed_language,"
        " updated_at = excluded.updated_at",
        (guild_id, language, now_text, now_text),
    )


def note_locale(conn: sqlite3.Connection, guild_id: int, locale: str, now_text: str) -> bool:
    """Remember the Discord server's primary language; True when it changed."""
    return (
        conn.execute(
            "INSERT INTO guilds (guild_id, preferred_locale, created_at, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET"
            " preferred_locale = excluded.preferred_locale, updated_at = excluded.updated_at"
            " WHERE guilds.preferred_locale IS NOT excluded.preferred_locale",
            (guild_id, locale, now_text, now_text),
        ).rowcount
        > 0
    )


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
        pause_detail=state[2] if paused else None,
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


class SqliteFeed:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def due_channels(self, now: str) -> list[int]:
        return await self._db.read(lambda c: due_channels(c, now))

    async def next_work(self, channel_id: int, now: str, composer: Composer) -> Batch | Edit | None:
        return await self._db.write(lambda c: next_work(c, channel_id, now, composer))

    async def renew(self, channel_id: int, now: str) -> bool:
        """One server per SQLite file: nothing to share a channel with."""
        return True

    async def mark_sent(self, batch: Batch, message_id: int, now: str) -> None:
        await self._db.write(lambda c: mark_sent(c, batch, message_id, now))

    async def mark_retry(
        self, batch: Batch, reason: str, maybe_posted: bool, retry_at: str, now: str
    ) -> None:
        await self._db.write(lambda c: mark_retry(c, batch, reason, maybe_posted, retry_at, now))

    async def pause(
        self, work: Batch | Edit, refusal: Refusal, now: str, delay: ProbeDelay, retry_at: str
    ) -> tuple[bool, int | None, str | None]:
        return await self._db.write(lambda c: pause(c, work, refusal, now, delay, retry_at))

    async def isolate(
        self, batch: Batch, refused: Mapping[int, str], reason: str, now: str
    ) -> list[int]:
        return await self._db.write(lambda c: isolate(c, batch, refused, reason, now))

    async def mark_edited(self, edit: Edit, now: str) -> None:
        await self._db.write(lambda c: mark_edited(c, edit, now))

    async def mark_edit_retry(self, edit: Edit, reason: str, retry_at: str, now: str) -> None:
        await self._db.write(lambda c: mark_edit_retry(c, edit, reason, retry_at, now))

    async def mark_edit_gone(self, edit: Edit) -> None:
        await self._db.write(lambda c: mark_edit_gone(c, edit))

    async def mark_edit_refused(self, edit: Edit, message: str, now: str) -> None:
        await self._db.write(lambda c: mark_edit_refused(c, edit, message, now))

    async def expire_old(self, now: str) -> int:
        return await self._db.write(lambda c: expire_old(c, now))

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
        return await self._db.write(
            lambda c: set_feed_channel(
                c, guild_id, channel_id, now, max_age=max_age,
                backfill_since=backfill_since, off_by_default=off_by_default,
            )
        )  # fmt: skip

    async def event_types(self, guild_id: int) -> list[str] | None:
        return await self._db.read(lambda c: feed_event_types(c, guild_id))

    async def set_event_types(self, guild_id: int, types: list[str] | None, now: str) -> None:
        await self._db.write(lambda c: set_feed_event_types(c, guild_id, types, now))

    async def language(self, guild_id: int) -> tuple[str | None, str | None]:
        return await self._db.read(lambda c: feed_language(c, guild_id))

    async def set_language(self, guild_id: int, language: str | None, now: str) -> None:
        await self._db.write(lambda c: set_feed_language(c, guild_id, language, now))

    async def note_locale(self, guild_id: int, locale: str, now: str) -> bool:
        return await self._db.write(lambda c: note_locale(c, guild_id, locale, now))

    async def channel(self, guild_id: int) -> int | None:
        """The guild's feed channel, None when it has none."""
        row = await self._db.fetchone(
            "SELECT feed_channel_id FROM guilds WHERE guild_id = ?", (guild_id,)
        )
        return row[0] if row and row[0] else None

    async def status(self, guild_id: int) -> FeedStatus:
        return await self._db.read(lambda c: feed_status(c, guild_id))

    async def counts(self) -> dict[str, int]:
        """Pending and failed events and paused channels, over every guild (for /metrics and
        questlog status)."""

        def op(conn: sqlite3.Connection) -> dict[str, int]:
            found = dict(
                conn.execute(
                    "SELECT name, rows FROM row_counts"
                    " WHERE name IN ('feed_outbox:pending', 'feed_outbox:failed')"
                ).fetchall()
            )
            return {
                "pending": found.get("feed_outbox:pending", 0),
                "failed": found.get("feed_outbox:failed", 0),
                "paused_channels": feed_paused_channels(conn),
            }

        return await self._db.read(op)
