"""What Questlog stores about one member in one guild, on PostgreSQL: counted, exported and
forgotten, and the member's privacy choices. Twins of bot/storage/privacy.py (the same tables,
``MEMBER_TABLES``, the same rules and the same reports), with an ``asyncpg.Connection``.

The export gives the same plain data as SQLite's: moments as ISO text (bot.clock.to_iso), days
as ``YYYY-MM-DD``, flags as 0/1 and JSON as text written the way Questlog writes it.

PostgreSQL has no ``secure_delete``: a forgotten member's rows are gone for every query at
COMMIT, and their bytes stay in the table files until VACUUM reuses the space."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from bot.clock import to_iso
from bot.storage.events import WITHHELD_PAYLOAD, compact_json
from bot.storage.playtime import periods_of
from bot.storage.postgres.pg_endpoints import ensure_guild
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_playtime import PLAYTIME_OF_LINK, local_day, summary_zone
from bot.storage.postgres.pg_stats import linked_keys
from bot.storage.privacy import _STEAM_TABLES, MEMBER_TABLES, REMOVED_EMBED, Key, MemberRows
from bot.storage.records import GLOBAL_SCOPE, ForgetReport, PrivacyChoice, PrivacySummary

__all__ = [
    "MEMBER_TABLES",
    "REMOVED_EMBED",
    "PgPrivacy",
    "find_member_rows",
    "forget_member",
    "presence_default",
    "privacy_choice",
    "privacy_export",
    "privacy_summary",
    "set_presence_default",
    "set_privacy_choice",
]

#: Chunks of ids, as SQLite's forget takes them (its feed batch counts are per chunk).
_CHUNK = 500
#: How many ids below the last one the read saw the write looks at again. On SQLite nothing
#: can land below it after the read; on PostgreSQL another process's transaction that was
#: open when the read took its snapshot may commit a row with a smaller id later. The write
#: looks at the newest ids by key anyway (a range of the primary key), so it starts this many
#: ids lower: a member's row is never missed for it, and none is counted twice.
RECHECK_IDS = 2000
Run = Callable[..., Awaitable[None]]


def _changed(status: str) -> int:
    """Rows a statement changed, from its status ("DELETE 3", "UPDATE 0", "INSERT 0 1")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _plain(value: Any) -> Any:
    """A value as SQLite's export has it: ISO text moments and days, 0/1 flags."""
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _sorted_json(text: str | None) -> str | None:
    """JSON that Questlog writes with ``json.dumps(..., sort_keys=True)`` (actions, pushed
    role values), written so again: jsonb keeps neither key order nor spacing."""
    return None if text is None else json.dumps(json.loads(text), sort_keys=True)


def _event_json(text: str | None) -> str | None:
    """An activity event's payload as the ingest writes it (compact, not ASCII-escaped)."""
    return None if text is None else compact_json(json.loads(text))


async def _rows(
    conn: asyncpg.Connection,
    sql: str,
    *params: Any,
    json_columns: dict[str, Callable[[str | None], str | None]] | None = None,
) -> list[dict[str, object]]:
    found = []
    for row in await conn.fetch(sql, *params):
        plain = {name: _plain(value) for name, value in row.items()}
        for name, encode in (json_columns or {}).items():
            plain[name] = encode(row[name])
        found.append(plain)
    return found


async def privacy_choice(conn: asyncpg.Connection, guild_id: int, user_id: int) -> PrivacyChoice:
    row = await conn.fetchrow(
        "SELECT collecting, presence FROM member_privacy"
        " WHERE guild_id = $1 AND discord_user_id = $2",
        guild_id,
        user_id,
    )
    if row is None:
        return PrivacyChoice()
    return PrivacyChoice(bool(row[0]), None if row[1] is None else bool(row[1]))


