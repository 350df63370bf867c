"""The states of OAuth and OpenID flows in SQLite: single use, bound, expiring.

A state is 256 random bits in the URL; the table keeps its SHA-256, so a copy of the database
cannot finish anyone's flow. ``consume`` takes a state once, atomically: a second callback with
the same state (a reload, a replay) finds it used.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from datetime import datetime, timedelta

from bot.clock import from_iso, to_iso
from bot.storage.engine import Database
from bot.storage.records import OAuthState

STATE_TTL = timedelta(minutes=10)


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
    conn: sqlite3.Connection, state: str, kind: str, now: datetime
) -> tuple[str, OAuthState | None]:
    """("ok", the state) once; else ("unknown" | "expired" | "used", what is known of it). A
    state of another kind reads as unknown."""
    row = conn.execute(
        "SELECT kind, guild_id, discord_user_id, language, expires_at, used_at"
        " FROM oauth_states WHERE state_hash = ?",
        (_hash(state),),
    ).fetchone()
    if row is None or row[0] != kind:
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

    async def peek(self, state: str, kind: str, now: datetime) -> str:
        """ "ok", "unknown", "expired" or "used", without taking the state (the start page)."""
        row = await self._db.fetchone(
            "SELECT kind, expires_at, used_at FROM oauth_states WHERE state_hash = ?",
            (_hash(state),),
        )
        if row is None or row[0] != kind:
            return "unknown"
        if row[2] is not None:
            return "used"
        return "expired" if from_iso(row[1]) <= now else "ok"

    async def consume(self, state: str, kind: str, now: datetime) -> tuple[str, OAuthState | None]:
        return await self._db.write(lambda c: consume_state(c, state, kind, now))
