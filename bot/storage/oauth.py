"""The states of OAuth and OpenID flows in SQLite: single use, bound, expiring.

A state is 256 random bits in the URL; the table keeps its SHA-256, so a copy of the database
cannot finish anyone's flow. ``consume`` takes a state once, atomically: a second callback with
the same state (a reload, a replay) finds it used.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.clock import from_iso, to_iso
from bot.storage.engine import Database
from bot.storage.records import OAuthState, StoredTokens

STATE_TTL = timedelta(minutes=10)


def _kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """Kinds as a tuple (a bare string would match its substrings)."""
    return (kinds,) if isinstance(kinds, str) else tuple(kinds)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


def create_state(
    conn: sqlite3.Connection,
    *,
    kind: str,
    guild_id: int | None,
    user_id: int | None,
    language: str,
    now: datetime,
    state: str,
) -> None:
    conn.execute(
        "INSERT INTO oauth_states (state_hash, kind, guild_id, discord_user_id, language,"
        " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (_hash(state), kind, guild_id, user_id, language, to_iso(now), to_iso(now + STATE_TTL)),
    )


def consume_state(
    conn: sqlite3.Connection, state: str, kinds: Sequence[str], now: datetime
) -> tuple[str, OAuthState | None]:
    """("ok", the state) once; else ("unknown" | "expired" | "used", what is known of it). A
    state of another kind than ``kinds`` reads as unknown."""
    row = conn.execute(
        "SELECT kind, guild_id, discord_user_id, language, expires_at, used_at"
        " FROM oauth_states WHERE state_hash = ?",
        (_hash(state),),
    ).fetchone()
    if row is None or row[0] not in _kinds(kinds):
        return "unknown", None
    found = OAuthState(row[0], row[1], row[2], row[3], from_iso(row[4]))
    if row[5] is not None:
        return "used", found
    if from_iso(row[4]) <= now:
        return "expired", found
    taken = conn.execute(
        "UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL",
        (to_iso(now), _hash(state)),
    ).rowcount
    return ("ok" if taken else "used"), found


class SqliteOAuthStates:
    def __init__(self, db: Database) -> None:
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
        """A new state for a flow (returned once: only its hash is kept)."""
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
        row = await self._db.fetchone(
            "SELECT kind, guild_id, discord_user_id, language, expires_at, used_at"
            " FROM oauth_states WHERE state_hash = ?",
            (_hash(state),),
        )
        if row is None or row[0] not in _kinds(kinds):
            return "unknown", None
        found = OAuthState(row[0], row[1], row[2], row[3], from_iso(row[4]))
        if row[5] is not None:
            return "used", found
        return ("expired" if found.expires_at <= now else "ok"), found

    async def consume(
        self, state: str, kinds: Sequence[str], now: datetime
    ) -> tuple[str, OAuthState | None]:
        return await self._db.write(lambda c: consume_state(c, state, kinds, now))

    async def outstanding(self, kind: str, now: datetime) -> int:
        """States of this kind neither used nor expired (the anonymous Linked Roles entry is
        capped by it)."""
        row = await self._db.fetchone(
            "SELECT count(*) FROM oauth_states WHERE expires_at > ? AND kind = ?"
            " AND used_at IS NULL",
            (to_iso(now), kind),
        )
        return int(row[0]) if row else 0

    async def remember_nonce(self, endpoint: str, nonce: str, expires_at: datetime) -> bool:
        """True the first time an OpenID response nonce is seen."""
        return await self._db.write(lambda c: remember_nonce(c, endpoint, nonce, expires_at))


# --------------------------------------------------------------------------- OpenID nonces


def remember_nonce(
    conn: sqlite3.Connection, endpoint: str, nonce: str, expires_at: datetime
) -> bool:
    """True the first time a response nonce is seen (then kept until ``expires_at``)."""
    return (
        conn.execute(
            "INSERT INTO openid_nonces (endpoint, nonce, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (endpoint, nonce, to_iso(expires_at)),
        ).rowcount
        == 1
    )


# --------------------------------------------------------------------------- tokens

_TOKEN_COLUMNS = (
    "discord_user_id, access_token, refresh_token, scope, expires_at, locale, username,"
    " pushed_values, pushed_at, push_due_at"
)


def _token_row(row: Any) -> StoredTokens:
    return StoredTokens(
        user_id=row[0],
        access_token=row[1],
        refresh_token=row[2],
        scope=row[3],
        expires_at=from_iso(row[4]),
        locale=row[5],
        username=row[6],
        pushed_values=row[7],
        pushed_at=from_iso(row[8]) if row[8] else None,
        push_due_at=from_iso(row[9]) if row[9] else None,
    )


def save_tokens(conn: sqlite3.Connection, tokens: StoredTokens, now: datetime) -> None:
    """Store a member's (sealed) tokens; a push of their role connection is due now."""
    stamp = to_iso(now)
    conn.execute(
        "INSERT INTO discord_tokens (discord_user_id, access_token, refresh_token, scope,"
        " expires_at, locale, username, push_due_at, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (discord_user_id) DO UPDATE SET access_token = excluded.access_token,"
        " refresh_token = excluded.refresh_token, scope = excluded.scope,"
        " expires_at = excluded.expires_at, locale = coalesce(excluded.locale, locale),"
        " username = coalesce(excluded.username, username), push_due_at = excluded.push_due_at,"
        " updated_at = excluded.updated_at",
        (tokens.user_id, tokens.access_token, tokens.refresh_token, tokens.scope,
         to_iso(tokens.expires_at), tokens.locale, tokens.username, stamp, stamp, stamp),
    )  # fmt: skip