async def set_privacy_choice(
    conn: asyncpg.Connection, guild_id: int, user_id: int, choice: PrivacyChoice, now: datetime
) -> bool:
    """Store the member's choices (a row only while they differ from the defaults); whether
    anything changed."""
    if await privacy_choice(conn, guild_id, user_id) == choice:
        return False
    if choice == PrivacyChoice():
        await conn.execute(
            "DELETE FROM member_privacy WHERE guild_id = $1 AND discord_user_id = $2",
            guild_id,
            user_id,
        )
        return True
    await ensure_guild(conn, guild_id, now)
    await conn.execute(
        "INSERT INTO member_privacy (guild_id, discord_user_id, collecting, presence, updated_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, discord_user_id) DO UPDATE SET"
        " collecting = excluded.collecting, presence = excluded.presence,"
        " updated_at = excluded.updated_at",
        guild_id, user_id, bool(choice.collecting),
        None if choice.presence is None else bool(choice.presence), now,
    )  # fmt: skip
    return True


async def presence_default(conn: asyncpg.Connection, guild_id: int) -> bool:
    found = await conn.fetchval("SELECT presence_default FROM guilds WHERE guild_id = $1", guild_id)
    return bool(found)


async def set_presence_default(
    conn: asyncpg.Connection, guild_id: int, on: bool, now: datetime
) -> bool:
    if await presence_default(conn, guild_id) == on:
        return False
    await ensure_guild(conn, guild_id, now)
    await conn.execute(
        "UPDATE guilds SET presence_default = $1, updated_at = $2 WHERE guild_id = $3",
        bool(on),
        now,
        guild_id,
    )
    return True


async def privacy_summary(conn: asyncpg.Connection, guild_id: int, user_id: int) -> PrivacySummary:
    links = await conn.fetch(
        "SELECT source, external_id, verified_by FROM account_links"
        " WHERE guild_id = $1 AND discord_user_id = $2"
        ' ORDER BY source COLLATE "C", external_id COLLATE "C"',
        guild_id,
        user_id,
    )
    sessions = samples = 0
    for source, scope, external in await linked_keys(conn, guild_id, user_id):
        sessions += await conn.fetchval(
            "SELECT count(*) FROM sessions WHERE guild_id = $1 AND source = $2 AND player_id = $3",
            scope,
            source,
            external,
        )
        samples += await conn.fetchval(
            "SELECT count(*) FROM playtime_samples WHERE scope_guild_id = $1 AND player_id = $2"
            " AND source = $3",
            scope,
            external,
            source,
        )
    events = await conn.fetchval(
        "SELECT count(*) FROM activity_events WHERE guild_id = $1 AND actor_user_id = $2",
        guild_id,
        user_id,
    )
    tokens = await conn.fetchval("SELECT 1 FROM discord_tokens WHERE discord_user_id = $1", user_id)
    return PrivacySummary(
        links=[(r[0], r[1], r[2]) for r in links],
        sessions=int(sessions),
        samples=int(samples),
        events=int(events),
        tokens=tokens is not None,
    )


async def _snapshot(conn: asyncpg.Connection, fn: Callable[[], Awaitable[Any]]) -> Any:
    """``fn`` in one read-only transaction that sees one snapshot (as SQLite's reads do)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await fn()


class PgPrivacy:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def summary(self, guild_id: int, user_id: int) -> PrivacySummary:
        return await self._db.read(
            lambda c: _snapshot(c, lambda: privacy_summary(c, guild_id, user_id))
        )

    async def export(self, guild_id: int, user_id: int) -> dict[str, object]:
        """Everything stored about the member in the guild (one read transaction)."""
        return await self._db.read(
            lambda c: _snapshot(c, lambda: privacy_export(c, guild_id, user_id))
        )

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
        first in a read (one snapshot), which does not hold the writer up; the write removes
        what they found by key, and looks only at what arrived since (from RECHECK_IDS ids
        below the last one the read saw)."""
        plan = await self._db.read(
            lambda c: _snapshot(c, lambda: find_member_rows(c, guild_id, user_id, now))
        )
        return await self._db.write(
            lambda c: forget_member(c, guild_id, user_id, now, drop_tokens=drop_tokens, plan=plan)
        )


