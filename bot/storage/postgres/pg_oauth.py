"""OAuth and OpenID states, OpenID nonces and members' Discord tokens on PostgreSQL: twins of
bot/storage/oauth.py (the ``oauth`` and ``tokens`` parts).

A state is 256 random bits in the URL; the table keeps only its SHA-256 (the same hash as on
SQLite), so a copy of the database cannot finish anyone's flow. ``consume`` takes a state once:
its UPDATE only takes a row nobody used yet, so of two callbacks with the same state (in one
transaction or in two processes: the second waits for the first's row lock, then finds it used)
exactly one is "ok".
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from bot.storage.oauth import STATE_TTL, _hash, _kinds
from bot.storage.postgres.pg_engine import PgDatabase
from bot.storage.records import OAuthState, StoredTokens

__all__ = ["PgOAuthStates", "PgTokens", "consume_state", "create_state", "remember_nonce"]

_STATE_COLUMNS = "kind, guild_id, discord_user_id, language, expires_at, used_at"


async def create_state(
    conn: asyncpg.Connection,
    *,
    kind: str,
    guild_id: int | None,
    user_id: int | None,
    language: str,
    now: datetime,
    state: str,
) -> None:
    await conn.execute(
        "INSERT INTO oauth_states (state_hash, kind, guild_id, discord_user_id, language,"
        " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        _hash(state), kind, guild_id, user_id, language, now, now + STATE_TTL,
    )  # fmt: skip


async def _find_state(conn: asyncpg.Connection, state: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_STATE_COLUMNS} FROM oauth_states WHERE state_hash = $1", _hash(state)
    )


def _found(row: asyncpg.Record) -> OAuthState:
    return OAuthState(
        row["kind"], row["guild_id"], row["discord_user_id"], row["language"], row["expires_at"]
    )


async def consume_state(
    conn: asyncpg.Connection, state: str, kinds: Sequence[str], now: datetime
) -> tuple[str, OAuthState | None]:
    """("ok", the state) once; else ("unknown" | "expired" | "used", what is known of it). A
    state of another kind than ``kinds`` reads as unknown."""
    row = await _find_state(conn, state)
    if row is None or row["kind"] not in _kinds(kinds):
        return "unknown", None
    found = _found(row)
    if row["used_at"] is not None:
        return "used", found
    if found.expires_at <= now:
        return "expired", found
    taken = await conn.fetchval(
        "UPDATE oauth_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL"
        " RETURNING true",
        now,
        _hash(state),
    )
    return ("ok" if taken else "used"), found


async def remember_nonce(
    conn: asyncpg.Connection, endpoint: str, nonce: str, expires_at: datetime
) -> bool:
    """True the first time a response nonce is seen (then kept until ``expires_at``)."""
    status = await conn.execute(
        "INSERT INTO openid_nonces (endpoint, nonce, expires_at) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        endpoint,
        nonce,
        expires_at,
    )
    return status == "INSERT 0 1"


class PgOAuthStates:
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def create(
        self,
        *,
        kind: str,
        guild_id: int | None,
        user_id: int | None,
        language: str,
        now: datetime,
    ) -> str:
        """A new state for a flow (returned once: only its hash is kept). Made before the
        operation, so a rerun of the batch stores the same state."""
        state = secrets.token_urlsafe(32)
        await self._db.write(
            lambda c: create_state(c, kind=kind, guild_id=guild_id, user_id=user_id,
                                   language=language, now=now, state=state)
        )  # fmt: skip
        return state

    async def peek(
        self, state: str, kinds: Sequence[str], now: datetime
    ) -> tuple[str, OAuthState | None]:
        """What ``consume`` would say now, without taking the state (the start page)."""
        row = await self._db.read(lambda c: _find_state(c, state))
        if row is None or row["kind"] not in _kinds(kinds):
            return "unknown", None
        found = _found(row)
        if row["used_at"] is not None:
            return "used", found
        return ("expired" if found.expires_at <= now else "ok"), found

    async def consume(
        self, state: str, kinds: Sequence[str], now: datetime
    ) -> tuple[str, OAuthState | None]:
        return await self._db.write(lambda c: consume_state(c, state, kinds, now))

    async def outstanding(self, kind: str, now: datetime) -> int:
        """States of this kind neither used nor expired (the anonymous Linked Roles entry is
        capped by it)."""

        async def fn(conn: asyncpg.Connection) -> int:
            count = await conn.fetchval(
                "SELECT count(*) FROM oauth_states WHERE expires_at > $1 AND kind = $2"
                " AND used_at IS NULL",
                now,
                kind,
            )
            return int(count or 0)

        return await self._db.read(fn)

    async def remember_nonce(self, endpoint: str, nonce: str, expires_at: datetime) -> bool:
        """True the first time an OpenID response nonce is seen."""
        return await self._db.write(lambda c: remember_nonce(c, endpoint, nonce, expires_at))


# --------------------------------------------------------------------------- tokens

_TOKEN_COLUMNS = (
    "discord_user_id, access_token, refresh_token, scope, expires_at, locale, username,"
    " pushed_values, pushed_at, push_due_at"
)


def _limit(limit: int) -> int | None:
    """SQLite's LIMIT: a negative one is no limit (PostgreSQL's LIMIT NULL)."""
    return limit if limit >= 0 else None


def _token_row(row: asyncpg.Record) -> StoredTokens:
    return StoredTokens(
        user_id=row["discord_user_id"],
        access_token=row["access_token"],
        refresh_token=row["refresh_token"],
        scope=row["scope"],
        expires_at=row["expires_at"],
        locale=row["locale"],
        username=row["username"],
        pushed_values=row["pushed_values"],
        pushed_at=row["pushed_at"],
        push_due_at=row["push_due_at"],
    )


async def save_tokens(conn: asyncpg.Connection, tokens: StoredTokens, now: datetime) -> None:
    """Store a member's (sealed) tokens; a push of their role connection is due now."""
    await conn.execute(
        "INSERT INTO discord_tokens (discord_user_id, access_token, refresh_token, scope,"
        " expires_at, locale, username, push_due_at, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)"
        " ON CONFLICT (discord_user_id) DO UPDATE SET access_token = excluded.access_token,"
        " refresh_token = excluded.refresh_token, scope = excluded.scope,"
        " expires_at = excluded.expires_at,"
        " locale = coalesce(excluded.locale, discord_tokens.locale),"
        " username = coalesce(excluded.username, discord_tokens.username),"
        " push_due_at = excluded.push_due_at, updated_at = excluded.updated_at",
        tokens.user_id, tokens.access_token, tokens.refresh_token, tokens.scope,
        tokens.expires_at, tokens.locale, tokens.username, now,
    )  # fmt: skip


