"""Role rewards in SQLite (``rewards``, ``reward_grants``): which members earn which reward,
and the role actions that follow, queued in the caller's transaction.

A member's hours for a reward are read from the summaries the playtime writers keep, from the
links that count in the guild (an unproven Steam link does not where verification is
required): all time from ``member_playtime``; a period from the local days of their accounts in
``playtime_daily``. Per game the sources are compared, never added (Steam and BattleMetrics
report the same Squad hours); a member's accounts of one source add up. Without a game, the
member's best game counts.

A check compares what a member earns with what Questlog granted them: a reward newly earned
queues ``grant_role`` and records the grant; one no longer earned (a period that moved on, a
higher tier in replace mode, an unlinked account) queues ``remove_role`` and drops it. A role
still held through another grant is neither granted again nor taken away, and a change
supersedes the member's earlier, not yet sent, action on the same role, so the last decision
is the one carried out. Questlog only ever takes away a role it has a grant row for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.clock import PERIODS, Period, period_days, to_iso
from bot.storage.actions import queue_action
from bot.storage.endpoints import ensure_guild
from bot.storage.engine import Database, chunks
from bot.storage.playtime import (
    LINK_COUNTS,
    PLAYTIME_OF_LINK,
    game_name,
    summary_zone,
)
from bot.storage.records import GLOBAL_SCOPE, Reward, RewardChanges, RewardSummary
from connectors.base import Action, ActivityEvent
from connectors.discord.connector import DiscordConnector

#: ``any``, or one playtime source (PLAYTIME_OF_LINK).
REWARD_SOURCES = ("any", *dict.fromkeys(source for _, source, _ in PLAYTIME_OF_LINK))
REWARD_MODES = ("stack", "replace")
#: What a reward counts: active time (AFK and idle time left out) or the total.
REWARD_COUNTS = ("active", "total")
MAX_REWARDS = 25  # per guild: /rewards list fits one message, a check stays cheap
#: The connector that declares grant_role and remove_role (its handlers are the core's).
ROLE_ACTIONS = DiscordConnector()
_COLUMNS = (
    "reward_id, guild_id, role_id, hours, game_id, period, source, mode, created_at, created_by,"
    " squad_group, squad_permissions, counting"
)

#: (game, source) -> (active seconds, away seconds): the total is their sum.
Values = dict[tuple[str, str], tuple[int, int]]


def _reward(row: Sequence[object]) -> Reward:
    reward = Reward(*row)  # type: ignore[arg-type]
    if not reward.role_id:  # 0: a reward without a role (migration 0031)
        return dataclasses.replace(reward, role_id=None)
    return reward


def guild_rewards(conn: sqlite3.Connection, guild_id: int) -> list[Reward]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM rewards WHERE guild_id = ? ORDER BY reward_id", (guild_id,)
    ).fetchall()
    return [_reward(row) for row in rows]


def may_have_rewards(conn: sqlite3.Connection, guild_id: int) -> bool:
    """Whether the guild may have rewards: False only when it has none. The ingest path asks
    for every webhook, and nearly every guild has none: the guilds with rewards are read once
    per connection (engine.Connection keeps them) and every reward this connection adds joins
    them. They only grow (one removed, or rolled back, costs a needless check), and rewards
    are only written through the writer; any other connection reads the table each time."""
    known: set[int] | None = getattr(conn, "reward_guilds", None)
    if known is None:
        known = {row[0] for row in conn.execute("SELECT DISTINCT guild_id FROM rewards")}
        with contextlib.suppress(AttributeError):  # not an engine.Connection: nothing kept
            conn.reward_guilds = known  # type: ignore[attr-defined]
    return guild_id in known


def add_reward(
    conn: sqlite3.Connection,
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
    ensure_guild(conn, guild_id, now)
    known: set[int] | None = getattr(conn, "reward_guilds", None)
    if known is not None:
        known.add(guild_id)
    values = (guild_id, role_id or 0, hours, game_id, period, source, mode, created_by,
              to_iso(now), squad_group, squad_permissions, counting)  # fmt: skip
    cur = conn.execute(
        "INSERT INTO rewards (guild_id, role_id, hours, game_id, period, source, mode,"
        " created_by, created_at, squad_group, squad_permissions, counting)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM rewards WHERE reward_id = ?", (cur.lastrowid,)
    ).fetchone()
    return _reward(row)


def member_values(
    conn: sqlite3.Connection,
    guild_id: int,
    users: Sequence[int] | None,
    days: tuple[str, str] | None,
) -> dict[int, Values]:
    """(Active, away) seconds per (game, source) of these members (every member when None):
    all time, or played on the local days ``days`` (first and last included)."""
    if days is None:
        return _all_time(conn, guild_id, users)
    return _ranged(conn, guild_id, users, {"days": days})["days"]


def _all_time(
    conn: sqlite3.Connection, guild_id: int, users: Sequence[int] | None
) -> dict[int, Values]:
    found: dict[int, Values] = {}
    for batch in [None] if users is None else chunks(users):
        # Members' rows by the member index (the planner would read all of the guild's).
        by = "" if batch is None else " INDEXED BY member_playtime_member"
        sql = (
            "SELECT discord_user_id, game_id, source, seconds, away_seconds"
            f" FROM member_playtime{by}"
            " WHERE guild_id = ? AND (seconds > 0 OR away_seconds > 0)"
        )
        params: list[object] = [guild_id]
        if batch is not None:
            sql += f" AND discord_user_id IN ({','.join('?' * len(batch))})"
            params += batch
        for user, game, source, seconds, away in conn.execute(sql, params):
            found.setdefault(user, {})[game, source] = (seconds, away)
    return found


@functools.lru_cache(maxsize=16)
def _account_days(ranges: int) -> str:
    """One account's active seconds per game in each of ``ranges`` ranges of days, then its
    away seconds in each, summed by SQLite in one pass over its days (by the per-player
    index: the planner would read every row of the scope by the primary key). Parameters:
    each range's first and last day twice over, then scope, source, player and the first and
    last day of them all."""
    sums = ", ".join(
        f"sum(CASE WHEN day >= ? AND day <= ? THEN {column} ELSE 0 END)"
        for column in ("seconds", "away_seconds")
        for _ in range(ranges)
    )
    return (
        f"SELECT game_id, {sums} FROM playtime_daily INDEXED BY playtime_daily_player"
        " WHERE scope_guild_id = ? AND source = ? AND player_id = ? AND day >= ? AND day <= ?"
        " GROUP BY game_id"
    )


def _ranged(
    conn: sqlite3.Connection,
    guild_id: int,
    users: Sequence[int] | None,
    ranges: dict[str, tuple[str, str]],
) -> dict[str, dict[int, Values]]:
    """Per named range of local days, (active, away) seconds per (game, source) of these
    members: each counting link's days are read once, over all the ranges together."""
    found: dict[str, dict[int, Values]] = {name: {} for name in ranges}
    if not ranges:
        return found
    names = list(ranges)
    first = min(a for a, _ in ranges.values())
    last = max(b for _, b in ranges.values())
    per_game = _account_days(len(names))
    bounds = [day for name in names for day in ranges[name]] * 2
    links: list[tuple[int, str, str]] = []
    for batch in [None] if users is None else chunks(users):
        sql = (
            "SELECT l.discord_user_id, l.source, l.external_id FROM account_links l"
            " WHERE l.guild_id = ? AND " + LINK_COUNTS
        )
        params: list[object] = [guild_id]
        if batch is not None:
            sql += f" AND l.discord_user_id IN ({','.join('?' * len(batch))})"
            params += batch
        links += conn.execute(sql, params).fetchall()
    for user, link_source, external in links:
        for wanted, source, is_global in PLAYTIME_OF_LINK:
            if wanted != link_source:
                continue
            scope = GLOBAL_SCOPE if is_global else guild_id
            for game, *sums in conn.execute(
                per_game, (*bounds, scope, source, external, first, last)
            ):
                count = len(names)
                for name, seconds, away in zip(names, sums[:count], sums[count:], strict=True):
                    if seconds or away:
                        values = found[name].setdefault(user, {})
                        had, had_away = values.get((game, source), (0, 0))
                        values[game, source] = (had + seconds, had_away + away)
    return found


