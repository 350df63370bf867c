"""What Questlog stores about one member in one guild, counted (``/privacy show``).

Every table that holds member data is read here; issue 16's export and delete will walk the
same list (``MEMBER_TABLES``)."""

from __future__ import annotations

import sqlite3

from bot.storage.engine import Database
from bot.storage.playtime import PLAYTIME_OF_LINK
from bot.storage.records import GLOBAL_SCOPE, PrivacySummary
from bot.storage.stats import linked_keys

#: Tables with rows about a member (directly, or through their linked accounts).
MEMBER_TABLES = (
    "account_links", "link_codes", "link_notices", "member_playtime", "sessions",
    "activity_events", "discord_tokens", "oauth_states", "playtime", "playtime_daily",
    "playtime_periods", "playtime_samples", "milestones",
)  # fmt: skip


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
            (guild_id, source, external),
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
                "playtime": _rows(conn, "SELECT game_id, seconds, status, source_time,"
                                  " created_at, updated_at FROM playtime WHERE scope_guild_id = ?"
                                  " AND source = ? AND player_id = ? ORDER BY game_id", key),
                "days": _rows(conn, "SELECT game_id, day, seconds FROM playtime_daily WHERE"
                              " scope_guild_id = ? AND source = ? AND player_id = ?"
                              " ORDER BY day, game_id", key),
                "weeks_and_months": _rows(conn, "SELECT game_id, period, seconds FROM"
                                          " playtime_periods WHERE scope_guild_id = ? AND"
                                          " source = ? AND player_id = ? ORDER BY period, game_id",
                                          key),
                "samples": _rows(conn, "SELECT game_id, at, delta_seconds, total_seconds FROM"
                                 " playtime_samples WHERE scope_guild_id = ? AND source = ?"
                                 " AND player_id = ? ORDER BY at", key),
                "sessions": _rows(conn, "SELECT game_id, server_id, started_at, ended_at,"
                                  " duration_seconds, closed_reason FROM sessions WHERE"
                                  " guild_id = ? AND source = ? AND player_id = ?"
                                  " ORDER BY started_at", (guild_id, source, link["external_id"])),
                "milestones": _rows(conn, "SELECT game_id, threshold, reached_at FROM milestones"
                                    " WHERE scope_guild_id = ? AND player_id = ?"
                                    " AND source IN (?, 'best') ORDER BY reached_at",
                                    (guild_id, link["external_id"], source)),
            })  # fmt: skip
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
        "playtime_per_game_and_source": _rows(conn, "SELECT game_id, source, seconds FROM"
                                              " member_playtime WHERE guild_id = ? AND"
                                              " discord_user_id = ? AND seconds <> 0"
                                              " ORDER BY game_id, source", (guild_id, user_id)),
        "accounts": accounts,
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