async def privacy_export(
    conn: asyncpg.Connection, guild_id: int, user_id: int
) -> dict[str, object]:
    """Everything stored about the member in the guild, as plain data (``/privacy export``),
    as bot/storage/privacy.py's privacy_export gives it."""
    links = await _rows(
        conn,
        "SELECT source, external_id, display_name, verified, verified_by, status, linked_by,"
        " created_at, updated_at FROM account_links WHERE guild_id = $1 AND discord_user_id = $2"
        ' ORDER BY source COLLATE "C", external_id COLLATE "C"',
        guild_id,
        user_id,
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
                "playtime": await _rows(conn, "SELECT game_id, seconds, away_seconds, status,"
                                        " source_time, created_at, updated_at FROM playtime"
                                        " WHERE scope_guild_id = $1 AND source = $2"
                                        ' AND player_id = $3 ORDER BY game_id COLLATE "C"', *key),
                "days": await _rows(conn, "SELECT game_id, day, seconds, away_seconds FROM"
                                    " playtime_daily WHERE scope_guild_id = $1 AND source = $2"
                                    ' AND player_id = $3 ORDER BY day, game_id COLLATE "C"',
                                    *key),
                "weeks_and_months": await _rows(conn, "SELECT game_id, period, seconds,"
                                                " away_seconds FROM playtime_periods"
                                                " WHERE scope_guild_id = $1 AND source = $2"
                                                " AND player_id = $3 ORDER BY period"
                                                ' COLLATE "C", game_id COLLATE "C"', *key),
                "samples": await _rows(conn, "SELECT game_id, at, delta_seconds, away_seconds,"
                                       " total_seconds FROM playtime_samples"
                                       " WHERE scope_guild_id = $1 AND source = $2"
                                       " AND player_id = $3 ORDER BY at, id", *key),
                "sessions": await _rows(conn, "SELECT game_id, server_id, started_at, ended_at,"
                                        " duration_seconds, idle_seconds, closed_reason"
                                        " FROM sessions WHERE guild_id = $1 AND source = $2"
                                        " AND player_id = $3"
                                        " ORDER BY started_at NULLS FIRST, id", *key),
                "milestones": await _rows(conn, "SELECT game_id, threshold, reached_at"
                                          " FROM milestones WHERE scope_guild_id = $1"
                                          " AND player_id = $2 AND source IN ($3, 'best')"
                                          ' ORDER BY reached_at, source COLLATE "C",'
                                          ' game_id COLLATE "C", threshold',
                                          guild_id, link["external_id"], source),
            })  # fmt: skip
    steam_ids = sorted({str(link["external_id"]) for link in links if link["source"] == "steam"})
    steam = {
        "accounts": await _rows(conn, "SELECT steam_id, state, baseline_at, last_synced_at,"
                                " private_since, in_game_app, in_game_since, last_logoff FROM"
                                " steam_accounts WHERE steam_id = ANY($1::text[])"
                                ' ORDER BY steam_id COLLATE "C"', steam_ids),
        "achievements": await _rows(conn, "SELECT steam_id, app_id, api_name, unlocked_at,"
                                    " noticed_at FROM steam_achievements"
                                    " WHERE steam_id = ANY($1::text[]) ORDER BY steam_id"
                                    ' COLLATE "C", app_id, api_name COLLATE "C"', steam_ids),
    } if steam_ids else {"accounts": [], "achievements": []}  # fmt: skip
    choice = await privacy_choice(conn, guild_id, user_id)
    tokens = await conn.fetchrow(
        "SELECT scope, expires_at, locale, pushed_values, pushed_at, created_at"
        " FROM discord_tokens WHERE discord_user_id = $1",
        user_id,
    )
    member = (guild_id, user_id)
    return {
        "guild_id": guild_id,
        "discord_user_id": user_id,
        "links": links,
        "link_codes": await _rows(conn, "SELECT source, created_at, expires_at, used_at FROM"
                                  " link_codes WHERE guild_id = $1 AND discord_user_id = $2"
                                  ' ORDER BY code COLLATE "C"', *member),
        "link_notices": await _rows(conn, "SELECT source, external_id, reason, created_at FROM"
                                    " link_notices WHERE guild_id = $1 AND discord_user_id = $2"
                                    " ORDER BY id", *member),
        "playtime_per_game_and_source": await _rows(conn, "SELECT game_id, source, seconds,"
                                                    " away_seconds FROM member_playtime"
                                                    " WHERE guild_id = $1 AND"
                                                    " discord_user_id = $2 AND (seconds <> 0"
                                                    " OR away_seconds <> 0)"
                                                    ' ORDER BY game_id COLLATE "C",'
                                                    ' source COLLATE "C"', *member),
        "accounts": accounts,
        "steam": steam,
        "privacy_choices": {
            "collecting": choice.collecting,
            "presence": "guild default" if choice.presence is None else choice.presence,
        },
        "rewards_held": await _rows(conn, "SELECT g.reward_id, nullif(g.role_id, 0) AS role_id,"
                                    " g.seconds, g.granted_at, g.owned AS role_given_by_questlog,"
                                    " r.hours, r.game_id, r.period, r.source, r.mode,"
                                    " r.squad_group FROM reward_grants g"
                                    " LEFT JOIN rewards r ON r.reward_id = g.reward_id"
                                    " WHERE g.guild_id = $1 AND g.discord_user_id = $2"
                                    " ORDER BY g.reward_id", *member),
        "rewards_created": await _rows(conn, "SELECT reward_id, nullif(role_id, 0) AS role_id,"
                                       " hours, game_id, period, source, mode, squad_group,"
                                       " created_at FROM rewards WHERE guild_id = $1"
                                       " AND created_by = $2 ORDER BY reward_id", *member),
        "actions": await _rows(conn, "SELECT connector, action, payload::text AS payload, status,"
                               " attempts, last_error, created_at, finished_at FROM action_outbox"
                               " WHERE guild_id = $1 AND discord_user_id = $2 ORDER BY id",
                               *member, json_columns={"payload": _sorted_json}),
        "feed_events": await _rows(conn, "SELECT type, source, actor_external_id, actor_name,"
                                   " title, payload::text AS payload, occurred_at, created_at"
                                   " FROM activity_events WHERE guild_id = $1"
                                   " AND actor_user_id = $2 ORDER BY id",
                                   *member, json_columns={"payload": _event_json}),
        "discord_sign_in": None if tokens is None else {
            "connected": True, "tokens": "stored encrypted; not exported", "scope": tokens[0],
            "expires_at": _plain(tokens[1]), "locale": tokens[2],
            "linked_roles_values": _sorted_json(tokens[3]),
            "linked_roles_sent_at": _plain(tokens[4]), "connected_at": _plain(tokens[5]),
        },
        "sign_ins_begun": await _rows(conn, "SELECT kind, language, created_at, expires_at,"
                                      " used_at FROM oauth_states WHERE guild_id = $1"
                                      " AND discord_user_id = $2"
                                      ' ORDER BY state_hash COLLATE "C"', *member),
    }  # fmt: skip


