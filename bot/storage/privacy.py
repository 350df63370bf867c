"""What Questlog stores about one member in one guild: counted (``/privacy show``), exported
(``/privacy export``), and forgotten (``/privacy delete``, ``/admin forget``, ``questlog
forget``); and the member's privacy choices (``/privacy off|on``, ``/privacy presence``).

Every table that holds member data is in ``MEMBER_TABLES``, and each is read by the export and
emptied by ``forget_member``; a test fails when a new table with a member's or a player's id is
missing from the list."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.clock import to_iso
from bot.storage.endpoints import ensure_guild
from bot.storage.engine import Database, chunks
from bot.storage.events import WITHHELD_PAYLOAD
from bot.storage.playtime import PLAYTIME_OF_LINK, local_day, periods_of, summary_zone
from bot.storage.records import GLOBAL_SCOPE, ForgetReport, PrivacyChoice, PrivacySummary
from bot.storage.stats import linked_keys

#: Tables with rows about a member (directly, or through their linked accounts).
MEMBER_TABLES = (
    "account_links", "link_codes", "link_notices", "member_playtime", "member_privacy",
    "sessions", "activity_events", "feed_outbox", "feed_batches", "raw_events",
    "discord_tokens", "oauth_states", "playtime", "playtime_daily", "playtime_periods",
    "playtime_samples", "milestones", "steam_accounts", "steam_achievements",
    "steam_achievement_games", "steam_pending_checks", "action_outbox", "reward_grants",
    "rewards",
)  # fmt: skip
#: What stands in a posted feed message's stored copy for an embed about a forgotten member, so
#: a later edit of that message (another event's update) also takes it out of Discord.
REMOVED_EMBED = {"description": "\u2014"}
_STEAM_TABLES = (
    "steam_accounts",
    "steam_achievements",
    "steam_achievement_games",
    "steam_pending_checks",
)


def privacy_choice(conn: sqlite3.Connection, guild_id: int, user_id: int) -> PrivacyChoice:
    row = conn.execute(
        "SELECT collecting, presence FROM member_privacy WHERE guild_id = ? AND discord_user_id = ?",
        (guild_id, user_id),
    ).fetchone()
    if row is None:
        return PrivacyChoice()
    return PrivacyChoice(bool(row[0]), None if row[1] is None else bool(row[1]))


def set_privacy_choice(
    conn: sqlite3.Connection, guild_id: int, user_id: int, choice: PrivacyChoice, now: datetime
) -> bool:
    """Store the member's choices (a row only while they differ from the defaults); whether
    anything changed."""
    if privacy_choice(conn, guild_id, user_id) == choice:
        return False
    if choice == PrivacyChoice():
        conn.execute(
            "DELETE FROM member_privacy WHERE guild_id = ? AND discord_user_id = ?",
            (guild_id, user_id),
        )
        return True
    ensure_guild(conn, guild_id, now)
    presence = None if choice.presence is None else int(choice.presence)
    conn.execute(
        "INSERT INTO member_privacy (guild_id, discord_user_id, collecting, presence, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, discord_user_id) DO UPDATE SET"
        " collecting = excluded.collecting, presence = excluded.presence,"
        " updated_at = excluded.updated_at",
        (guild_id, user_id, int(choice.collecting), presence, to_iso(now)),
    )
    return True


def presence_default(conn: sqlite3.Connection, guild_id: int) -> bool:
    row = conn.execute("SELECT presence_default FROM guilds WHERE guild_id = ?", (guild_id,))
    found = row.fetchone()
    return bool(found and found[0])


def set_presence_default(conn: sqlite3.Connection, guild_id: int, on: bool, now: datetime) -> bool:
    if presence_default(conn, guild_id) == on:
        return False
    ensure_guild(conn, guild_id, now)
    conn.execute(
        "UPDATE guilds SET presence_default = ?, updated_at = ? WHERE guild_id = ?",
        (int(on), to_iso(now), guild_id),
    )
    return True


def privacy_summary(conn: sqlite3.Connection, guild_id: int, user_id: int) -> PrivacySummary:
    links = conn.execute(
        "SELECT source, external_id, verified_by FROM account_links"
        " WHERE guild_id = ? AND discord_user_id = ? ORDER BY source, external_id",
        (guild_id, user_id),
    ).fetchall()
    sessions = samples = 0
    for source, scope, external in linked_keys(conn, guild_id, user_id):
        sessions += conn.execute(
            "SELECT count(*) FROM sessions WHERE guild_id = ? AND source = ? AND player_id = ?",
            (scope, source, external),
        ).fetchone()[0]
        samples += conn.execute(
            "SELECT count(*) FROM playtime_samples WHERE scope_guild_id = ? AND player_id = ?"
            " AND source = ?",
            (scope, external, source),
        ).fetchone()[0]
    events = conn.execute(
        "SELECT count(*) FROM activity_events WHERE guild_id = ? AND actor_user_id = ?",
        (guild_id, user_id),
    ).fetchone()[0]
    tokens = conn.execute(
        "SELECT 1 FROM discord_tokens WHERE discord_user_id = ?", (user_id,)
    ).fetchone()
    return PrivacySummary(
        links=[(r[0], r[1], r[2]) for r in links],
        sessions=int(sessions),
        samples=int(samples),
        events=int(events),
        tokens=tokens is not None,
    )


class SqlitePrivacy:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def summary(self, guild_id: int, user_id: int) -> PrivacySummary:
        return await self._db.read(lambda c: privacy_summary(c, guild_id, user_id))

    async def export(self, guild_id: int, user_id: int) -> dict[str, object]:
        """Everything stored about the member in the guild (one read transaction)."""
        return await self._db.read(lambda c: privacy_export(c, guild_id, user_id))

    async def choice(self, guild_id: int, user_id: int) -> PrivacyChoice:
        return await self._db.read(lambda c: privacy_choice(c, guild_id, user_id))

    async def set_choice(
        self, guild_id: int, user_id: int, choice: PrivacyChoice, now: datetime
    ) -> bool:
        return await self._db.write(lambda c: set_privacy_choice(c, guild_id, user_id, choice, now))

    async def presence_default(self, guild_id: int) -> bool:
        return await self._db.read(lambda c: presence_default(c, guild_id))

    async def set_presence_default(self, guild_id: int, on: bool, now: datetime) -> bool:
        return await self._db.write(lambda c: set_presence_default(c, guild_id, on, now))

    async def forget(
        self, guild_id: int, user_id: int, now: datetime, *, drop_tokens: bool
    ) -> ForgetReport:
        """forget_member in one write transaction. The searches that scan (the guild's raw
        events, samples, sessions and weeks and months, which have no index by player) run
        first in a read, which does not hold the writer up; the write removes what they found
        by key, and looks only at what arrived since."""
        plan = await self._db.read(lambda c: find_member_rows(c, guild_id, user_id, now))

        def op(conn: sqlite3.Connection) -> ForgetReport:
            secure = conn.execute("PRAGMA secure_delete").fetchone()[0]
            conn.execute("PRAGMA secure_delete = ON")  # deleted rows are zeroed in the file
            try:
                return forget_member(
                    conn, guild_id, user_id, now, drop_tokens=drop_tokens, plan=plan
                )
            finally:
                conn.execute(f"PRAGMA secure_delete = {int(secure)}")

        return await self._db.write(op)


def _rows(
    conn: sqlite3.Connection, sql: str, params: tuple[object, ...]
) -> list[dict[str, object]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def privacy_export(conn: sqlite3.Connection, guild_id: int, user_id: int) -> dict[str, object]:
    """Everything stored about the member in the guild, as plain data (``/privacy export``):
    their links, codes, notices and summaries; per linked account its playtime, days, weeks
    and months, samples, sessions and milestones; the feed events about them; whether sign-in
    tokens exist (never the tokens) and the sign-ins they began."""
    links = _rows(
        conn,
        "SELECT source, external_id, display_name, verified, verified_by, status, linked_by,"
        " created_at, updated_at FROM account_links WHERE guild_id = ? AND discord_user_id = ?"
        " ORDER BY source, external_id",
        (guild_id, user_id),
    )
    accounts = []
    for link in links:
        for wanted, source, is_global in PLAYTIME_OF_LINK:
            if wanted != link["source"]:
                continue
            scope = GLOBAL_SCOPE if is_global else guild_id
            key = (scope, source, link["external_id"])
            accounts.append({
                "link_source": wanted,
                "external_id": link["external_id"],
                "source": source,
                "playtime": _rows(conn, "SELECT game_id, seconds, away_seconds, status,"
                                  " source_time, created_at, updated_at FROM playtime"
                                  " WHERE scope_guild_id = ? AND source = ? AND player_id = ?"
                                  " ORDER BY game_id", key),
                "days": _rows(conn, "SELECT game_id, day, seconds, away_seconds FROM"
                              " playtime_daily WHERE scope_guild_id = ? AND source = ?"
                              " AND player_id = ? ORDER BY day, game_id", key),
                "weeks_and_months": _rows(conn, "SELECT game_id, period, seconds, away_seconds"
                                          " FROM playtime_periods WHERE scope_guild_id = ? AND"
                                          " source = ? AND player_id = ? ORDER BY period, game_id",
                                          key),
                "samples": _rows(conn, "SELECT game_id, at, delta_seconds, away_seconds,"
                                 " total_seconds FROM playtime_samples WHERE scope_guild_id = ?"
                                 " AND source = ? AND player_id = ? ORDER BY at", key),
                "sessions": _rows(conn, "SELECT game_id, server_id, started_at, ended_at,"
                                  " duration_seconds, idle_seconds, closed_reason FROM sessions"
                                  " WHERE guild_id = ? AND source = ? AND player_id = ?"
                                  " ORDER BY started_at", key),
                "milestones": _rows(conn, "SELECT game_id, threshold, reached_at FROM milestones"
                                    " WHERE scope_guild_id = ? AND player_id = ?"
                                    " AND source IN (?, 'best') ORDER BY reached_at",
                                    (guild_id, link["external_id"], source)),
            })  # fmt: skip
    steam_ids = sorted({str(link["external_id"]) for link in links if link["source"] == "steam"})
    marks = _marks(steam_ids)
    steam = {
        "accounts": _rows(conn, "SELECT steam_id, state, baseline_at, last_synced_at,"
                          " private_since, in_game_app, in_game_since, last_logoff FROM"
                          f" steam_accounts WHERE steam_id IN ({marks})", tuple(steam_ids)),
        "achievements": _rows(conn, "SELECT steam_id, app_id, api_name, unlocked_at, noticed_at"
                              f" FROM steam_achievements WHERE steam_id IN ({marks})"
                              " ORDER BY steam_id, app_id, api_name", tuple(steam_ids)),
    } if steam_ids else {"accounts": [], "achievements": []}  # fmt: skip
    choice = privacy_choice(conn, guild_id, user_id)
    tokens = conn.execute(
        "SELECT scope, expires_at, locale, pushed_values, pushed_at, created_at"
        " FROM discord_tokens WHERE discord_user_id = ?",
        (user_id,),
    ).fetchone()
    return {
        "guild_id": guild_id,
        "discord_user_id": user_id,
        "links": links,
        "link_codes": _rows(conn, "SELECT source, created_at, expires_at, used_at FROM"
                            " link_codes WHERE guild_id = ? AND discord_user_id = ?",
                            (guild_id, user_id)),
        "link_notices": _rows(conn, "SELECT source, external_id, reason, created_at FROM"
                              " link_notices WHERE guild_id = ? AND discord_user_id = ?",
                              (guild_id, user_id)),
        "playtime_per_game_and_source": _rows(conn, "SELECT game_id, source, seconds, away_seconds"
                                              " FROM member_playtime WHERE guild_id = ? AND"
                                              " discord_user_id = ? AND (seconds <> 0"
                                              " OR away_seconds <> 0)"
                                              " ORDER BY game_id, source", (guild_id, user_id)),
        "accounts": accounts,
        "steam": steam,
        "privacy_choices": {
            "collecting": choice.collecting,
            "presence": "guild default" if choice.presence is None else choice.presence,
        },
        "rewards_held": _rows(conn, "SELECT g.reward_id, nullif(g.role_id, 0) AS role_id,"
                              " g.seconds, g.granted_at, g.owned AS role_given_by_questlog,"
                              " r.hours, r.game_id, r.period, r.source, r.mode,"
                              " r.squad_group FROM"
                              " reward_grants g LEFT JOIN rewards r ON r.reward_id = g.reward_id"
                              " WHERE g.guild_id = ? AND g.discord_user_id = ?"
                              " ORDER BY g.reward_id", (guild_id, user_id)),
        "rewards_created": _rows(conn, "SELECT reward_id, nullif(role_id, 0) AS role_id, hours,"
                                 " game_id, period, source, mode, squad_group, created_at"
                                 " FROM rewards WHERE guild_id = ?"
                                 " AND created_by = ? ORDER BY reward_id", (guild_id, user_id)),
        "actions": _rows(conn, "SELECT connector, action, payload, status, attempts, last_error,"
                         " created_at, finished_at FROM action_outbox WHERE guild_id = ?"
                         " AND discord_user_id = ? ORDER BY id", (guild_id, user_id)),
        "feed_events": _rows(conn, "SELECT type, source, actor_external_id, actor_name, title,"
                             " payload, occurred_at, created_at FROM activity_events WHERE"
                             " guild_id = ? AND actor_user_id = ? ORDER BY id",
                             (guild_id, user_id)),
        "discord_sign_in": None if tokens is None else {
            "connected": True, "tokens": "stored encrypted; not exported", "scope": tokens[0],
            "expires_at": tokens[1], "locale": tokens[2], "linked_roles_values": tokens[3],
            "linked_roles_sent_at": tokens[4], "connected_at": tokens[5],
        },
        "sign_ins_begun": _rows(conn, "SELECT kind, language, created_at, expires_at, used_at"
                                " FROM oauth_states WHERE guild_id = ? AND discord_user_id = ?",
                                (guild_id, user_id)),
    }  # fmt: skip


def _linked_elsewhere(
    conn: sqlite3.Connection, guild_id: int, user_id: int, source: str, external_id: str
) -> bool:
    """Whether a link other than this member's in this guild names the account."""
    row = conn.execute(
        "SELECT 1 FROM account_links WHERE source = ? AND external_id = ?"
        " AND NOT (guild_id = ? AND discord_user_id = ?) LIMIT 1",
        (source, external_id, guild_id, user_id),
    ).fetchone()
    return row is not None


