"""Errors raised by :class:`connectors.steam.client.SteamClient`.

Each class carries ``status``: one value of the closed status list the HTTP API reports for a
Steam lookup. Messages never contain the API key or a request URL (Steam puts the key in the
query string).
"""

from __future__ import annotations

from typing import ClassVar


class SteamError(Exception):
    """Base class of every Steam Web API failure."""

    status: ClassVar[str] = "unavailable"

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The HTTP status Steam answered with, when there was an answer.
        self.http_status = http_status


class PrivateProfile(SteamError):
    """The profile or its game details are not public (``{"response":{}}`` or a JSON 403)."""

    status: ClassVar[str] = "private_profile"


class InvalidKey(SteamError):
    """Steam refused the API key (HTML 403, 401, or 400 "Required parameter 'key' is missing").

    Steam can also answer 403 to a network it has blocked for exceeding its rate limits; that
    looks the same and is reported the same way.
    """

    status: ClassVar[str] = "invalid_key"


class RateLimited(SteamError):
    """Steam kept answering 429, or (``local=True``) today's call budget is spent."""

    status: ClassVar[str] = "rate_limited"

    def __init__(
        self, message: str, *, local: bool = False, http_status: int | None = None
    ) -> None:
        super().__init__(message, http_status=http_status)
        #: True when our own daily budget refused the call and Steam was not asked.
        self.local = local


class Unavailable(SteamError):
    """5xx, timeout, connection error, or a body without the expected structure."""

    status: ClassVar[str] = "unavailable"


class NotConfigured(SteamError):
    """No Steam Web API key is configured; raised before any HTTP call."""

    status: ClassVar[str] = "not_configured"


class VanityNotFound(SteamError):
    """ResolveVanityURL found no profile with that custom URL name (``success: 42``)."""

    status: ClassVar[str] = "not_found"


__all__ = [
    "InvalidKey",
    "NotConfigured",
    "PrivateProfile",
    "RateLimited",
    "SteamError",
    "Unavailable",
    "VanityNotFound",
]
