"""Discord's OAuth2 and the user endpoints a member's token reaches (httpx; no discord.py).

* The authorization-code grant: ``authorize_url()`` builds the address a member's browser goes
  to; ``exchange()`` and ``refresh()`` call ``{api_base_url}/oauth2/token`` with the client's
  id and secret (HTTP Basic, as RFC 6749 prefers); ``revoke()`` calls
  ``/oauth2/token/revoke``.
* ``me()`` (``/users/@me``) and ``connections()`` (``/users/@me/connections``) with the
  member's bearer token.
* Linked Roles: ``put_metadata()`` registers the application's role-connection metadata (bot
  token); ``put_role_connection()`` and ``delete_role_connection()`` set a member's values
  (their token).

Errors are :class:`OAuthError` (Discord answered with an OAuth error such as
``invalid_grant``), :class:`Unauthorized` (401: the token is dead), :class:`RateLimited` (429,
with Discord's ``retry_after``) and :class:`Unavailable` (a 5xx, a timeout, no answer, an answer
that is not what Discord sends). No message carries a token, a secret or a code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

log = logging.getLogger(__name__)

SCOPES = ("identify", "connections", "role_connections.write")
DEFAULT_AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
_USER_AGENT = "DiscordBot (https://github.com/questlog, 0.1) Questlog OAuth"


class DiscordOAuthError(Exception):
    """Base class: ``str()`` is safe to log (no token, secret or code)."""


class OAuthError(DiscordOAuthError):
    """Discord refused the grant: ``error`` is its OAuth code (``invalid_grant``, ...)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description


class Unauthorized(DiscordOAuthError):
    """401: the member's token was revoked or expired."""


class RateLimited(DiscordOAuthError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after:.1f} s")
        self.retry_after = retry_after


class Unavailable(DiscordOAuthError):
    """Discord could not be asked, or answered with a 5xx or something unreadable."""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    scope: str
    expires_at: datetime

    def __repr__(self) -> str:  # never print a token
        return f"Tokens(scope={self.scope!r}, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class DiscordUser:
    id: int
    username: str
    global_name: str | None
    locale: str | None

    @property
    def display(self) -> str:
        return self.global_name or self.username


@dataclass(frozen=True)
class Connection:
    """One of a member's connected accounts (``/users/@me/connections``)."""

    type: str  # "steam", "xbox", "twitch", ...
    id: str  # for Steam, the SteamID64
    name: str
    verified: bool
    revoked: bool


@dataclass(frozen=True)
class MetadataRecord:
    """One role-connection metadata field (an admin picks it when adding a linked role)."""

    key: str
    type: int  # 1-8: integer and datetime comparisons, boolean equal / not equal
    name: str
    description: str
    name_localizations: Mapping[str, str] | None = None
    description_localizations: Mapping[str, str] | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "type": self.type,
            "name": self.name,
            "description": self.description,
        }
        if self.name_localizations:
            out["name_localizations"] = dict(self.name_localizations)
        if self.description_localizations:
            out["description_localizations"] = dict(self.description_localizations)
        return out