def _marks(values: list[object] | set[object] | tuple[object, ...]) -> str:
    return ", ".join("?" * len(values))


def forget_member(
    conn: sqlite3.Connection,
    guild_id: int,
    user_id: int,
    now: datetime,
    *,
    drop_tokens: bool,
    plan: MemberRows | None = None,
) -> ForgetReport:
    """Remove everything stored about the member in the guild, in the caller's transaction:
    their links, codes, notices, sign-ins begun, summaries and feed events; per linked account
    its playtime, days, weeks, months, samples, sessions and milestones (a Steam account's
    shared totals and achievements only when no other link names it); their queued feed rows
    (a pending message holding one is given up and the others are batched again; a posted
    message's stored copy loses its embed); the raw events about them keep only their dedupe
    hash, so a retried delivery stays a duplicate. ``drop_tokens``: also their sign-in tokens
    (a member's own request). The row recording an opt-out (/privacy off) stays, so their
    choice outlives their data. ``plan``: what a read found by scanning (find_member_rows);
    without one, the scans run here."""
    removed: Counter[str] = Counter()

    def run(table: str, sql: str, params: tuple[object, ...] | list[object]) -> None:
        removed[table] += conn.execute(sql, params).rowcount

    if plan is None:
        plan = find_member_rows(conn, guild_id, user_id, now)
    links = _member_links(conn, guild_id, user_id)
    externals = sorted({external for _, external in links})
    shared: list[str] = []
    for link_source, external in links:
        elsewhere = _linked_elsewhere(conn, guild_id, user_id, link_source, external)
        if link_source == "steam" and elsewhere:
            shared.append(external)
        for wanted, source, is_global in PLAYTIME_OF_LINK:
            if wanted != link_source:
                continue
            scope = GLOBAL_SCOPE if is_global else guild_id
            if not (is_global and elsewhere):
                _forget_account(conn, plan, (scope, source, external), now, run)
            run("milestones", "DELETE FROM milestones WHERE scope_guild_id = ? AND player_id = ?"
                " AND source IN (?, 'best')", (guild_id, external, source))  # fmt: skip
        if link_source == "steam" and not elsewhere:
            for table in _STEAM_TABLES:
                run(table, f"DELETE FROM {table} WHERE steam_id = ?", (external,))
    run("member_playtime", "DELETE FROM member_playtime WHERE guild_id = ?"
        " AND discord_user_id = ?", (guild_id, user_id))  # fmt: skip

    # Feed events about them, with their outbox rows; the raw events behind them blanked.
    who = "actor_user_id = ?"
    params: list[object] = [guild_id, user_id]
    if externals:
        who += f" OR actor_external_id IN ({_marks(externals)})"
        params += externals
    events = conn.execute(
        f"SELECT id, raw_event_id FROM activity_events WHERE guild_id = ? AND ({who})", params
    ).fetchall()
    event_ids = [row[0] for row in events]
    raw = {row[1] for row in events if row[1] is not None}
    for chunk in chunks(event_ids):
        _drop_feed_rows(conn, chunk, removed)
        run("activity_events", f"DELETE FROM activity_events WHERE id IN ({_marks(chunk)})", chunk)
    names = conn.execute(
        "SELECT DISTINCT display_name FROM account_links WHERE guild_id = ? AND discord_user_id = ?"
        " AND display_name IS NOT NULL AND length(display_name) >= 3",
        (guild_id, user_id),
    ).fetchall()
    _scrub_unsendable_batches(
        conn, guild_id, [str(user_id), *externals, *(row[0] for row in names)], removed
    )
    raw |= set(plan.raw) | set(_raw_naming(conn, guild_id, user_id, plan.raw_to)[0])
    for chunk in chunks(sorted(raw)):
        run("raw_events", f"UPDATE raw_events SET payload = ? WHERE id IN ({_marks(chunk)})"
            " AND payload NOT IN ('', ?)", (WITHHELD_PAYLOAD, *chunk, WITHHELD_PAYLOAD))  # fmt: skip

    run("account_links", "DELETE FROM account_links WHERE guild_id = ? AND discord_user_id = ?",
        (guild_id, user_id))  # fmt: skip
    # Links they made for others as an admin keep that an admin made them, not which one.
    conn.execute(
        "UPDATE account_links SET linked_by = 'admin' WHERE guild_id = ? AND linked_by = ?",
        (guild_id, f"admin:{user_id}"),
    )
    run("link_codes", "DELETE FROM link_codes WHERE guild_id = ? AND discord_user_id = ?",
        (guild_id, user_id))  # fmt: skip
    # The rewards they earned: Questlog forgets it granted them (their roles stay as they are,
    # so no action naming them is queued); rewards they made as an admin lose their name.
    run("reward_grants", "DELETE FROM reward_grants WHERE guild_id = ? AND discord_user_id = ?",
        (guild_id, user_id))  # fmt: skip
    run("rewards", "UPDATE rewards SET created_by = NULL WHERE guild_id = ? AND created_by = ?",
        (guild_id, user_id))  # fmt: skip
    run(
        "action_outbox",
        "DELETE FROM action_outbox WHERE guild_id = ? AND discord_user_id = ?",
        (guild_id, user_id),
    )  # fmt: skip (a role for them, a line about them: nothing more)
    # Their notices, and other members' notices that name one of their accounts.
    run("link_notices", "DELETE FROM link_notices WHERE guild_id = ? AND (discord_user_id = ?"
        + (f" OR external_id IN ({_marks(externals)})" if externals else "") + ")",
        (guild_id, user_id, *externals))  # fmt: skip
    run("oauth_states", "DELETE FROM oauth_states WHERE discord_user_id = ?"
        + (" AND (guild_id = ? OR guild_id IS NULL)" if drop_tokens else " AND guild_id = ?"),
        (user_id, guild_id))  # fmt: skip
    if drop_tokens:
        run("discord_tokens", "DELETE FROM discord_tokens WHERE discord_user_id = ?", (user_id,))
    choice = privacy_choice(conn, guild_id, user_id)
    kept = not choice.collecting
    if kept:  # the opt-out stays; a presence choice means nothing while it holds
        set_privacy_choice(conn, guild_id, user_id, PrivacyChoice(False, None), now)
    else:
        run("member_privacy", "DELETE FROM member_privacy WHERE guild_id = ?"
            " AND discord_user_id = ?", (guild_id, user_id))  # fmt: skip
    return ForgetReport(
        removed={table: n for table, n in sorted(removed.items()) if n},
        shared_steam=shared,
        kept_opt_out=kept,
    )


