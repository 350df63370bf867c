"""Linked game accounts: /link, /unlink, /links, /admin link|unlink and the in-game
confirmation of a /link minecraft code."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.clock import Clock
from bot.storage import Store
from bot.storage.records import (
    AccountTaken,
    ConfirmStatus,
    Link,
    LinkNotice,
)
from connectors.steam import NotConfigured, SteamClient, SteamError, VanityNotFound

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed in game
CODE_LENGTH = 8
CODE_TTL = timedelta(minutes=10)

_STEAM_ID = re.compile(r"7656119[0-9]{10}", re.ASCII)
_VANITY = re.compile(r"[A-Za-z0-9_-]{2,32}", re.ASCII)
_PROFILE_URL = re.compile(
    r"(?:https?://)?(?:www\.)?steamcommunity\.com/(profiles|id)/([^/?#\s]+)/?(?:[?#].*)?",
    re.IGNORECASE,
)

__all__ = ["ConfirmStatus", "Link"]


class LinkError(Exception):
    """A linking mistake the member can fix; str() is the explanation (English, for the CLI),
    ``problem`` its code for a translated one (``bad_link``, ``bad_input``, ``taken``)."""

    def __init__(self, message: str, problem: str = "bad_input") -> None:
        super().__init__(message)
        self.problem = problem


class LinkConflict(LinkError):
    def __init__(self, message: str, owner_user_id: int) -> None:
        super().__init__(message, "taken")
        self.owner_user_id = owner_user_id


SteamProblem = Literal["vanity_unknown", "not_a_profile", "no_profile", "needs_id", "busy"]


class SteamLookupError(LinkError):
    """What the member typed does not lead to a Steam profile (``problem`` says why)."""

    def __init__(self, problem: SteamProblem, value: str) -> None:
        super().__init__(f"{problem}: {value}")
        self.problem = problem
        self.value = value


@dataclass(frozen=True)
class SteamInput:
    steam_id: str | None = None  # given directly
    vanity: str | None = None  # to resolve with ResolveVanityURL


@dataclass(frozen=True)
class SteamAccount:
    steam_id: str
    name: str | None  # the persona name, when Steam was asked
    status: str | None  # private_profile when its game details are private
    checked: bool  # False when Steam could not be asked (the link is made unchecked)


def parse_steam_input(text: str) -> SteamInput:
    """A SteamID64, a profile URL (/profiles/<id> or /id/<vanity>) or a bare vanity name."""
    value = text.strip()
    match = _PROFILE_URL.fullmatch(value)
    if match:
        kind, part = match.group(1).lower(), match.group(2)
        if kind == "profiles":
            if not _STEAM_ID.fullmatch(part):
                raise LinkError("That profile link has no valid SteamID64 in it.", "bad_link")
            return SteamInput(steam_id=part)
        value = part
    if _STEAM_ID.fullmatch(value):
        return SteamInput(steam_id=value)
    if _VANITY.fullmatch(value):
        return SteamInput(vanity=value)
    raise LinkError(
        "Give your SteamID64 (17 digits starting with 7656119), your profile link, or your custom URL name."
    )


class AccountService:
    def __init__(
        self,
        store: Store,
        steam: SteamClient,
        clock: Clock,
        on_links_changed: Callable[[str], None] = lambda source: None,
    ) -> None:
        self.store = store
        self.steam = steam
        self.clock = clock
        self.on_links_changed = on_links_changed

    async def steam_account(self, text: str) -> SteamAccount:
        """The Steam account a member means (SteamID64, profile link or custom URL name),
        checked with Steam when it can be asked."""
        given = parse_steam_input(text)
        steam_id = given.steam_id
        if steam_id is None:
            assert given.vanity is not None
            try:
                steam_id = await self.steam.resolve_vanity(given.vanity)
            except VanityNotFound:
                raise SteamLookupError("vanity_unknown", given.vanity) from None
            except NotConfigured:
                raise SteamLookupError("needs_id", given.vanity) from None
            except SteamError:
                raise SteamLookupError("busy", given.vanity) from None
            if not steam_id.startswith("7656119"):
                raise SteamLookupError("not_a_profile", given.vanity)
        try:
            summary = (await self.steam.get_player_summaries([steam_id])).get(steam_id)
        except SteamError:  # not configured, busy, bad key: link without the check
            return SteamAccount(steam_id, None, None, False)
        if summary is None:
            raise SteamLookupError("no_profile", steam_id)
        status = None if summary.public else "private_profile"
        return SteamAccount(steam_id, summary.persona_name, status, True)

    async def link(
        self,
        *,
        guild_id: int,
        discord_user_id: int,
        source: str,
        external_id: str,
        display_name: str | None = None,
        status: str | None = None,
        reassign: bool = False,
        linked_by: str = "member",
    ) -> Link:
        """Link the account to the member; one held by another member raises LinkConflict
        unless ``reassign`` (admins move it). ``linked_by``: who made it (member, admin:<id>,
        cli)."""
        try:
            link = await self.store.links.link(
                guild_id=guild_id,
                discord_user_id=discord_user_id,
                source=source,
                external_id=external_id,
                now=self.clock.now(),
                display_name=display_name,
                status=status,
                reassign=reassign,
                linked_by=linked_by,
            )
        except AccountTaken as taken:
            raise LinkConflict(
                "That account is already linked to another member of this server.",
                taken.owner_user_id,
            ) from None
        self.on_links_changed(source)
        return link

    async def unlink(self, *, guild_id: int, discord_user_id: int, source: str) -> int:
        removed = await self.store.links.unlink(
            guild_id=guild_id,
            discord_user_id=discord_user_id,
            source=source,
            now=self.clock.now(),
        )
        self.on_links_changed(source)
        return removed

    async def links(self, guild_id: int, discord_user_id: int) -> list[Link]:
        return await self.store.links.for_member(guild_id, discord_user_id)

    async def verification(self, guild_id: int) -> tuple[bool, int]:
        """(whether the guild requires proven Steam links, how many of its Steam links are
        unproven)."""
        on = await self.store.links.require_verified(guild_id)
        return on, await self.store.links.unproven_steam(guild_id)

    async def require_verified(self, guild_id: int, on: bool) -> tuple[bool, int]:
        """Set whether the guild counts only proven Steam links; returns (whether it changed,
        how many Steam links are unproven: they stop counting when on)."""
        was = await self.store.links.require_verified(guild_id)
        if was != on:
            await self.store.links.set_require_verified(guild_id, on, self.clock.now())
            self.on_links_changed("steam")
        return was != on, await self.store.links.unproven_steam(guild_id)

    async def notices(self, guild_id: int, discord_user_id: int) -> list[LinkNotice]:
        """Why the member lost links lately (a proof of another member won)."""
        return await self.store.links.notices(guild_id, discord_user_id)

    async def new_code(
        self, *, guild_id: int, discord_user_id: int, source: str
    ) -> tuple[str, datetime]:
        """A fresh single-use code for the member; earlier unused codes of theirs stop working."""
        now = self.clock.now()
        expires = now + CODE_TTL
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if await self.store.links.add_code(
                guild_id=guild_id,
                discord_user_id=discord_user_id,
                source=source,
                code=code,
                now=now,
                expires=expires,
            ):
                return code, expires

    async def confirm_code(
        self,
        *,
        guild_id: int,
        source: str,
        code: str,
        external_id: str,
        display_name: str | None,
    ) -> ConfirmStatus:
        """The game confirms a code its player typed: the account is linked, verified."""
        status = await self.store.links.confirm_code(
            guild_id=guild_id,
            source=source,
            code=code,
            external_id=external_id,
            display_name=display_name,
            now=self.clock.now(),
        )
        if status == "linked":
            self.on_links_changed(source)
        return status
