"""Linked accounts and one-time link codes on PostgreSQL (``account_links``, ``link_codes``,
``link_notices``). Twins of bot/storage/links.py: the same names and parameters, with an
``asyncpg.Connection`` and typed values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from bot.storage.links import PROVEN
from bot.storage.postgres.pg_endpoints import ensure_guild
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.postgres.pg_playtime import (
    LINK_COUNTS,
    PROVEN_SQL,
    link_counts,
    list_linked_games,
    lock_account,
    move_account_playtime,
)
from bot.storage.postgres.pg_rewards import check_members
from bot.storage.records import AccountTaken, ConfirmStatus, Link, LinkNotice, VerifyOutcome
from connectors.base import LinkInfo

__all__ = [
    "PROVEN",
    "PgLinks",
    "add_link_code",
    "confirm_link_code",
    "find_link",
    "link_account",
    "link_notices",
    "set_require_verified",
    "unlink_accounts",
    "verify_link",
]

_UPSERT_LINK = (
    "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, display_name,"
    " verified, status, linked_by, verified_by, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)"
    " ON CONFLICT (guild_id, source, external_id) DO UPDATE SET"
    " discord_user_id = excluded.discord_user_id, display_name = excluded.display_name,"
    " verified = excluded.verified, status = excluded.status,"
    " linked_by = excluded.linked_by, verified_by = excluded.verified_by,"
    " updated_at = excluded.updated_at"
)


async def find_link(
    conn: asyncpg.Connection, guild_id: int, source: str | None, external_id: str | None
) -> LinkInfo | None:
    """The member who linked this game account in the guild (inside a transaction), when the
    link counts there (an unproven Steam link in a guild that requires verification does not:
    its events and milestones are nobody's)."""
    if not source or not external_id:
        return None
    row = await conn.fetchrow(
        "SELECT l.discord_user_id, l.external_id, l.display_name FROM account_links l"
        " WHERE l.guild_id = $1 AND l.source = $2 AND l.external_id = $3 AND " + LINK_COUNTS,
        guild_id, source, external_id,
    )  # fmt: skip
    return LinkInfo(row[0], row[1], row[2]) if row else None


async def link_account(
    conn: asyncpg.Connection,
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
    raises AccountTaken unless ``reassign`` (admins). ``linked_by``: who made the link;
    ``verified_by``: how it was proven (default: "admin" for a link an admin made, else "none";
    a member linking again an account already proven theirs keeps its proof)."""
    await ensure_guild(conn, guild_id, now)
    await lock_account(conn, source, external_id)  # FOR UPDATE locks no row not there yet
    row = await conn.fetchrow(
        "SELECT discord_user_id, verified_by, verified FROM account_links"
        " WHERE guild_id = $1 AND source = $2 AND external_id = $3 FOR UPDATE",
        guild_id, source, external_id,
    )  # fmt: skip
    if verified_by is None:
        if row is not None and row[0] == discord_user_id and row[1] != "none":
            # The member links again an account already proven theirs: it stays proven.
            verified_by, verified = row[1], verified or bool(row[2])
        else:
            verified_by = "none" if linked_by == "member" else "admin"
    if row is not None and row[0] != discord_user_id and not reassign:
        raise AccountTaken(row[0])
    await conn.execute(
        _UPSERT_LINK,
        guild_id, discord_user_id, source, external_id, display_name, bool(verified), status,
        linked_by, verified_by, now,
    )  # fmt: skip
    # The playtime follows the link when it counts (before and after).
    previous = (
        row[0] if row is not None and await link_counts(conn, guild_id, source, row[1]) else None
    )
    now_counts = await link_counts(conn, guild_id, source, verified_by)
    await move_account_playtime(conn, guild_id, source, external_id, from_user=previous,
                                to_user=discord_user_id if now_counts else None)  # fmt: skip
    await list_linked_games(conn, guild_id, source, external_id)
    await check_members(conn, guild_id, {discord_user_id} | ({row[0]} if row else set()), now)
    return Link(source, external_id, display_name, verified, status, linked_by, verified_by)


async def add_link_code(
    conn: asyncpg.Connection,
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
    if await conn.fetchval(
        "SELECT 1 FROM link_codes WHERE guild_id = $1 AND code = $2", guild_id, code
    ):
        return False
    await ensure_guild(conn, guild_id, now)
    await conn.execute(
        "DELETE FROM link_codes WHERE guild_id = $1 AND discord_user_id = $2 AND source = $3"
        " AND used_at IS NULL",
        guild_id, discord_user_id, source,
    )  # fmt: skip
    status = await conn.execute(
        "INSERT INTO link_codes (guild_id, code, discord_user_id, source, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guild_id, code) DO NOTHING",
        guild_id, code, discord_user_id, source, now, expires,
    )  # fmt: skip
    return status == "INSERT 0 1"


async def confirm_link_code(
    conn: asyncpg.Connection,
    *,
    guild_id: int,
    source: str,
    code: str,
    external_id: str,
    display_name: str | None,
    now: datetime,
) -> ConfirmStatus:
    """Link ``external_id`` to the member who requested ``code`` (proven: typed in game; the
    account moves from another member who held it). A retry of an already used code by the
    same player answers ``linked`` again."""
    row = await conn.fetchrow(
        "SELECT discord_user_id, expires_at, used_at, used_by FROM link_codes"
        " WHERE guild_id = $1 AND code = $2 AND source = $3 FOR UPDATE",
        guild_id, code.upper(), source,
    )  # fmt: skip
    if row is None:
        return "unknown_code"
    member, expires_at, used_at, used_by = row
    if used_at is not None:
        return "linked" if used_by == external_id else "unknown_code"
    if expires_at <= now:
        return "expired_code"
    await lock_account(conn, source, external_id)
    holder = await conn.fetchval(
        "SELECT discord_user_id FROM account_links WHERE guild_id = $1 AND source = $2"
        " AND external_id = $3 FOR UPDATE",
        guild_id, source, external_id,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, display_name,"
        " verified, verified_by, linked_by, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, true, 'minecraft_code', 'member', $6, $6)"
        " ON CONFLICT (guild_id, source, external_id) DO UPDATE SET"
        " discord_user_id = excluded.discord_user_id, display_name = excluded.display_name,"
        " verified = true, verified_by = 'minecraft_code', linked_by = 'member',"
        " updated_at = excluded.updated_at",
        guild_id, member, source, external_id, display_name, now,
    )  # fmt: skip
    await move_account_playtime(conn, guild_id, source, external_id,
                                from_user=holder, to_user=member)  # fmt: skip
    await list_linked_games(conn, guild_id, source, external_id)
    await check_members(conn, guild_id, {member} | ({holder} if holder is not None else set()),
                        now)  # fmt: skip
    await conn.execute(
        "UPDATE link_codes SET used_at = $1, used_by = $2 WHERE guild_id = $3 AND code = $4",
        now, external_id, guild_id, code.upper(),
    )  # fmt: skip
    return "linked"


async def verify_link(
    conn: asyncpg.Connection,
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
    await lock_account(conn, source, external_id)
    row = await conn.fetchrow(
        "SELECT discord_user_id, verified_by, display_name, status FROM account_links"
        " WHERE guild_id = $1 AND source = $2 AND external_id = $3",
        guild_id, source, external_id,
    )  # fmt: skip
    displaced: int | None = None
    if row is not None and row[0] != discord_user_id:
        displaced = row[0]
        reason = "verified_by_other" if row[1] == "none" else "verified_later"
        await conn.execute(
            "INSERT INTO link_notices (guild_id, discord_user_id, source, external_id, reason,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            guild_id, displaced, source, external_id, reason, now,
        )  # fmt: skip
    already = row is not None and row[0] == discord_user_id and row[1] == verified_by
    name = display_name or (row[2] if row is not None else None)
    link = await link_account(
        conn, guild_id=guild_id, discord_user_id=discord_user_id, source=source,
        external_id=external_id, now=now, display_name=name, verified=True, reassign=True,
        linked_by="member", verified_by=verified_by, status=row[3] if row is not None else None,
    )  # fmt: skip
    return VerifyOutcome(link, displaced, changed=not already)


async def link_notices(
    conn: asyncpg.Connection, guild_id: int, discord_user_id: int
) -> list[LinkNotice]:
    rows = await conn.fetch(
        "SELECT source, external_id, reason, created_at FROM link_notices"
        " WHERE guild_id = $1 AND discord_user_id = $2 ORDER BY id DESC LIMIT 10",
        guild_id, discord_user_id,
    )  # fmt: skip
    return [LinkNotice(r[0], r[1], r[2], r[3]) for r in rows]


async def set_require_verified(
    conn: asyncpg.Connection, guild_id: int, on: bool, now: datetime
) -> int:
    """Turn the guild's require-verified setting on or off; the playtime of its unproven Steam
    links leaves (on) or rejoins (off) their members' summaries. Returns how many links stop
    (or start again) counting; 0 when the setting was already so."""
    await ensure_guild(conn, guild_id, now)
    status = await conn.execute(
        "UPDATE guilds SET require_verified = $1, updated_at = $2 WHERE guild_id = $3"
        " AND require_verified <> $1",
        on, now, guild_id,
    )  # fmt: skip
    if status == "UPDATE 0":
        return 0
    unproven = await conn.fetch(
        "SELECT discord_user_id, external_id FROM account_links WHERE guild_id = $1"
        f" AND source = 'steam' AND verified_by NOT IN {PROVEN_SQL}",
        guild_id,
    )
    for user_id, external_id in unproven:
        await move_account_playtime(conn, guild_id, "steam", external_id,
                                    from_user=user_id if on else None,
                                    to_user=None if on else user_id)  # fmt: skip
    await check_members(conn, guild_id, {r[0] for r in unproven}, now)
    return len(unproven)


async def unlink_accounts(
    conn: asyncpg.Connection,
    guild_id: int,
    discord_user_id: int,
    source: str,
    now: datetime | None = None,
) -> int:
    """Remove the member's links of that source (their playtime leaves the member's
    summaries); returns how many there were."""
    accounts = await conn.fetch(
        "SELECT external_id, verified_by FROM account_links WHERE guild_id = $1"
        " AND discord_user_id = $2 AND source = $3 FOR UPDATE",
        guild_id, discord_user_id, source,
    )  # fmt: skip
    for external_id, _ in sorted(accounts):
        await lock_account(conn, source, external_id)
    for external_id, verified_by in accounts:
        if await link_counts(conn, guild_id, source, verified_by):
            await move_account_playtime(conn, guild_id, source, external_id,
                                        from_user=discord_user_id, to_user=None)  # fmt: skip
    await conn.execute(
        "DELETE FROM account_links WHERE guild_id = $1 AND discord_user_id = $2 AND source = $3",
        guild_id, discord_user_id, source,
    )  # fmt: skip
    if accounts and now is not None:  # rewards the accounts earned go with them
        await check_members(conn, guild_id, [discord_user_id], now)
    return len(accounts)


class PgLinks:
    def __init__(self, db: PgDatabase) -> None:
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

        async def op(conn: asyncpg.Connection) -> list[str]:
            outcomes = []
            for user_id, source, external_id in rows:
                owner = await conn.fetchval(
                    "SELECT discord_user_id FROM account_links"
                    " WHERE guild_id = $1 AND source = $2 AND external_id = $3",
                    guild_id, source, external_id,
                )  # fmt: skip
                if owner is not None and owner == user_id:
                    outcomes.append("unchanged")
                    continue
                if owner is not None and not reassign:
                    outcomes.append("taken")
                    continue
                await link_account(
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

        async def op(conn: asyncpg.Connection) -> list[VerifyOutcome]:
            return [
                await verify_link(conn, guild_id=guild_id, discord_user_id=discord_user_id,
                                  source=source, external_id=external_id,
                                  verified_by=verified_by, now=now, display_name=name)
                for source, external_id, name in accounts
            ]  # fmt: skip

        return await self._db.write(op)

    async def set_require_verified(self, guild_id: int, on: bool, now: datetime) -> int:
        return await self._db.write(lambda c: set_require_verified(c, guild_id, on, now))

    async def unproven_steam(self, guild_id: int) -> int:
        """How many Steam links of the guild are not proven (they stop counting when the
        guild requires verification)."""

        async def fn(conn: asyncpg.Connection) -> int:
            found = await conn.fetchval(
                "SELECT count(*) FROM account_links WHERE guild_id = $1 AND source = 'steam'"
                f" AND verified_by NOT IN {PROVEN_SQL}",
                guild_id,
            )
            return int(found or 0)

        return await self._db.read(fn)

    async def require_verified(self, guild_id: int) -> bool:
        async def fn(conn: asyncpg.Connection) -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT require_verified FROM guilds WHERE guild_id = $1", guild_id
                )
            )

        return await self._db.read(fn)

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
        async def fn(conn: asyncpg.Connection) -> list[Link]:
            rows = await conn.fetch(
                "SELECT source, external_id, display_name, verified, status, linked_by,"
                " verified_by FROM account_links WHERE guild_id = $1 AND discord_user_id = $2"
                ' ORDER BY source COLLATE "C", external_id COLLATE "C"',
                guild_id, discord_user_id,
            )  # fmt: skip
            return [Link(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6]) for r in rows]

        return await self._db.read(fn)

    async def steam_ids(
        self, guild_id: int | None = None, discord_user_id: int | None = None
    ) -> list[str]:
        """The distinct SteamIDs linked (in a guild, by a member)."""
        sql = "SELECT DISTINCT external_id COLLATE \"C\" FROM account_links WHERE source = 'steam'"
        params: list[int] = []
        if guild_id is not None:
            params.append(guild_id)
            sql += f" AND guild_id = ${len(params)}"
        if discord_user_id is not None:
            params.append(discord_user_id)
            sql += f" AND discord_user_id = ${len(params)}"
        sql += " ORDER BY 1"

        async def fn(conn: asyncpg.Connection) -> list[str]:
            return [r[0] for r in await conn.fetch(sql, *params)]

        return await self._db.read(fn)

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

        async def fn(conn: asyncpg.Connection) -> bool:
            found = await conn.fetchval(
                "SELECT 1 FROM account_links WHERE guild_id = $1 AND discord_user_id = $2"
                " AND source = 'steam' AND status = 'private_profile' LIMIT 1",
                guild_id, discord_user_id,
            )  # fmt: skip
            return found is not None

        return await self._db.read(fn)

    async def linked_elsewhere(self, discord_user_id: int, guild_id: int) -> bool:
        """Whether the member has links in a guild other than ``guild_id``."""

        async def fn(conn: asyncpg.Connection) -> bool:
            found = await conn.fetchval(
                "SELECT 1 FROM account_links WHERE discord_user_id = $1 AND guild_id <> $2"
                " LIMIT 1",
                discord_user_id, guild_id,
            )  # fmt: skip
            return found is not None

        return await self._db.read(fn)

    async def count(self) -> int:
        async def fn(conn: asyncpg.Connection) -> int:
            return int(await conn.fetchval("SELECT count(*) FROM account_links") or 0)

        return await self._db.read(fn)