Key = tuple[int, str, str]  # (scope, playtime source, player id)


@dataclass
class MemberRows:
    """What a read found of a member's accounts in the tables a player's rows can only be
    found in by scanning: sample and session row ids and week/month keys per account, and the
    raw events that name them; ``*_to``: the last row id the read saw."""

    samples: dict[Key, list[int]] = field(default_factory=dict)
    samples_to: int = 0
    sessions: dict[Key, list[int]] = field(default_factory=dict)
    sessions_to: int = 0
    periods: dict[Key, list[tuple[str, str]]] = field(default_factory=dict)  # (game, period)
    raw: list[int] = field(default_factory=list)
    raw_to: int = 0


def _member_links(conn: sqlite3.Connection, guild_id: int, user_id: int) -> list[tuple[str, str]]:
    """(link source, external id) of the member's links in the guild, and their presence
    account (keyed by their own id: forgotten even if its link went first)."""
    links = conn.execute(
        "SELECT source, external_id FROM account_links WHERE guild_id = ? AND discord_user_id = ?",
        (guild_id, user_id),
    ).fetchall()
    return sorted({(str(s), str(e)) for s, e in links} | {("discord", str(user_id))})


def _account_keys(conn: sqlite3.Connection, guild_id: int, user_id: int) -> list[Key]:
    return [
        (GLOBAL_SCOPE if is_global else guild_id, source, external)
        for link_source, external in _member_links(conn, guild_id, user_id)
        for wanted, source, is_global in PLAYTIME_OF_LINK
        if wanted == link_source
    ]


