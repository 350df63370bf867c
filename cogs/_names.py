"""Members' display names for pictures, where a mention cannot be drawn.

Questlog asks for no privileged intent, so discord.py caches no members: a name comes from the
guild cache when an interaction put the member there, else from Discord's Get Guild Member
(``GET /guilds/{guild}/members/{user}``, no intent needed), one request per member of the page,
concurrently, within a time budget. Names are kept for a while in a bounded cache, so paging
back and forth asks once. A member who left is named as such; one Discord did not answer for
in time gets a placeholder with the end of their id, and is asked again next time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import discord

from bot.i18n import Texts
from cogs import _strings as strings

log = logging.getLogger(__name__)

UNKNOWN_MEMBER_CODE = 10007  # Discord's JSON code for "Unknown Member"


def member_name(payload: dict[str, Any]) -> str:
    """The name Discord shows for a guild member object: nickname, display name, username."""
    user = payload.get("user") or {}
    return str(payload.get("nick") or user.get("global_name") or user.get("username") or "?")


class MemberNames:
    def __init__(
        self,
        http: Any,
        *,
        budget: float = 4.0,
        ttl: float = 600.0,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http  # discord.py's HTTPClient: get_member(guild_id, user_id)
        self.budget = budget
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._kept: OrderedDict[tuple[int, int], tuple[float, str | None]] = OrderedDict()

    async def names(
        self,
        guild_id: int,
        users: Iterable[int],
        t: Texts,
        guild: discord.Guild | None = None,
    ) -> dict[int, str]:
        """A name for every user in ``users`` (never missing: see the module's words)."""
        found: dict[int, str] = {}
        wanted: list[int] = []
        now = self.clock()
        for user in dict.fromkeys(users):
            cached = guild.get_member(user) if guild is not None else None
            if cached is not None:
                found[user] = cached.display_name
                continue
            kept = self._kept.get((guild_id, user))
            if kept is not None and kept[0] > now:
                found[user] = kept[1] if kept[1] is not None else t(strings.MEMBER_LEFT)
                self._kept.move_to_end((guild_id, user))
            else:
                wanted.append(user)
        if wanted:
            found.update(await self._ask(guild_id, wanted, t))
        return found

    async def _ask(self, guild_id: int, users: list[int], t: Texts) -> dict[int, str]:
        tasks = {
            user: asyncio.ensure_future(self.http.get_member(guild_id, user)) for user in users
        }
        _, pending = await asyncio.wait(tasks.values(), timeout=self.budget)
        for task in pending:
            task.cancel()
        found: dict[int, str] = {}
        late = 0
        for user, task in tasks.items():
            if task in pending or task.cancelled():
                late += 1
                found[user] = t(strings.MEMBER_UNKNOWN, tail=str(user)[-4:])
                continue
            error = task.exception()
            if isinstance(error, discord.NotFound) and error.code == UNKNOWN_MEMBER_CODE:
                self._keep(guild_id, user, None)
                found[user] = t(strings.MEMBER_LEFT)
            elif error is not None:
                log.info("no name for a member of guild %s: %s", guild_id, type(error).__name__)
                found[user] = t(strings.MEMBER_UNKNOWN, tail=str(user)[-4:])
            else:
                name = member_name(task.result())
                self._keep(guild_id, user, name)
                found[user] = name
        if late:
            log.info("Discord named %d of %d members in time", len(users) - late, len(users))
        return found

    def _keep(self, guild_id: int, user: int, name: str | None) -> None:
        """Keep a name (None: the member left), in no language: each asker gets their own."""
        self._kept[(guild_id, user)] = (self.clock() + self.ttl, name)
        self._kept.move_to_end((guild_id, user))
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