class SqliteTokens:
    """Members' Discord OAuth tokens, sealed by the caller (bot/vault): this table never sees
    a token in the clear."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, tokens: StoredTokens, now: datetime) -> None:
        await self._db.write(lambda c: save_tokens(c, tokens, now))

    async def refreshed(self, tokens: StoredTokens, now: datetime) -> bool:
        """Replace a member's tokens after a refresh, only while they are still stored (a
        refresh that was under way when the member was forgotten brings nothing back)."""

        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE discord_tokens SET access_token = ?, refresh_token = ?, scope = ?,"
                " expires_at = ?, push_due_at = ?, updated_at = ? WHERE discord_user_id = ?",
                (tokens.access_token, tokens.refresh_token, tokens.scope,
                 to_iso(tokens.expires_at), to_iso(now), to_iso(now), tokens.user_id),
            ).rowcount > 0  # fmt: skip

        return await self._db.write(op)

    async def get(self, user_id: int) -> StoredTokens | None:
        row = await self._db.fetchone(
            f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens WHERE discord_user_id = ?", (user_id,)
        )
        return _token_row(row) if row else None

    async def drop(self, user_id: int) -> bool:
        return bool(
            await self._db.write(
                lambda c: (
                    c.execute(
                        "DELETE FROM discord_tokens WHERE discord_user_id = ?", (user_id,)
                    ).rowcount
                )
            )
        )

    async def due(self, now: datetime, limit: int) -> list[StoredTokens]:
        """Members whose role connection should be pushed now (oldest due first)."""
        rows = await self._db.fetchall(
            f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens WHERE push_due_at <= ?"
            " ORDER BY push_due_at LIMIT ?",
            (to_iso(now), limit),
        )
        return [_token_row(r) for r in rows]

    async def expiring(
        self, before: datetime, limit: int, after: tuple[datetime, int] | None = None
    ) -> list[StoredTokens]:
        """Members whose access token expires before ``before`` (to refresh them), soonest
        first; ``after``: the (expiry, member) of the last row of the previous page."""
        start = (to_iso(after[0]), after[1]) if after else ("", 0)
        rows = await self._db.fetchall(
            f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens WHERE expires_at < ?"
            " AND (expires_at, discord_user_id) > (?, ?)"
            " ORDER BY expires_at, discord_user_id LIMIT ?",
            (to_iso(before), *start, limit),
        )
        return [_token_row(r) for r in rows]

    async def pushed(
        self, user_id: int, values: str, now: datetime, next_due: datetime | None
    ) -> None:
        await self._db.write(
            lambda c: c.execute(
                "UPDATE discord_tokens SET pushed_values = ?, pushed_at = ?, push_due_at = ?"
                " WHERE discord_user_id = ?",
                (values, to_iso(now), to_iso(next_due) if next_due else None, user_id),
            )
        )

    async def postpone(self, user_id: int, until: datetime) -> None:
        await self._db.write(
            lambda c: c.execute(
                "UPDATE discord_tokens SET push_due_at = ? WHERE discord_user_id = ?",
                (to_iso(until), user_id),
            )
        )

    async def mark_due(self, user_ids: Sequence[int], at: datetime) -> int:
        """A push is due at ``at`` for these members (kept when one is due sooner)."""
        stamp = to_iso(at)

        def op(conn: sqlite3.Connection) -> int:
            changed = 0
            for user_id in user_ids:
                changed += conn.execute(
                    "UPDATE discord_tokens SET push_due_at = ? WHERE discord_user_id = ?"
                    " AND (push_due_at IS NULL OR push_due_at > ?)",
                    (stamp, user_id, stamp),
                ).rowcount
            return changed

        return await self._db.write(op)

    async def connected(self) -> list[StoredTokens]:
        """Every connected member's (sealed) tokens and push state, in one read."""
        rows = await self._db.fetchall(f"SELECT {_TOKEN_COLUMNS} FROM discord_tokens")
        return [_token_row(r) for r in rows]
