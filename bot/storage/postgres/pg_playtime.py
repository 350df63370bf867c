"""Playtime on PostgreSQL: the SQL pieces and helpers the other PostgreSQL parts share, and the
``playtime`` part. Twins of bot/storage/playtime.py: the same names and parameters, with an
``asyncpg.Connection`` and typed values (datetime moments, date days) instead of ISO text.

A change of a total is one statement: the stored row (locked), the new total, its sample with
its local day, week and month, the guild's list of games and the members it is credited to
are data-modifying parts of one ``WITH`` (the ingest path runs one per effect)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from bot.clock import to_iso
from bot.storage.playtime import (
    _LINK_OF,
    _MILESTONE_SOURCES,
    PLAYTIME_OF_LINK,
    PROVEN_SQL,
    PROVEN_STEAM,
    _zone,
    cover,
)
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.records import GLOBAL_SCOPE, PlaytimeChange, StoredPlaytime

__all__ = [
    "LINK_COLLECTS",
    "LINK_COUNTS",
    "PLAYER_DAYS",
    "PLAYTIME_OF_LINK",
    "PROVEN_SQL",
    "PROVEN_STEAM",
    "PgPlaytime",
    "add_playtime",
    "cover",
    "game_name",
    "link_counts",
    "list_linked_games",
    "local_day",
    "move_account_playtime",
    "periods_of",
    "reached_milestones",
    "record_playtime",
    "remember_game_name",
    "summary_zone",
]

#: A link of alias ``l`` counts (as in bot/storage/playtime.py; flags are booleans here).
LINK_COUNTS = (
    f"(l.source <> 'steam' OR l.verified_by IN {PROVEN_SQL}"
    " OR NOT EXISTS (SELECT 1 FROM guilds g WHERE g.guild_id = l.guild_id"
    " AND g.require_verified))"
)
#: The member of link ``l`` lets Questlog collect (no /privacy off in its guild).
LINK_COLLECTS = (
    "NOT EXISTS (SELECT 1 FROM member_privacy p WHERE p.guild_id = l.guild_id"
    " AND p.discord_user_id = l.discord_user_id AND NOT p.collecting)"
)
#: One account's seconds per game over a range of local days ($1 scope, $2 source, $3 player,
#: $4 first day, $5 last day).
PLAYER_DAYS = (
    "SELECT game_id, sum(seconds) FROM playtime_daily"
    " WHERE scope_guild_id = $1 AND source = $2 AND player_id = $3 AND day >= $4 AND day <= $5"
    " GROUP BY game_id"
)


async def remember_game_name(
    conn: asyncpg.Connection, game_id: str, name: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO games (game_id, name, updated_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (game_id) DO UPDATE SET name = excluded.name,"
        " updated_at = excluded.updated_at"
        " WHERE games.name IS DISTINCT FROM excluded.name",  # only a new name changes the row
        game_id, name[:200], now,
    )  # fmt: skip


async def game_name(conn: asyncpg.Connection, game_id: str) -> str | None:
    return await conn.fetchval("SELECT name FROM games WHERE game_id = $1", game_id)


async def summary_zone(conn: asyncpg.Connection) -> ZoneInfo:
    """The time zone of playtime_daily's days (UTC until a time zone is set)."""
    name = await conn.fetchval("SELECT value FROM meta WHERE key = 'summary_timezone'")
    return _zone(name or "UTC")


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The day in ``zone`` of a moment."""
    return at.astimezone(zone).date()


def periods_of(day: date | str) -> tuple[str, str]:
    """The week (from Monday) and the month a local day belongs to, as playtime_periods keys
    (as bot/storage/playtime.py's, for a day as a ``date``)."""
    moment = date.fromisoformat(day) if isinstance(day, str) else day
    monday = date.fromordinal(moment.toordinal() - moment.weekday())
    return f"week:{monday.isoformat()}", f"month:{moment.isoformat()[:7]}"


# --------------------------------------------------------------------------- one change

#: The named parameters of a change, typed once ($1 scope .. $4 game; the rest per statement).
_KEY = "$1::bigint AS scope, $2::text AS source, $3::text AS player, $4::text AS game"
_MEMBER_UPSERT = (
    " ON CONFLICT (guild_id, game_id, discord_user_id, source)"
    " DO UPDATE SET seconds = member_playtime.seconds + excluded.seconds,"
    " away_seconds = member_playtime.away_seconds + excluded.away_seconds"
)


def _after(scope: int, source: str, new_game: str) -> str:
    """The parts of a change that follow the new total, as CTEs of one statement: CTE ``c``
    has the parameters (``p``'s columns), CTE ``s`` the increase to sample (delta, away,
    total, at: no row, nothing to sample) and CTE ``cr`` what to credit to the members who
    link the account (delta, away); ``new_game`` is the condition on ``c`` under which the
    player now has a value for the game for the first time."""
    parts = [
        # The sample (the history), its local day (today's boards, charts) and its week and
        # month (those boards), as _sample does.
        "ins_sample AS (INSERT INTO playtime_samples (scope_guild_id, source, player_id, game_id,"
        " at, delta_seconds, total_seconds, away_seconds)"
        " SELECT c.scope, c.source, c.player, c.game, s.at, s.delta, s.total, s.away FROM s, c)",
        "sday AS (SELECT s.delta, s.away, (s.at AT TIME ZONE coalesce((SELECT m.value FROM meta m"
        " WHERE m.key = 'summary_timezone'), 'UTC'))::date AS day FROM s)",
        "ins_daily AS (INSERT INTO playtime_daily (scope_guild_id, game_id, day, source, player_id,"
        " seconds, away_seconds) SELECT c.scope, c.game, d.day, c.source, c.player, d.delta, d.away"
        " FROM sday d, c ON CONFLICT (scope_guild_id, game_id, day, source, player_id)"
        " DO UPDATE SET seconds = playtime_daily.seconds + excluded.seconds,"
        " away_seconds = playtime_daily.away_seconds + excluded.away_seconds)",
        "ins_periods AS (INSERT INTO playtime_periods (scope_guild_id, game_id, period, source,"
        " player_id, seconds, away_seconds) SELECT c.scope, c.game, k.period, c.source, c.player,"
        " d.delta, d.away FROM sday d CROSS JOIN c CROSS JOIN LATERAL (VALUES"
        " ('week:' || to_char(d.day - (extract(isodow FROM d.day)::int - 1), 'YYYY-MM-DD')),"
        " ('month:' || to_char(d.day, 'YYYY-MM'))) AS k(period)"
        " ON CONFLICT (scope_guild_id, game_id, period, source, player_id)"
        " DO UPDATE SET seconds = playtime_periods.seconds + excluded.seconds,"
        " away_seconds = playtime_periods.away_seconds + excluded.away_seconds)",
    ]
    # The guilds the game is now listed for (_list_game): the scope's guild, or for a global
    # Steam value every guild that links the account.
    if scope != GLOBAL_SCOPE:
        parts.append(
            "ins_game AS (INSERT INTO guild_games (guild_id, game_id) SELECT c.scope, c.game"
            f" FROM c WHERE {new_game} ON CONFLICT DO NOTHING)"
        )
    elif source == "steam":
        parts.append(
            "ins_game AS (INSERT INTO guild_games (guild_id, game_id) SELECT a.guild_id, c.game"
            " FROM c JOIN account_links a ON a.source = 'steam' AND a.external_id = c.player"
            f" WHERE {new_game} ON CONFLICT DO NOTHING)"
        )
    # Every member who links the account, in the guild of the row's scope (a global Steam
    # row: in every guild), as _credit_members does.
    found = _LINK_OF.get(source)
    if found is not None:
        link_source, is_global = found
        parts.append(
            "ins_credit AS (INSERT INTO member_playtime (guild_id, game_id, discord_user_id,"
            " source, seconds, away_seconds) SELECT l.guild_id, c.game, l.discord_user_id,"
            " c.source, cr.delta, cr.away FROM cr, c, account_links l"
            f" WHERE (cr.delta <> 0 OR cr.away <> 0) AND l.source = '{link_source}'"
            " AND l.external_id = c.player" + ("" if is_global else " AND l.guild_id = c.scope")
            + f" AND {LINK_COUNTS} AND {LINK_COLLECTS}" + _MEMBER_UPSERT + ")"
        )  # fmt: skip
    return ", ".join(parts)


_RECORDS: dict[tuple[bool, str], str] = {}
_ADDS: dict[tuple[bool, str], str] = {}


def _record_sql(scope: int, source: str) -> str:
    """record_playtime's statement ($5 seconds, $6 status, $7 source time, $8 now, $9 sample):
    returns (old seconds, applied)."""
    key = (scope == GLOBAL_SCOPE, source)
    sql = _RECORDS.get(key)
    if sql is None:
        sql = (
            f"WITH p AS (SELECT {_KEY}, $5::bigint AS seconds, $6::text AS status,"
            " $7::timestamptz AS at, $8::timestamptz AS now, $9::boolean AS sample),"
            " old AS (SELECT seconds, source_time FROM playtime WHERE scope_guild_id = $1"
            " AND source = $2 AND player_id = $3 AND game_id = $4 FOR UPDATE),"
            # An older measurement never overwrites a newer one.
            " c AS (SELECT p.*, (SELECT o.seconds FROM old o) AS old_seconds,"
            " NOT coalesce((SELECT o.source_time > p.at FROM old o), false) AS applied FROM p),"
            " up AS (INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds,"
            " status, source_time, created_at, updated_at) SELECT scope, source, player, game,"
            " seconds, status, at, now, now FROM c WHERE applied"
            " ON CONFLICT (scope_guild_id, source, player_id, game_id) DO UPDATE SET"
            " seconds = excluded.seconds, status = excluded.status,"
            " source_time = excluded.source_time, updated_at = excluded.updated_at),"
            " s AS (SELECT seconds - old_seconds AS delta, 0::bigint AS away, seconds AS total, at"
            " FROM c WHERE applied AND sample AND seconds > old_seconds),"
            " cr AS (SELECT coalesce(seconds, 0) - coalesce(old_seconds, 0) AS delta,"
            " 0::bigint AS away FROM c WHERE applied), "
            + _after(scope, source, "c.applied AND c.seconds IS NOT NULL AND c.old_seconds IS NULL")
            + " SELECT old_seconds, applied FROM c"
        )
        _RECORDS[key] = sql
    return sql


def _add_sql(scope: int, source: str) -> str:
    """add_playtime's statement ($5 delta, $6 at, $7 now, $8 away): returns the new total."""
    key = (scope == GLOBAL_SCOPE, source)
    sql = _ADDS.get(key)
    if sql is None:
        sql = (
            f"WITH p AS (SELECT {_KEY}, $5::bigint AS delta, $6::timestamptz AS at,"
            " $7::timestamptz AS now, $8::bigint AS away),"
            " up AS (INSERT INTO playtime (scope_guild_id, source, player_id, game_id, seconds,"
            " status, source_time, created_at, updated_at, away_seconds)"
            " SELECT scope, source, player, game, delta, 'ok', at, now, now, away FROM p"
            " ON CONFLICT (scope_guild_id, source, player_id, game_id) DO UPDATE SET"
            " seconds = coalesce(playtime.seconds, 0) + excluded.seconds,"
            " away_seconds = playtime.away_seconds + excluded.away_seconds,"
            " source_time = GREATEST(playtime.source_time, excluded.source_time),"
            " updated_at = excluded.updated_at RETURNING seconds, away_seconds),"
            " c AS (SELECT p.*, up.seconds AS total, up.away_seconds AS total_away FROM p, up),"
            " s AS (SELECT delta, away, total, at FROM c WHERE delta > 0 OR away > 0),"
            " cr AS (SELECT delta, away FROM c), "
            + _after(scope, source, "c.total = c.delta AND c.total_away = c.away")
            + " SELECT total FROM c"
        )
        _ADDS[key] = sql
    return sql


async def lock_account(conn: asyncpg.Connection, link_source: str, external_id: str) -> None:
    """Serialize what concerns one game account across processes until the transaction ends:
    its playtime writes and its member summary credits against its links being made, moved
    or removed. SQLite's one writer did this by itself; on PostgreSQL two processes would
    each read the other's state from their own snapshot (a first report stored twice, an
    account linked twice, hours credited to a member who had just unlinked). Taken in a
    statement of its own, so the statements after it see what the previous holder committed."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"questlog account {link_source}:{external_id}",
    )


def _account_of(source: str) -> str:
    """The link source whose accounts hold playtime of ``source``."""
    return _LINK_OF.get(source, (source, False))[0]


async def record_playtime(
    conn: asyncpg.Connection,
    *,
    scope: int,
    source: str,
    player_id: str,
    game_id: str,
    seconds: int | None,
    source_time: datetime,
    now: datetime,
    status: str = "ok",
    sample: bool = True,
) -> PlaytimeChange:
    """Store a measured *total*. An older measurement never overwrites a newer one; an increase
    over a known value is sampled for charts and period leaderboards, unless ``sample`` is
    false (a baseline read: what grew while Questlog was not looking is no one period's)."""
    await lock_account(conn, _account_of(source), player_id)
    row = await conn.fetchrow(
        _record_sql(scope, source),
        scope, source, player_id, game_id, seconds, status, source_time, now, sample,
    )  # fmt: skip
    old = row[0]
    if not row[1]:
        return PlaytimeChange(old, old, applied=False)
    return PlaytimeChange(old, seconds, applied=True)


async def add_playtime(
    conn: asyncpg.Connection,
    *,
    scope: int,
    source: str,
    player_id: str,
    game_id: str,
    delta: int,
    at: datetime,
    now: datetime,
    away: int = 0,
) -> PlaytimeChange:
    """Add a session's active seconds (``delta``) and its away seconds (``away``: AFK and
    idle time, which only the total counts)."""
    await lock_account(conn, _account_of(source), player_id)
    total = await conn.fetchval(
        _add_sql(scope, source), scope, source, player_id, game_id, delta, at, now, away
    )
    total = int(total)
    return PlaytimeChange(total - delta, total, applied=True)


async def link_counts(
    conn: asyncpg.Connection, guild_id: int, source: str, verified_by: str
) -> bool:
    """Whether a link of this kind counts in the guild (see LINK_COUNTS)."""
    if source != "steam" or verified_by in PROVEN_STEAM:
        return True
    required = await conn.fetchval(
        "SELECT require_verified FROM guilds WHERE guild_id = $1", guild_id
    )
    return not required


async def move_account_playtime(
    conn: asyncpg.Connection,
    guild_id: int,
    link_source: str,
    external_id: str,
    *,
    from_user: int | None,
    to_user: int | None,
) -> None:
    """An account's playtime leaves one member's summaries and joins another's (link: from
    nobody, unlink: to nobody, reassignment: both), in one statement."""
    if from_user == to_user:
        return
    kept = [
        (GLOBAL_SCOPE if is_global else guild_id, source)
        for wanted, source, is_global in PLAYTIME_OF_LINK
        if wanted == link_source
    ]
    users = [(user, sign) for user, sign in ((from_user, -1), (to_user, 1)) if user is not None]
    if not kept or not users:
        return
    await conn.execute(
        "INSERT INTO member_playtime (guild_id, game_id, discord_user_id, source, seconds,"
        " away_seconds) SELECT $1::bigint, t.game_id, u.member, t.source,"
        " u.sign * coalesce(t.seconds, 0), u.sign * t.away_seconds"
        " FROM unnest($2::bigint[], $3::text[]) AS k(scope, source)"
        " JOIN playtime t ON t.scope_guild_id = k.scope AND t.source = k.source"
        " CROSS JOIN unnest($5::bigint[], $6::bigint[]) AS u(member, sign)"
        " WHERE t.player_id = $4 AND (t.seconds > 0 OR t.away_seconds > 0)" + _MEMBER_UPSERT,
        guild_id, [s for s, _ in kept], [s for _, s in kept], external_id,
        [u for u, _ in users], [s for _, s in users],
    )  # fmt: skip


async def list_linked_games(
    conn: asyncpg.Connection, guild_id: int, source: str, external_id: str
) -> None:
    """A newly linked Steam account brings its games to the guild's list."""
    if source == "steam":
        await conn.execute(
            "INSERT INTO guild_games (guild_id, game_id) SELECT $1::bigint, game_id FROM playtime"
            " WHERE scope_guild_id = 0 AND source = 'steam' AND player_id = $2"
            " AND seconds IS NOT NULL ON CONFLICT DO NOTHING",
            guild_id, external_id,
        )  # fmt: skip


async def reached_milestones(
    conn: asyncpg.Connection,
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
    other sources are read only then (rarely), in the statement that records the milestones.
    A source's first report of a player (old unknown) is a silent baseline."""
    if old is None or new is None or new <= old:
        return []
    crossed = [h for h in hours if old < h * 3600 <= new]
    if not crossed:
        return []
    others = [(scope, other) for scope, other in _MILESTONE_SOURCES if other != source]
    rows = await conn.fetch(
        "WITH others AS (SELECT coalesce(max(t.seconds), 0) AS best"
        " FROM unnest($5::bigint[], $6::text[]) AS k(scope, source) JOIN playtime t"
        " ON t.scope_guild_id = k.scope AND t.source = k.source"
        " WHERE t.player_id = $2 AND t.game_id = $3 AND t.seconds IS NOT NULL)"
        " INSERT INTO milestones (scope_guild_id, source, player_id, game_id, threshold,"
        " reached_at) SELECT $1::bigint, 'best', $2, $3, h, $4::timestamptz"
        " FROM unnest($7::int[]) AS h, others"
        " WHERE others.best < h::bigint * 3600"  # another source had passed it already
        " ON CONFLICT DO NOTHING RETURNING threshold",
        guild_id, player_id, game_id, at,
        [guild_id if scope == "guild" else GLOBAL_SCOPE for scope, _ in others],
        [other for _, other in others], sorted(set(crossed)),
    )  # fmt: skip
    new_ones = {row[0] for row in rows}
    reached: list[int] = []
    for h in crossed:
        if h in new_ones and h not in reached:
            reached.append(h)
    return reached


class PgPlaytime:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def for_players(
        self, scope: int, source: str, game_id: str, player_ids: Sequence[str]
    ) -> dict[str, StoredPlaytime]:
        """The stored totals of these players for one game (scope: a guild, or GLOBAL_SCOPE)."""
        if not player_ids:
            return {}

        async def fn(conn: asyncpg.Connection) -> dict[str, StoredPlaytime]:
            rows = await conn.fetch(
                "SELECT player_id, seconds, status, created_at, updated_at FROM playtime"
                " WHERE scope_guild_id = $1 AND source = $2 AND game_id = $3"
                " AND player_id = ANY($4::text[]) ORDER BY player_id COLLATE \"C\"",
                scope, source, game_id, list(player_ids),
            )  # fmt: skip
            return {r[0]: StoredPlaytime(r[1], r[2], to_iso(r[3]), to_iso(r[4])) for r in rows}

        return await self._db.read(fn)
