"""Play sessions on PostgreSQL: twins of bot/storage/sessions.py (start, activity, end), each
one statement. A session's active time is its duration less its idle time; a session a server
restart left open is closed when the player joins that server again, at its last activity."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from connectors.base import SessionAway, SessionEnd, SessionSeen, SessionStart

#: The player's open sessions on that server ($1 guild, $2 source, $3 player, $4 server).
_OPEN = (
    "guild_id = $1 AND source = $2 AND player_id = $3 AND server_id = $4 AND ended_at IS NULL"
    " AND closed_reason IS NULL"
)
#: The newest open session that started by $5 (the effect's moment).
_LATEST = (
    f"SELECT id FROM sessions WHERE {_OPEN} AND started_at <= $5"
    " ORDER BY started_at DESC, id DESC LIMIT 1"
)


def _span(start: str, end: str) -> str:
    """Whole seconds from ``start`` to ``end`` (SQL), 0 when either is unknown or the end is
    not after the start (as sessions._span)."""
    return (
        f"(CASE WHEN {start} IS NULL OR {end} IS NULL OR {end} <= {start} THEN 0::bigint"
        f" ELSE floor(extract(epoch FROM {end} - {start}))::bigint END)"
    )


_START = (
    f"WITH open AS (SELECT id, started_at, last_seen_at, away_since, idle_seconds FROM sessions"
    f" WHERE {_OPEN} FOR UPDATE),"
    # Nothing but the join seen, or activity after this join: superseded, no time counted.
    " c AS (SELECT id, last_seen_at AS seen, last_seen_at IS NULL OR last_seen_at > $5"
    f" AS superseded, {_span('started_at', 'last_seen_at')} AS duration,"
    f" coalesce(idle_seconds, 0) + {_span('away_since', 'last_seen_at')} AS idle FROM open),"
    " closed AS (SELECT id, seen, superseded, duration, LEAST(duration, idle) AS idle FROM c),"
    " done AS (UPDATE sessions s SET"
    " ended_at = CASE WHEN x.superseded THEN s.ended_at ELSE x.seen END,"
    " duration_seconds = CASE WHEN x.superseded THEN s.duration_seconds ELSE x.duration END,"
    " idle_seconds = CASE WHEN x.superseded THEN s.idle_seconds ELSE x.idle END,"
    " away_since = CASE WHEN x.superseded THEN s.away_since END,"
    " closed_reason = CASE WHEN x.superseded THEN 'superseded' ELSE 'last_activity' END"
    " FROM closed x WHERE s.id = x.id),"
    " opened AS (INSERT INTO sessions (guild_id, source, player_id, server_id, game_id,"
    " started_at) VALUES ($1, $2, $3, $4, $6, $5))"
    " SELECT coalesce(sum(duration - idle) FILTER (WHERE NOT superseded), 0),"
    " coalesce(sum(idle) FILTER (WHERE NOT superseded), 0),"
    " min(seen) FILTER (WHERE NOT superseded) FROM closed"
)


async def start_session(
    conn: asyncpg.Connection, guild_id: int, source: str, effect: SessionStart
) -> tuple[int, int, datetime]:
    """A new open session. An earlier one still open on that server is closed as superseded,
    at its last activity when one was seen (a server restart left it open): returns the active
    and away seconds that adds to playtime (0 when nothing but its join was seen) and when it
    ended."""
    row = await conn.fetchrow(
        _START,
        guild_id, source, effect.player_id, effect.server_id, effect.at, effect.game_id,
    )  # fmt: skip
    last = effect.at if row[2] is None else min(effect.at, row[2])
    return int(row[0]), int(row[1]), last


_SEEN = f"UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $5) WHERE id = ({_LATEST})"
_AWAY = (
    "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $5),"
    f" away_since = coalesce(away_since, $5) WHERE id = ({_LATEST})"
)
_BACK = (
    "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $5), away_since = NULL,"
    f" idle_seconds = idle_seconds + {_span('away_since', '$5')} WHERE id = ({_LATEST})"
)


async def session_activity(
    conn: asyncpg.Connection, guild_id: int, source: str, effect: SessionSeen | SessionAway
) -> None:
    """Note activity in the player's open session on that server (none open: nothing to do);
    an away span starts, or ends and adds to the session's idle time."""
    if not isinstance(effect, SessionAway):
        sql = _SEEN
    else:
        sql = _AWAY if effect.away else _BACK
    await conn.execute(sql, guild_id, source, effect.player_id, effect.server_id, effect.at)


_END = (
    f"WITH target AS (SELECT id, started_at, idle_seconds, away_since FROM sessions WHERE {_OPEN}"
    " AND started_at <= $5 ORDER BY started_at DESC, id DESC LIMIT 1 FOR UPDATE),"
    " c AS (SELECT id, GREATEST(0, floor(extract(epoch FROM $5::timestamptz - started_at)))::bigint AS secs,"
    # the server's away spans (an open one ends with the session) and presence's idle time
    f" coalesce(idle_seconds, 0) + {_span('away_since', '$5')} + GREATEST(0, $7::bigint)"
    " AS idle FROM target),"
    " closed AS (SELECT id, secs, LEAST(secs, idle) AS idle FROM c),"
    " done AS (UPDATE sessions s SET ended_at = $5, duration_seconds = x.secs,"
    " idle_seconds = x.idle, away_since = NULL, closed_reason = 'ended' FROM closed x"
    " WHERE s.id = x.id),"
    # No start recorded: a closed session from the hint alone.
    " alone AS (INSERT INTO sessions (guild_id, source, player_id, server_id, game_id,"
    " started_at, ended_at, duration_seconds, idle_seconds, closed_reason)"
    " SELECT $1, $2, $3, $4, $6::text, $8::timestamptz, $5, $9::bigint, $10::bigint, 'ended'"
    " WHERE NOT EXISTS (SELECT 1 FROM target))"
    " SELECT secs, idle FROM closed UNION ALL SELECT $9::bigint, $10::bigint"
    " WHERE NOT EXISTS (SELECT 1 FROM target)"
)


async def end_session(
    conn: asyncpg.Connection, guild_id: int, source: str, effect: SessionEnd
) -> tuple[int, int]:
    """Close the player's open session on that server; returns the active and away seconds it
    adds to playtime: its duration minus its idle time, and that idle time (none when the
    effect says the time was credited while it ran)."""
    hinted = max(0, effect.duration_hint or 0)
    start = effect.at - timedelta(seconds=hinted) if effect.duration_hint is not None else None
    row = await conn.fetchrow(
        _END,
        guild_id, source, effect.player_id, effect.server_id, effect.at, effect.game_id,
        effect.idle_seconds, start, hinted, min(hinted, max(0, effect.idle_seconds)),
    )  # fmt: skip
    seconds, idle = int(row[0]), int(row[1])
    if effect.credited:
        return 0, 0
    return max(0, seconds - idle), idle