async def _linked_elsewhere(
    conn: asyncpg.Connection, guild_id: int, user_id: int, source: str, external_id: str
) -> bool:
    """Whether a link other than this member's in this guild names the account."""
    found = await conn.fetchval(
        "SELECT 1 FROM account_links WHERE source = $1 AND external_id = $2"
        " AND NOT (guild_id = $3 AND discord_user_id = $4) LIMIT 1",
        source, external_id, guild_id, user_id,
    )  # fmt: skip
    return found is not None


async def forget_member(
    conn: asyncpg.Connection,
    guild_id: int,
    user_id: int,
    now: datetime,
    *,
    drop_tokens: bool,
    plan: MemberRows | None = None,
) -> ForgetReport:
    """Remove everything stored about the member in the guild, in the caller's transaction
    (bot/storage/privacy.py's forget_member says what, and what stays). ``plan``: what a read
    found by scanning (find_member_rows); without one, the scans run here."""
    removed: Counter[str] = Counter()

    async def run(table: str, sql: str, *params: Any) -> None:
        removed[table] += _changed(await conn.execute(sql, *params))

    if plan is None:
        plan = await find_member_rows(conn, guild_id, user_id, now)
    links = await _member_links(conn, guild_id, user_id)
    externals = sorted({external for _, external in links})
    shared: list[str] = []
    for link_source, external in links:
        elsewhere = await _linked_elsewhere(conn, guild_id, user_id, link_source, external)
        if link_source == "steam" and elsewhere:
            shared.append(external)
        for wanted, source, is_global in PLAYTIME_OF_LINK:
            if wanted != link_source:
                continue
            scope = GLOBAL_SCOPE if is_global else guild_id
            if not (is_global and elsewhere):
                await _forget_account(conn, plan, (scope, source, external), now, run)
            await run("milestones", "DELETE FROM milestones WHERE scope_guild_id = $1"
                      " AND player_id = $2 AND source IN ($3, 'best')",
                      guild_id, external, source)  # fmt: skip
        if link_source == "steam" and not elsewhere:
            for table in _STEAM_TABLES:
                await run(table, f"DELETE FROM {table} WHERE steam_id = $1", external)
    await run("member_playtime", "DELETE FROM member_playtime WHERE guild_id = $1"
              " AND discord_user_id = $2", guild_id, user_id)  # fmt: skip

    # Feed events about them, with their outbox rows; the raw events behind them blanked. In
    # the order SQLite finds them (by its guild index), so the chunks and their counts match.
    events = await conn.fetch(
        "SELECT id, raw_event_id FROM activity_events WHERE guild_id = $1"
        " AND (actor_user_id = $2 OR actor_external_id = ANY($3::text[]))"
        " ORDER BY occurred_at, id",
        guild_id, user_id, externals,
    )  # fmt: skip
    event_ids = [row[0] for row in events]
    raw = {row[1] for row in events if row[1] is not None}
    for chunk in _chunks(event_ids):
        await _drop_feed_rows(conn, list(chunk), removed)
        await run("activity_events", "DELETE FROM activity_events WHERE id = ANY($1::bigint[])",
                  list(chunk))  # fmt: skip
    names = await conn.fetch(
        "SELECT DISTINCT display_name FROM account_links WHERE guild_id = $1"
        " AND discord_user_id = $2 AND display_name IS NOT NULL AND length(display_name) >= 3",
        guild_id,
        user_id,
    )
    await _scrub_unsendable_batches(
        conn, guild_id, [str(user_id), *externals, *(row[0] for row in names)], removed
    )
    since = max(0, plan.raw_to - RECHECK_IDS)
    raw |= set(plan.raw) | set((await _raw_naming(conn, guild_id, user_id, since))[0])
    if raw:
        await run("raw_events", "UPDATE raw_events SET payload = $1 WHERE id = ANY($2::bigint[])"
                  " AND payload <> '' AND payload <> $1", WITHHELD_PAYLOAD,
                  sorted(raw))  # fmt: skip

    await run("account_links", "DELETE FROM account_links WHERE guild_id = $1"
              " AND discord_user_id = $2", guild_id, user_id)  # fmt: skip
    # Links they made for others as an admin keep that an admin made them, not which one.
    await conn.execute(
        "UPDATE account_links SET linked_by = 'admin' WHERE guild_id = $1 AND linked_by = $2",
        guild_id,
        f"admin:{user_id}",
    )
    await run("link_codes", "DELETE FROM link_codes WHERE guild_id = $1"
              " AND discord_user_id = $2", guild_id, user_id)  # fmt: skip
    # The rewards they earned: Questlog forgets it granted them; rewards they made as an admin
    # lose their name.
    await run("reward_grants", "DELETE FROM reward_grants WHERE guild_id = $1"
              " AND discord_user_id = $2", guild_id, user_id)  # fmt: skip
    await run("rewards", "UPDATE rewards SET created_by = NULL WHERE guild_id = $1"
              " AND created_by = $2", guild_id, user_id)  # fmt: skip
    await run("action_outbox", "DELETE FROM action_outbox WHERE guild_id = $1"
              " AND discord_user_id = $2", guild_id, user_id)  # fmt: skip
    # Their notices, and other members' notices that name one of their accounts.
    await run("link_notices", "DELETE FROM link_notices WHERE guild_id = $1"
              " AND (discord_user_id = $2 OR external_id = ANY($3::text[]))",
              guild_id, user_id, externals)  # fmt: skip
    await run("oauth_states", "DELETE FROM oauth_states WHERE discord_user_id = $1"
              + (" AND (guild_id = $2 OR guild_id IS NULL)" if drop_tokens
                 else " AND guild_id = $2"), user_id, guild_id)  # fmt: skip
    if drop_tokens:
        await run("discord_tokens", "DELETE FROM discord_tokens WHERE discord_user_id = $1",
                  user_id)  # fmt: skip
    choice = await privacy_choice(conn, guild_id, user_id)
    kept = not choice.collecting
    if kept:  # the opt-out stays; a presence choice means nothing while it holds
        await set_privacy_choice(conn, guild_id, user_id, PrivacyChoice(False, None), now)
    else:
        await run("member_privacy", "DELETE FROM member_privacy WHERE guild_id = $1"
                  " AND discord_user_id = $2", guild_id, user_id)  # fmt: skip
    return ForgetReport(
        removed={table: n for table, n in sorted(removed.items()) if n},
        shared_steam=shared,
        kept_opt_out=kept,
    )