class DiscordOAuth:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        api_base_url: str,
        authorize_url: str = DEFAULT_AUTHORIZE_URL,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self.api_base_url = api_base_url.rstrip("/")
        self.authorize_endpoint = authorize_url
        self._http = httpx.AsyncClient(
            timeout=timeout, transport=transport, headers={"User-Agent": _USER_AGENT}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def authorize_url(self, state: str, redirect_uri: str, scopes: tuple[str, ...] = SCOPES) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "scope": " ".join(scopes),
                "state": state,
                "redirect_uri": redirect_uri,
                "prompt": "consent",
            },
            quote_via=_quote,
        )
        joiner = "&" if "?" in self.authorize_endpoint else "?"
        return f"{self.authorize_endpoint}{joiner}{query}"

    async def exchange(self, code: str, redirect_uri: str, now: datetime) -> Tokens:
        return await self._token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}, now
        )

    async def refresh(self, refresh_token: str, now: datetime) -> Tokens:
        return await self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, now
        )

    async def revoke(self, token: str) -> None:
        await self._call(
            "POST",
            "/oauth2/token/revoke",
            data={"token": token, "token_type_hint": "access_token"},
            auth=(self.client_id, self._secret),
        )

    async def me(self, access_token: str) -> DiscordUser:
        body = await self._call("GET", "/users/@me", bearer=access_token)
        try:
            return DiscordUser(
                id=int(body["id"]),
                username=str(body["username"]),
                global_name=_opt_str(body.get("global_name")),
                locale=_opt_str(body.get("locale")),
            )
        except (KeyError, TypeError, ValueError):
            raise Unavailable("/users/@me answered without an id and a username") from None

    async def connections(self, access_token: str) -> list[Connection]:
        body = await self._call("GET", "/users/@me/connections", bearer=access_token)
        if not isinstance(body, list):
            raise Unavailable("/users/@me/connections did not answer a list")
        found = []
        for item in body:
            if not isinstance(item, dict) or "type" not in item or "id" not in item:
                continue
            found.append(
                Connection(
                    type=str(item["type"]),
                    id=str(item["id"]),
                    name=str(item.get("name") or ""),
                    verified=item.get("verified") is True,
                    revoked=item.get("revoked") is True,
                )
            )
        return found

    async def put_metadata(self, bot_token: str, records: Sequence[MetadataRecord]) -> None:
        await self._call(
            "PUT",
            f"/applications/{self.client_id}/role-connections/metadata",
            json=[record.body() for record in records],
            headers={"Authorization": f"Bot {bot_token}"},
        )

    async def put_role_connection(
        self,
        access_token: str,
        *,
        platform_name: str,
        platform_username: str | None,
        metadata: Mapping[str, str],
    ) -> None:
        body: dict[str, Any] = {"platform_name": platform_name, "metadata": dict(metadata)}
        if platform_username:
            body["platform_username"] = platform_username[:100]
        await self._call(
            "PUT",
            f"/users/@me/applications/{self.client_id}/role-connection",
            json=body,
            bearer=access_token,
        )

    async def delete_role_connection(self, access_token: str) -> None:
        await self._call(
            "DELETE",
            f"/users/@me/applications/{self.client_id}/role-connection",
            bearer=access_token,
        )

    # -- one call

    async def _token(self, form: dict[str, str], now: datetime) -> Tokens:
        body = await self._call(
            "POST", "/oauth2/token", data=form, auth=(self.client_id, self._secret)
        )
        try:
            return Tokens(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                scope=str(body.get("scope", "")),
                # (bounded: an absurd value must not overflow a datetime)
                expires_at=now
                + timedelta(seconds=min(max(int(body.get("expires_in", 604800)), 60), 31_536_000)),
            )
        except (KeyError, TypeError, ValueError):
            raise Unavailable("the token endpoint answered without a token") from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        bearer: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = dict(headers or {})
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        try:
            response = await self._http.request(
                method, self.api_base_url + path, headers=sent, **kwargs
            )
        except httpx.TimeoutException:
            raise Unavailable(f"{method} {path}: Discord did not answer in time") from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"{method} {path}: {type(exc).__name__}") from None
        status = response.status_code
        body = _json(response)
        if status == 429:
            retry = body.get("retry_after") if isinstance(body, dict) else None
            if not isinstance(retry, int | float):
                retry = _float(response.headers.get("Retry-After"), 1.0)
            wait = float(retry)
            raise RateLimited(min(max(wait, 0.0), 3600.0) if wait == wait else 1.0)  # NaN: 1 s
        if status == 401:
            raise Unauthorized(f"{method} {path}: 401")
        if 400 <= status < 500 and isinstance(body, dict) and isinstance(body.get("error"), str):
            raise OAuthError(body["error"], str(body.get("error_description") or ""))
        if 400 <= status < 500:
            message = body.get("message") if isinstance(body, dict) else None
            raise OAuthError(f"http_{status}", str(message or ""))
        if status >= 300:
            raise Unavailable(f"{method} {path}: HTTP {status}")
        if status == 204 or not response.content:
            return None
        if body is None:
            raise Unavailable(f"{method} {path}: the answer is not JSON")
        return body


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def _opt_str(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def _quote(
    value: str, safe: str = "", encoding: str | None = None, errors: str | None = None
) -> str:
    from urllib.parse import quote

    return quote(value, safe="", encoding=encoding, errors=errors)
