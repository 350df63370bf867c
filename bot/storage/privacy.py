"""What Questlog stores about one member in one guild, counted (``/privacy show``).

Every table that holds member data is read here; issue 16's export and delete will walk the
same list (``MEMBER_TABLES``)."""

from __future__ import annotations

import sqlite3

from bot.storage.engine import Database
from bot.storage.playtime import PLAYTIME_OF_LINK
from bot.storage.records import GLOBAL_SCOPE, PrivacySummary

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
    for link_source, external, _ in links:
        for wanted, source, is_global in PLAYTIME_OF_LINK:
            if wanted != link_source:
                continue
            scope = GLOBAL_SCOPE if is_global else guild_id
            sessions += conn.execute(
                "SELECT count(*) FROM sessions WHERE guild_id = ? AND source = ? AND player_id = ?",
                (guild_id, source, external),
            ).fetchone()[0]
            samples += conn.execute(
                "SELECT count(*) FROM playtime_samples WHERE scope_guild_id = ?"
                " AND player_id = ? AND source = ?",
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
