"""Account links and one-time link codes (``/link minecraft`` issues one, the game confirms it)."""

from __future__ import annotations

import secrets
import sqlite3
from datetime import datetime, timedelta
from typing import Literal

from bot.clock import from_iso, to_iso
from bot.endpoints import ensure_guild

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed in game
CODE_LENGTH = 8
CODE_TTL = timedelta(minutes=10)

ConfirmStatus = Literal["linked", "unknown_code", "expired_code"]


def create_link_code(
    conn: sqlite3.Connection, *, guild_id: int, discord_user_id: int, source: str, now: datetime
) -> tuple[str, datetime]:
    """A fresh single-use code for the member; earlier unused codes of theirs stop working."""
    ensure_guild(conn, guild_id, now)
    conn.execute(
        "DELETE FROM link_codes WHERE guild_id = ? AND discord_user_id = ? AND source = ?"
        " AND used_at IS NULL",
        (guild_id, discord_user_id, source),
    )
    expires = now + CODE_TTL
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        try:
            conn.execute(
                "INSERT INTO link_codes (guild_id, code, discord_user_id, source, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (guild_id, code, discord_user_id, source, to_iso(now), to_iso(expires)),
            )
            return code, expires
        except sqlite3.IntegrityError:
            continue


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
    conn.execute(
        "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, display_name,"
        " verified, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)"
        " ON CONFLICT (guild_id, source, external_id) DO UPDATE SET"
        " discord_user_id = excluded.discord_user_id, display_name = excluded.display_name,"
        " verified = 1, updated_at = excluded.updated_at",
        (guild_id, member, source, external_id, display_name, stamp, stamp),
    )
    conn.execute(
        "UPDATE link_codes SET used_at = ?, used_by = ? WHERE guild_id = ? AND code = ?",
        (stamp, external_id, guild_id, code.upper()),
    )
    return "linked"