async def _member_links(
    conn: asyncpg.Connection, guild_id: int, user_id: int
) -> list[tuple[str, str]]:
    """(link source, external id) of the member's links in the guild, and their presence
    account (keyed by their own id: forgotten even if its link went first)."""
    links = await conn.fetch(
        "SELECT source, external_id FROM account_links"
        " WHERE guild_id = $1 AND discord_user_id = $2",
        guild_id,
        user_id,
    )
    return sorted({(str(s), str(e)) for s, e in links} | {("discord", str(user_id))})


async def _account_keys(conn: asyncpg.Connection, guild_id: int, user_id: int) -> list[Key]:
    return [
        (GLOBAL_SCOPE if is_global else guild_id, source, external)
        for link_source, external in await _member_links(conn, guild_id, user_id)
        for wanted, source, is_global in PLAYTIME_OF_LINK
        if wanted == link_source
    ]


def _key_arrays(keys: list[Key]) -> tuple[list[int], list[str], list[str]]:
    return [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]


async def find_member_rows(
    conn: asyncpg.Connection, guild_id: int, user_id: int, now: datetime
) -> MemberRows:
    """The scans of a forget, for a read transaction (see bot/storage/privacy.py's MemberRows).
    Each table is scanned once for every account of the member."""
    plan = MemberRows()
    plan.samples_to = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM playtime_samples"))
    plan.sessions_to = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM sessions"))
    keys = await _account_keys(conn, guild_id, user_id)
    for key in keys:
        plan.samples[key] = []
        plan.sessions[key] = []
        plan.periods[key] = []
    arrays = _key_arrays(keys)
    keyed = "unnest($1::bigint[], $2::text[], $3::text[]) AS k (scope, source, player)"
    for row in await conn.fetch(
        f"SELECT s.scope_guild_id, s.source, s.player_id, s.id FROM playtime_samples s JOIN {keyed}"
        " ON s.scope_guild_id = k.scope AND s.source = k.source AND s.player_id = k.player"
        " WHERE s.id <= $4 ORDER BY s.id",
        *arrays, plan.samples_to,
    ):  # fmt: skip
        plan.samples[(row[0], row[1], row[2])].append(row[3])
    for row in await conn.fetch(
        f"SELECT s.guild_id, s.source, s.player_id, s.id FROM sessions s JOIN {keyed}"
        " ON s.guild_id = k.scope AND s.source = k.source AND s.player_id = k.player"
        " WHERE s.id <= $4 ORDER BY s.id",
        *arrays, plan.sessions_to,
    ):  # fmt: skip
        plan.sessions[(row[0], row[1], row[2])].append(row[3])
    for row in await conn.fetch(
        f"SELECT p.scope_guild_id, p.source, p.player_id, p.game_id, p.period"
        f" FROM playtime_periods p JOIN {keyed} ON p.scope_guild_id = k.scope"
        " AND p.source = k.source AND p.player_id = k.player",
        *arrays,
    ):  # fmt: skip
        plan.periods[(row[0], row[1], row[2])].append((row[3], row[4]))
    plan.raw, plan.raw_to = await _raw_naming(conn, guild_id, user_id)
    return plan