def reward_seconds(reward: Reward, values: Values) -> int:
    """The member's hours (in seconds) that count for the reward: its game's (else their best
    game's) best source, or its one source; active time, or the total where the reward counts
    it."""
    best = 0
    total = reward.counting == "total"
    for (game, source), (seconds, away) in values.items():
        if reward.game_id is not None and game != reward.game_id:
            continue
        if reward.source != "any" and source != reward.source:
            continue
        best = max(best, seconds + away if total else seconds)
    return best


def earned(rewards: Sequence[Reward], values: dict[str, Values]) -> dict[int, int]:
    """reward id -> seconds, for the rewards these values (per period) earn; in replace mode
    only the highest earned reward of each tier (game and period)."""
    won = {
        r.id: seconds
        for r in rewards
        if (seconds := reward_seconds(r, values.get(r.period, {}))) >= r.hours * 3600
    }
    tiers: dict[tuple[str | None, str], Reward] = {}
    for reward in rewards:
        if reward.mode != "replace" or reward.id not in won:
            continue
        key = (reward.game_id, reward.period)
        top = tiers.get(key)
        if top is None or (reward.hours, -reward.id) > (top.hours, -top.id):
            if top is not None:
                del won[top.id]
            tiers[key] = reward
        else:
            del won[reward.id]
    return won