def find_member_rows(
    conn: sqlite3.Connection, guild_id: int, user_id: int, now: datetime
) -> MemberRows:
    """The scans of a forget, for a read transaction (see MemberRows)."""
    plan = MemberRows()
    plan.samples_to = conn.execute("SELECT coalesce(max(id), 0) FROM playtime_samples").fetchone()[
        0
    ]
    plan.sessions_to = conn.execute("SELECT coalesce(max(id), 0) FROM sessions").fetchone()[0]
    for key in _account_keys(conn, guild_id, user_id):
        plan.samples[key] = [r[0] for r in conn.execute(
            "SELECT id FROM playtime_samples WHERE scope_guild_id = ? AND source = ?"
            " AND player_id = ? AND id <= ?", (*key, plan.samples_to))]  # fmt: skip
        plan.sessions[key] = [r[0] for r in conn.execute(
            "SELECT id FROM sessions WHERE guild_id = ? AND source = ? AND player_id = ?"
            " AND id <= ?", (*key, plan.sessions_to))]  # fmt: skip
        plan.periods[key] = [(r[0], r[1]) for r in conn.execute(
            "SELECT game_id, period FROM playtime_periods WHERE scope_guild_id = ?"
            " AND source = ? AND player_id = ?", key)]  # fmt: skip
    plan.raw, plan.raw_to = _raw_naming(conn, guild_id, user_id)
    return plan