async def _forget_account(
    conn: asyncpg.Connection, plan: MemberRows, key: Key, now: datetime, run: Run
) -> None:
    """One account's playtime, days, weeks and months, samples and sessions, by key: what
    the read found, and what arrived since (newer row ids; this week's and month's keys)."""
    scope, source, player = key
    games = [r[0] for r in await conn.fetch(
        "SELECT game_id FROM playtime WHERE scope_guild_id = $1 AND source = $2"
        " AND player_id = $3", *key)]  # fmt: skip
    await run("playtime", "DELETE FROM playtime WHERE scope_guild_id = $1 AND source = $2"
              " AND player_id = $3", *key)  # fmt: skip
    await run("playtime_daily", "DELETE FROM playtime_daily WHERE scope_guild_id = $1"
              " AND source = $2 AND player_id = $3", *key)  # fmt: skip
    for table, found, newer in (("playtime_samples", plan.samples, plan.samples_to),
                                ("sessions", plan.sessions, plan.sessions_to)):  # fmt: skip
        column = "scope_guild_id" if table == "playtime_samples" else "guild_id"
        if key not in found:  # linked after the read looked: a scan, here (rare)
            newer = 0
        newer = max(0, newer - RECHECK_IDS)
        for chunk in _chunks(found.get(key, [])):
            await run(table, f"DELETE FROM {table} WHERE id = ANY($1::bigint[])", list(chunk))
        await run(
            table,
            f"DELETE FROM {table} WHERE id > $1 AND {column} = $2 AND source = $3"
            " AND player_id = $4",
            newer,
            *key,
        )  # fmt: skip (a range of the newest ids)
    current = periods_of(local_day(now, await summary_zone(conn)).isoformat())
    if key not in plan.periods:  # linked after the read looked: a scan, here (rare)
        await run("playtime_periods", "DELETE FROM playtime_periods WHERE scope_guild_id = $1"
                  " AND source = $2 AND player_id = $3", *key)  # fmt: skip
    periods = sorted(set(plan.periods.get(key, [])) | {(g, p) for g in games for p in current})
    if periods:
        await run("playtime_periods", "DELETE FROM playtime_periods p USING"
                  " unnest($4::text[], $5::text[]) AS k (game_id, period)"
                  " WHERE p.scope_guild_id = $1 AND p.source = $2 AND p.player_id = $3"
                  " AND p.game_id = k.game_id AND p.period = k.period",
                  scope, source, player, [g for g, _ in periods],
                  [p for _, p in periods])  # fmt: skip