def _days(
    conn: sqlite3.Connection, period: str, now: datetime, zone: ZoneInfo | None = None
) -> tuple[str, str] | None:
    found = period_days(_period(period), now, zone or summary_zone(conn))
    return None if found is None else (found[0].isoformat(), found[1].isoformat())


def _period(period: str) -> Period:
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}")
    return period  # type: ignore[return-value]


def _values_by_period(
    conn: sqlite3.Connection,
    guild_id: int,
    rewards: Sequence[Reward],
    users: Sequence[int] | None,
    now: datetime,
    ever: dict[int, Values] | None = None,
) -> dict[str, dict[int, Values]]:
    """Per period of the rewards, the members' values (``ever``: their all-time ones, if read
    already)."""
    periods = sorted({r.period for r in rewards})
    zone = summary_zone(conn) if any(p != "all" for p in periods) else None
    ranges = {p: days for p in periods if (days := _days(conn, p, now, zone)) is not None}
    found = _ranged(conn, guild_id, users, ranges)
    if "all" in periods:
        found["all"] = ever if ever is not None else _all_time(conn, guild_id, users)
    return found


def _held(
    conn: sqlite3.Connection, guild_id: int, users: Sequence[int]
) -> dict[int, dict[int, tuple[int, bool]]]:
    """member -> {reward id: (role id, owned)} of the grants Questlog made; not owned: the
    member had the role already when it was granted."""
    held: dict[int, dict[int, tuple[int, bool]]] = {}
    for batch in chunks(users):
        for reward_id, user, role_id, owned in conn.execute(
            "SELECT reward_id, discord_user_id, role_id, owned FROM reward_grants"
            f" WHERE guild_id = ? AND discord_user_id IN ({','.join('?' * len(batch))})",
            (guild_id, *batch),
        ):
            held.setdefault(user, {})[reward_id] = (role_id, bool(owned))
    return held


def _queue_role(
    conn: sqlite3.Connection, reward: Reward, user_id: int, add: bool, now: datetime
) -> None:
    """Queue the role change. The member's earlier change of the same role still waiting
    gives way; when it is the opposite change and was never tried, the role is still as this
    change would make it, so nothing is queued (a removal waiting behind a pause, then the
    reward earned again: the role Questlog gave is still on). Nothing for a reward without
    a role."""
    if reward.role_id is None:
        return
    stamp = to_iso(now)
    wanted = "grant_role" if add else "remove_role"
    waiting = conn.execute(  # a refused (paused) change did nothing either
        "SELECT id, action, CASE WHEN status = 'paused' THEN 0 ELSE attempts END"
        " FROM action_outbox WHERE guild_id = ?"
        " AND discord_user_id = ? AND connector = ? AND action IN ('grant_role', 'remove_role')"
        " AND status IN ('pending', 'paused') AND json_extract(payload, '$.role_id') = ?",
        (reward.guild_id, user_id, ROLE_ACTIONS.key, reward.role_id),
    ).fetchall()
    for action_id, _, _ in waiting:
        conn.execute(
            "UPDATE action_outbox SET status = 'done', last_error = 'superseded by a later"
            " change', finished_at = ?, updated_at = ? WHERE id = ?",
            (stamp, stamp, action_id),
        )
    if waiting and all(action != wanted and not attempts for _, action, attempts in waiting):
        return
    payload = {
        "guild_id": reward.guild_id,
        "user_id": user_id,
        "role_id": reward.role_id,
        "reason": f"Questlog reward #{reward.id}: {reward.hours} h",
    }
    queue_action(
        conn,
        ROLE_ACTIONS,
        Action(wanted, payload),
        guild_id=reward.guild_id,
        pause_key=f"reward:{reward.id}",
        now=now,
        user_id=user_id,
    )


