"""Linked accounts and one-time link codes in SQLite (``account_links``, ``link_codes``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from bot.clock import from_iso, to_iso
from bot.storage.endpoints import ensure_guild
from bot.storage.engine import Database
from bot.storage.playtime import (
    LINK_COUNTS,
    PROVEN_SQL,
    link_counts,
    list_linked_games,
    move_account_playtime,
)
from bot.storage.records import AccountTaken, ConfirmStatus, Link, LinkNotice, VerifyOutcome
from bot.storage.rewards import check_members
from connectors.base import LinkInfo


def find_link(
    conn: sqlite3.Connection, guild_id: int, source: str | None, external_id: str | None
) -> LinkInfo | None:
    """The member who linked this game account in the guild (inside a transaction), when the
    link counts there (an unproven Steam link in a guild that requires verification does not:
    its events and milestones are nobody's)."""
    if not source or not external_id:
        return None
    row = conn.execute(
        "SELECT l.discord_user_id, l.external_id, l.display_name FROM account_links l"
        " WHERE l.guild_id = ? AND l.source = ? AND l.external_id = ? AND " + LINK_COUNTS,
        (guild_id, source, external_id),
    ).fetchone()
    return LinkInfo(row[0], row[1], row[2]) if row else None


def link_account(
    conn: sqlite3.Connection,
    *,
    guild_id: int,
    discord_user_id: int,
    source: str,
    external_id: str,
    now: datetime,
    display_name: str | None = None,
    verified: bool = False,
    status: str | None = None,
    reassign: bool = False,
    linked_by: str = "member",
    verified_by: str | None = None,
) -> Link:
    """Link an external account to a member of the guild. An account linked to another member
    raises AccountTaken unless ``reassign`` (admins). ``linked_by``: who made the link
    (migration 0021); ``verified_by``: how it was proven (migration 0023; default: "admin"
    for a link an admin made, else "none")."""
    ensure_guild(conn, guild_id, now)
    row = conn.execute(
        "SELECT discord_user_id, verified_by, verified FROM account_links"
        " WHERE guild_id = ? AND source = ? AND external_id = ?",
        (guild_id, source, external_id),
    ).fetchone()
    if verified_by is None:
        if row is not None and row[0] == discord_user_id and row[1] != "none":
            # The member links again an account already proven theirs: it stays proven.
            verified_by, verified = row[1], verified or bool(row[2])
        else:
            verified_by = "none" if linked_by == "member" else "admin"
    if row is not None and row[0] != discord_user_id and not reassign:
        raise AccountTaken(row[0])
    stamp = to_iso(now)
    conn.execute(
        "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, display_name,"
        " verified, status, linked_by, verified_by, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (guild_id, source, external_id) DO UPDATE SET"
        " discord_user_id = excluded.discord_user_id, display_name = excluded.display_name,"
        " verified = excluded.verified, status = excluded.status,"
        " linked_by = excluded.linked_by, verified_by = excluded.verified_by,"
        " updated_at = excluded.updated_at",
        (guild_id, discord_user_id, source, external_id, display_name, int(verified), status,
         linked_by, verified_by, stamp, stamp),
    )  # fmt: skip
    # The playtime follows the link when it counts (before and after).
    previous = row[0] if row is not None and link_counts(conn, guild_id, source, row[1]) else None
    now_counts = link_counts(conn, guild_id, source, verified_by)
    move_account_playtime(conn, guild_id, source, external_id, from_user=previous,
                          to_user=discord_user_id if now_counts else None)  # fmt: skip
    list_linked_games(conn, guild_id, source, external_id)
    check_members(conn, guild_id, {discord_user_id} | ({row[0]} if row else set()), now)
    return Link(source, external_id, display_name, verified, status, linked_by, verified_by)


def add_link_code(
    conn: sqlite3.Connection,
    *,
    guild_id: int,
    discord_user_id: int,
    source: str,
    code: str,
    now: datetime,
    expires: datetime,
) -> bool:
    """Store a single-use code for the member (their earlier unused codes stop working); False
    when the code is taken in the guild."""
    if conn.execute(
        "SELECT 1 FROM link_codes WHERE guild_id = ? AND code = ?", (guild_id, code)
    ).fetchone():
        return False
    ensure_guild(conn, guild_id, now)
    conn.execute(
        "DELETE FROM link_codes WHERE guild_id = ? AND discord_user_id = ? AND source = ?"
        " AND used_at IS NULL",
        (guild_id, discord_user_id, source),
    )
    conn.execute(
        "INSERT INTO link_codes (guild_id, code, discord_user_id, source, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (guild_id, code, discord_user_id, source, to_iso(now), to_iso(expires)),
    )
    return True


def confirm_link_code(
    conn: sqlite3.Connection,
    *,
    guild_id: int,
    source: str,
    code: str,
    external_id: str,
    display_name: str | None,
    now: datetime,
) -> ConfirmStatus:
    """Link ``external_id`` to the member who requested ``code``.

    Typing the code in game proves control of the game account, so the link is verified and,
    if another member of the guild held that account, it moves to the member who asked. A retry
    of an already used code by the same player answers ``linked`` again."""
    row = conn.execute(
        "SELECT discord_user_id, expires_at, used_at, used_by FROM link_codes"
        " WHERE guild_id = ? AND code = ? AND source = ?",
        (guild_id, code.upper(), source),
    ).fetchone()
    if row is None:
        return "unknown_code"
    member, expires_at, used_at, used_by = row
    if used_at is not None:
        return "linked" if used_by == external_id else "unknown_code"
    if from_iso(expires_at) <= now:
        return "expired_code"
    stamp = to_iso(now)
    holder = conn.execute(
        "SELECT discord_user_id FROM account_links WHERE guild_id = ? AND source = ?"
        " AND external_id = ?",
        (guild_id, source, external_id),
    ).fetchone()
    conn.execute(
        "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, display_name,"
        " verified, verified_by, linked_by, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 1, 'minecraft_code', 'member', ?, ?)"
        " ON CONFLICT (guild_id, source, external_id) DO UPDATE SET"
        " discord_user_id = excluded.discord_user_id, display_name = excluded.display_name,"
        " verified = 1, verified_by = 'minecraft_code', linked_by = 'member',"
        " updated_at = excluded.updated_at",
        (guild_id, member, source, external_id, display_name, stamp, stamp),
    )
    move_account_playtime(conn, guild_id, source, external_id,
                          from_user=holder[0] if holder else None, to_user=member)  # fmt: skip
    list_linked_games(conn, guild_id, source, external_id)
    check_members(conn, guild_id, {member} | ({holder[0]} if holder else set()), now)
    conn.execute(
        "UPDATE link_codes SET used_at = ?, used_by = ? WHERE guild_id = ? AND code = ?",
        (stamp, external_id, guild_id, code.upper()),
    )
    return "linked"


#: How a link is proven by a member's own sign-in (Login with Discord, Sign in through Steam).
PROVEN = ("discord", "openid")


def verify_link(
    conn: sqlite3.Connection,
    *,
    guild_id: int,
    discord_user_id: int,
    source: str,
    external_id: str,
    verified_by: str,
    now: datetime,
    display_name: str | None = None,
) -> VerifyOutcome:
    """Link an account the member proved to be theirs. Who wins: a proof beats another member's
    unverified claim (removed, its owner told in /links: ``verified_by_other``); of two proofs,
    the later wins (the earlier owner is told: ``verified_later``)."""
    row = conn.execute(
        "SELECT discord_user_id, verified_by, display_name, status FROM account_links"
        " WHERE guild_id = ? AND source = ? AND external_id = ?",
        (guild_id, source, external_id),
    ).fetchone()
    displaced: int | None = None
    if row is not None and row[0] != discord_user_id:
        displaced = row[0]
        reason = "verified_by_other" if row[1] == "none" else "verified_later"
        conn.execute(
            "INSERT INTO link_notices (guild_id, discord_user_id, source, external_id, reason,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (guild_id, displaced, source, external_id, reason, to_iso(now)),
        )
    already = row is not None and row[0] == discord_user_id and row[1] == verified_by
    name = display_name or (row[2] if row is not None else None)
    link = link_account(
        conn, guild_id=guild_id, discord_user_id=discord_user_id, source=source,
        external_id=external_id, now=now, display_name=name, verified=True, reassign=True,
        linked_by="member", verified_by=verified_by, status=row[3] if row is not None else None,
    )  # fmt: skip
    return VerifyOutcome(link, displaced, changed=not already)


def link_notices(conn: sqlite3.Connection, guild_id: int, discord_user_id: int) -> list[LinkNotice]:
    rows = conn.execute(
        "SELECT source, external_id, reason, created_at FROM link_notices"
        " WHERE guild_id = ? AND discord_user_id = ? ORDER BY id DESC LIMIT 10",
        (guild_id, discord_user_id),
    ).fetchall()
    return [LinkNotice(r[0], r[1], r[2], from_iso(r[3])) for r in rows]


def set_require_verified(conn: sqlite3.Connection, guild_id: int, on: bool, now: datetime) -> int:
    """Turn the guild's require-verified setting on or off; the playtime of its unproven Steam
    links leaves (on) or rejoins (off) their members' summaries. Returns how many links stop
    (or start again) counting; 0 when the setting was already so."""
    ensure_guild(conn, guild_id, now)
    changed = conn.execute(
        "UPDATE guilds SET require_verified = ?, updated_at = ? WHERE guild_id = ?"
        " AND require_verified <> ?",
        (int(on), to_iso(now), guild_id, int(on)),
    ).rowcount
    unproven = conn.execute(
        "SELECT discord_user_id, external_id FROM account_links WHERE guild_id = ?"
        f" AND source = 'steam' AND verified_by NOT IN {PROVEN_SQL}",
        (guild_id,),
    ).fetchall()
    if not changed:
        return 0
    for user_id, external_id in unproven:
        move_account_playtime(conn, guild_id, "steam", external_id,
                              from_user=user_id if on else None,
                              to_user=None if on else user_id)  # fmt: skip
    check_members(conn, guild_id, {user_id for user_id, _ in unproven}, now)
    return len(unproven)


def unlink_accounts(
    conn: sqlite3.Connection,
    guild_id: int,
    discord_user_id: int,
    source: str,
    now: datetime | None = None,
) -> int:
    """Remove the member's links of that source (their playtime leaves the member's
    summaries); returns how many there were."""
    accounts = conn.execute(
        "SELECT external_id, verified_by FROM account_links WHERE guild_id = ?"
        " AND discord_user_id = ? AND source = ?",
        (guild_id, discord_user_id, source),
    ).fetchall()
    for external_id, verified_by in accounts:
        if link_counts(conn, guild_id, source, verified_by):
            move_account_playtime(conn, guild_id, source, external_id,
                                  from_user=discord_user_id, to_user=None)  # fmt: skip
    conn.execute(
        "DELETE FROM account_links WHERE guild_id = ? AND discord_user_id = ? AND source = ?",
        (guild_id, discord_user_id, source),
    )
    if accounts and now is not None:  # rewards the accounts earned go with them
        check_members(conn, guild_id, [discord_user_id], now)
    return len(accounts)


class SqliteLinks:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def link(
        self,
        *,
        guild_id: int,
        discord_user_id: int,
        source: str,
        external_id: str,
        now: datetime,
        display_name: str | None = None,
        verified: bool = False,
        status: str | None = None,
        reassign: bool = False,
        linked_by: str = "member",
    ) -> Link:
        return await self._db.write(
            lambda c: link_account(
                c,
                guild_id=guild_id,
                discord_user_id=discord_user_id,
                source=source,
                external_id=external_id,
                now=now,
                display_name=display_name,
                verified=verified,
                status=status,
                reassign=reassign,
                linked_by=linked_by,
            )
        )

    async def import_links(
        self,
        guild_id: int,
        rows: Sequence[tuple[int, str, str]],
        now: datetime,
        *,
        linked_by: str,
        reassign: bool = False,
    ) -> list[str]:
        """Link every (member, source, external id) in one transaction; per row "linked",
        "unchanged" (already that member's) or "taken" (another member's, kept unless
        ``reassign``)."""

        def op(conn: sqlite3.Connection) -> list[str]:
            outcomes = []
            for user_id, source, external_id in rows:
                owner = conn.execute(
                    "SELECT discord_user_id FROM account_links"
                    " WHERE guild_id = ? AND source = ? AND external_id = ?",
                    (guild_id, source, external_id),
                ).fetchone()
                if owner is not None and owner[0] == user_id:
                    outcomes.append("unchanged")
                    continue
                if owner is not None and not reassign:
                    outcomes.append("taken")
                    continue
                link_account(
                    conn, guild_id=guild_id, discord_user_id=user_id, source=source,
                    external_id=external_id, now=now, reassign=True, linked_by=linked_by,
                )  # fmt: skip
                outcomes.append("linked")
            return outcomes

        return await self._db.write(op)

    async def verify(
        self,
        *,
        guild_id: int,
        discord_user_id: int,
        accounts: Sequence[tuple[str, str, str | None]],
        verified_by: str,
        now: datetime,
    ) -> list[VerifyOutcome]:
        """Link every (source, external id, name) the member proved, in one transaction (see
        ``verify_link`` for who wins)."""
        return await self._db.write(
            lambda c: [
                verify_link(c, guild_id=guild_id, discord_user_id=discord_user_id, source=source,
                            external_id=external_id, verified_by=verified_by, now=now,
                            display_name=name)
                for source, external_id, name in accounts
            ]
        )  # fmt: skip

    async def set_require_verified(self, guild_id: int, on: bool, now: datetime) -> int:
        return await self._db.write(lambda c: set_require_verified(c, guild_id, on, now))

    async def unproven_steam(self, guild_id: int) -> int:
        """How many Steam links of the guild are not proven (they stop counting when the
        guild requires verification)."""
        row = await self._db.fetchone(
            "SELECT count(*) FROM account_links WHERE guild_id = ? AND source = 'steam'"
            f" AND verified_by NOT IN {PROVEN_SQL}",
            (guild_id,),
        )
        return int(row[0]) if row else 0

    async def require_verified(self, guild_id: int) -> bool:
        row = await self._db.fetchone(
            "SELECT require_verified FROM guilds WHERE guild_id = ?", (guild_id,)
        )
        return bool(row and row[0])

    async def notices(self, guild_id: int, discord_user_id: int) -> list[LinkNotice]:
        """Why the member lost links lately (newest first, at most 10; kept 30 days)."""
        return await self._db.read(lambda c: link_notices(c, guild_id, discord_user_id))

    async def unlink(
        self, *, guild_id: int, discord_user_id: int, source: str, now: datetime
    ) -> int:
        """Remove the member's links of that source (rewards they earned go too); returns how
        many there were."""
        return await self._db.write(
            lambda c: unlink_accounts(c, guild_id, discord_user_id, source, now)
        )

    async def for_member(self, guild_id: int, discord_user_id: int) -> list[Link]:
        rows = await self._db.fetchall(
            "SELECT source, external_id, display_name, verified, status, linked_by, verified_by"
            " FROM account_links WHERE guild_id = ? AND discord_user_id = ?"
            " ORDER BY source, external_id",
            (guild_id, discord_user_id),
        )
        return [Link(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6]) for r in rows]

    async def steam_ids(
        self, guild_id: int | None = None, discord_user_id: int | None = None
    ) -> list[str]:
        """The distinct SteamIDs linked (in a guild, by a member)."""
        sql = "SELECT DISTINCT external_id FROM account_links WHERE source = 'steam'"
        params: list[int] = []
        if guild_id is not None:
            sql += " AND guild_id = ?"
            params.append(guild_id)
        if discord_user_id is not None:
            sql += " AND discord_user_id = ?"
            params.append(discord_user_id)
        return [r[0] for r in await self._db.fetchall(sql, tuple(params))]

    async def add_code(
        self,
        *,
        guild_id: int,
        discord_user_id: int,
        source: str,
        code: str,
        now: datetime,
        expires: datetime,
    ) -> bool:
        return await self._db.write(
            lambda c: add_link_code(
                c,
                guild_id=guild_id,
                discord_user_id=discord_user_id,
                source=source,
                code=code,
                now=now,
                expires=expires,
            )
        )

    async def confirm_code(
        self,
        *,
        guild_id: int,
        source: str,
        code: str,
        external_id: str,
        display_name: str | None,
        now: datetime,
    ) -> ConfirmStatus:
        return await self._db.write(
            lambda c: confirm_link_code(
                c,
                guild_id=guild_id,
                source=source,
                code=code,
                external_id=external_id,
                display_name=display_name,
                now=now,
            )
        )

    async def steam_private(self, guild_id: int, discord_user_id: int) -> bool:
        """Whether the member's linked Steam account hides its game details (noticed by the
        sync)."""
        row = await self._db.fetchone(
            "SELECT 1 FROM account_links WHERE guild_id = ? AND discord_user_id = ?"
            " AND source = 'steam' AND status = 'private_profile'",
            (guild_id, discord_user_id),
        )
        return row is not None

    async def linked_elsewhere(self, discord_user_id: int, guild_id: int) -> bool:
        """Whether the member has links in a guild other than ``guild_id``."""
        row = await self._db.fetchone(
            "SELECT 1 FROM account_links WHERE discord_user_id = ? AND guild_id <> ? LIMIT 1",
            (discord_user_id, guild_id),
        )
        return row is not None

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM account_links")
        return int(row[0]) if row else 0
