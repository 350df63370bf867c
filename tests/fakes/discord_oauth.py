"""Discord's OAuth2 half, as the fake Discord serves it (tests/fakes/discord.py mounts it).

Modelled on Discord's documentation (OAuth2, "Authorization Code Grant"; Users, "Get Current
User", "Get Current User Connections", "Update Current User Application Role Connection";
Application Role Connection Metadata) and on what Discord answers:

* ``GET /oauth2/authorize`` (on the site, not under /api): a browser that "approves" is sent to
  ``redirect_uri?code=...&state=...``; one that cancels to ``redirect_uri?error=access_denied
  &error_description=...&state=...``. An unknown client or an unregistered redirect_uri gets a
  400 page and no redirect, as Discord shows "Invalid OAuth2 redirect_uri".
* ``POST /oauth2/token`` (form, client credentials by HTTP Basic or in the form):
  ``authorization_code`` and ``refresh_token`` grants; a used, unknown or expired code, or a
  code sent with another redirect_uri, is 400 ``{"error": "invalid_grant", "error_description":
  "Invalid \\"code\\" in request."}``; bad client credentials 401 ``invalid_client``; a refresh
  revokes the previous access and refresh tokens. Answers ``{"access_token", "token_type":
  "Bearer", "expires_in": 604800, "refresh_token", "scope"}``.
* ``POST /oauth2/token/revoke``: 200 ``{}`` and the token (and its pair) stop working.
* ``GET /users/@me`` and ``/users/@me/connections`` with ``Authorization: Bearer``: 401
  ``{"message": "401: Unauthorized", "code": 0}`` for a dead token; connections need the
  ``connections`` scope (403 ``{"message": "Missing Access", "code": 50001}`` without).
* ``PUT /applications/{id}/role-connections/metadata`` (bot token): validates the records
  (at most 5, key ``[a-z0-9_]{1,50}``, type 1-8, name 1-100, description 1-200 characters) and
  answers them; 400 code 50035 otherwise.
* ``PUT/GET/DELETE /users/@me/applications/{id}/role-connection`` (bearer with
  ``role_connections.write``): values are strings; ``platform_name`` up to 50 characters,
  ``platform_username`` up to 100.

Tests script failures per route (``fail_next``: a status, or "timeout") and read everything
that was sent.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

CLIENT_ID = "1180000000000000001"
CLIENT_SECRET = "fake-client-secret-do-not-log"
_KEY = re.compile(r"[a-z0-9_]{1,50}", re.ASCII)
TOKEN_SECONDS = 604800


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _unauthorized() -> web.Response:
    return _json({"message": "401: Unauthorized", "code": 0}, 401)


@dataclass
class _Grant:
    user_id: int
    scopes: tuple[str, ...]
    expires: float
    pair: str = ""  # the refresh token of an access token, or the access token of a refresh


@dataclass
class FakeOAuth:
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    redirect_uris: list[str] = field(default_factory=list)
    #: user id -> the user object /users/@me answers
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: user id -> the connection objects /users/@me/connections answers
    connections: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    #: who is signed in to Discord in "the browser" that opens the authorize page
    browser_user: int | None = None
    #: False: the member presses Cancel on the authorize page
    approve: bool = True
    #: route name -> scripted answers, taken one per request: a status code or "timeout"
    fail_next: dict[str, deque[int | str]] = field(default_factory=dict)
    timeout_seconds: float = 30.0
    metadata: list[dict[str, Any]] = field(default_factory=list)
    #: user id -> the role connection last PUT
    role_connections: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: every request's (route name, user id or None, body), in order
    calls: list[tuple[str, int | None, Any]] = field(default_factory=list)
    codes: dict[str, tuple[int, str, tuple[str, ...], float]] = field(default_factory=dict)
    access: dict[str, _Grant] = field(default_factory=dict)
    refresh: dict[str, _Grant] = field(default_factory=dict)
    clock: Any = time.time
    revoked: list[str] = field(default_factory=list)

    def add_user(
        self,
        user_id: int,
        username: str,
        *,
        locale: str = "en-US",
        global_name: str | None = None,
        steam: list[tuple[str, str, bool, bool]] | None = None,
    ) -> None:
        """A Discord user; ``steam``: (SteamID64, name, verified, revoked) connections."""
        self.users[user_id] = {
            "id": str(user_id),
            "username": username,
            "discriminator": "0",
            "global_name": global_name,
            "avatar": None,
            "bot": False,
            "mfa_enabled": False,
            "locale": locale,
            "flags": 0,
            "premium_type": 0,
            "public_flags": 0,
        }
        self.connections[user_id] = [
            {
                "id": steam_id,
                "name": name,
                "type": "steam",
                "friend_sync": False,
                "metadata_visibility": 1,
                "show_activity": True,
                "two_way_link": False,
                "verified": verified,
                "visibility": 1,
                "revoked": revoked,
            }
            for steam_id, name, verified, revoked in (steam or [])
        ]

    def script(self, route: str, *answers: int | str) -> None:
        self.fail_next.setdefault(route, deque()).extend(answers)

    def expire_access(self, user_id: int) -> None:
        for grant in self.access.values():
            if grant.user_id == user_id:
                grant.expires = 0

    # ------------------------------------------------------------------ plumbing

    def routes(self, app: web.Application, api_prefix: str) -> None:
        app.router.add_get("/oauth2/authorize", self._authorize)
        app.router.add_post(api_prefix + "/oauth2/token", self._token)
        app.router.add_post(api_prefix + "/oauth2/token/revoke", self._revoke)
        app.router.add_get(api_prefix + "/users/@me/connections", self._connections)
        app.router.add_put(
            api_prefix + "/applications/{app_id}/role-connections/metadata", self._put_metadata
        )
        app.router.add_get(
            api_prefix + "/applications/{app_id}/role-connections/metadata", self._get_metadata
        )
        app.router.add_route(
            "*", api_prefix + "/users/@me/applications/{app_id}/role-connection", self._role
        )

    async def _scripted(self, route: str) -> web.Response | None:
        queue = self.fail_next.get(route)
        if not queue:
            return None
        answer = queue.popleft()
        if answer == "timeout":
            await asyncio.sleep(self.timeout_seconds)
            return _json({"message": "late"}, 504)
        status = int(answer)
        if status == 429:
            return _json(
                {"message": "You are being rate limited.", "retry_after": 1.5, "global": False},
                429,
                {"Retry-After": "2", "X-RateLimit-Scope": "user"},
            )
        if status == 401:
            return _unauthorized()
        if status == 400 and route == "token":
            return _json(
                {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'}, 400
            )
        return web.Response(status=status, text="upstream error", content_type="text/html")

    def bearer(self, request: web.Request, scope: str | None = None) -> int | web.Response:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _unauthorized()
        grant = self.access.get(header[7:])
        if grant is None or grant.expires <= self.clock():
            return _unauthorized()
        if scope is not None and scope not in grant.scopes:
            return _json({"message": "Missing Access", "code": 50001}, 403)
        return grant.user_id

    def _client(self, request: web.Request, form: Any) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                given = base64.b64decode(header[6:]).decode()
            except ValueError:
                return False
            client, _, secret = given.partition(":")
        else:
            client, secret = form.get("client_id", ""), form.get("client_secret", "")
        return secrets.compare_digest(client, self.client_id) and secrets.compare_digest(
            secret, self.client_secret
        )

    # ------------------------------------------------------------------ routes

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        self.calls.append(("authorize", self.browser_user, dict(q)))
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id:
            return web.Response(status=400, text="Unknown Application", content_type="text/html")
        if redirect not in self.redirect_uris:
            return web.Response(
                status=400, text="Invalid OAuth2 redirect_uri", content_type="text/html"
            )
        if q.get("response_type") != "code":
            return web.Response(status=400, text="Invalid response_type", content_type="text/html")
        scopes = tuple(q.get("scope", "").split())
        state = q.get("state", "")
        if not self.approve or self.browser_user is None:
            target = redirect + "?" + urlencode({
                "error": "access_denied",
                "error_description": "The resource owner or authorization server denied the request",
                "state": state,
            })  # fmt: skip
            return web.Response(status=302, headers={"Location": target})
        code = secrets.token_urlsafe(20)
        self.codes[code] = (self.browser_user, redirect, scopes, self.clock() + 600)
        target = redirect + "?" + urlencode({"code": code, "state": state})
        return web.Response(status=302, headers={"Location": target})

    def _issue(self, user_id: int, scopes: tuple[str, ...]) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access[access] = _Grant(user_id, scopes, self.clock() + TOKEN_SECONDS, refresh)
        self.refresh[refresh] = _Grant(user_id, scopes, float("inf"), access)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "refresh_token": refresh,
            "scope": " ".join(scopes),
        }

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.calls.append(("token", None, form.get("grant_type")))
        scripted = await self._scripted("token")
        if scripted is not None:
            return scripted
        if not self._client(request, form):
            return _json({"error": "invalid_client"}, 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            found = self.codes.pop(str(form.get("code", "")), None)
            if found is None or found[3] <= self.clock() or form.get("redirect_uri") != found[1]:
                return _json(
                    {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'},
                    400,
                )
            return _json(self._issue(found[0], found[2]))
        if grant_type == "refresh_token":
            old = self.refresh.pop(str(form.get("refresh_token", "")), None)
            if old is None:
                return _json(
                    {"error": "invalid_grant", "error_description": "Invalid refresh token"}, 400
                )
            self.access.pop(old.pair, None)
            return _json(self._issue(old.user_id, old.scopes))
        return _json({"error": "unsupported_grant_type"}, 400)

    async def _revoke(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self._client(request, form):
            return _json({"error": "invalid_client"}, 401)
        token = str(form.get("token", ""))
        self.revoked.append(token)
        for table, other in ((self.access, self.refresh), (self.refresh, self.access)):
            grant = table.pop(token, None)
            if grant is not None:
                other.pop(grant.pair, None)
        return _json({})

    async def me(self, request: web.Request) -> web.Response:
        user = self.bearer(request, "identify")
        if isinstance(user, web.Response):
            return user
        self.calls.append(("me", user, None))
        scripted = await self._scripted("me")
        return scripted or _json(self.users[user])

    async def _connections(self, request: web.Request) -> web.Response:
        user = self.bearer(request, "connections")
        if isinstance(user, web.Response):
            return user
        self.calls.append(("connections", user, None))
        scripted = await self._scripted("connections")
        return scripted or _json(self.connections.get(user, []))

    async def _put_metadata(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").split(" ")[0] != "Bot":
            return _unauthorized()
        if request.match_info["app_id"] != self.client_id:
            return _json({"message": "Unknown Application", "code": 10002}, 404)
        body = await request.json()
        self.calls.append(("metadata", None, body))
        scripted = await self._scripted("metadata")
        if scripted is not None:
            return scripted
        problems = _metadata_problems(body)
        if problems:
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": problems}, 400)
        self.metadata = body
        return _json(body)

    async def _get_metadata(self, request: web.Request) -> web.Response:
        return _json(self.metadata)

    async def _role(self, request: web.Request) -> web.Response:
        user = self.bearer(request, "role_connections.write")
        if isinstance(user, web.Response):
            return user
        if request.match_info["app_id"] != self.client_id:
            return _json({"message": "Unknown Application", "code": 10002}, 404)
        body = None
        if request.method == "PUT":  # (the fake's middleware may have read it already: cached)
            try:
                body = await request.json()
            except ValueError:
                body = None
        self.calls.append((f"role_connection.{request.method.lower()}", user, body))
        scripted = await self._scripted("role_connection")
        if scripted is not None:
            return scripted
        if request.method == "GET":
            return _json(self.role_connections.get(user, {}))
        if request.method == "DELETE":
            self.role_connections.pop(user, None)
            return web.Response(status=204)
        if request.method != "PUT":
            return _json({"message": "405: Method Not Allowed", "code": 0}, 405)
        problems = _role_problems(body, {r["key"]: r["type"] for r in self.metadata})
        if problems:
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": problems}, 400)
        self.role_connections[user] = body
        return _json(body)


def _metadata_problems(body: Any) -> dict[str, Any]:
    if not isinstance(body, list) or len(body) > 5:
        return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 5 or fewer."}]}
    errors: dict[str, Any] = {}
    for i, record in enumerate(body):
        if not isinstance(record, dict):
            errors[str(i)] = {"_errors": [{"code": "MODEL_TYPE_CONVERT"}]}
            continue
        if not _KEY.fullmatch(str(record.get("key", ""))):
            errors[str(i)] = {"key": {"_errors": [{"code": "STRING_TYPE_REGEX"}]}}
        if record.get("type") not in range(1, 9):
            errors[str(i)] = {"type": {"_errors": [{"code": "ENUM_TYPE_COERCE"}]}}
        for name, limit in (("name", 100), ("description", 200)):
            if not 1 <= len(str(record.get(name, ""))) <= limit:
                errors[str(i)] = {name: {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH"}]}}
    return errors


def _role_problems(body: Any, types: dict[str, int]) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {"_errors": [{"code": "MODEL_TYPE_CONVERT"}]}
    errors: dict[str, Any] = {}
    if len(str(body.get("platform_name") or "")) > 50:
        errors["platform_name"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}
    if len(str(body.get("platform_username") or "")) > 100:
        errors["platform_username"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}
    for key, value in (body.get("metadata") or {}).items():
        if key not in types or not isinstance(value, str):
            errors.setdefault("metadata", {})[key] = {"_errors": [{"code": "INVALID"}]}
            continue
        kind = types[key]
        valid = (
            value.lstrip("-").isdigit()
            if kind <= 4
            else value in ("0", "1")
            if kind >= 7
            else re.fullmatch(
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value
            )
            is not None
        )
        if not valid:
            errors.setdefault("metadata", {})[key] = {"_errors": [{"code": "INVALID"}]}
    return errors