class PgTokens:
    """Members' Discord OAuth tokens, sealed by the caller (bot/vault): this table never sees
    a token in the clear."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def save(self, tokens: StoredTokens, now: datetime) -> None:
        await self._db.write(lambda c: save_tokens(c, tokens, now))

    async def refreshed(self, tokens: StoredTokens, now: datetime) -> bool:
        """Replace a member's tokens after a refresh, only while they are still stored (a
        refresh that was under way when the member was forgotten brings nothing back)."""

        async def op(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                "UPDATE discord_tokens SET access_token = $1, refresh_token = $2, scope = $3,"
                " expires_at = $4, push_due_at = $5, updated_at = $5 WHERE discord_user_id = $6",
                tokens.access_token, tokens.refresh_token, tokens.scope, tokens.expires_at,
                now, tokens.user_id,
            )  # fmt: skip
            return status != "UPDATE 0"

        return await self._db.write(op)

    async def get(self, user_id: int) -> StoredTokens | None:
        async def fn(conn: asyncpg.Connection) -> StoredTokens | None:
            row = await conn.fetchrow(
                f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens WHERE discord_user_id = $1",
                user_id,
            )
            return _token_row(row) if row else None

        return await self._db.read(fn)

    async def drop(self, user_id: int) -> bool:
        async def op(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                "DELETE FROM discord_tokens WHERE discord_user_id = $1", user_id
            )
            return status != "DELETE 0"

        return await self._db.write(op)

    async def due(self, now: datetime, limit: int) -> list[StoredTokens]:
        """Members whose role connection should be pushed now (oldest due first; a tie in
        member order, as SQLite's index on push_due_at gives it)."""

        async def fn(conn: asyncpg.Connection) -> list[StoredTokens]:
            rows = await conn.fetch(
                f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens WHERE push_due_at <= $1"
                " ORDER BY push_due_at, discord_user_id LIMIT $2",
                now,
                _limit(limit),
            )
            return [_token_row(r) for r in rows]

        return await self._db.read(fn)

    async def expiring(
        self, before: datetime, limit: int, after: tuple[datetime, int] | None = None
    ) -> list[StoredTokens]:
        """Members whose access token expires before ``before`` (to refresh them), soonest
        first; ``after``: the (expiry, member) of the last row of the previous page."""

        async def fn(conn: asyncpg.Connection) -> list[StoredTokens]:
            if after is None:
                rows = await conn.fetch(
                    f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens WHERE expires_at < $1"
                    " ORDER BY expires_at, discord_user_id LIMIT $2",
                    before,
                    _limit(limit),
                )
            else:
                rows = await conn.fetch(
                    f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens WHERE expires_at < $1"
                    " AND (expires_at, discord_user_id) > ($2, $3)"
                    " ORDER BY expires_at, discord_user_id LIMIT $4",
                    before, after[0], after[1], _limit(limit),
                )  # fmt: skip
            return [_token_row(r) for r in rows]

        return await self._db.read(fn)

    async def pushed(
        self, user_id: int, values: str, now: datetime, next_due: datetime | None
    ) -> None:
        async def op(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "UPDATE discord_tokens SET pushed_values = $1, pushed_at = $2,"
                " push_due_at = $3 WHERE discord_user_id = $4",
                values,
                now,
                next_due,
                user_id,
            )

        await self._db.write(op)

    async def postpone(self, user_id: int, until: datetime) -> None:
        async def op(conn: asyncpg.Connection) -> None:
            await conn.execute(
                "UPDATE discord_tokens SET push_due_at = $1 WHERE discord_user_id = $2",
                until,
                user_id,
            )

        await self._db.write(op)

    async def mark_due(self, user_ids: Sequence[int], at: datetime) -> int:
        """A push is due at ``at`` for these members (kept when one is due sooner); how many
        rows changed (a member named twice counts once, as on SQLite)."""
        members = list(user_ids)

        async def op(conn: asyncpg.Connection) -> int:
            if not members:
                return 0
            status = await conn.execute(
                "UPDATE discord_tokens SET push_due_at = $1"
                " WHERE discord_user_id = ANY($2::bigint[])"
                " AND (push_due_at IS NULL OR push_due_at > $1)",
                at,
                members,
            )
            return int(status.split()[-1])

        return await self._db.write(op)

    async def connected(self) -> list[StoredTokens]:
        """Every connected member's (sealed) tokens and push state, in one read (in member
        order, SQLite's rowid order)."""

        async def fn(conn: asyncpg.Connection) -> list[StoredTokens]:
            rows = await conn.fetch(
                f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens ORDER BY discord_user_id"
            )
            return [_token_row(r) for r in rows]

        return await self._db.read(fn)
