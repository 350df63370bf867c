"""Raw events, activity events and their feed outbox rows on PostgreSQL: the ``events`` part
and ``ingest``, the twin of bot/storage/events.py's one ingest path (webhooks, and the Steam
sync's observations inside the sync's own transaction).

The hot path, so its statements are few: one reads the guild's feed settings together with the
opted-out players, one stores the raw event (checking the bare hash of migration 0017 in the
same statement), one per playtime or session effect, and one per activity event with its
outbox row (and the supersession of an earlier version)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg

from bot.clock import from_iso
from bot.storage.events import WITHHELD_PAYLOAD, _bare_digest, compact_json, dedupe_hash
from bot.storage.interface import IngestPolicy
from bot.storage.postgres.pg_consoles import announce_in_game
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_links import find_link
from bot.storage.postgres.pg_outbox import feed_accepts
from bot.storage.postgres.pg_playtime import (
    LINK_COLLECTS,
    LINK_COUNTS,
    add_playtime,
    game_name,
    reached_milestones,
    record_playtime,
)
from bot.storage.postgres.pg_rewards import (
    check_players,
    may_have_rewards,
    members_of,
    reward_events,
)
from bot.storage.postgres.pg_sessions import end_session, session_activity, start_session
from bot.storage.records import Delivery, IngestResult, PlaytimeChange
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
)

__all__ = ["WITHHELD_PAYLOAD", "PgEvents", "compact_json", "dedupe_hash", "ingest"]

#: The guild's feed channel and event types, and the players among $3 whose account in the
#: guild is linked, by a link that counts there, to a member who turned collection off
#: (/privacy off): an unproven claim in a guild that requires verification cannot silence
#: another player.
_GUILD_AND_OPT_OUTS = (
    "SELECT g.feed_channel_id, g.feed_event_types::text,"
    " CASE WHEN $2::text IS NULL OR cardinality($3::text[]) = 0"
    " OR NOT EXISTS (SELECT 1 FROM member_privacy WHERE guild_id = $1 AND NOT collecting)"
    " THEN '{}'::text[] ELSE ARRAY(SELECT l.external_id FROM account_links l"
    " WHERE l.guild_id = $1 AND l.source = $2 AND l.external_id = ANY($3::text[])"
    f" AND NOT ({LINK_COLLECTS}) AND {LINK_COUNTS}) END"
    " FROM (SELECT 1) AS one LEFT JOIN guilds g ON g.guild_id = $1"
)
_RAW_COLUMNS = (
    "INSERT INTO raw_events (guild_id, source, endpoint_id, dedupe_hash, payload, received_at,"
    " timestamped)"
)
_INSERT_RAW = (
    _RAW_COLUMNS + " VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (guild_id, dedupe_hash) DO NOTHING RETURNING id"
)
#: The same, unless the delivery is from the upgrade hour of migration 0017 or earlier ($8
#: its hour) and a row was stored then under its bare hash ($9).
_INSERT_RAW_UNLESS_BARE = (
    _RAW_COLUMNS + " SELECT $1::bigint, $2::text, $3::bigint, $4::text, $5::text,"
    " $6::timestamptz, $7::boolean WHERE NOT EXISTS (SELECT 1 FROM meta m"
    " WHERE m.key = 'dedupe_hour_order_from' AND $8::text <= m.value COLLATE \"C\""
    " AND EXISTS (SELECT 1 FROM raw_events r WHERE r.guild_id = $1 AND r.dedupe_hash = $9))"
    " ON CONFLICT (guild_id, dedupe_hash) DO NOTHING RETURNING id"
)
_EVENT = (
    "INSERT INTO activity_events (guild_id, raw_event_id, type, source, actor_user_id,"
    " actor_external_id, actor_name, title, payload, occurred_at, external_id, created_at,"
    " update_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13)"
    " RETURNING id"
)
#: The event and its outbox row for channel $14.
_QUEUED = (
    f"WITH ev AS ({_EVENT}),"
    " queued AS (INSERT INTO feed_outbox (event_id, guild_id, channel_id, status, created_at,"
    " updated_at) SELECT id, $1, $14, 'pending', $12, $12 FROM ev)"
)
_QUEUED_EVENT = _QUEUED + " SELECT id FROM ev"
#: The same, and an earlier version still waiting to be posted is replaced by this one (a
#: version already in a fixed batch is posted, and this one then edits its message).
_QUEUED_VERSION = (
    _QUEUED + ", superseded AS (UPDATE feed_outbox SET status = 'superseded', updated_at = $12"
    " WHERE channel_id = $14 AND status = 'pending' AND batch_id IS NULL"
    " AND event_id IN (SELECT a.id FROM activity_events a WHERE a.guild_id = $1"
    " AND a.update_key = $13 AND a.id < (SELECT id FROM ev)))"
    " SELECT id FROM ev"
)

#: (feed channel or None, feed event types as JSON text or None) of a guild.
Feed = tuple[int | None, str | None]


async def _insert_raw(conn: asyncpg.Connection, delivery: Delivery) -> int | None:
    """Store the raw event; its row id, or None when it is a duplicate: the unique index, or
    for a delivery from the upgrade hour or earlier, a row stored then under its bare hash."""
    identity = delivery.dedupe_hash
    values = (
        delivery.guild_id, delivery.source, delivery.endpoint_id, identity, delivery.payload,
        from_iso(delivery.received_at), True if delivery.timestamped else None,
    )  # fmt: skip
    bare = _bare_digest(identity)
    if bare is None:
        return await conn.fetchval(_INSERT_RAW, *values)
    return await conn.fetchval(_INSERT_RAW_UNLESS_BARE, *values, identity[:13], bare)


async def _insert_event(
    conn: asyncpg.Connection,
    event: ActivityEvent,
    guild_id: int,
    raw_event_id: int | None,
    now: datetime,
    feed: Feed,
    off_by_default: frozenset[str],
) -> int:
    """Store an activity event and, when the guild has a feed channel that wants it, its outbox
    row: one statement."""
    values = (
        guild_id, raw_event_id, event.type, event.source, event.actor_user_id,
        event.actor_external_id, event.actor_name, event.title, compact_json(event.payload),
        event.occurred_at, event.external_id, now, event.update_key,
    )  # fmt: skip
    channel, types = feed
    if not channel or not feed_accepts(types, event.type, off_by_default):
        return int(await conn.fetchval(_EVENT, *values))
    sql = _QUEUED_EVENT if event.update_key is None else _QUEUED_VERSION
    return int(await conn.fetchval(sql, *values, channel))


async def ingest(
    conn: asyncpg.Connection,
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
    players = {effect.player_id for effect in effects} | ({player} if player else set())
    row = await conn.fetchrow(
        _GUILD_AND_OPT_OUTS, delivery.guild_id, connector.link_source, sorted(players)
    )
    feed: Feed = (row[0], row[1])
    withheld = set(row[2])
    if (
        player is not None
        and player not in withheld
        and connector.requires_link
        and await find_link(conn, delivery.guild_id, connector.link_source, player) is None
    ):
        withheld.add(player)  # no link (any more): nothing about the member is kept
    if player in withheld:  # kept only as a dedupe hash, so a retry is a duplicate
        delivery = replace(delivery, payload=WITHHELD_PAYLOAD)
    stored = await _insert_raw(conn, delivery)
    if stored is None:
        return IngestResult("duplicate")
    raw_id = int(stored)
    if player in withheld:
        return IngestResult("accepted", raw_event_id=raw_id, details={"withheld": True})
    if withheld:
        effects = [effect for effect in effects if effect.player_id not in withheld]
    guild_id, source = delivery.guild_id, connector.key
    now = from_iso(delivery.received_at)
    derived: dict[str, Any] = {}
    reached: list[tuple[str, str, int, int, datetime]] = []
    # Players whose playtime changed -> whether a reward they earn by it is announced (not
    # when the change is a source's first report of them: a silent baseline, as milestones).
    grew: dict[str, bool] = {}
    games: set[str] = set()
    fell = False  # a total reported lower than before (a server's reset): no shortcut
    for effect in effects:
        if isinstance(effect, SetPlaytime):
            change = await record_playtime(
                conn,
                scope=guild_id,
                source=source,
                player_id=effect.player_id,
                game_id=effect.game_id,
                seconds=effect.seconds,
                source_time=effect.source_time,
                now=now,
            )
            derived["playtime_updated"] = change.applied
            if change.applied and change.new != change.old:
                grew[effect.player_id] = grew.get(effect.player_id, True) and change.old is not None
                games.add(effect.game_id)
                fell = fell or (change.new or 0) < (change.old or 0)
            if change.applied:
                reached += await _reached(
                    conn, policy, guild_id, source, effect, change, effect.source_time
                )
        elif isinstance(effect, SessionSeen | SessionAway):
            await session_activity(conn, guild_id, source, effect)
        elif isinstance(effect, SessionStart | SessionEnd):
            at = effect.at
            if isinstance(effect, SessionStart):  # what a restart left open counts up to then
                seconds, away, at = await start_session(conn, guild_id, source, effect)
            else:
                seconds, away = await end_session(conn, guild_id, source, effect)
                if not effect.credited:
                    derived["duration_seconds"] = seconds
            if seconds or away:
                change = await add_playtime(
                    conn,
                    scope=guild_id,
                    source=source,
                    player_id=effect.player_id,
                    game_id=effect.game_id,
                    delta=seconds,
                    at=at,
                    now=now,
                    away=away,
                )
                grew.setdefault(effect.player_id, True)
                games.add(effect.game_id)
                reached += await _reached(conn, policy, guild_id, source, effect, change, at)
        elif isinstance(effect, PlaytimeAdded):
            # Presence's running sessions; no milestones (its player is the member, whose
            # other sources' totals live under other ids: a best-of would count twice).
            if effect.seconds > 0 or effect.away_seconds > 0:
                await add_playtime(
                    conn,
                    scope=guild_id,
                    source=source,
                    player_id=effect.player_id,
                    game_id=effect.game_id,
                    delta=max(0, effect.seconds),
                    at=effect.at,
                    now=now,
                    away=max(0, effect.away_seconds),
                )
                grew.setdefault(effect.player_id, True)
                games.add(effect.game_id)
        elif isinstance(effect, PlaytimeGrew):
            change = PlaytimeChange(effect.old, effect.new, applied=True)
            grew.setdefault(effect.player_id, True)
            games.add(effect.game_id)
            reached += await _reached(conn, policy, guild_id, source, effect, change, effect.at)

    result = IngestResult("accepted", raw_event_id=raw_id, details=derived)
    off = policy.off_by_default
    if connector.announces:
        link = await find_link(conn, guild_id, connector.link_source, connector.player_id(raw))
        event = connector.normalize({**raw, **derived}, link)
        if event is not None:
            result.event_ids.append(
                await _insert_event(conn, event, guild_id, raw_id, now, feed, off)
            )
    announced: list[ActivityEvent] = []  # in game too, where the guild has consoles
    for player_id, game, hours, total, at in reached:
        who = await find_link(conn, guild_id, connector.link_source, player_id)
        name = raw.get("player_name") or raw.get("name") or (who.display_name if who else None)
        milestone = policy.event(
            guild_id=guild_id,
            source=source,
            player_id=player_id,
            game_id=game,
            game_name=await game_name(conn, game),
            hours=hours,
            total=total,
            at=at,
            name=name,
            user_id=who.discord_user_id if who else None,
        )
        result.event_ids.append(
            await _insert_event(conn, milestone, guild_id, raw_id, now, feed, off)
        )
        announced.append(milestone)
    if grew and connector.link_source and await may_have_rewards(conn, guild_id):
        link_source = connector.link_source
        rewards = await check_players(
            conn, guild_id, link_source, grew, now, games=games, source=source, grew=not fell
        )
        result.actions = rewards.queued
        if rewards.granted:
            if all(grew.values()):  # the usual case: every grant here was earned by playing
                loud = {user for _, user, _ in rewards.granted}
            else:
                playing = [p for p, on in grew.items() if on]
                loud = set(await members_of(conn, guild_id, link_source, playing))
            for event in await reward_events(conn, rewards, loud, now):
                result.event_ids.append(
                    await _insert_event(conn, event, guild_id, raw_id, now, feed, off)
                )
                announced.append(event)
    if announced:
        in_game = await announce_in_game(conn, guild_id, announced, policy.console_line, now)
        result.actions += len(in_game)
    return result


async def _reached(
    conn: asyncpg.Connection,
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
        for hours in await reached_milestones(
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


#: Above this many rows (as pg_class estimates them) a table's count is the estimate: an exact
#: count of a large table reads all of it.
EXACT_BELOW = 1_000_000
_COUNTS = (
    f"SELECT CASE WHEN c.reltuples >= {EXACT_BELOW} THEN c.reltuples::bigint"
    " ELSE (SELECT count(*) FROM raw_events) END,"
    f" CASE WHEN e.reltuples >= {EXACT_BELOW} THEN e.reltuples::bigint"
    " ELSE (SELECT count(*) FROM activity_events) END"
    " FROM pg_class c, pg_class e"
    " WHERE c.oid = 'raw_events'::regclass AND e.oid = 'activity_events'::regclass"
)


class PgEvents:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def ingest(
        self,
        delivery: Delivery,
        connector: Connector,
        raw: Mapping[str, Any],
        effects: list[Effect],
        policy: IngestPolicy,
    ) -> IngestResult:
        async def op(conn: asyncpg.Connection) -> IngestResult:
            return await ingest(conn, delivery, connector, raw, effects, policy)

        return await self._db.write(op)

    async def seen(self, guild_id: int, dedupe_hash: str) -> bool:
        """Whether a raw event with this dedupe hash (or, from before migration 0017, its bare
        hash) was stored for the guild."""
        bare = _bare_digest(dedupe_hash) or dedupe_hash

        async def fn(conn: asyncpg.Connection) -> bool:
            found = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM raw_events WHERE guild_id = $1"
                " AND dedupe_hash IN ($2, $3))",
                guild_id, dedupe_hash, bare,
            )  # fmt: skip
            return bool(found)

        return await self._db.read(fn)

    async def counts(self) -> tuple[int, int]:
        """(raw events, activity events) stored: counted, or pg_class's estimate for a table
        of more than EXACT_BELOW rows (PostgreSQL keeps no counter rows: see the schema)."""

        async def fn(conn: asyncpg.Connection) -> tuple[int, int]:
            row = await conn.fetchrow(_COUNTS)
            return int(row[0]), int(row[1])

        return await self._db.read(fn)