async def _needles(conn: asyncpg.Connection, guild_id: int, user_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT external_id FROM account_links"
        " WHERE guild_id = $1 AND discord_user_id = $2",
        guild_id,
        user_id,
    )
    return [str(user_id), *sorted(row[0] for row in rows)]


async def _raw_naming(
    conn: asyncpg.Connection, guild_id: int, user_id: int, after: int = 0
) -> tuple[list[int], int]:
    """The guild's raw events (after id ``after``) whose payload names the member or one of
    their linked accounts, and the last raw event id looked at."""
    needles = await _needles(conn, guild_id, user_id)
    last = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM raw_events"))
    found = await conn.fetch(
        "SELECT id FROM raw_events WHERE guild_id = $1 AND id > $2 AND id <= $3"
        " AND payload <> '' AND EXISTS (SELECT 1 FROM unnest($4::text[]) AS n (needle)"
        " WHERE strpos(payload, n.needle) > 0) ORDER BY id",
        guild_id, after, last, needles,
    )  # fmt: skip
    return [row[0] for row in found], last


async def _drop_feed_rows(
    conn: asyncpg.Connection, event_ids: list[int], removed: Counter[str]
) -> None:
    """The outbox rows of these events leave. A message not posted yet loses their embeds and
    keeps its nonce; one left with nothing is given up. A posted message's stored copy gets
    REMOVED_EMBED in place of each of theirs (as bot/storage/privacy.py does)."""
    rows = await conn.fetch(
        "SELECT o.batch_id, o.embed_index, o.status, b.status FROM feed_outbox o"
        " JOIN feed_batches b ON b.id = o.batch_id WHERE o.event_id = ANY($1::bigint[])",
        event_ids,
    )
    unsent: dict[int, set[int]] = {}
    posted: dict[int, set[int]] = {}
    for batch_id, index, status, batch_status in rows:
        if index is None:
            continue
        if batch_status == "pending":
            unsent.setdefault(batch_id, set()).add(index)
        elif batch_status == "sent" and status == "sent":
            posted.setdefault(batch_id, set()).add(index)
    removed["feed_outbox"] += _changed(
        await conn.execute("DELETE FROM feed_outbox WHERE event_id = ANY($1::bigint[])", event_ids)
    )
    for batch_id in sorted(unsent):
        embeds = await _stored_embeds(conn, batch_id)
        left = await conn.fetch(
            "SELECT id, embed_index FROM feed_outbox WHERE batch_id = $1"
            " ORDER BY embed_index NULLS FIRST, id",
            batch_id,
        )
        if not left:
            await conn.execute(
                "UPDATE feed_batches SET status = 'replaced', payload = $1::jsonb,"
                " last_error = 'a member asked to be forgotten' WHERE id = $2",
                json.dumps({"embeds": []}),
                batch_id,
            )
        else:
            kept = [embeds[i] for _, i in left if i is not None and 0 <= i < len(embeds)]
            await conn.executemany(
                "UPDATE feed_outbox SET embed_index = $1 WHERE id = $2",
                [(n, outbox_id) for n, (outbox_id, _) in enumerate(left)],
            )
            await conn.execute(
                "UPDATE feed_batches SET payload = $1::jsonb WHERE id = $2",
                json.dumps({"embeds": kept}, ensure_ascii=False),
                batch_id,
            )
        removed["feed_batches"] += 1
    for batch_id, indexes in sorted(posted.items()):
        embeds = await _stored_embeds(conn, batch_id)
        for index in indexes:
            if 0 <= index < len(embeds):
                embeds[index] = REMOVED_EMBED
        await conn.execute(
            "UPDATE feed_batches SET payload = $1::jsonb WHERE id = $2",
            json.dumps({"embeds": embeds}, ensure_ascii=False),
            batch_id,
        )
        removed["feed_batches"] += 1


async def _stored_embeds(conn: asyncpg.Connection, batch_id: int) -> list[object]:
    text = await conn.fetchval("SELECT payload::text FROM feed_batches WHERE id = $1", batch_id)
    return list(json.loads(text).get("embeds", [])) if text is not None else []


async def _scrub_unsendable_batches(
    conn: asyncpg.Connection, guild_id: int, needles: list[str], removed: Counter[str]
) -> None:
    """Messages that will never be posted or edited (failed, or given up for new batches)
    keep no copy of an embed that names the member."""
    if not needles:
        return
    removed["feed_batches"] += _changed(
        await conn.execute(
            "UPDATE feed_batches SET payload = '{\"embeds\": []}'::jsonb WHERE guild_id = $1"
            " AND status IN ('failed', 'replaced') AND EXISTS (SELECT 1 FROM"
            " unnest($2::text[]) AS n (needle) WHERE strpos(payload::text, n.needle) > 0)",
            guild_id,
            needles,
        )
    )
