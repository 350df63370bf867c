"""The one ingest path every source calls (DESIGN.md, "Data flow").

``Pipeline.ingest(source, guild_id, raw)`` stores the raw event under a unique
``(guild_id, sha256(dedupe_key))``, applies the connector's playtime/session effects, normalizes
it into at most one activity event and queues that event for the guild's feed channel, all in
one transaction of the group-committing writer. A duplicate stops at the first INSERT and
changes nothing.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.clock import Clock, from_iso, to_iso
from bot.metrics import Metrics
from bot.storage.engine import Database
from bot.storage.events import compact_json, insert_event
from bot.storage.records import GLOBAL_SCOPE
from connectors.base import (
    ActivityEvent,
    Connector,
    Effect,
    IgnoredDelivery,
    LinkInfo,
    SchemaError,
    SessionEnd,
    SessionStart,
    SetPlaytime,
    WebhookContext,
    sha256_hex,
)
from connectors.registry import Registry

log = logging.getLogger(__name__)

# The web layer talks to the core only; these connector types are part of the core's interface.
__all__ = ["IgnoredDelivery", "IngestResult", "Pipeline", "SchemaError", "WebhookContext"]

DEFAULT_MILESTONE_HOURS = (10, 50, 100, 500, 1000)  # [general] milestone_hours
# Where a player's playtime for a game may be known, besides the source reporting now: the
# guild's own webhook sources and Steam's public value. A Steam ID is the same player in
# BattleMetrics and Steam; a Minecraft UUID appears in one source only.
_MILESTONE_SOURCES = (("guild", "battlemetrics"), ("guild", "minecraft"), ("global", "steam"))
CORE_EVENT_TYPES = ("playtime.milestone",)


@dataclass
class IngestResult:
    status: Literal["accepted", "duplicate"]
    raw_event_id: int | None = None
    event_ids: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PlaytimeChange:
    old: int | None
    new: int | None
    applied: bool


# --------------------------------------------------------------------------- SQL helpers
# These run on the writer thread, inside the caller's transaction.


def find_link(
    conn: sqlite3.Connection, guild_id: int, source: str | None, external_id: str | None
) -> LinkInfo | None:
    if not source or not external_id:
        return None
    row = conn.execute(
        "SELECT discord_user_id, external_id, display_name FROM account_links"
        " WHERE guild_id = ? AND source = ? AND external_id = ?",
        (guild_id, source, external_id),
    ).fetchone()
    return LinkInfo(row[0], row[1], row[2]) if row else None


def record_playtime(
    conn: sqlite3.Connection,
    *,
    scope: int,
    source: str,
    player_id: str,
    game_id: str,
    seconds: int | None,
    source_time: datetime,
    now_text: str,
    status: str = "ok",
) -> PlaytimeChange:
    """Store a measured *total*. An older measurement never overwrites a newer one; an increase
    over a known value is sampled for charts and period leaderboards."""
    key = (scope, source, player_id, game_id)
    row = conn.execute(
        "SELECT seconds, source_time FROM playtime"
        " WHERE scope_guild_id = ? AND source = ? AND player_id = ? AND game_id = ?",
        key,
    ).fetchone()
    when = to_iso(source_time)
    old = row[0] if row else None
    if row is not None and row[1] is not None and row[1] > when:
        return PlaytimeChange(old, old, applied=False)
    conn.execute(
        "INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds, status,"
        " source_time, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (scope_guild_id, source, player_id, game_id) DO UPDATE SET"
        " seconds = excluded.seconds, status = excluded.status,"
        " source_time = excluded.source_time, updated_at = excluded.updated_at",
        (*key, seconds, status, when, now_text, now_text),
    )
    if old is not None and seconds is not None and seconds > old:
        _sample(conn, key, when, seconds - old, seconds)
    return PlaytimeChange(old, seconds, applied=True)


def add_playtime(
    conn: sqlite3.Connection,
    *,
    scope: int,
    source: str,
    player_id: str,
    game_id: str,
    delta: int,
    at: datetime,
    now_text: str,
) -> PlaytimeChange:
    key = (scope, source, player_id, game_id)
    row = conn.execute(
        "INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds, status,"
        " source_time, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'ok', ?, ?, ?)"
        " ON CONFLICT (scope_guild_id, source, player_id, game_id) DO UPDATE SET"
        " seconds = coalesce(playtime.seconds, 0) + excluded.seconds,"
        " source_time = max(coalesce(playtime.source_time, ''), excluded.source_time),"
        " updated_at = excluded.updated_at"
        " RETURNING seconds",
        (*key, delta, to_iso(at), now_text, now_text),
    ).fetchone()
    total = int(row[0])
    if delta > 0:
        _sample(conn, key, to_iso(at), delta, total)
    return PlaytimeChange(total - delta, total, applied=True)


def _sample(
    conn: sqlite3.Connection, key: tuple[int, str, str, str], at: str, delta: int, total: int
) -> None:
    conn.execute(
        "INSERT INTO playtime_samples (scope_guild_id, source, player_id, game_id, at,"
        " delta_seconds, total_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*key, at, delta, total),
    )


def reached_milestones(
    conn: sqlite3.Connection,
    hours: tuple[int, ...],
    *,
    guild_id: int,
    source: str,
    player_id: str,
    game_id: str,
    old: int | None,
    new: int | None,
    at: datetime,
) -> list[int]:
    """Milestones (hours) the player's best-known total for the game just reached in the guild,
    each at most once per guild whatever source reports it.

    Only a change that crosses a threshold by itself can raise the best total past it, so the
    other sources are read only then (rarely). A source's first report of a player (old
    unknown) is a silent baseline: a veteran's first report must not flood the feed."""
    if old is None or new is None or new <= old:
        return []
    crossed = [h for h in hours if old < h * 3600 <= new]
    if not crossed:
        return []
    others = 0
    for scope, other in _MILESTONE_SOURCES:
        if other == source:
            continue
        row = conn.execute(
            "SELECT seconds FROM playtime WHERE scope_guild_id = ? AND source = ?"
            " AND player_id = ? AND game_id = ?",
            (guild_id if scope == "guild" else GLOBAL_SCOPE, other, player_id, game_id),
        ).fetchone()
        if row is not None and row[0] is not None:
            others = max(others, int(row[0]))
    return [
        h
        for h in crossed
        if others < h * 3600  # another source had passed it already
        and conn.execute(
            "INSERT OR IGNORE INTO milestones (scope_guild_id, source, player_id, game_id, threshold,"
            " reached_at) VALUES (?, 'best', ?, ?, ?, ?)",
            (guild_id, player_id, game_id, h, to_iso(at)),
        ).rowcount
    ]