def _forget_account(
    conn: sqlite3.Connection,
    plan: MemberRows,
    key: Key,
    now: datetime,
    run: Callable[[str, str, tuple[object, ...] | list[object]], None],
) -> None:
    """One account's playtime, days, weeks and months, samples and sessions, by key: what
    the read found, and what arrived since (newer row ids; this week's and month's keys)."""
    scope, source, player = key
    games = [r[0] for r in conn.execute(
        "SELECT game_id FROM playtime WHERE scope_guild_id = ? AND source = ? AND player_id = ?",
        key)]  # fmt: skip
    run("playtime", "DELETE FROM playtime WHERE scope_guild_id = ? AND source = ?"
        " AND player_id = ?", key)  # fmt: skip
    run(
        "playtime_daily",
        "DELETE FROM playtime_daily WHERE scope_guild_id = ? AND source = ? AND player_id = ?",
        key,
    )  # indexed by player
    for table, found, newer in (("playtime_samples", plan.samples, plan.samples_to),
                                ("sessions", plan.sessions, plan.sessions_to)):  # fmt: skip
        column = "scope_guild_id" if table == "playtime_samples" else "guild_id"
        if key not in found:  # linked after the read looked: a scan, here (rare)
            newer = 0
        for chunk in chunks(found.get(key, [])):
            run(table, f"DELETE FROM {table} WHERE id IN ({_marks(chunk)})", chunk)
        run(
            table,
            f"DELETE FROM {table} WHERE id > ? AND {column} = ? AND source = ? AND player_id = ?",
            (newer, *key),
        )  # a range of the newest ids
    current = periods_of(local_day(to_iso(now), summary_zone(conn)))
    if key not in plan.periods:  # linked after the read looked: a scan, here (rare)
        run("playtime_periods", "DELETE FROM playtime_periods WHERE scope_guild_id = ?"
            " AND source = ? AND player_id = ?", key)  # fmt: skip
    periods = set(plan.periods.get(key, [])) | {(g, p) for g in games for p in current}
    for row in [(scope, game, period, source, player) for game, period in sorted(periods)]:
        run("playtime_periods", "DELETE FROM playtime_periods WHERE scope_guild_id = ?"
            " AND game_id = ? AND period = ? AND source = ? AND player_id = ?", row)  # fmt: skip