def check_members(
    conn: sqlite3.Connection,
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
        rewards = guild_rewards(conn, guild_id)
    if not members or not rewards:
        return changes
    by_id = {r.id: r for r in rewards}
    held = _held(conn, guild_id, members)
    ever = None
    if grew:
        ever = _all_time(conn, guild_id, members)
        members = [
            user
            for user in members
            if _may_gain(rewards, by_id, held.get(user, {}), ever.get(user, {}))
        ]
        if not members:
            return changes
    values = _values_by_period(conn, guild_id, rewards, members, now, ever)
    stamp = to_iso(now)
    for user in members:
        won = earned(rewards, {period: found.get(user, {}) for period, found in values.items()})
        have = held.get(user, {})
        keep_roles = {by_id[r].role_id for r in won}
        # The roles the member holds through a grant, and whether Questlog owns them: one a
        # grant dropped below holds is handed to a reward won here with the same role.
        holding: dict[int, bool] = {}
        for role, owned in have.values():
            holding[role] = holding.get(role, True) and owned
        for reward_id, seconds in won.items():
            if reward_id in have:
                continue
            reward = by_id[reward_id]
            owned = holding.get(reward.role_id, True)  # a role held already keeps its owner
            conn.execute(
                "INSERT INTO reward_grants (reward_id, discord_user_id, guild_id, role_id,"
                " seconds, granted_at, owned) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (reward_id, user, guild_id, reward.role_id or 0, seconds, stamp, int(owned)),
            )
            if reward.role_id not in holding:
                _queue_role(conn, reward, user, True, now)
                holding[reward.role_id] = True
            changes.granted.append((reward, user, seconds))
        for reward_id, (role_id, owned) in have.items():
            if reward_id in won:
                continue
            conn.execute(
                "DELETE FROM reward_grants WHERE reward_id = ? AND discord_user_id = ?",
                (reward_id, user),
            )
            reward = by_id.get(reward_id)
            if reward is None:
                continue  # a grant of a reward removed meanwhile (removed with it)
            if role_id not in keep_roles:
                if owned:  # a role the member had before stays theirs
                    _queue_role(conn, reward, user, False, now)
                keep_roles.add(role_id)  # one removal per role
            changes.removed.append((reward, user))
    return changes


def _may_gain(
    rewards: Sequence[Reward],
    by_id: dict[int, Reward],
    have: dict[int, tuple[int, bool]],
    ever: Values,
) -> bool:
    """Whether the member may gain a reward not held (in replace mode, one above their tier):
    an all-time reward when their all-time hours ``ever`` reach it; a period reward always
    (a period's hours can exceed all time's: a server that reset its totals, a member who
    paused collecting while a shared Steam account went on)."""
    tops: dict[tuple[str | None, str], int] = {}
    for reward_id in have:
        held = by_id.get(reward_id)
        if held is not None and held.mode == "replace":
            key = (held.game_id, held.period)
            tops[key] = max(tops.get(key, 0), held.hours)
    return any(
        r.id not in have
        and (r.mode != "replace" or r.hours > tops.get((r.game_id, r.period), 0))
        and (r.period != "all" or reward_seconds(r, ever) >= r.hours * 3600)
        for r in rewards
    )


def reward_events(
    conn: sqlite3.Connection, changes: RewardChanges, members: set[int], now: datetime
) -> list[ActivityEvent]:
    """The feed's ``reward.granted`` events for the grants of these members (the ones whose
    own playtime earned them now; a check after a link or a new reward is silent)."""
    events = []
    for reward, user, seconds in changes.granted:
        if user not in members:
            continue
        named = conn.execute(
            "SELECT display_name FROM account_links WHERE guild_id = ? AND discord_user_id = ?"
            " AND display_name IS NOT NULL ORDER BY source = 'discord', source LIMIT 1",
            (reward.guild_id, user),
        ).fetchone()
        name = named[0] if named else None
        game = game_name(conn, reward.game_id) if reward.game_id else None
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


def members_of(
    conn: sqlite3.Connection, guild_id: int, link_source: str, players: Iterable[str]
) -> list[int]:
    """The members of the guild who link any of these accounts."""
    wanted = sorted(set(players))
    if not wanted:
        return []
    rows = conn.execute(
        "SELECT DISTINCT discord_user_id FROM account_links WHERE guild_id = ? AND source = ?"
        f" AND external_id IN ({','.join('?' * len(wanted))})",
        (guild_id, link_source, *wanted),
    ).fetchall()
    return [row[0] for row in rows]


def check_players(
    conn: sqlite3.Connection,
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
    if not may_have_rewards(conn, guild_id):
        return RewardChanges()
    rewards = guild_rewards(conn, guild_id)
    if games is not None:
        grown = set(games)
        if not any(
            (r.game_id is None or r.game_id in grown) and r.source in ("any", source)
            for r in rewards
        ):
            return RewardChanges()  # nothing they earn can have changed
    users = members_of(conn, guild_id, link_source, players)
    return check_members(conn, guild_id, users, now, rewards=rewards, grew=grew)


def check_linking_guilds(
    conn: sqlite3.Connection, link_source: str, external_id: str, now: datetime
) -> RewardChanges:
    """An account's global playtime changed outside the ingest path (a Steam baseline): check
    the members who link it, in every guild with rewards."""
    changes = RewardChanges()
    guilds = conn.execute(
        "SELECT DISTINCT l.guild_id FROM account_links l JOIN rewards r ON r.guild_id = l.guild_id"
        " WHERE l.source = ? AND l.external_id = ?",
        (link_source, external_id),
    ).fetchall()
    for (guild_id,) in guilds:
        changes += check_players(conn, guild_id, link_source, [external_id], now)
    return changes


def candidates(conn: sqlite3.Connection, guild_id: int, now: datetime) -> list[int]:
    """The members a full check of the guild must look at (a read, before the writes check
    them in batches): those who earn any reward now, and those Questlog granted one."""
    rewards = guild_rewards(conn, guild_id)
    found = {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT discord_user_id FROM reward_grants WHERE guild_id = ?", (guild_id,)
        )
    }
    if rewards:
        values = _values_by_period(conn, guild_id, rewards, None, now)
        users = {user for found_ in values.values() for user in found_}
        for user in users:
            if earned(rewards, {p: v.get(user, {}) for p, v in values.items()}):
                found.add(user)
    return sorted(found)


def preview(
    conn: sqlite3.Connection, reward: Reward, now: datetime, limit: int = 10
) -> tuple[int, list[tuple[int, int]]]:
    """Who would earn this reward now, by itself: how many, and the first ``limit``
    (member, seconds) with the most hours."""
    values = member_values(conn, reward.guild_id, None, _days(conn, reward.period, now))
    over = sorted(
        (
            (user, seconds)
            for user, found in values.items()
            if (seconds := reward_seconds(reward, found)) >= reward.hours * 3600
        ),
        key=lambda pair: (-pair[1], pair[0]),
    )
    return len(over), over[:limit]


def remove_reward(
    conn: sqlite3.Connection, guild_id: int, reward_id: int, *, take_back: bool, now: datetime
) -> list[int] | None:
    """Delete a reward; None when the guild has no such reward. Its waiting actions give way;
    with ``take_back`` its role is taken from every member Questlog granted it to (unless
    another of their grants holds the same role). Returns the members it was granted to."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM rewards WHERE guild_id = ? AND reward_id = ?",
        (guild_id, reward_id),
    ).fetchone()
    if row is None:
        return None
    reward = _reward(row)
    stamp = to_iso(now)
    key = f"reward:{reward_id}"
    # Its grants not sent yet give way; its removals still go (their pause lifted: the key's
    # next refusal pauses them again).
    cancelled = conn.execute(
        "SELECT id, discord_user_id, attempts FROM action_outbox WHERE guild_id = ?"
        " AND pause_key = ? AND status IN ('pending', 'in_flight', 'paused')"
        " AND status <> 'in_flight' AND action = 'grant_role'",
        (guild_id, key),
    ).fetchall()
    for action_id, _, _ in cancelled:
        conn.execute(
            "UPDATE action_outbox SET status = 'done', last_error = 'the reward was removed',"
            " finished_at = ?, updated_at = ? WHERE id = ?",
            (stamp, stamp, action_id),
        )
    never_given = {user for _, user, attempts in cancelled if not attempts}
    conn.execute(
        "UPDATE action_outbox SET status = 'pending', next_attempt_at = ?, updated_at = ?"
        " WHERE guild_id = ? AND pause_key = ? AND status IN ('pending', 'in_flight', 'paused')"
        " AND status = 'paused'",
        (stamp, stamp, guild_id, key),
    )
    conn.execute("DELETE FROM action_pauses WHERE guild_id = ? AND pause_key = ?", (guild_id, key))
    grants = conn.execute(
        "SELECT discord_user_id, owned FROM reward_grants WHERE reward_id = ?"
        " ORDER BY discord_user_id",
        (reward_id,),
    ).fetchall()
    holders = [row[0] for row in grants]
    conn.execute("DELETE FROM reward_grants WHERE reward_id = ?", (reward_id,))
    conn.execute("DELETE FROM rewards WHERE reward_id = ?", (reward_id,))
    # Members who hold the same role through another reward keep it; one whose grant of it
    # was this reward's and never sent gets it under the other reward instead.
    others = {r.id: r for r in guild_rewards(conn, guild_id)}
    still: dict[int, Reward] = {}
    for user, other_id in conn.execute(
        "SELECT discord_user_id, reward_id FROM reward_grants WHERE guild_id = ? AND role_id = ?",
        (guild_id, reward.role_id),
    ):
        if other_id in others:
            still.setdefault(user, others[other_id])
    for user in sorted({user for _, user, _ in cancelled} & set(still)):
        _queue_role(conn, still[user], user, True, now)
    if take_back:
        for user, owned in grants:
            if owned and user not in still and user not in never_given:
                _queue_role(conn, reward, user, False, now)
    return holders


def reward_summaries(conn: sqlite3.Connection, guild_id: int) -> list[RewardSummary]:
    found = []
    for reward in guild_rewards(conn, guild_id):
        key = f"reward:{reward.id}"
        holders = conn.execute(
            "SELECT count(*) FROM reward_grants WHERE reward_id = ?", (reward.id,)
        ).fetchone()[0]
        waiting = conn.execute(  # by action_outbox_key (migration 0029)
            "SELECT count(*) FROM action_outbox WHERE guild_id = ? AND pause_key = ?"
            " AND status IN ('pending', 'in_flight', 'paused')",
            (guild_id, key),
        ).fetchone()[0]
        pause = conn.execute(
            "SELECT reason, paused_at FROM action_pauses WHERE guild_id = ? AND pause_key = ?",
            (guild_id, key),
        ).fetchone()
        found.append(
            RewardSummary(
                reward, holders, waiting, pause[0] if pause else None, pause[1] if pause else None
            )
        )
    return found


class SqliteRewards:
    def __init__(self, db: Database) -> None:
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
        rows = await self._db.fetchall("SELECT DISTINCT guild_id FROM rewards ORDER BY guild_id")
        return [row[0] for row in rows]

    async def candidates(self, guild_id: int, now: datetime) -> list[int]:
        return await self._db.read(lambda c: candidates(c, guild_id, now))

    async def check(self, guild_id: int, users: Sequence[int], now: datetime) -> RewardChanges:
        return await self._db.write(lambda c: check_members(c, guild_id, users, now))

    async def preview(
        self, reward: Reward, now: datetime, limit: int = 10
    ) -> tuple[int, list[tuple[int, int]]]:
        return await self._db.read(lambda c: preview(c, reward, now, limit))

    async def remove(
        self, guild_id: int, reward_id: int, *, take_back: bool, now: datetime
    ) -> list[int] | None:
        return await self._db.write(
            lambda c: remove_reward(c, guild_id, reward_id, take_back=take_back, now=now)
        )

    async def known_game(self, guild_id: int, game_id: str) -> bool:
        """Whether the game has playtime in the guild or a known name (a reward's game)."""
        row = await self._db.fetchone(
            "SELECT 1 FROM guild_games WHERE guild_id = ? AND game_id = ?"
            " UNION ALL SELECT 1 FROM games WHERE game_id = ? LIMIT 1",
            (guild_id, game_id, game_id),
        )
        return row is not None

    async def forget_grants(self, guild_id: int, user_id: int) -> int:
        """A member came back to the server (their roles are gone): their grants go, and the
        next check grants what they earn again."""
        return await self._db.write(
            lambda c: (
                c.execute(
                    "DELETE FROM reward_grants WHERE guild_id = ? AND discord_user_id = ?",
                    (guild_id, user_id),
                ).rowcount
            )
        )
