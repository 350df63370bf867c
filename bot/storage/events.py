"""Raw events, activity events and their feed outbox rows in SQLite.

``ingest`` is the one ingest path: the only code that stores activity events. Every source
ends here, pushed (webhooks) or polled (the Steam sync's observations, inside the sync's own
transaction), and so do ``/feed test`` and the milestones a change reaches.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.clock import from_iso, to_iso
from bot.storage.consoles import announce_in_game
from bot.storage.engine import Database
from bot.storage.interface import IngestPolicy
from bot.storage.links import find_link
from bot.storage.outbox import feed_accepts
from bot.storage.playtime import (
    LINK_COLLECTS,
    LINK_COUNTS,
    add_playtime,
    game_name,
    reached_milestones,
    record_playtime,
)
from bot.storage.records import Delivery, IngestResult, PlaytimeChange
from bot.storage.rewards import check_players, may_have_rewards, members_of, reward_events
from bot.storage.sessions import end_session, session_activity, start_session
from connectors.base import (
    ActivityEvent,
    Connector,
    Effect,
    PlaytimeAdded,
    PlaytimeGrew,
    SessionAway,
    SessionEnd,
    SessionSeen,
    SessionStart,
    SetPlaytime,
    sha256_hex,
)

#: The payload kept for a raw event that is withheld or forgotten (issue 16), as pruning blanks
#: old ones: only its dedupe hash stays, so a retried delivery stays a duplicate and nothing
#: about the player comes back.
WITHHELD_PAYLOAD = ""

# Built once: json.dumps with options builds a new encoder per call (twice per webhook).
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dedupe_hash(connector: Connector, raw: Mapping[str, Any]) -> str:
    """The identity a raw event is stored under, unique per guild: sha256 of the connector's
    ``dedupe_key``, led by the hour of its ``dedupe_time`` when it has one
    (``2026-12-02T10~<sha256>``).

    A bare hash lands anywhere in the unique index, so on a large database every new event
    dirtied its own index page (about 1.4 of the 1.7 WAL pages an event wrote, each copied back
    by a checkpoint). Led by the hour, an hour's events share a few pages at the index's end."""
    digest = sha256_hex(connector.dedupe_key(raw))
    at = connector.dedupe_time(raw)
    return digest if at is None else f"{at[:13]}~{digest}"


def _bare_digest(identity: str) -> str | None:
    """The hash an hour-led identity was stored under before migration 0017, or None."""
    return identity[14:] if len(identity) == 78 and identity[13] == "~" else None


_INSERT_RAW = (
    "INSERT INTO raw_events (guild_id, source, endpoint_id, dedupe_hash, payload, received_at,"
    " timestamped) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, dedupe_hash) DO NOTHING"
)
_UNREAD = object()


def _upgrade_hour(conn: sqlite3.Connection) -> str | None:
    """The upgrade hour of migration 0017 (None: nothing was stored before it), read once per
    connection (a connection of another class than engine.Connection reads it each time)."""
    hour = getattr(conn, "dedupe_upgrade_hour", _UNREAD)
    if hour is _UNREAD:
        row = conn.execute("SELECT value FROM meta WHERE key = 'dedupe_hour_order_from'").fetchone()
        hour = row[0] if row else None
        with contextlib.suppress(AttributeError):
            conn.dedupe_upgrade_hour = hour  # type: ignore[attr-defined]
    return hour  # type: ignore[return-value]


def _insert_raw(conn: sqlite3.Connection, delivery: Delivery) -> int | None:
    """Store the raw event; its row id, or None when it is a duplicate: the unique index, or
    for a delivery from the upgrade hour or earlier, a row stored then under its bare hash.
    (One plain INSERT: an INSERT ... SELECT that checked meta cost 33k instructions more per
    event, measured with callgrind.)"""
    identity = delivery.dedupe_hash
    bare = _bare_digest(identity)
    if bare is not None:
        hour = _upgrade_hour(conn)
        if hour is not None and identity[:13] <= hour:
            found = conn.execute(
                "SELECT 1 FROM raw_events WHERE guild_id = ? AND dedupe_hash = ?",
                (delivery.guild_id, bare),
            ).fetchone()
            if found is not None:
                return None
    cur = conn.execute(
        _INSERT_RAW,
        (delivery.guild_id, delivery.source, delivery.endpoint_id, identity, delivery.payload,
         delivery.received_at, 1 if delivery.timestamped else None),
    )  # fmt: skip
    return int(cur.lastrowid or 0) if cur.rowcount else None


def _insert_event(
    conn: sqlite3.Connection,
    event: ActivityEvent,
    guild_id: int,
    raw_event_id: int | None,
    now_text: str,
    off_by_default: frozenset[str],
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
    if guild and guild[0] and feed_accepts(guild[1], event.type, off_by_default):
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


_ANY_OPT_OUT = (
    "SELECT 1 FROM member_privacy INDEXED BY member_privacy_opt_outs"
    " WHERE guild_id = ? AND collecting = 0 LIMIT 1"
)


def _opted_out(
    conn: sqlite3.Connection, guild_id: int, link_source: str | None, players: set[str]
) -> set[str]:
    """The players whose account in the guild is linked to a member who turned collection off
    (/privacy off), among links that count there (so an unproven claim in a guild that
    requires verification cannot silence another player)."""
    if link_source is None or not players:
        return set()
    if conn.execute(_ANY_OPT_OUT, (guild_id,)).fetchone() is None:
        return set()  # the usual case, in a third of the time of the full lookup
    marks = ", ".join("?" * len(players))
    rows = conn.execute(
        "SELECT l.external_id FROM account_links l WHERE l.guild_id = ? AND l.source = ?"
        f" AND l.external_id IN ({marks}) AND NOT ({LINK_COLLECTS}) AND {LINK_COUNTS}",
        (guild_id, link_source, *players),
    ).fetchall()
    return {row[0] for row in rows}


def ingest(
    conn: sqlite3.Connection,
    delivery: Delivery,
    connector: Connector,
    raw: Mapping[str, Any],
    effects: list[Effect],
    policy: IngestPolicy,
) -> IngestResult:
    """The ingest transaction: store the raw event under its dedupe hash (a duplicate stops
    here and changes nothing), apply the connector's playtime and session effects, normalize it
    into at most one activity event, announce the milestones the change reached, and queue
    what the guild's feed wants."""
    player = connector.player_id(raw) if connector.link_source else None
    withheld = _opted_out(
        conn,
        delivery.guild_id,
        connector.link_source,
        {effect.player_id for effect in effects} | ({player} if player else set()),
    )
    if (
        player is not None
        and player not in withheld
        and connector.requires_link
        and find_link(conn, delivery.guild_id, connector.link_source, player) is None
    ):
        withheld.add(player)  # no link (any more): nothing about the member is kept
    if player in withheld:  # kept only as a dedupe hash, so a retry is a duplicate
        delivery = replace(delivery, payload=WITHHELD_PAYLOAD)
    stored = _insert_raw(conn, delivery)
    if stored is None:
        return IngestResult("duplicate")
    raw_id = stored
    if player in withheld:
        return IngestResult("accepted", raw_event_id=raw_id, details={"withheld": True})
    if withheld:
        effects = [effect for effect in effects if effect.player_id not in withheld]
    guild_id, now_text, source = delivery.guild_id, delivery.received_at, connector.key
    derived: dict[str, Any] = {}
    reached: list[tuple[str, str, int, int, datetime]] = []
    # Players whose playtime changed -> whether a reward they earn by it is announced (not
    # when the change is a source's first report of them: a silent baseline, as milestones).
    grew: dict[str, bool] = {}
    games: set[str] = set()
    fell = False  # a total reported lower than before (a server's reset): no shortcut
    for effect in effects:
        if isinstance(effect, SetPlaytime):
            change = record_playtime(
                conn,
                scope=guild_id,
                source=source,
                player_id=effect.player_id,
                game_id=effect.game_id,
                seconds=effect.seconds,
                source_time=effect.source_time,
                now_text=now_text,
            )
            derived["playtime_updated"] = change.applied
            if change.applied and change.new != change.old:
                grew[effect.player_id] = grew.get(effect.player_id, True) and change.old is not None
                games.add(effect.game_id)
                fell = fell or (change.new or 0) < (change.old or 0)
            if change.applied:
                reached += _reached(
                    conn, policy, guild_id, source, effect, change, effect.source_time
                )
        elif isinstance(effect, SessionSeen | SessionAway):
            session_activity(conn, guild_id, source, effect)
        elif isinstance(effect, SessionStart | SessionEnd):
            at = effect.at
            if isinstance(effect, SessionStart):  # what a restart left open counts up to then
                seconds, away, at = start_session(conn, guild_id, source, effect)
            else:
                seconds, away = end_session(conn, guild_id, source, effect)
                if not effect.credited:
                    derived["duration_seconds"] = seconds
            if seconds or away:
                change = add_playtime(
                    conn,
                    scope=guild_id,
                    source=source,
                    player_id=effect.player_id,
                    game_id=effect.game_id,
                    delta=seconds,
                    at=at,
                    now_text=now_text,
                    away=away,
                )
                grew.setdefault(effect.player_id, True)
                games.add(effect.game_id)
                reached += _reached(conn, policy, guild_id, source, effect, change, at)
        elif isinstance(effect, PlaytimeAdded):
            # Presence's running sessions; no milestones (its player is the member, whose
            # other sources' totals live under other ids: a best-of would count twice).
            if effect.seconds > 0 or effect.away_seconds > 0:
                add_playtime(
                    conn,
                    scope=guild_id,
                    source=source,
                    player_id=effect.player_id,
                    game_id=effect.game_id,
                    delta=max(0, effect.seconds),
                    at=effect.at,
                    now_text=now_text,
                    away=max(0, effect.away_seconds),
                )
                grew.setdefault(effect.player_id, True)
                games.add(effect.game_id)
        elif isinstance(effect, PlaytimeGrew):
            change = PlaytimeChange(effect.old, effect.new, applied=True)
            grew.setdefault(effect.player_id, True)
            games.add(effect.game_id)
            reached += _reached(conn, policy, guild_id, source, effect, change, effect.at)

    result = IngestResult("accepted", raw_event_id=raw_id, details=derived)
    if connector.announces:
        link = find_link(conn, guild_id, connector.link_source, connector.player_id(raw))
        event = connector.normalize({**raw, **derived}, link)
        if event is not None:
            result.event_ids.append(
                _insert_event(conn, event, guild_id, raw_id, now_text, policy.off_by_default)
            )
    announced: list[ActivityEvent] = []  # in game too, where the guild has consoles
    for player, game, hours, total, at in reached:
        who = find_link(conn, guild_id, connector.link_source, player)
        name = raw.get("player_name") or raw.get("name") or (who.display_name if who else None)
        milestone = policy.event(
            guild_id=guild_id,
            source=source,
            player_id=player,
            game_id=game,
            game_name=game_name(conn, game),
            hours=hours,
            total=total,
            at=at,
            name=name,
            user_id=who.discord_user_id if who else None,
        )
        result.event_ids.append(
            _insert_event(conn, milestone, guild_id, raw_id, now_text, policy.off_by_default)
        )
        announced.append(milestone)
    if grew and connector.link_source and may_have_rewards(conn, guild_id):
        link_source, now = connector.link_source, from_iso(now_text)
        rewards = check_players(
            conn, guild_id, link_source, grew, now, games=games, source=source, grew=not fell
        )
        result.actions = rewards.queued
        if rewards.granted:
            if all(grew.values()):  # the usual case: every grant here was earned by playing
                loud = {user for _, user, _ in rewards.granted}
            else:
                playing = [p for p, on in grew.items() if on]
                loud = set(members_of(conn, guild_id, link_source, playing))
            for event in reward_events(conn, rewards, loud, now):
                result.event_ids.append(
                    _insert_event(conn, event, guild_id, raw_id, now_text, policy.off_by_default)
                )
                announced.append(event)
    if announced:
        in_game = announce_in_game(
            conn, guild_id, announced, policy.console_line, from_iso(now_text)
        )
        result.actions += len(in_game)
    return result