def milestone_event(
    conn: sqlite3.Connection,
    *,
    guild_id: int,
    source: str,
    player_id: str,
    game_id: str,
    hours: int,
    total: int,
    at: datetime,
    name: str | None,
    user_id: int | None,
) -> ActivityEvent:
    row = conn.execute("SELECT name FROM games WHERE game_id = ?", (game_id,)).fetchone()
    game = row[0] if row else None
    who = name or player_id
    return ActivityEvent(
        type="playtime.milestone",
        title=f"{who} reached {hours} h in {game}" if game else f"{who} reached {hours} h",
        occurred_at=at,
        source=source,
        payload={
            "player_id": player_id,
            "game_id": game_id,
            "game_name": game,
            "hours": hours,
            "total_seconds": total,
        },
        guild_id=guild_id,
        actor_user_id=user_id,
        actor_external_id=player_id,
        actor_name=name,
        external_id=f"{player_id}:{game_id}:{hours}",
    )


# --------------------------------------------------------------------------- pipeline


class Pipeline:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        clock: Clock,
        metrics: Metrics,
        on_event: Callable[[], None] | None = None,
        milestone_hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS,
    ) -> None:
        self.milestone_hours = milestone_hours

        self.db = db
        self.registry = registry
        self.clock = clock
        self.metrics = metrics
        self.on_event = on_event  # wakes the feed poster in-process

    def parse_webhook(self, source: str, body: Any, context: WebhookContext) -> dict[str, Any]:
        """Validate a decoded webhook body with the source's connector (SchemaError -> 422,
        IgnoredDelivery -> 202, counted here)."""
        try:
            return self.registry.get(source).parse_webhook(body, context)
        except IgnoredDelivery:
            self.count_ignored(source)
            raise

    async def already_ingested(self, source: str, guild_id: int, raw: Mapping[str, Any]) -> bool:
        """Whether a raw event with this dedupe key was stored for the guild."""
        dedupe_hash = sha256_hex(self.registry.get(source).dedupe_key(raw))
        row = await self.db.fetchone(
            "SELECT 1 FROM raw_events WHERE guild_id = ? AND dedupe_hash = ?",
            (guild_id, dedupe_hash),
        )
        return row is not None

    def count_ignored(self, source: str) -> None:
        self.metrics.inc("questlog_ingest_total", source=source, result="ignored")

    async def ingest(
        self,
        source: str,
        guild_id: int,
        raw: Mapping[str, Any],
        *,
        endpoint_id: int | None = None,
        received_at: datetime | None = None,
    ) -> IngestResult:
        """``received_at``: when the web layer got the delivery (default: now)."""
        connector = self.registry.get(source)
        dedupe_hash = sha256_hex(connector.dedupe_key(raw))
        effects = connector.effects(raw)
        payload = compact_json(raw)
        now_text = to_iso(received_at or self.clock.now())

        def op(conn: sqlite3.Connection) -> IngestResult:
            cur = conn.execute(
                "INSERT INTO raw_events (guild_id, source, endpoint_id, dedupe_hash, payload, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, dedupe_hash) DO NOTHING",
                (guild_id, source, endpoint_id, dedupe_hash, payload, now_text),
            )
            if cur.rowcount == 0:
                return IngestResult("duplicate")
            raw_id = int(cur.lastrowid or 0)
            return _apply(
                conn, connector, guild_id, raw, raw_id, effects, now_text, self.milestone_hours
            )

        result = await self.db.write(op)
        self.metrics.inc("questlog_ingest_total", source=source, result=result.status)
        if result.event_ids and self.on_event is not None:
            self.on_event()
        return result


