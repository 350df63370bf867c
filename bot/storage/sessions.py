"""Play sessions in SQLite (start, end, duration), per guild, source, player and server. The
functions run inside the caller's transaction.

A session's active time is its duration less its idle time: away-from-keyboard spans a game
server reports (``SessionAway``) and the idle time presence measures. A session a server
restart leaves open (its leave never comes) is closed when the player joins that server again,
at the last activity seen in it (``SessionSeen``, ``SessionAway``): what was active until then
counts, the silent gap after it does not."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

from bot.clock import from_iso, to_iso
from connectors.base import SessionAway, SessionEnd, SessionSeen, SessionStart

_OPEN = (
    "guild_id = ? AND source = ? AND player_id = ? AND server_id = ? AND ended_at IS NULL"
    " AND closed_reason IS NULL"
)


def _span(start: str | None, end: str | None) -> int:
    if not start or not end or end <= start:
        return 0
    return int((from_iso(end) - from_iso(start)).total_seconds())


def start_session(
    conn: sqlite3.Connection, guild_id: int, source: str, effect: SessionStart
) -> tuple[int, int, datetime]:
    """A new open session. An earlier one still open on that server is closed as superseded,
    at its last activity when one was seen (a server restart left it open): returns the active
    and away seconds that adds to playtime (0 when nothing but its join was seen) and when it
    ended."""
    credit, away_credit, last = 0, 0, effect.at
    for session_id, started, seen, away, idle in conn.execute(
        "SELECT id, started_at, last_seen_at, away_since, idle_seconds FROM sessions"
        f" WHERE {_OPEN}",
        (guild_id, source, effect.player_id, effect.server_id),
    ).fetchall():
        if seen is None or seen > to_iso(effect.at):
            conn.execute(
                "UPDATE sessions SET closed_reason = 'superseded' WHERE id = ?", (session_id,)
            )
            continue
        duration = _span(started, seen)
        idle = min(duration, (idle or 0) + _span(away, seen))
        conn.execute(
            "UPDATE sessions SET ended_at = ?, duration_seconds = ?, idle_seconds = ?,"
            " away_since = NULL, closed_reason = 'last_activity' WHERE id = ?",
            (seen, duration, idle, session_id),
        )
        credit += duration - idle
        away_credit += idle
        last = min(last, from_iso(seen))
    conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (guild_id, source, effect.player_id, effect.server_id, effect.game_id, to_iso(effect.at)),
    )
    return credit, away_credit, last


def session_activity(
    conn: sqlite3.Connection, guild_id: int, source: str, effect: SessionSeen | SessionAway
) -> None:
    """Note activity in the player's open session on that server (none open: nothing to do);
    an away span starts, or ends and adds to the session's idle time."""
    at = to_iso(effect.at)
    row = conn.execute(
        f"SELECT id, started_at, last_seen_at, away_since FROM sessions WHERE {_OPEN}"
        " AND started_at <= ? ORDER BY started_at DESC LIMIT 1",
        (guild_id, source, effect.player_id, effect.server_id, at),
    ).fetchone()
    if row is None:
        return
    session_id, _, seen, away = row
    seen = at if seen is None or at > seen else seen
    if not isinstance(effect, SessionAway):
        conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (seen, session_id))
    elif effect.away:
        conn.execute(
            "UPDATE sessions SET last_seen_at = ?, away_since = coalesce(away_since, ?)"
            " WHERE id = ?",
            (seen, at, session_id),
        )
    else:
        conn.execute(
            "UPDATE sessions SET last_seen_at = ?, away_since = NULL,"
            " idle_seconds = idle_seconds + ? WHERE id = ?",
            (seen, _span(away, at), session_id),
        )


def end_session(
    conn: sqlite3.Connection, guild_id: int, source: str, effect: SessionEnd
) -> tuple[int, int]:
    """Close the player's open session on that server; returns the active and away seconds it
    adds to playtime: its duration minus its idle time, and that idle time (none when the
    effect says the time was credited while it ran)."""
    seconds, idle = _close(conn, guild_id, source, effect)
    if effect.credited:
        return 0, 0
    return max(0, seconds - idle), idle


def _close(
    conn: sqlite3.Connection, guild_id: int, source: str, effect: SessionEnd
) -> tuple[int, int]:
    """(duration, idle seconds) of the session the effect closes."""
    end = to_iso(effect.at)
    row = conn.execute(
        f"SELECT id, started_at, idle_seconds, away_since FROM sessions WHERE {_OPEN}"
        " AND started_at <= ? ORDER BY started_at DESC LIMIT 1",
        (guild_id, source, effect.player_id, effect.server_id, end),
    ).fetchone()
    if row is not None:
        seconds = max(0, int((effect.at - from_iso(row[1])).total_seconds()))
        # the server's away spans (an open one ends with the session) and presence's idle time
        idle = (row[2] or 0) + _span(row[3], end) + max(0, effect.idle_seconds)
        idle = min(seconds, idle)
        conn.execute(
            "UPDATE sessions SET ended_at = ?, duration_seconds = ?, idle_seconds = ?,"
            " away_since = NULL, closed_reason = 'ended' WHERE id = ?",
            (end, seconds, idle, row[0]),
        )
        return seconds, idle
    seconds = max(0, effect.duration_hint or 0)
    start = (
        to_iso(effect.at - timedelta(seconds=seconds)) if effect.duration_hint is not None else None
    )
    conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at, ended_at,"
        " duration_seconds, idle_seconds, closed_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ended')",
        (
            guild_id, source, effect.player_id, effect.server_id, effect.game_id, start, end,
            seconds, min(seconds, max(0, effect.idle_seconds)),
        ),
    )  # fmt: skip
    return seconds, min(seconds, max(0, effect.idle_seconds))
