"""Play sessions in SQLite (start, end, duration), per guild, source, player and server. The
functions run inside the caller's transaction."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from bot.clock import from_iso, to_iso
from connectors.base import SessionEnd, SessionStart


def start_session(
    conn: sqlite3.Connection, guild_id: int, source: str, effect: SessionStart
) -> None:
    """A new open session; an earlier one still open on that server is closed as superseded."""
    close_open_sessions(conn, guild_id, source, effect.player_id, effect.server_id, "superseded")
    conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (guild_id, source, effect.player_id, effect.server_id, effect.game_id, to_iso(effect.at)),
    )


def close_open_sessions(
    conn: sqlite3.Connection, guild_id: int, source: str, player: str, server: str, reason: str
) -> None:
    # Usually there is none: a read is cheaper than an UPDATE that matches nothing.
    open_ids = conn.execute(
        "SELECT id FROM sessions WHERE guild_id = ? AND source = ? AND player_id = ?"
        " AND server_id = ? AND ended_at IS NULL AND closed_reason IS NULL",
        (guild_id, source, player, server),
    ).fetchall()
    if open_ids:
        conn.executemany(
            "UPDATE sessions SET closed_reason = ? WHERE id = ?", [(reason, i) for (i,) in open_ids]
        )


def end_session(conn: sqlite3.Connection, guild_id: int, source: str, effect: SessionEnd) -> int:
    """Close the player's open session on that server; returns the seconds it adds to
    playtime: its duration minus its idle time (none when the effect says the time was
    credited while it ran)."""
    seconds = _close(conn, guild_id, source, effect)
    if effect.credited:
        return 0
    return max(0, seconds - max(0, effect.idle_seconds))


def _close(conn: sqlite3.Connection, guild_id: int, source: str, effect: SessionEnd) -> int:
    end = to_iso(effect.at)
    row = conn.execute(
        "SELECT id, started_at FROM sessions WHERE guild_id = ? AND source = ? AND player_id = ?"
        " AND server_id = ? AND ended_at IS NULL AND closed_reason IS NULL AND started_at <= ?"
        " ORDER BY started_at DESC LIMIT 1",
        (guild_id, source, effect.player_id, effect.server_id, end),
    ).fetchone()
    if row is not None:
        seconds = max(0, int((effect.at - from_iso(row[1])).total_seconds()))
        conn.execute(
            "UPDATE sessions SET ended_at = ?, duration_seconds = ?, idle_seconds = ?,"
            " closed_reason = 'ended' WHERE id = ?",
            (end, seconds, min(seconds, max(0, effect.idle_seconds)), row[0]),
        )
        return seconds
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
    return seconds
