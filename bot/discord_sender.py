"""The feed poster's Sender on top of discord.py's HTTP client (rate limits included)."""

from __future__ import annotations

from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, handle_message_parameters

from bot.feed import SendError

UNKNOWN_MESSAGE = 10008  # Discord's JSON error code for a deleted or unknown message


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
                raise SendError(
                    "message not found (404, Unknown Message): it was deleted",
                    retryable=False,
                    message_gone=True,
                ) from None
            raise SendError(
                f"channel not found (404, {exc.text or 'Unknown Channel'}): it was deleted or"
                " the bot left the server",
                retryable=False,
                channel_gone=True,
            ) from None
        except discord.Forbidden as exc:
            raise SendError(
                f"Discord refused (403, {exc.text or 'Missing Permissions'}): the bot needs"
                " View Channel, Send Messages and Embed Links there",
                retryable=False,
                channel_gone=True,
            ) from None
        except discord.DiscordServerError as exc:
            raise SendError(f"Discord error {exc.status}", retryable=True) from None
        except discord.RateLimited as exc:
            raise SendError(f"rate limited for {exc.retry_after:.0f} s", retryable=True) from None
        except discord.HTTPException as exc:
            if exc.status == 400:  # our message was refused as invalid: retrying cannot help
                raise SendError(
                    f"Discord rejected the message (400, {exc.text})", retryable=False
                ) from None
            raise SendError(f"Discord answered {exc.status} ({exc.text})", retryable=True) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Includes a lost response: the batch is resent unchanged with the same nonce.
            raise SendError(
                f"connection to Discord failed: {type(exc).__name__}", retryable=True
            ) from None
