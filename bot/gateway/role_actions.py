"""The Discord connector's role actions (``grant_role``, ``remove_role``), carried out with the
bot's own discord.py HTTP client, so its rate limiter (and the global budget the feed shares)
applies. Discord's answers become the action worker's outcomes:

* 10007 Unknown Member: nothing to do (the member left): done; so is 10011 Unknown Role for a
  removal (a deleted role has nobody left to take it from);
* a grant first reads the member (Get Guild Member): one who has the role already is done, and
  marked so, since that role is not Questlog's to take away later;
* 50013 Missing Permissions, 50001 Missing Access, 10011 Unknown Role, 10004 Unknown Guild:
  an admin can fix it (Manage Roles, the role below the bot's top role, a role re-made):
  paused, and probed;
* a 5xx, a 429 discord.py did not wait out, a lost connection, no connection yet: tried again;
* any other 4xx: failed, with Discord's words.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import aiohttp
import discord
from discord.http import HTTPClient

from connectors.base import ActionDone, ActionFailed, ActionPaused, ActionRetry
from connectors.discord.connector import RoleChange

T = TypeVar("T")
UNKNOWN_MEMBER = 10007
UNKNOWN_ROLE = 10011
FIXABLE = {
    50013: "Missing Permissions (50013): the bot needs Manage Roles, and its top role must be"
    " above the role",
    50001: "Missing Access (50001): the bot cannot see that server",
    10011: "Unknown Role (10011): the role was deleted",
    10004: "Unknown Guild (10004): the bot is no longer in that server",
}


class RoleActions:
    """The handlers; ``http`` is the logged-in bot's client (None while not connected)."""

    def __init__(self) -> None:
        self.http: HTTPClient | None = None

    async def grant(self, change: RoleChange) -> None:
        """Give the role, unless the member has it already: then it is not Questlog's doing
        (given by hand, by another bot), and Questlog will not take it away."""
        http = self._client()
        member = await _answer(http.get_member(change.guild_id, change.user_id))
        if str(change.role_id) in member.get("roles", []):
            raise ActionDone("the member already had the role", already=True)
        await _answer(
            http.add_role(change.guild_id, change.user_id, change.role_id, reason=change.reason)
        )

    async def remove(self, change: RoleChange) -> None:
        await _answer(
            self._client().remove_role(
                change.guild_id, change.user_id, change.role_id, reason=change.reason
            ),
            removing=True,
        )

    def _client(self) -> HTTPClient:
        if self.http is None:
            raise ActionRetry("not connected to Discord yet", sent=False)
        return self.http


async def _answer(request: Awaitable[T], *, removing: bool = False) -> T:
    """Discord's answer, or the action worker's outcome for its refusal or failure (taking
    away a role that was deleted has nothing to do)."""
    try:
        return await request
    except discord.RateLimited as exc:  # longer than discord.py waits by itself
        raise ActionRetry("rate limited", retry_after=exc.retry_after) from None
    except discord.HTTPException as exc:
        if removing and exc.code == UNKNOWN_ROLE:
            raise ActionDone(
                "Unknown Role (10011): the role is gone, nothing to take back"
            ) from None
        raise _outcome(exc) from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise ActionRetry(f"connection to Discord failed: {type(exc).__name__}") from None


def _outcome(exc: discord.HTTPException) -> Exception:
    if exc.code == UNKNOWN_MEMBER:
        return ActionDone("Unknown Member (10007): they left the server")
    if exc.code in FIXABLE:
        return ActionPaused(FIXABLE[exc.code])
    if isinstance(exc, discord.Forbidden):
        return ActionPaused(f"403 ({exc.code}): {exc.text or 'Forbidden'}")
    if isinstance(exc, discord.DiscordServerError):
        return ActionRetry(f"Discord answered {exc.status}")
    if exc.status == 429:
        return ActionRetry("rate limited")
    return ActionFailed(f"Discord refused it ({exc.status}, {exc.code}): {exc.text}")
