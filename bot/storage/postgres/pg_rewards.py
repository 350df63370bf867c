"""Role rewards on PostgreSQL (``rewards``, ``reward_grants``): twins of bot/storage/rewards.py,
with the same names and parameters (days as ``date``), and the role actions that follow,
queued in the caller's operation. bot/storage/rewards.py has how a member's hours are counted;
what decides (``earned``, ``reward_seconds``, ``_may_gain``) is its pure Python, shared."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from bot.clock import PERIODS, period_days, to_iso
from bot.storage.postgres.pg_actions import queue_action
from bot.storage.postgres.pg_endpoints import ensure_guild
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_playtime import LINK_COUNTS, PLAYTIME_OF_LINK, game_name, summary_zone
from bot.storage.records import GLOBAL_SCOPE, Reward, RewardChanges, RewardSummary
from bot.storage.rewards import (
    MAX_REWARDS,
    REWARD_COUNTS,
    REWARD_MODES,
    REWARD_SOURCES,
    ROLE_ACTIONS,
    Values,
    _may_gain,
    _period,
    earned,
    reward_seconds,
)
from connectors.base import Action, ActivityEvent

__all__ = [
    "MAX_REWARDS",
    "REWARD_COUNTS",
    "REWARD_MODES",
    "REWARD_SOURCES",
    "ROLE_ACTIONS",
    "PgRewards",
    "add_reward",
    "candidates",
    "check_linking_guilds",
    "check_members",
    "check_players",
    "earned",
    "guild_rewards",
    "may_have_rewards",
    "member_values",
    "members_of",
    "preview",
    "remove_reward",
    "reward_events",
    "reward_seconds",
    "reward_summaries",
]

_COLUMNS = (
    "reward_id, guild_id, role_id, hours, game_id, period, source, mode, created_at, created_by,"
    " squad_group, squad_permissions, counting"
)
#: Which playtime each kind of link reads (PLAYTIME_OF_LINK) as a relation ``m``.
_LINK_PLAYTIME = (
    "(VALUES "
    + ", ".join(
        f"('{link}', '{source}', {'true' if is_global else 'false'})"
        for link, source, is_global in PLAYTIME_OF_LINK
    )
    + ") AS m (link_source, source, is_global)"
)
_WAITING = "('pending', 'in_flight', 'paused')"


def _reward(row: asyncpg.Record) -> Reward:
    reward = Reward(
        id=row[0], guild_id=row[1], role_id=row[2], hours=row[3], game_id=row[4],
        period=row[5], source=row[6], mode=row[7], created_at=to_iso(row[8]),
        created_by=row[9], squad_group=row[10], squad_permissions=row[11], counting=row[12],
    )  # fmt: skip
    if not reward.role_id:  # 0: a reward without a role (migration 0031)
        return dataclasses.replace(reward, role_id=None)
    return reward


def _count(status: str) -> int:
    """The rows a statement changed, from its status ("DELETE 3")."""
    return int(status.rsplit(" ", 1)[-1])


async def guild_rewards(conn: asyncpg.Connection, guild_id: int) -> list[Reward]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM rewards WHERE guild_id = $1 ORDER BY reward_id", guild_id
    )
    return [_reward(row) for row in rows]


async def may_have_rewards(conn: asyncpg.Connection, guild_id: int) -> bool:
    """Whether the guild may have rewards: False only when it has none. Asked for every
    webhook: one probe of the rewards index (read each time, as several processes may add
    rewards to one PostgreSQL database)."""
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM rewards WHERE guild_id = $1)", guild_id)
    )


async def add_reward(
    conn: asyncpg.Connection,
    *,
    guild_id: int,
    role_id: int | None,
    hours: int,
    game_id: str | None,
    period: str,
    source: str,
    mode: str,
    created_by: int | None,
    now: datetime,
    squad_group: str | None = None,
    squad_permissions: str | None = None,
    counting: str = "active",
) -> Reward:
    """Store a reward (checked by the caller: its role assignable, the values known, a role
    or a Squad group)."""
    if (
        period not in PERIODS
        or source not in REWARD_SOURCES
        or mode not in REWARD_MODES
        or counting not in REWARD_COUNTS
    ):
        raise ValueError(
            f"not a reward: period {period!r}, source {source!r}, mode {mode!r},"
            f" counting {counting!r}"
        )
    await ensure_guild(conn, guild_id, now)
    row = await conn.fetchrow(
        "INSERT INTO rewards (guild_id, role_id, hours, game_id, period, source, mode,"
        " created_by, created_at, squad_group, squad_permissions, counting)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {_COLUMNS}",
        guild_id, role_id or 0, hours, game_id, period, source, mode, created_by, now,
        squad_group, squad_permissions, counting,
    )  # fmt: skip
    return _reward(row)


async def member_values(
    conn: asyncpg.Connection,
    guild_id: int,
    users: Sequence[int] | None,
    days: tuple[date, date] | None,
) -> dict[int, Values]:
    """(Active, away) seconds per (game, source) of these members (every member when None):
    all time, or played on the local days ``days`` (first and last included)."""
    if days is None:
        return await _all_time(conn, guild_id, users)
    return (await _ranged(conn, guild_id, users, {"days": days}))["days"]


async def _all_time(
    conn: asyncpg.Connection, guild_id: int, users: Sequence[int] | None
) -> dict[int, Values]:
    sql = (
        "SELECT discord_user_id, game_id, source, seconds, away_seconds FROM member_playtime"
        " WHERE guild_id = $1 AND (seconds > 0 OR away_seconds > 0)"
    )
    params: list[object] = [guild_id]
    if users is not None:
        sql += " AND discord_user_id = ANY($2::bigint[])"
        params.append(list(users))
    found: dict[int, Values] = {}
    for user, game, source, seconds, away in await conn.fetch(sql, *params):
        found.setdefault(user, {})[game, source] = (seconds, away)
    return found


async def _ranged(
    conn: asyncpg.Connection,
    guild_id: int,
    users: Sequence[int] | None,
    ranges: dict[str, tuple[date, date]],
) -> dict[str, dict[int, Values]]:
    """Per named range of local days, (active, away) seconds per (game, source) of these
    members, from the days of the links that count: one statement over all the ranges (a
    source's accounts of one member add up)."""
    found: dict[str, dict[int, Values]] = {name: {} for name in ranges}
    if not ranges:
        return found
    names = list(ranges)
    first = min(a for a, _ in ranges.values())
    last = max(b for _, b in ranges.values())
    params: list[object] = [guild_id, first, last]
    sums = []
    for column in ("seconds", "away_seconds"):
        for name in names:
            params += ranges[name]
            a, b = len(params) - 1, len(params)
            sums.append(
                f"coalesce(sum(d.{column}) FILTER (WHERE d.day >= ${a} AND d.day <= ${b}),"
                " 0)::bigint"
            )
    sql = (
        f"SELECT l.discord_user_id, d.game_id, d.source, {', '.join(sums)}"
        f" FROM account_links l JOIN {_LINK_PLAYTIME} ON m.link_source = l.source"
        " JOIN playtime_daily d ON d.scope_guild_id ="
        f" CASE WHEN m.is_global THEN {GLOBAL_SCOPE}::bigint ELSE l.guild_id END"
        " AND d.source = m.source AND d.player_id = l.external_id"
        " AND d.day >= $2 AND d.day <= $3"
        f" WHERE l.guild_id = $1 AND {LINK_COUNTS}"
    )
    if users is not None:
        params.append(list(users))
        sql += f" AND l.discord_user_id = ANY(${len(params)}::bigint[])"
    sql += " GROUP BY l.discord_user_id, d.game_id, d.source"
    count = len(names)
    for row in await conn.fetch(sql, *params):
        user, game, source = row[0], row[1], row[2]
        values = list(row[3:])
        for name, seconds, away in zip(names, values[:count], values[count:], strict=True):
            if seconds or away:
                found[name].setdefault(user, {})[game, source] = (seconds, away)
    return found


async def _days(
    conn: asyncpg.Connection, period: str, now: datetime, zone: ZoneInfo | None = None
) -> tuple[date, date] | None:
    return period_days(_period(period), now, zone or await summary_zone(conn))


async def _values_by_period(
    conn: asyncpg.Connection,
    guild_id: int,
    rewards: Sequence[Reward],
    users: Sequence[int] | None,
    now: datetime,
    ever: dict[int, Values] | None = None,
) -> dict[str, dict[int, Values]]:
    """Per period of the rewards, the members' values (``ever``: their all-time ones, if read
    already)."""
    periods = sorted({r.period for r in rewards})
    zone = await summary_zone(conn) if any(p != "all" for p in periods) else None
    ranges = {}
    for p in periods:
        days = await _days(conn, p, now, zone)
        if days is not None:
            ranges[p] = days
    found = await _ranged(conn, guild_id, users, ranges)
    if "all" in periods:
        found["all"] = ever if ever is not None else await _all_time(conn, guild_id, users)
    return found


async def _held(
    conn: asyncpg.Connection, guild_id: int, users: Sequence[int]
) -> dict[int, dict[int, tuple[int, bool]]]:
    """member -> {reward id: (role id, owned)} of the grants Questlog made, in reward order;
    not owned: the member had the role already when it was granted."""
    held: dict[int, dict[int, tuple[int, bool]]] = {}
    for reward_id, user, role_id, owned in await conn.fetch(
        "SELECT reward_id, discord_user_id, role_id, owned FROM reward_grants"
        " WHERE guild_id = $1 AND discord_user_id = ANY($2::bigint[])"
        " ORDER BY discord_user_id, reward_id",
        guild_id,
        list(users),
    ):
        held.setdefault(user, {})[reward_id] = (role_id, bool(owned))
    return held


async def _queue_role(
    conn: asyncpg.Connection, reward: Reward, user_id: int, add: bool, now: datetime
) -> None:
    """Queue the role change. The member's earlier change of the same role still waiting
    gives way; when it is the opposite change and was never tried, the role is still as this
    change would make it, so nothing is queued (a removal waiting behind a pause, then the
    reward earned again: the role Questlog gave is still on). Nothing for a reward without
    a role."""
    if reward.role_id is None:
        return
    wanted = "grant_role" if add else "remove_role"
    waiting = await conn.fetch(  # a refused (paused) change did nothing either
        "SELECT id, action, CASE WHEN status = 'paused' THEN 0 ELSE attempts END"
        " FROM action_outbox WHERE guild_id = $1"
        " AND discord_user_id = $2 AND connector = $3 AND action IN ('grant_role', 'remove_role')"
        " AND status IN ('pending', 'paused') AND payload->'role_id' = to_jsonb($4::bigint)"
        " ORDER BY id",
        reward.guild_id, user_id, ROLE_ACTIONS.key, reward.role_id,
    )  # fmt: skip
    if waiting:
        await conn.execute(
            "UPDATE action_outbox SET status = 'done', last_error = 'superseded by a later"
            " change', finished_at = $1, updated_at = $1 WHERE id = ANY($2::bigint[])",
            now,
            [row[0] for row in waiting],
        )
    if waiting and all(row[1] != wanted and not row[2] for row in waiting):
        return
    payload = {
        "guild_id": reward.guild_id,
        "user_id": user_id,
        "role_id": reward.role_id,
        "reason": f"Questlog reward #{reward.id}: {reward.hours} h",
    }
    await queue_action(
        conn,
        ROLE_ACTIONS,
        Action(wanted, payload),
        guild_id=reward.guild_id,
        pause_key=f"reward:{reward.id}",
        now=now,
        user_id=user_id,
    )


async def check_members(
    conn: asyncpg.Connection,
    guild_id: int,
    users: Iterable[int],
    now: datetime,
    *,
    rewards: Sequence[Reward] | None = None,
    grew: bool = False,
) -> RewardChanges:
    """Bring these members' rewards up to date: grant what they earn and do not hold, take
    away what Questlog granted that they no longer earn (``rewards``: all of the guild's).

    ``grew``: their hours just grew (an ingest), so only a reward they do not hold yet can
    change: members who lack no period reward and whose all-time hours reach no all-time
    reward they lack have nothing to gain and are not read further; what the passing days take
    away is the daily check's."""
    members = sorted(set(users))
    changes = RewardChanges()
    if rewards is None:
        rewards = await guild_rewards(conn, guild_id)
    if not members or not rewards:
        return changes
    by_id = {r.id: r for r in rewards}
    held = await _held(conn, guild_id, members)
    ever = None
    if grew:
        ever = await _all_time(conn, guild_id, members)
        members = [
            user
            for user in members
            if _may_gain(rewards, by_id, held.get(user, {}), ever.get(user, {}))
        ]
        if not members:
            return changes
    values = await _values_by_period(conn, guild_id, rewards, members, now, ever)
    for user in members:
        won = earned(rewards, {period: found.get(user, {}) for period, found in values.items()})
        have = held.get(user, {})
        keep_roles = {by_id[r].role_id for r in won}
        # The roles the member holds through a grant, and whether Questlog owns them: one a
        # grant dropped below holds is handed to a reward won here with the same role.
        holding: dict[int | None, bool] = {}
        for role, owned in have.values():
            holding[role] = holding.get(role, True) and owned
        for reward_id, seconds in won.items():
            if reward_id in have:
                continue
            reward = by_id[reward_id]
            owned = holding.get(reward.role_id, True)  # a role held already keeps its owner
            inserted = await conn.fetchval(
                "INSERT INTO reward_grants (reward_id, discord_user_id, guild_id, role_id,"
                " seconds, granted_at, owned) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                # another process's check granted it meanwhile: its change is queued there
                " ON CONFLICT (reward_id, discord_user_id) DO NOTHING RETURNING true",
                reward_id, user, guild_id, reward.role_id or 0, seconds, now, owned,
            )  # fmt: skip
            if not inserted:
                continue
            if reward.role_id not in holding:
                await _queue_role(conn, reward, user, True, now)
                holding[reward.role_id] = True
            changes.granted.append((reward, user, seconds))
        for reward_id, (role_id, owned) in have.items():
            if reward_id in won:
                continue
            await conn.execute(
                "DELETE FROM reward_grants WHERE reward_id = $1 AND discord_user_id = $2",
                reward_id,
                user,
            )
            dropped = by_id.get(reward_id)
            if dropped is None:
                continue  # a grant of a reward removed meanwhile (removed with it)
            if role_id not in keep_roles:
                if owned:  # a role the member had before stays theirs
                    await _queue_role(conn, dropped, user, False, now)
                keep_roles.add(role_id)  # one removal per role
            changes.removed.append((dropped, user))
    return changes


async def reward_events(
    conn: asyncpg.Connection, changes: RewardChanges, members: set[int], now: datetime
) -> list[ActivityEvent]:
    """The feed's ``reward.granted`` events for the grants of these members (the ones whose
    own playtime earned them now; a check after a link or a new reward is silent)."""
    events = []
    for reward, user, seconds in changes.granted:
        if user not in members:
            continue
        name = await conn.fetchval(
            "SELECT display_name FROM account_links WHERE guild_id = $1 AND discord_user_id = $2"
            " AND display_name IS NOT NULL ORDER BY source = 'discord', source COLLATE \"C\""
            " LIMIT 1",
            reward.guild_id,
            user,
        )
        game = await game_name(conn, reward.game_id) if reward.game_id else None
        events.append(
            ActivityEvent(
                type="reward.granted",
                title=f"{name or user} earned a reward for {reward.hours} h"
                + (f" in {game}" if game else ""),
                occurred_at=now,
                source="questlog",
                payload={
                    "reward_id": reward.id,
                    "role_id": reward.role_id,
                    "hours": reward.hours,
                    "game_id": reward.game_id,
                    "game_name": game,
                    "period": reward.period,
                    "seconds": seconds,
                },
                guild_id=reward.guild_id,
                actor_user_id=user,
                actor_name=name,
                external_id=f"reward:{reward.id}:{user}:{to_iso(now)}",
            )
        )
    return events


async def members_of(
    conn: asyncpg.Connection, guild_id: int, link_source: str, players: Iterable[str]
) -> list[int]:
    """The members of the guild who link any of these accounts."""
    wanted = sorted(set(players))
    if not wanted:
        return []
    rows = await conn.fetch(
        "SELECT DISTINCT discord_user_id FROM account_links WHERE guild_id = $1 AND source = $2"
        " AND external_id = ANY($3::text[]) ORDER BY discord_user_id",
        guild_id,
        link_source,
        wanted,
    )
    return [row[0] for row in rows]


async def check_players(
    conn: asyncpg.Connection,
    guild_id: int,
    link_source: str,
    players: Iterable[str],
    now: datetime,
    *,
    games: Iterable[str] | None = None,
    source: str | None = None,
    grew: bool = True,
) -> RewardChanges:
    """After these accounts' playtime in ``games`` from ``source`` changed: check the members
    who link them, when a reward of the guild counts those hours (``grew``: it only grew, so
    only what they lack can change)."""
    if not await may_have_rewards(conn, guild_id):
        return RewardChanges()
    rewards = await guild_rewards(conn, guild_id)
    if games is not None:
        grown = set(games)
        if not any(
            (r.game_id is None or r.game_id in grown) and r.source in ("any", source)
            for r in rewards
        ):
            return RewardChanges()  # nothing they earn can have changed
    users = await members_of(conn, guild_id, link_source, players)
    return await check_members(conn, guild_id, users, now, rewards=rewards, grew=grew)


async def check_linking_guilds(
    conn: asyncpg.Connection, link_source: str, external_id: str, now: datetime
) -> RewardChanges:
    """An account's global playtime changed outside the ingest path (a Steam baseline): check
    the members who link it, in every guild with rewards."""
    changes = RewardChanges()
    guilds = await conn.fetch(
        "SELECT DISTINCT l.guild_id FROM account_links l JOIN rewards r ON r.guild_id = l.guild_id"
        " WHERE l.source = $1 AND l.external_id = $2 ORDER BY l.guild_id",
        link_source,
        external_id,
    )
    for (guild_id,) in guilds:
        changes += await check_players(conn, guild_id, link_source, [external_id], now)
    return changes


async def candidates(conn: asyncpg.Connection, guild_id: int, now: datetime) -> list[int]:
    """The members a full check of the guild must look at (a read, before the writes check
    them in batches): those who earn any reward now, and those Questlog granted one."""
    rewards = await guild_rewards(conn, guild_id)
    found = {
        row[0]
        for row in await conn.fetch(
            "SELECT DISTINCT discord_user_id FROM reward_grants WHERE guild_id = $1", guild_id
        )
    }
    if rewards:
        values = await _values_by_period(conn, guild_id, rewards, None, now)
        users = {user for found_ in values.values() for user in found_}
        for user in users:
            if earned(rewards, {p: v.get(user, {}) for p, v in values.items()}):
                found.add(user)
    return sorted(found)


async def preview(
    conn: asyncpg.Connection, reward: Reward, now: datetime, limit: int = 10
) -> tuple[int, list[tuple[int, int]]]:
    """Who would earn this reward now, by itself: how many, and the first ``limit``
    (member, seconds) with the most hours."""
    days = await _days(conn, reward.period, now)
    values = await member_values(conn, reward.guild_id, None, days)
    over = sorted(
        (
            (user, seconds)
            for user, found in values.items()
            if (seconds := reward_seconds(reward, found)) >= reward.hours * 3600
        ),
        key=lambda pair: (-pair[1], pair[0]),
    )
    return len(over), over[:limit]


async def remove_reward(
    conn: asyncpg.Connection, guild_id: int, reward_id: int, *, take_back: bool, now: datetime
) -> list[int] | None:
    """Delete a reward; None when the guild has no such reward. Its waiting actions give way;
    with ``take_back`` its role is taken from every member Questlog granted it to (unless
    another of their grants holds the same role). Returns the members it was granted to."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM rewards WHERE guild_id = $1 AND reward_id = $2",
        guild_id,
        reward_id,
    )
    if row is None:
        return None
    reward = _reward(row)
    key = f"reward:{reward_id}"
    # Its grants not sent yet give way; its removals still go (their pause lifted: the key's
    # next refusal pauses them again).
    cancelled = await conn.fetch(
        "SELECT id, discord_user_id, attempts FROM action_outbox WHERE guild_id = $1"
        " AND pause_key = $2 AND status IN ('pending', 'paused') AND action = 'grant_role'"
        " ORDER BY id",
        guild_id,
        key,
    )
    if cancelled:
        await conn.execute(
            "UPDATE action_outbox SET status = 'done', last_error = 'the reward was removed',"
            " finished_at = $1, updated_at = $1 WHERE id = ANY($2::bigint[])",
            now,
            [r[0] for r in cancelled],
        )
    never_given = {r[1] for r in cancelled if not r[2]}
    # The pause first: an action another process queues behind it meanwhile (holding the
    # pause row with FOR KEY SHARE) is committed before the delete goes on, so the update
    # after it sees and resumes it.
    await conn.execute(
        "DELETE FROM action_pauses WHERE guild_id = $1 AND pause_key = $2", guild_id, key
    )
    await conn.execute(
        "UPDATE action_outbox SET status = 'pending', next_attempt_at = $1, updated_at = $1"
        " WHERE guild_id = $2 AND pause_key = $3 AND status = 'paused'",
        now,
        guild_id,
        key,
    )
    grants = await conn.fetch(
        "SELECT discord_user_id, owned FROM reward_grants WHERE reward_id = $1"
        " ORDER BY discord_user_id",
        reward_id,
    )
    holders = [g[0] for g in grants]
    await conn.execute("DELETE FROM reward_grants WHERE reward_id = $1", reward_id)
    await conn.execute("DELETE FROM rewards WHERE reward_id = $1", reward_id)
    # Members who hold the same role through another reward keep it; one whose grant of it
    # was this reward's and never sent gets it under the other reward instead.
    others = {r.id: r for r in await guild_rewards(conn, guild_id)}
    still: dict[int, Reward] = {}
    for user, other_id in await conn.fetch(
        "SELECT discord_user_id, reward_id FROM reward_grants WHERE guild_id = $1"
        " AND role_id = $2 ORDER BY reward_id, discord_user_id",
        guild_id,
        reward.role_id,
    ):
        if other_id in others:
            still.setdefault(user, others[other_id])
    for user in sorted({r[1] for r in cancelled} & set(still)):
        await _queue_role(conn, still[user], user, True, now)
    if take_back:
        for user, owned in grants:
            if owned and user not in still and user not in never_given:
                await _queue_role(conn, reward, user, False, now)
    return holders


async def reward_summaries(conn: asyncpg.Connection, guild_id: int) -> list[RewardSummary]:
    rows = await conn.fetch(
        f"SELECT {', '.join('r.' + c for c in _COLUMNS.split(', '))},"
        " (SELECT count(*) FROM reward_grants g WHERE g.reward_id = r.reward_id),"
        " (SELECT count(*) FROM action_outbox o WHERE o.guild_id = $1"
        f" AND o.pause_key = 'reward:' || r.reward_id AND o.status IN {_WAITING}),"
        " p.reason, p.paused_at FROM rewards r LEFT JOIN action_pauses p"
        " ON p.guild_id = $1 AND p.pause_key = 'reward:' || r.reward_id"
        " WHERE r.guild_id = $1 ORDER BY r.reward_id",
        guild_id,
    )
    return [
        RewardSummary(
            _reward(row),
            int(row[13]),
            int(row[14]),
            row[15],
            None if row[16] is None else to_iso(row[16]),
        )
        for row in rows
    ]


class PgRewards:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def add(
        self,
        *,
        guild_id: int,
        role_id: int | None,
        hours: int,
        game_id: str | None,
        period: str,
        source: str,
        mode: str,
        created_by: int | None,
        now: datetime,
        squad_group: str | None = None,
        squad_permissions: str | None = None,
        counting: str = "active",
    ) -> Reward:
        return await self._db.write(
            lambda c: add_reward(
                c, guild_id=guild_id, role_id=role_id, hours=hours, game_id=game_id,
                period=period, source=source, mode=mode, created_by=created_by, now=now,
                squad_group=squad_group, squad_permissions=squad_permissions,
                counting=counting,
            )
        )  # fmt: skip

    async def list(self, guild_id: int) -> list[Reward]:
        return await self._db.read(lambda c: guild_rewards(c, guild_id))

    async def summaries(self, guild_id: int) -> list[RewardSummary]:
        return await self._db.read(lambda c: reward_summaries(c, guild_id))

    async def guilds(self) -> list[int]:
        async def fn(conn: asyncpg.Connection) -> list[int]:
            rows = await conn.fetch("SELECT DISTINCT guild_id FROM rewards ORDER BY guild_id")
            return [row[0] for row in rows]

        return await self._db.read(fn)

    async def candidates(self, guild_id: int, now: datetime) -> list[int]:
        async def fn(conn: asyncpg.Connection) -> list[int]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await candidates(conn, guild_id, now)

        return await self._db.read(fn)

    async def check(self, guild_id: int, users: Sequence[int], now: datetime) -> RewardChanges:
        return await self._db.write(lambda c: check_members(c, guild_id, users, now))

    async def preview(
        self, reward: Reward, now: datetime, limit: int = 10
    ) -> tuple[int, list[tuple[int, int]]]:
        async def fn(conn: asyncpg.Connection) -> tuple[int, list[tuple[int, int]]]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return await preview(conn, reward, now, limit)

        return await self._db.read(fn)

    async def remove(
        self, guild_id: int, reward_id: int, *, take_back: bool, now: datetime
    ) -> list[int] | None:
        return await self._db.write(
            lambda c: remove_reward(c, guild_id, reward_id, take_back=take_back, now=now)
        )

    async def known_game(self, guild_id: int, game_id: str) -> bool:
        """Whether the game has playtime in the guild or a known name (a reward's game)."""

        async def fn(conn: asyncpg.Connection) -> bool:
            found = await conn.fetchval(
                "SELECT 1 FROM guild_games WHERE guild_id = $1 AND game_id = $2"
                " UNION ALL SELECT 1 FROM games WHERE game_id = $2 LIMIT 1",
                guild_id,
                game_id,
            )
            return found is not None

        return await self._db.read(fn)

    async def forget_grants(self, guild_id: int, user_id: int) -> int:
        """A member came back to the server (their roles are gone): their grants go, and the
        next check grants what they earn again."""

        async def op(conn: asyncpg.Connection) -> int:
            return _count(
                await conn.execute(
                    "DELETE FROM reward_grants WHERE guild_id = $1 AND discord_user_id = $2",
                    guild_id,
                    user_id,
                )
            )

        return await self._db.write(op)
