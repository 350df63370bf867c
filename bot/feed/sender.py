"""The feed poster's Sender on top of discord.py's HTTP client (rate limits included)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, handle_message_parameters

from bot.feed.poster import INVALID_FORM_BODY, MISSING_PERMISSIONS, UNKNOWN_MESSAGE, SendError

# 400s that refuse the message, not the channel: Discord's AutoMod (200000 blocked, 200001 a
# word in the title or description) and its harmful-link filter (240000), and an empty message
# (50006). Like 50035 without an index, the batch is split down to the event at fault, which
# fails alone; pausing the channel would resend the same message at every probe for ever.
MESSAGE_REFUSED = frozenset({50006, 200000, 200001, 240000})

# discord.py words a 50035 answer as "Invalid Form Body\nIn embeds.3.title: Must be ...", one
# line per refused value (HTTPException.text); the index is the embed's place in the message.
_EMBED_ERROR = re.compile(r"^In embeds\.(\d+)(?:\.[^:]*)?: (.+)$", re.MULTILINE)


def refused_embeds(text: str) -> dict[int, str]:
    """Embed index -> Discord's message(s) for it, from a 50035 answer's text."""
    found: dict[int, str] = {}
    for match in _EMBED_ERROR.finditer(text):
        index, message = int(match.group(1)), match.group(2).strip()
        found[index] = f"{found[index]}; {message}" if index in found else message
    return found


class DiscordSender:
    """Posts stored batches with discord.py's real HTTP client: its rate limiter obeys 429s and
    ``retry_after``; everything else is classified for the poster."""

    def __init__(self, http: HTTPClient) -> None:
        self.http = http

    async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
        embeds = [discord.Embed.from_dict(e) for e in payload.get("embeds", [])]
        params = handle_message_parameters(
            embeds=embeds, nonce=nonce, allowed_mentions=discord.AllowedMentions.none()
        )
        with params:
            message = await self._call(self.http.send_message(channel_id, params=params))
        return int(message["id"])

    async def edit(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
        embeds = [discord.Embed.from_dict(e) for e in payload.get("embeds", [])]
        params = handle_message_parameters(
            embeds=embeds, allowed_mentions=discord.AllowedMentions.none()
        )
        with params:
            await self._call(
                self.http.edit_message(channel_id, message_id, params=params), editing=True
            )

    @staticmethod
    async def _call(request: Any, *, editing: bool = False) -> Any:
        try:
            return await request
        except discord.NotFound as exc:
            if editing and exc.code == UNKNOWN_MESSAGE:
                raise SendError.message_gone(
                    "message not found (404, Unknown Message): it was deleted"
                ) from None
            # A 404 without Discord's code (a proxy's) is not known to be a deletion: it is
            # probed like any other refusal; only 10003 Unknown Channel waits for an admin.
            raise SendError.refused(exc.code, f"404, {exc.text or 'Not Found'}") from None
        except discord.Forbidden as exc:
            raise SendError.refused(
                exc.code or MISSING_PERMISSIONS, f"403, {exc.text or 'Missing Permissions'}"
            ) from None
        except discord.DiscordServerError as exc:
            raise SendError.retry(f"Discord error {exc.status}", maybe_posted=True) from None
        except discord.RateLimited as exc:
            raise SendError.retry(f"rate limited for {exc.retry_after:.0f} s") from None
        except discord.HTTPException as exc:
            if exc.status == 400 and exc.code == INVALID_FORM_BODY:
                raise SendError.invalid(f"400, {exc.text}", refused_embeds(exc.text)) from None
            if exc.status == 400 and exc.code in MESSAGE_REFUSED:
                raise SendError.invalid(f"400, {exc.text or exc.code}") from None
            if exc.status == 400:  # e.g. 50008: not a channel one can send messages to
                raise SendError.refused(exc.code, f"400, {exc.text}") from None
            raise SendError.retry(f"Discord answered {exc.status} ({exc.text})") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Includes a lost response: the batch is resent unchanged with the same nonce.
            raise SendError.retry(
                f"connection to Discord failed: {type(exc).__name__}", maybe_posted=True
            ) from None
