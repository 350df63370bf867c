"""Account links and one-time link codes (``/link minecraft`` issues one, the game confirms it)."""

from __future__ import annotations

import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.clock import from_iso, to_iso
from bot.storage.endpoints import ensure_guild

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


# --------------------------------------------------------------------------- linking accounts

_STEAM_ID = re.compile(r"7656119[0-9]{10}", re.ASCII)
_VANITY = re.compile(r"[A-Za-z0-9_-]{2,32}", re.ASCII)
_PROFILE_URL = re.compile(
    r"(?:https?://)?(?:www\.)?steamcommunity\.com/(profiles|id)/([^/?#\s]+)/?(?:[?#].*)?",
    re.IGNORECASE,
)


class LinkError(Exception):
    """A linking mistake the member can fix; str() is the explanation."""


class LinkConflict(LinkError):
    def __init__(self, message: str, owner_user_id: int) -> None:
        super().__init__(message)
        self.owner_user_id = owner_user_id


@dataclass(frozen=True)
class SteamInput:
    steam_id: str | None = None  # given directly
    vanity: str | None = None  # to resolve with ResolveVanityURL


@dataclass(frozen=True)
class Link:
    source: str
    external_id: str
    display_name: str | None
    verified: bool
    status: str | None


def parse_steam_input(text: str) -> SteamInput:
    """A SteamID64, a profile URL (/profiles/<id> or /id/<vanity>) or a bare vanity name."""
    value = text.strip()
    match = _PROFILE_URL.fullmatch(value)
    if match:
        kind, part = match.group(1).lower(), match.group(2)
        if kind == "profiles":
            if not _STEAM_ID.fullmatch(part):
                raise LinkError("That profile link has no valid SteamID64 in it.")
            return SteamInput(steam_id=part)
        value = part
    if _STEAM_ID.fullmatch(value):
        return SteamInput(steam_id=value)
    if _VANITY.fullmatch(value):
        return SteamInput(vanity=value)
    raise LinkError(
        "Give your SteamID64 (17 digits starting with 7656119), your profile link, or your custom URL name."
    )


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
) -> Link:
    """Link an external account to a member of the guild. An account linked to another member
    is refused unless ``reassign`` (admins)."""
    ensure_guild(conn, guild_id, now)
    row = conn.execute(
        "SELECT discord_user_id FROM account_links WHERE guild_id = ? AND source = ? AND external_id = ?",
        (guild_id, source, external_id),
    ).fetchone()
    if row is not None and row[0] != discord_user_id and not reassign:
        raise LinkConflict(
            "That account is already linked to another member of this server.", row[0]
        )
    stamp = to_iso(now)
    conn.execute(
        "INSERT INTO account_links (guild_id, discord_user_id, source, external_id, display_name,"
        " verified, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (guild_id, source, external_id) DO UPDATE SET"
        " discord_user_id = excluded.discord_user_id, display_name = excluded.display_name,"
        " verified = excluded.verified, status = excluded.status, updated_at = excluded.updated_at",
        (
            guild_id,
            discord_user_id,
            source,
            external_id,
            display_name,
            int(verified),
            status,
            stamp,
            stamp,
        ),
    )
    return Link(source, external_id, display_name, verified, status)


def unlink_accounts(
    conn: sqlite3.Connection, *, guild_id: int, discord_user_id: int, source: str
) -> int:
    return conn.execute(
        "DELETE FROM account_links WHERE guild_id = ? AND discord_user_id = ? AND source = ?",
        (guild_id, discord_user_id, source),
    ).rowcount


def links_of(conn: sqlite3.Connection, *, guild_id: int, discord_user_id: int) -> list[Link]:
    rows = conn.execute(
        "SELECT source, external_id, display_name, verified, status FROM account_links"
        " WHERE guild_id = ? AND discord_user_id = ? ORDER BY source, external_id",
        (guild_id, discord_user_id),
    ).fetchall()
    return [Link(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]