def _reached(
    conn: sqlite3.Connection,
    policy: IngestPolicy,
    guild_id: int,
    source: str,
    effect: SetPlaytime | SessionStart | SessionEnd | PlaytimeGrew,
    change: PlaytimeChange,
    at: datetime,
) -> list[tuple[str, str, int, int, datetime]]:
    """(player, game, hours, total, at) for each milestone this change reached."""
    return [
        (effect.player_id, effect.game_id, hours, change.new or 0, at)
        for hours in reached_milestones(
            conn,
            policy.hours,
            guild_id=guild_id,
            source=source,
            player_id=effect.player_id,
            game_id=effect.game_id,
            old=change.old,
            new=change.new,
            at=at,
        )
    ]


class SqliteEvents:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def ingest(
        self,
        delivery: Delivery,
        connector: Connector,
        raw: Mapping[str, Any],
        effects: list[Effect],
        policy: IngestPolicy,
    ) -> IngestResult:
        return await self._db.write(lambda c: ingest(c, delivery, connector, raw, effects, policy))

    async def seen(self, guild_id: int, dedupe_hash: str) -> bool:
        """Whether a raw event with this dedupe hash (or, from before migration 0017, its bare
        hash) was stored for the guild."""
        bare = _bare_digest(dedupe_hash) or dedupe_hash
        row = await self._db.fetchone(
            "SELECT 1 FROM raw_events WHERE guild_id = ? AND dedupe_hash IN (?, ?)",
            (guild_id, dedupe_hash, bare),
        )
        return row is not None

    async def counts(self) -> tuple[int, int]:
        """(raw events, activity events) stored, as the tables' triggers count them."""
        rows = dict(await self._db.fetchall("SELECT name, rows FROM row_counts"))
        return int(rows.get("raw_events", 0)), int(rows.get("activity_events", 0))