def _apply(
    conn: sqlite3.Connection,
    connector: Connector,
    guild_id: int,
    raw: Mapping[str, Any],
    raw_id: int,
    effects: list[Effect],
    now_text: str,
    milestone_hours: tuple[int, ...] = DEFAULT_MILESTONE_HOURS,
) -> IngestResult:
    derived: dict[str, Any] = {}
    milestones: list[tuple[str, str, int, int, datetime]] = []
    for effect in effects:
        if isinstance(effect, SetPlaytime):
            change = record_playtime(
                conn,
                scope=guild_id,
                source=connector.key,
                player_id=effect.player_id,
                game_id=effect.game_id,
                seconds=effect.seconds,
                source_time=effect.source_time,
                now_text=now_text,
            )
            derived["playtime_updated"] = change.applied
            if change.applied:
                milestones += _reached(
                    conn,
                    milestone_hours,
                    guild_id,
                    connector.key,
                    effect,
                    change,
                    effect.source_time,
                )
        elif isinstance(effect, SessionStart):
            _close_open_sessions(
                conn, guild_id, connector.key, effect.player_id, effect.server_id, "superseded"
            )
            conn.execute(
                "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    guild_id,
                    connector.key,
                    effect.player_id,
                    effect.server_id,
                    effect.game_id,
                    to_iso(effect.at),
                ),
            )
        elif isinstance(effect, SessionEnd):
            seconds = _end_session(conn, guild_id, connector.key, effect)
            derived["duration_seconds"] = seconds
            if seconds:
                change = add_playtime(
                    conn,
                    scope=guild_id,
                    source=connector.key,
                    player_id=effect.player_id,
                    game_id=effect.game_id,
                    delta=seconds,
                    at=effect.at,
                    now_text=now_text,
                )
                milestones += _reached(
                    conn, milestone_hours, guild_id, connector.key, effect, change, effect.at
                )

    result = IngestResult("accepted", raw_event_id=raw_id, details=derived)
    if connector.announces:
        link = find_link(conn, guild_id, connector.link_source, connector.player_id(raw))
        event = connector.normalize({**raw, **derived}, link)
        if event is not None:
            result.event_ids.append(insert_event(conn, event, guild_id, raw_id, now_text))
    for player, game, hours, total, at in milestones:
        who = find_link(conn, guild_id, connector.link_source, player)
        name = raw.get("player_name") or raw.get("name") or (who.display_name if who else None)
        milestone = milestone_event(
            conn,
            guild_id=guild_id,
            source=connector.key,
            player_id=player,
            game_id=game,
            hours=hours,
            total=total,
            at=at,
            name=name,
            user_id=who.discord_user_id if who else None,
        )
        result.event_ids.append(insert_event(conn, milestone, guild_id, raw_id, now_text))
    return result


def _reached(
    conn: sqlite3.Connection,
    milestone_hours: tuple[int, ...],
    guild_id: int,
    source: str,
    effect: SetPlaytime | SessionEnd,
    change: PlaytimeChange,
    at: datetime,
) -> list[tuple[str, str, int, int, datetime]]:
    """(player, game, hours, total, at) for each milestone this change reached."""
    return [
        (effect.player_id, effect.game_id, hours, change.new or 0, at)
        for hours in reached_milestones(
            conn,
            milestone_hours,
            guild_id=guild_id,
            source=source,
            player_id=effect.player_id,
            game_id=effect.game_id,
            old=change.old,
            new=change.new,
            at=at,
        )
    ]


def _close_open_sessions(
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


def _end_session(conn: sqlite3.Connection, guild_id: int, source: str, effect: SessionEnd) -> int:
    """Close the player's open session on that server; returns the seconds it lasted."""
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
            "UPDATE sessions SET ended_at = ?, duration_seconds = ?, closed_reason = 'ended' WHERE id = ?",
            (end, seconds, row[0]),
        )
        return seconds
    seconds = max(0, effect.duration_hint or 0)
    start = (
        to_iso(effect.at - timedelta(seconds=seconds)) if effect.duration_hint is not None else None
    )
    conn.execute(
        "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at, ended_at,"
        " duration_seconds, closed_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'ended')",
        (guild_id, source, effect.player_id, effect.server_id, effect.game_id, start, end, seconds),
    )
    return seconds
