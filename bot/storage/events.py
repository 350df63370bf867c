"""Raw events, activity events and their feed outbox rows in SQLite.

``insert_event`` is the one statement path by which an activity event is stored: the ingest
pipeline, the Steam sync and ``/feed test`` all end here, inside their own transaction.
"""

from __future__ import annotations

import json
import sqlite3

from bot.clock import to_iso
from connectors.base import ActivityEvent

# Built once: json.dumps with options builds a new encoder per call (twice per webhook).
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


# Event types a feed posts only when the guild turns them on (/feed events): Steam sessions
# are noisy. The connectors declare them (EventSpec.default_on=False); a test keeps the two equal.
OFF_BY_DEFAULT = frozenset({"steam.session.started", "steam.session.ended"})


def _feed_accepts(types_json: str | None, event_type: str) -> bool:
    if types_json is None:
        return event_type not in OFF_BY_DEFAULT
    try:
        enabled = json.loads(types_json)
    except ValueError:
        return True
    if event_type in enabled:
        return True
    prefix = event_type.split(".", 1)[0]
    return f"{prefix}.*" in enabled


def insert_event(
    conn: sqlite3.Connection,
    event: ActivityEvent,
    guild_id: int,
    raw_event_id: int | None,
    now_text: str,
) -> int:
    """Store an activity event and, when the guild has a feed channel that wants it, its outbox row."""
    cur = conn.execute(
        "INSERT INTO activity_events (guild_id, raw_event_id, type, source, actor_user_id,"
        " actor_external_id, actor_name, title, payload, occurred_at, external_id, created_at,"
        " update_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            guild_id,
            raw_event_id,
            event.type,
            event.source,
            event.actor_user_id,
            event.actor_external_id,
            event.actor_name,
            event.title,
            compact_json(event.payload),
            to_iso(event.occurred_at),
            event.external_id,
            now_text,
            event.update_key,
        ),
    )
    event_id = int(cur.lastrowid or 0)
    guild = conn.execute(
        "SELECT feed_channel_id, feed_event_types FROM guilds WHERE guild_id = ?", (guild_id,)
    ).fetchone()
    if guild and guild[0] and _feed_accepts(guild[1], event.type):
        conn.execute(
            "INSERT INTO feed_outbox (event_id, guild_id, channel_id, status, created_at, updated_at)"
            " VALUES (?, ?, ?, 'pending', ?, ?)",
            (event_id, guild_id, guild[0], now_text, now_text),
        )
        if event.update_key is not None:
            # An earlier version still waiting to be posted is replaced by this one (a version
            # already in a fixed batch is posted, and this one then edits its message).
            conn.execute(
                "UPDATE feed_outbox SET status = 'superseded', updated_at = ?"
                " WHERE channel_id = ? AND status = 'pending' AND batch_id IS NULL"
                " AND event_id IN (SELECT id FROM activity_events"
                " WHERE guild_id = ? AND update_key = ? AND id < ?)",
                (now_text, guild[0], guild_id, event.update_key, event_id),
            )
    return event_id