def _needles(conn: sqlite3.Connection, guild_id: int, user_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT external_id FROM account_links WHERE guild_id = ? AND discord_user_id = ?",
        (guild_id, user_id),
    ).fetchall()
    return [str(user_id), *sorted(row[0] for row in rows)]


def _raw_naming(
    conn: sqlite3.Connection, guild_id: int, user_id: int, after: int = 0
) -> tuple[list[int], int]:
    """The guild's raw events (after id ``after``) whose payload names the member or one of
    their linked accounts, and the last raw event id looked at."""
    needles = _needles(conn, guild_id, user_id)
    (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM raw_events").fetchone()
    found = conn.execute(
        "SELECT id FROM raw_events WHERE guild_id = ? AND id > ? AND id <= ? AND payload != ''"
        f" AND ({' OR '.join('instr(payload, ?) > 0' for _ in needles)})",
        (guild_id, after, last, *needles),
    ).fetchall()
    return [row[0] for row in found], int(last)


def _drop_feed_rows(conn: sqlite3.Connection, event_ids: list[int], removed: Counter[str]) -> None:
    """The outbox rows of these events leave. A message not posted yet loses their embeds and
    keeps its nonce (the other events go out as before, and a message whose answer was lost is
    not posted twice); one left with nothing is given up. A posted message's stored copy gets
    REMOVED_EMBED in place of each of theirs."""
    marks = _marks(event_ids)
    rows = conn.execute(
        "SELECT o.batch_id, o.embed_index, o.status, b.status FROM feed_outbox o"
        f" JOIN feed_batches b ON b.id = o.batch_id WHERE o.event_id IN ({marks})",
        event_ids,
    ).fetchall()
    unsent: dict[int, set[int]] = {}
    posted: dict[int, set[int]] = {}
    for batch_id, index, status, batch_status in rows:
        if index is None:
            continue
        if batch_status == "pending":
            unsent.setdefault(batch_id, set()).add(index)
        elif batch_status == "sent" and status == "sent":
            posted.setdefault(batch_id, set()).add(index)
    removed["feed_outbox"] += conn.execute(
        f"DELETE FROM feed_outbox WHERE event_id IN ({marks})", event_ids
    ).rowcount
    for batch_id in sorted(unsent):
        embeds = _stored_embeds(conn, batch_id)
        left = conn.execute(
            "SELECT id, embed_index FROM feed_outbox WHERE batch_id = ? ORDER BY embed_index",
            (batch_id,),
        ).fetchall()
        if not left:
            conn.execute(
                "UPDATE feed_batches SET status = 'replaced', payload = ?,"
                " last_error = 'a member asked to be forgotten' WHERE id = ?",
                (json.dumps({"embeds": []}), batch_id),
            )
        else:
            kept = [embeds[i] for _, i in left if i is not None and 0 <= i < len(embeds)]
            conn.executemany(
                "UPDATE feed_outbox SET embed_index = ? WHERE id = ?",
                [(n, outbox_id) for n, (outbox_id, _) in enumerate(left)],
            )
            conn.execute(
                "UPDATE feed_batches SET payload = ? WHERE id = ?",
                (json.dumps({"embeds": kept}, ensure_ascii=False), batch_id),
            )
        removed["feed_batches"] += 1
    for batch_id, indexes in sorted(posted.items()):
        embeds = _stored_embeds(conn, batch_id)
        for index in indexes:
            if 0 <= index < len(embeds):
                embeds[index] = REMOVED_EMBED
        conn.execute(
            "UPDATE feed_batches SET payload = ? WHERE id = ?",
            (json.dumps({"embeds": embeds}, ensure_ascii=False), batch_id),
        )
        removed["feed_batches"] += 1


def _stored_embeds(conn: sqlite3.Connection, batch_id: int) -> list[object]:
    row = conn.execute("SELECT payload FROM feed_batches WHERE id = ?", (batch_id,)).fetchone()
    return list(json.loads(row[0]).get("embeds", [])) if row else []


def _scrub_unsendable_batches(
    conn: sqlite3.Connection, guild_id: int, needles: list[str], removed: Counter[str]
) -> None:
    """Messages that will never be posted or edited (failed, or given up for new batches)
    keep no copy of an embed that names the member."""
    if not needles:
        return
    found = " OR ".join("instr(payload, ?) > 0" for _ in needles)
    removed["feed_batches"] += conn.execute(
        "UPDATE feed_batches SET payload = '{\"embeds\": []}' WHERE guild_id = ?"
        f" AND status IN ('failed', 'replaced') AND ({found})",
        (guild_id, *needles),
    ).rowcount
