"""A fake Discord REST API (v10) served by aiohttp on 127.0.0.1 (random port).

discord.py's real HTTP client talks to it once ``discord.http.Route.BASE`` points at it:

    async with FakeDiscord(channels=[CHANNEL]) as discord_api:
        monkeypatch.setattr(discord.http.Route, "BASE", discord_api.api_base)
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        await http.static_login(discord_api.token)
        discord_api.fail_next(CHANNEL, [500, (429, 0.2)])  # then normal answers
        ...
        assert discord_api.count(CHANNEL) == 1

What the fake does, and where it follows the real service:

* Routes (``/api/v10`` only): ``GET /users/@me``, ``GET /gateway/bot``, ``GET /channels/{id}``,
  ``GET /guilds/{id}/members/{id}`` (members registered with :meth:`FakeDiscord.add_member`,
  else 404 Unknown Member, 10007),
  ``POST /channels/{id}/messages`` (JSON, or multipart with ``payload_json`` + ``files[n]``) and
  ``PATCH /channels/{id}/messages/{id}``. Other paths -> 404 ``{"message": "404: Not Found",
  "code": 0}``, a known path with another method -> 405 (the generic Discord bodies).
* ``Authorization: Bot <token>`` on every route; anything else -> 401
  ``{"message": "401: Unauthorized", "code": 0}``.
* Every JSON answer is ``Content-Type: application/json`` exactly (discord.py decodes nothing
  else) and every answer carries ``Via: 1.1 google`` (discord.py treats a 429 without ``Via`` as a
  Cloudflare ban).
* Channels must exist: register them with ``channels=[...]`` or :meth:`FakeDiscord.add_channel`.
  Unknown or :attr:`FakeDiscord.deleted_channels` -> 404 Unknown Channel (10003);
  :attr:`FakeDiscord.forbidden_channels` -> 403 Missing Permissions (50013) when sending or
  editing (the channel can still be fetched); :attr:`FakeDiscord.refused_channels` maps a
  channel to the refusal Discord gives for it (:data:`REFUSALS`: 50001 Missing Access, also for
  fetching it; 50013; 10003; 50008 "Cannot send messages in a non-text channel", a 400). A path
  id that is not a number -> 400 50035 ``NUMBER_TYPE_COERCE``.
* Slow answers: :attr:`FakeDiscord.holds` maps a channel to seconds every message request to it
  waits before it is handled (a hanging route; other channels are answered as usual).
* Rate limits: a fixed window per (route, channel) for the two message routes (``per_channel``,
  default 5 per 5 s) and one global window of ``global_per_second`` requests per second over all
  authenticated requests. The ``X-RateLimit-Bucket`` hash is per route, *not* per channel: that
  is what Discord sends (the hash names the kind of bucket, the channel id is the "major
  parameter"), and discord.py keys its buckets by ``hash + major parameters``; a hash that
  changed from channel to channel would make discord.py drop its bucket state. Headers carry
  three decimals, rounded up, like Discord's. A 429 carries ``Retry-After`` in whole seconds
  (rounded up, as in Discord's documented example), ``X-RateLimit-Scope`` and the JSON body
  ``{"message": "You are being rate limited.", "retry_after": <s>, "global": <bool>}``; the
  global one also ``X-RateLimit-Global: true`` and no bucket headers. Other routes carry no
  bucket headers (discord.py copes: it only reads them when present).
* Message validation as Discord does it: the limits below give HTTP 400 ``{"code": 50035,
  "errors": {...}, "message": "Invalid Form Body"}`` with Discord's error codes
  (``BASE_TYPE_MAX_LENGTH``, ``BASE_TYPE_REQUIRED``, ``MAX_EMBED_SIZE_EXCEEDED``, and
  ``URL_TYPE_INVALID_URL`` / ``URL_TYPE_INVALID_SCHEME`` for an embed's ``url``,
  ``thumbnail.url``, ``image.url`` or ``author.url`` that is not a well-formed http(s) URL) at
  the path of the bad value, e.g. ``embeds.3.thumbnail.url``; a message with nothing in it -> 400 ``{"message": "Cannot send an empty message",
  "code": 50006}``; a body that is not JSON -> 400 ``{"message": "The request body contains
  invalid JSON.", "code": 50109}``.
* Nonces: Discord documents that with ``enforce_nonce`` a nonce "will be checked for uniqueness
  in the past few minutes. If another message was created by the same author with the same
  nonce, that message will be returned and no new message will be created." Which scope "same
  author" covers is not documented: ``nonce_scope="channel"`` (default) matches per channel,
  ``nonce_scope="author"`` across all channels (the stricter reading; use it to check that code
  does not reuse a nonce in two channels).
* Ids are real snowflakes (Discord epoch, current time, strictly increasing) and a message's
  ``timestamp`` is the time in its id, so discord.py's ``snowflake_time`` agrees with it.
* The bot user keeps a four-digit discriminator: bots were left out of the 2023 username
  migration (only humans got ``"0"``).

Not modelled: the invalid-request limit (10,000 401/403/429 per 10 minutes), mentions parsing,
sub-limits other than the ones scripted with :meth:`FakeDiscord.fail_next`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

import aiohttp
from aiohttp import web

from tests.fakes.discord_oauth import FakeOAuth

API_PREFIX = "/api/v10"
JSON_TYPE = "application/json"
VIA = "1.1 google"

#: The valid bot token of a fresh FakeDiscord (obviously not a real token's shape on purpose).
VALID_TOKEN = "questlog-fake-bot-token"
BOT_USER_ID = 1300000000000000001
DEFAULT_GUILD_ID = 111111111111111111
DISCORD_EPOCH_MS = 1420070400000

# Message limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
MAX_CONTENT = 2000
MAX_NONCE = 25
MAX_EMBEDS = 10
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER_TEXT = 2048
MAX_AUTHOR_NAME = 256
MAX_EMBED_TOTAL = 6000

#: retry_after of a scripted 429 given as a bare ``429``.
DEFAULT_SCRIPTED_RETRY_AFTER = 0.1

CREATE_ROUTE = "POST /channels/{channel_id}/messages"
EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"

#: Discord's answer when it refuses a channel: code -> (HTTP status, message).
REFUSALS: dict[int, tuple[int, str]] = {
    50001: (403, "Missing Access"),
    50013: (403, "Missing Permissions"),
    10003: (404, "Unknown Channel"),
    50008: (400, "Cannot send messages in a non-text channel"),
}


@dataclass(frozen=True)
class Refusal:
    """A scripted error answer with a Discord JSON code (and, for 50035, the ``errors`` tree)."""

    status: int
    code: int
    message: str
    errors: dict[str, Any] | None = None


def refusal(code: int) -> Refusal:
    """The answer Discord gives for a refused channel (a code of :data:`REFUSALS`)."""
    status, message = REFUSALS[code]
    return Refusal(status, code, message)


def invalid_embeds(refused: dict[int, str] | None = None, *, whole: str | None = None) -> Refusal:
    """A 400 Invalid Form Body (50035) naming the embeds at these indexes (index -> the field
    whose URL is "not well formed", e.g. ``"thumbnail.url"``), or with ``whole`` an error on
    ``embeds`` itself, without an index."""
    errors: dict[str, Any] = {}
    for index, where in (refused or {}).items():
        node = errors.setdefault("embeds", {}).setdefault(str(index), {})
        for part in where.split("."):
            node = node.setdefault(part, {})
        node["_errors"] = [{"code": "URL_TYPE_INVALID_URL", "message": "Not a well formed URL."}]
    if whole is not None:
        errors.setdefault("embeds", {})["_errors"] = [
            {"code": "MAX_EMBED_SIZE_EXCEEDED", "message": whole}
        ]
    return Refusal(400, 50035, "Invalid Form Body", errors)


#: A scripted answer: a status, ``(429, retry_after)`` / ``(429, retry_after, scope)`` with
#: scope ``"user"``, ``"shared"`` or ``"global"``, or a :class:`Refusal`.
ScriptedStatus = int | tuple[int, float] | tuple[int, float, str] | Refusal


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    all_headers = {"Content-Type": JSON_TYPE}
    if headers:
        all_headers.update(headers)
    return web.Response(status=status, body=data, headers=all_headers)


def _error(
    status: int, message: str, code: int, headers: dict[str, str] | None = None
) -> web.Response:
    return _json({"message": message, "code": code}, status, headers)


def _generic(status: int, headers: dict[str, str] | None = None) -> web.Response:
    """Discord's body for errors without a specific code: ``{"message": "500: ...", "code": 0}``."""
    return _error(status, f"{status}: {HTTPStatus(status).phrase}", 0, headers)


def _form_error(errors: dict[str, Any]) -> web.Response:
    return _json({"code": 50035, "errors": errors, "message": "Invalid Form Body"}, 400)


def _problem(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _too_long(limit: int) -> dict[str, Any]:
    return _problem("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _required() -> dict[str, Any]:
    return _problem("BASE_TYPE_REQUIRED", "This field is required")


def _put(errors: dict[str, Any], path: tuple[str, ...], problem: dict[str, Any]) -> None:
    node = errors
    for part in path:
        node = node.setdefault(part, {})
    node.setdefault("_errors", []).extend(problem["_errors"])


def _url_problem(value: Any) -> dict[str, Any] | None:
    """Discord's verdict on an embed URL: None when it is a well-formed http(s) URL (or absent)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return _problem("URL_TYPE_INVALID_URL", "Not a well formed URL.")
    scheme, sep, rest = value.partition("://")
    if not sep or not rest or rest.startswith("/"):
        return _problem("URL_TYPE_INVALID_URL", "Not a well formed URL.")
    if scheme.lower() not in ("http", "https"):
        return _problem(
            "URL_TYPE_INVALID_SCHEME",
            f"Scheme \"{scheme}\" is not supported. Scheme must be one of ('http', 'https').",
        )
    return None


def _ceil3(seconds: float) -> float:
    """Round up to milliseconds (never announce a reset earlier than the real one)."""
    return math.ceil(max(seconds, 0.0) * 1000) / 1000


def _bucket_hash(route: str) -> str:
    return hashlib.sha256(route.encode()).hexdigest()[:32]


def _snowflake_time(snowflake: int) -> str:
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="microseconds")


def _parse_snowflake(raw: str) -> int | None:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        return None
    value = int(raw)
    return value if value < 2**64 else None


def _text_length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


@dataclass
class RecordedRequest:
    method: str
    path: str
    #: time.monotonic() when the request arrived.
    time: float
    #: The status answered (for a dropped answer: the status it would have had); 0 while pending.
    status: int = 0
    channel_id: int | None = None
    #: The decoded JSON payload (``payload_json`` for multipart), when there was one.
    body: Any = None
    #: True when the connection was closed instead of answering (see drop_response_next).
    dropped: bool = False
    #: For 429 answers: "user", "shared" or "global".
    scope: str | None = None


_RECORD: Any
try:
    _RECORD = web.RequestKey("questlog_fake_discord_record", RecordedRequest)
except AttributeError:  # aiohttp before 3.13 has no RequestKey: a plain string key
    _RECORD = "questlog_fake_discord_record"


@dataclass
class _Window:
    """A fixed window: ``limit`` requests, then nothing until ``period`` after the first one."""

    limit: int
    period: float
    reset_at: float = 0.0
    remaining: int = 0

    def _roll(self, now: float) -> None:
        if now >= self.reset_at:
            self.reset_at = now + self.period
            self.remaining = self.limit

    def take(self, now: float) -> bool:
        self._roll(now)
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def reset_after(self, now: float) -> float:
        if now >= self.reset_at:
            return self.period
        return self.reset_at - now

    def peek_remaining(self, now: float) -> int:
        return self.limit if now >= self.reset_at else self.remaining


@dataclass
class _NonceEntry:
    created: float
    message: dict[str, Any] = field(repr=False)


class FakeDiscord:
    """The fake Discord REST API. All state is public and may be changed between requests."""

    def __init__(
        self,
        *,
        token: str = VALID_TOKEN,
        channels: Iterable[int] = (),
        guild_id: int = DEFAULT_GUILD_ID,
        per_channel: tuple[int, float] = (5, 5.0),
        global_per_second: int = 50,
        nonce_window: float = 300.0,
        nonce_clock: Callable[[], float] = time.monotonic,
        nonce_scope: Literal["channel", "author"] = "channel",
    ) -> None:
        self.token = token
        self.guild_id = guild_id
        #: Per-channel limit of each message route: (requests, seconds).
        self.per_channel = per_channel
        self.global_per_second = global_per_second
        #: Seconds during which an enforced nonce returns the earlier message.
        self.nonce_window = nonce_window
        self.nonce_clock = nonce_clock
        self.nonce_scope = nonce_scope
        #: What GET /users/@me answers; messages are authored by its public part.
        self.bot_user: dict[str, Any] = {
            "id": str(BOT_USER_ID),
            "username": "Questlog",
            "avatar": None,
            "discriminator": "4821",
            "public_flags": 0,
            "flags": 0,
            "bot": True,
            "banner": None,
            "accent_color": None,
            "global_name": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "display_name_styles": None,
            "banner_color": None,
            "clan": None,
            "primary_guild": None,
            "mfa_enabled": False,
            "locale": "en-US",
            "premium_type": 0,
            "email": None,
            "verified": True,
            "bio": "",
        }
        #: channel id -> channel object (what GET /channels/{id} answers).
        self.channels: dict[int, dict[str, Any]] = {}
        #: channel id -> created messages, in order (edits change them in place).
        self.messages: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self.deleted_channels: set[int] = set()
        self.forbidden_channels: set[int] = set()
        #: channel id -> the code of :data:`REFUSALS` it is refused with
        self.refused_channels: dict[int, int] = {}
        #: channel id -> seconds each message request to it waits before being handled
        self.holds: dict[int, float] = {}
        self._failures: dict[int, deque[ScriptedStatus]] = {}
        self._drops: dict[int, int] = {}
        self._nonces: dict[tuple[int | None, str], _NonceEntry] = {}
        self._buckets: dict[tuple[str, int], _Window] = {}
        self._global: _Window | None = None
        self._last_id = 0
        self._runner: web.AppRunner | None = None
        #: guild id -> GUILD_CREATE payload the fake gateway sends after READY
        self.gateway_guilds: dict[int, dict[str, Any]] = {}
        #: IDENTIFY payloads received, and gateway connections made (RESUMEs included)
        self.identified: list[dict[str, Any]] = []
        self.gateway_connections = 0
        #: what GET /gateway/bot recommends; an IDENTIFY with ``shard: [id, count]`` gets
        #: only the guilds of that shard, ``(guild_id >> 22) % count == id``, as Discord does
        self.recommended_shards = 1
        self._socket_shards: dict[int, int] = {}  # per socket: the shard it identified as
        #: how many times the commands were synced (bulk overwrites, any scope)
        self.command_syncs = 0
        #: whether the application may use the privileged intents (Developer Portal switches);
        #: an IDENTIFY asking for one that is off is closed with 4014, as Discord does
        self.privileged_intents = True
        self._sockets: list[web.WebSocketResponse] = []
        self._sequences: dict[int, int] = {}  # per socket: the last sequence number sent
        #: every uploaded file, in order: (filename, bytes)
        self.uploads: list[tuple[str, bytes]] = []
        #: interaction token -> every answer given to it, in order: {"kind": "callback" |
        #: "followup" | "edit", "type": callback type (4 message, 5 deferred), "data": payload}
        self.interactions: dict[str, list[dict[str, Any]]] = {}
        #: guild id (None = global) -> the commands last synced there
        self.synced_commands: dict[int | None, list[dict[str, Any]]] = {}
        #: guild id -> role id -> position; the bot's top role position per guild; guilds
        #: where the bot lacks Manage Roles; (guild, user) -> the roles Questlog's calls gave
        self.guild_roles: dict[int, dict[int, int]] = {}
        self.bot_top_role: dict[int, int] = {}
        self.no_manage_roles: set[int] = set()
        self.member_roles: dict[tuple[int, int], set[int]] = {}
        #: statuses the next role calls answer instead (503, 429, ...), in order
        self.role_failures: deque[int] = deque()
        #: (guild id, user id) -> the guild member object GET /guilds/{g}/members/{u} answers
        self.members: dict[tuple[int, int], dict[str, Any]] = {}
        #: seconds every member request waits before it is answered
        self.member_delay = 0.0
        #: Discord's OAuth2 half: the authorize page, tokens, a member's connections, Linked Roles
        self.oauth = FakeOAuth()
        self._port = 0
        for channel_id in channels:
            self.add_channel(channel_id)

    # ------------------------------------------------------------------ setup and scripting

    def add_channel(
        self, channel_id: int, *, guild_id: int | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """Register a guild text channel (type 0) and return its channel object."""
        channel: dict[str, Any] = {
            "id": str(channel_id),
            "type": 0,
            "last_message_id": None,
            "flags": 0,
            "guild_id": str(guild_id if guild_id is not None else self.guild_id),
            "name": name if name is not None else f"channel-{len(self.channels) + 1}",
            "parent_id": None,
            "rate_limit_per_user": 0,
            "topic": None,
            "position": len(self.channels),
            "permission_overwrites": [],
            "nsfw": False,
        }
        self.channels[channel_id] = channel
        return channel

    def add_member(
        self, guild_id: int, user_id: int, username: str, *, nick: str | None = None,
        global_name: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Register a guild member (what Discord's Get Guild Member answers for them)."""
        member: dict[str, Any] = {
            "user": {
                "id": str(user_id),
                "username": username,
                "discriminator": "0",
                "global_name": global_name,
                "avatar": None,
                "public_flags": 0,
            },
            "nick": nick,
            "avatar": None,
            "banner": None,
            "roles": [],
            "joined_at": "2025-01-01T00:00:00.000000+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        self.members[(guild_id, user_id)] = member
        return member

    def fail_next(self, channel_id: int, statuses: Iterable[ScriptedStatus]) -> None:
        """The next message requests to the channel (create or edit) answer these statuses in
        order, then normally.

        Scripted answers come before any other check and create nothing. 429 (or ``(429,
        retry_after)``, ``(429, retry_after, scope)``) -> a rate-limit answer with ``Via``;
        403 -> Missing Permissions (50013); 404 -> Unknown Channel (10003); 401 -> Unauthorized;
        anything else -> ``{"message": "<status>: <phrase>", "code": 0}``. 502/503/504 carry no
        rate-limit headers (they come from the edge), the others the bucket's current ones.
        """
        self._failures.setdefault(channel_id, deque()).extend(statuses)

    def pending_failures(self, channel_id: int) -> list[ScriptedStatus]:
        return list(self._failures.get(channel_id, ()))

    def drop_response_next(self, channel_id: int, n: int = 1) -> None:
        """The next ``n`` message requests to the channel (create or edit) are handled in full
        (the message is stored or changed) but the connection is closed instead of answering:
        the client sees
        ``aiohttp.ServerDisconnectedError``."""
        self._drops[channel_id] = self._drops.get(channel_id, 0) + n

    def forget_nonces(self) -> None:
        """As if the nonce window had passed for every message sent so far."""
        self._nonces.clear()

    def count(self, channel_id: int) -> int:
        return len(self.messages.get(channel_id, ()))

    def rate_limited(self) -> list[RecordedRequest]:
        """The requests answered 429, in order."""
        return [r for r in self.requests if r.status == 429]

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeDiscord is not running")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    async def dispatch(self, event: str, data: Any) -> None:
        """Send a gateway event to every identified connection (PRESENCE_UPDATE, ...)."""
        for socket in list(self._sockets):
            sequence = self._sequences.get(id(socket), 0) + 1
            self._sequences[id(socket)] = sequence
            await socket.send_json({"op": 0, "t": event, "s": sequence, "d": data})

    async def drop_gateway(self, code: int = 1001, shard: int | None = None) -> None:
        """Close every gateway connection (or one shard's), as Discord does when it restarts a
        gateway node."""
        for socket in list(self._sockets):
            if shard is None or self._socket_shards.get(id(socket), 0) == shard:
                await socket.close(code=code)

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(API_PREFIX + "/users/@me", self._get_me)
        self.oauth.routes(app, API_PREFIX)
        app.router.add_get(API_PREFIX + "/gateway/bot", self._get_gateway_bot)
        app.router.add_get(API_PREFIX + "/channels/{channel_id}", self._get_channel)
        app.router.add_get(API_PREFIX + "/guilds/{guild_id}/members/{user_id}", self._get_member)
        for method in ("PUT", "DELETE"):
            app.router.add_route(
                method, API_PREFIX + "/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
                self._member_role,
            )  # fmt: skip
        app.router.add_post(API_PREFIX + "/channels/{channel_id}/messages", self._create_message)
        app.router.add_patch(
            API_PREFIX + "/channels/{channel_id}/messages/{message_id}", self._edit_message
        )
        app.router.add_get(API_PREFIX + "/oauth2/applications/@me", self._get_application)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_post(
            API_PREFIX + "/interactions/{interaction_id}/{token}/callback",
            self._interaction_callback,
        )
        app.router.add_post(API_PREFIX + "/webhooks/{app_id}/{token}", self._followup)
        app.router.add_patch(
            API_PREFIX + "/webhooks/{app_id}/{token}/messages/{message_id}", self._edit_followup
        )
        app.router.add_put(API_PREFIX + "/applications/{app_id}/commands", self._put_commands)
        app.router.add_put(
            API_PREFIX + "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands
        )
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ common checks

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        record = RecordedRequest(request.method, request.path, time.monotonic())
        self.requests.append(record)
        request[_RECORD] = record
        if request.content_type == JSON_TYPE and request.can_read_body:
            # Recorded before any check, so a refused request shows what was sent too (the body
            # is cached: handlers read it again).
            with contextlib.suppress(ValueError):
                record.body = json.loads(await request.read())
        response: web.StreamResponse
        routing_error = request.match_info.http_exception
        if routing_error is not None:
            status = 405 if routing_error.status == 405 else 404
            response = _generic(status)
        elif (
            request.headers.get("Authorization") != f"Bot {self.token}"
            and not request.path.startswith(
                (
                    API_PREFIX + "/interactions/",
                    API_PREFIX + "/webhooks/",
                    "/gateway",
                    "/oauth2/",
                    API_PREFIX + "/oauth2/token",
                )
            )
            and not request.headers.get("Authorization", "").startswith("Bearer ")
        ):  # interaction callbacks and follow-ups are authorised by the interaction token,
            # OAuth2 routes by the client's credentials or the member's bearer token
            response = _error(401, "401: Unauthorized", 0)
        elif (limited := self._global_limit()) is not None:
            response = limited
            record.scope = "global"
        else:
            response = await handler(request)
        if not record.dropped:
            response.headers["Via"] = VIA
        record.status = response.status
        return response

    def _global_limit(self) -> web.Response | None:
        now = time.monotonic()
        if self._global is None or self._global.limit != self.global_per_second:
            self._global = _Window(self.global_per_second, 1.0)
        if self._global.take(now):
            return None
        retry_after = _ceil3(self._global.reset_after(now))
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Global": "true",
            "X-RateLimit-Scope": "global",
        }
        return self._limited_body(retry_after, True, headers)

    @staticmethod
    def _limited_body(retry_after: float, is_global: bool, headers: dict[str, str]) -> web.Response:
        body: dict[str, Any] = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": is_global,
        }
        return _json(body, 429, headers)

    def _bucket(self, route: str, channel_id: int) -> _Window:
        limit, period = self.per_channel
        bucket = self._buckets.get((route, channel_id))
        if bucket is None or (bucket.limit, bucket.period) != (limit, period):
            bucket = self._buckets[(route, channel_id)] = _Window(limit, period)
        return bucket

    @staticmethod
    def _bucket_headers(
        route: str, bucket: _Window, *, remaining: int, reset_after: float
    ) -> dict[str, str]:
        reset_after = _ceil3(reset_after)
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": _bucket_hash(route),
        }

    def _take(self, route: str, channel_id: int) -> tuple[dict[str, str], web.Response | None]:
        """Spend one request of the channel's bucket: (headers for the answer, 429 or None)."""
        bucket = self._bucket(route, channel_id)
        now = time.monotonic()
        allowed = bucket.take(now)
        reset_after = bucket.reset_after(now)
        headers = self._bucket_headers(
            route, bucket, remaining=bucket.remaining, reset_after=reset_after
        )
        if allowed:
            return headers, None
        retry_after = _ceil3(reset_after)
        headers["Retry-After"] = str(math.ceil(retry_after))
        headers["X-RateLimit-Scope"] = "user"
        return headers, self._limited_body(retry_after, False, headers)

    def _peek(self, route: str, channel_id: int) -> dict[str, str]:
        bucket = self._bucket(route, channel_id)
        now = time.monotonic()
        return self._bucket_headers(
            route,
            bucket,
            remaining=bucket.peek_remaining(now),
            reset_after=bucket.reset_after(now),
        )

    def _channel_id(self, request: web.Request) -> int | web.Response:
        raw = request.match_info["channel_id"]
        channel_id = _parse_snowflake(raw)
        if channel_id is None:
            return _form_error(
                {"channel_id": _problem("NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')}
            )
        request[_RECORD].channel_id = channel_id
        return channel_id

    def _channel_problem(
        self, channel_id: int, headers: dict[str, str], *, writing: bool
    ) -> web.Response | None:
        if channel_id in self.deleted_channels or channel_id not in self.channels:
            return _error(404, "Unknown Channel", 10003, headers)
        code = self.refused_channels.get(channel_id)
        if code is not None and (writing or code == 50001):
            status, message = REFUSALS[code]
            return _error(status, message, code, headers)
        if writing and channel_id in self.forbidden_channels:
            return _error(403, "Missing Permissions", 50013, headers)
        return None

    async def _read_payload(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The JSON object of a message request (``payload_json`` when multipart)."""
        files: list[tuple[str, str, int]] = []
        raw: str | None = None
        if request.content_type == "multipart/form-data":
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    self.uploads.append((value.filename, content))
                    files.append((value.filename, value.content_type, len(content)))
                elif name == "payload_json":
                    raw = str(value)
        elif request.content_type == JSON_TYPE:
            raw = await request.text()
        if raw is None or not raw.strip():
            payload: Any = {}
        else:
            try:
                payload = json.loads(raw)
            except ValueError:
                return _error(400, "The request body contains invalid JSON.", 50109)
        request[_RECORD].body = payload
        if not isinstance(payload, dict):
            return _form_error(
                _problem("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            )
        if files:
            payload = dict(payload)
            payload["_files"] = files
        return payload

    # ------------------------------------------------------------------ routes

    async def _get_me(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return await self.oauth.me(request)  # a member's OAuth token
        return _json(self.bot_user)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """A minimal Discord gateway: HELLO, IDENTIFY -> READY + GUILD_CREATEs, heartbeat ACKs,
        RESUME -> RESUMED. Frames are JSON text (discord.py accepts text and zlib-stream)."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.gateway_connections += 1
        self._sequences[id(socket)] = 0

        async def dispatch(event: str, data: Any) -> None:
            self._sequences[id(socket)] += 1
            sequence = self._sequences[id(socket)]
            await socket.send_json({"op": 0, "t": event, "s": sequence, "d": data})

        try:
            await socket.send_json(
                {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}
            )
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                op = payload.get("op")
                if op == 1:
                    await socket.send_json({"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    if payload["d"].get("token") != self.token:
                        await socket.close(code=4004, message=b"Authentication failed.")
                        break
                    self.identified.append(payload["d"])
                    privileged = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, content
                    if payload["d"].get("intents", 0) & privileged and not self.privileged_intents:
                        await socket.close(code=4014, message=b"Disallowed intent(s).")
                        break
                    self._sockets.append(socket)
                    shard_id, shards = payload["d"].get("shard") or (0, 1)
                    self._socket_shards[id(socket)] = shard_id
                    guilds = {
                        g: data
                        for g, data in self.gateway_guilds.items()
                        if (g >> 22) % shards == shard_id
                    }
                    await dispatch(
                        "READY",
                        {
                            "v": 10,
                            "user": {**self.bot_user, "bot": True},
                            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
                            "shard": [shard_id, shards],
                            "session_id": f"fake-session-{shard_id}",
                            "resume_gateway_url": self.gateway_url,
                            "application": {"id": str(BOT_USER_ID), "flags": 0},
                        },
                    )
                    for guild in guilds.values():
                        await dispatch("GUILD_CREATE", guild)
                elif op == 6:
                    session = str(payload["d"].get("session_id") or "")
                    self._socket_shards[id(socket)] = int(session.rpartition("-")[2] or 0)
                    self._sockets.append(socket)
                    await dispatch("RESUMED", {})
        finally:
            if socket in self._sockets:
                self._sockets.remove(socket)
            self._sequences.pop(id(socket), None)
            self._socket_shards.pop(id(socket), None)
        return socket

    async def _get_application(self, request: web.Request) -> web.Response:
        """GET /oauth2/applications/@me, which discord.py's Client.login calls."""
        return _json(
            {
                "id": str(BOT_USER_ID),
                "name": self.bot_user["username"],
                "icon": None,
                "description": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 0,
                "owner": {
                    "id": "1300000000000000002",
                    "username": "owner",
                    "discriminator": "0",
                    "global_name": "Owner",
                    "avatar": None,
                },
                "team": None,
                "summary": "",
                "interactions_endpoint_url": None,
            }
        )

    def _interaction_message(self, data: dict[str, Any]) -> dict[str, Any]:
        message_id = self._next_snowflake()
        return {
            "id": str(message_id),
            "channel_id": "0",
            "type": 20,
            "content": data.get("content") or "",
            "embeds": data.get("embeds") or [],
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "flags": data.get("flags") or 0,
            "timestamp": _snowflake_time(message_id),
            "edited_timestamp": None,
            "author": self.bot_user,
        }

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        """POST /interactions/{id}/{token}/callback?with_response=1, answered with the
        InteractionCallbackResponse body (discord.py parses it)."""
        token = request.match_info["token"]
        payload = await request.json()
        kind = payload.get("type")
        data = payload.get("data") or {}
        answers = self.interactions.setdefault(token, [])
        if any(a["kind"] == "callback" for a in answers):
            return _error(400, "Interaction has already been acknowledged.", 40060)
        if kind == 9 and not (  # a modal: Discord's form limits (title and labels 1-45)
            0 < len(data.get("title") or "") <= 45
            and 0 < len(data.get("components") or []) <= 5
            and all(
                0 < len(inner.get("label") or "") <= 45
                for row in data["components"]
                for inner in row.get("components") or [row.get("component") or {}]
            )
        ):
            return _error(400, "Invalid Form Body", 50035)
        answers.append({"kind": "callback", "type": kind, "data": data})
        body: dict[str, Any] = {
            "interaction": {
                "id": request.match_info["interaction_id"],
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool((data.get("flags") or 0) & 64),
            }
        }
        if kind == 4:
            message = self._interaction_message(data)
            body["interaction"]["response_message_id"] = message["id"]
            body["resource"] = {"type": kind, "message": message}
        elif kind is not None:
            body["resource"] = {"type": kind}
        return _json(body)

    async def _followup(self, request: web.Request) -> web.Response:
        data = await self._read_payload(request)
        if isinstance(data, web.Response):
            return data
        self.interactions.setdefault(request.match_info["token"], []).append(
            {"kind": "followup", "type": None, "data": data}
        )
        return _json(self._interaction_message(data))

    async def _edit_followup(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.interactions.setdefault(request.match_info["token"], []).append(
            {"kind": "edit", "type": None, "data": data}
        )
        return _json(self._interaction_message(data))

    async def _put_commands(self, request: web.Request) -> web.Response:
        """Bulk overwrite of application commands (global or for one guild): stored and echoed
        with ids, as Discord does."""
        commands = await request.json()
        guild = request.match_info.get("guild_id")
        stored = []
        for n, command in enumerate(commands, start=1):
            item = {
                "id": str(1400000000000000000 + n),
                "application_id": request.match_info["app_id"],
                "version": "1",
                "default_member_permissions": None,
                "type": 1,
                "dm_permission": True,
                "nsfw": False,
                **command,
            }
            if guild is not None:
                item["guild_id"] = guild
            stored.append(item)
        self.synced_commands[int(guild) if guild else None] = stored
        self.command_syncs += 1
        return _json(stored)

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_member(self, request: web.Request) -> web.Response:
        guild_id = _parse_snowflake(request.match_info["guild_id"])
        user_id = _parse_snowflake(request.match_info["user_id"])
        if guild_id is None or user_id is None:
            return _form_error({"guild_id" if guild_id is None else "user_id": _problem(
                "NUMBER_TYPE_COERCE", "Value is not snowflake.")})  # fmt: skip
        if self.member_delay:
            await asyncio.sleep(self.member_delay)
        member = self.members.get((guild_id, user_id))
        if member is None:
            return _error(404, "Unknown Member", 10007)
        held = self.member_roles.get((guild_id, user_id), set())  # the roles they have now
        return _json({**member, "roles": sorted(str(role) for role in held)})

    async def _member_role(self, request: web.Request) -> web.Response:
        """Add/Remove Guild Member Role, as Discord answers them: 204; 404 Unknown Member
        (10007) or Unknown Role (10011); 403 Missing Permissions (50013) without Manage Roles
        or for a role at or above the bot's top role."""
        ids = [_parse_snowflake(request.match_info[k]) for k in ("guild_id", "user_id", "role_id")]
        if None in ids:
            return _form_error(
                {"role_id": _problem("NUMBER_TYPE_COERCE", "Value is not snowflake.")}
            )
        guild_id, user_id, role_id = (int(i) for i in ids if i is not None)
        if self.role_failures:
            status = self.role_failures.popleft()
            if status == 429:
                return _json({"message": "You are being rate limited.", "retry_after": 0.01,
                              "global": False}, 429)  # fmt: skip
            return _error(status, "Server Error", 0)
        if (guild_id, user_id) not in self.members:
            return _error(404, "Unknown Member", 10007)
        roles = self.guild_roles.get(guild_id, {})
        if role_id not in roles:
            return _error(404, "Unknown Role", 10011)
        if guild_id in self.no_manage_roles or roles[role_id] >= self.bot_top_role.get(guild_id, 0):
            return _error(403, "Missing Permissions", 50013)
        held = self.member_roles.setdefault((guild_id, user_id), set())
        if request.method == "PUT":
            held.add(role_id)
        else:
            held.discard(role_id)
        return web.Response(status=204, headers={"Via": "1.1 google"})

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel_id = self._channel_id(request)
        if isinstance(channel_id, web.Response):
            return channel_id
        problem = self._channel_problem(channel_id, {}, writing=False)
        if problem is not None:
            return problem
        return _json(self.channels[channel_id])

    async def _message_target(self, request: web.Request) -> int | web.Response:
        """The channel of a message request, or the answer when it is malformed or a scripted
        failure is due (scripted answers come before any other check). A held channel's
        requests wait first."""
        channel_id = self._channel_id(request)
        if isinstance(channel_id, web.Response):
            return channel_id
        if self.holds.get(channel_id):
            await asyncio.sleep(self.holds[channel_id])
        failures = self._failures.get(channel_id)
        if failures:
            return self._scripted(failures.popleft(), channel_id, request)
        return channel_id

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        channel_id = await self._message_target(request)
        if isinstance(channel_id, web.Response):
            return channel_id
        headers, limited = self._take(CREATE_ROUTE, channel_id)
        if limited is not None:
            request[_RECORD].scope = "user"
            return limited
        problem = self._channel_problem(channel_id, headers, writing=True)
        if problem is not None:
            return problem
        payload = await self._read_payload(request)
        if isinstance(payload, web.Response):
            payload.headers.update(headers)
            return payload
        invalid = self._validate(payload, creating=True)
        if invalid is not None:
            invalid.headers.update(headers)
            return invalid

        message = self._existing_for_nonce(channel_id, payload)
        if message is None:
            message = self._store(channel_id, payload)
        return self._answer(request, channel_id, _json(message, 200, headers))

    def _answer(
        self, request: web.Request, channel_id: int, response: web.Response
    ) -> web.Response:
        if self._drops.get(channel_id, 0) > 0:
            self._drops[channel_id] -= 1
            request[_RECORD].dropped = True
            # Close the socket without a byte of answer; aiohttp's own write of `response` then
            # fails with a ConnectionError, which it swallows.
            request.protocol.force_close()
        return response

    async def _edit_message(self, request: web.Request) -> web.Response:
        channel_id = await self._message_target(request)
        if isinstance(channel_id, web.Response):
            return channel_id
        headers, limited = self._take(EDIT_ROUTE, channel_id)
        if limited is not None:
            request[_RECORD].scope = "user"
            return limited
        problem = self._channel_problem(channel_id, headers, writing=True)
        if problem is not None:
            return problem
        message_id = _parse_snowflake(request.match_info["message_id"])
        message = next(
            (m for m in self.messages.get(channel_id, ()) if int(m["id"]) == message_id), None
        )
        if message is None:
            return _error(404, "Unknown Message", 10008, headers)
        payload = await self._read_payload(request)
        if isinstance(payload, web.Response):
            payload.headers.update(headers)
            return payload
        invalid = self._validate(payload, creating=False)
        if invalid is None:
            edited = {**message, **self._editable(payload)}
            if self._is_empty(edited):
                invalid = _error(400, "Cannot send an empty message", 50006)
        if invalid is not None:
            invalid.headers.update(headers)
            return invalid
        message.update(self._editable(payload))
        message["edited_timestamp"] = datetime.now(UTC).isoformat(timespec="microseconds")
        return self._answer(request, channel_id, _json(message, 200, headers))

    # ------------------------------------------------------------------ behaviour

    def _scripted(
        self, scripted: ScriptedStatus, channel_id: int, request: web.Request
    ) -> web.Response:
        record: RecordedRequest = request[_RECORD]
        if isinstance(scripted, Refusal):
            body: dict[str, Any] = {"message": scripted.message, "code": scripted.code}
            if scripted.errors is not None:
                body["errors"] = scripted.errors
            return _json(body, scripted.status, self._peek(CREATE_ROUTE, channel_id))
        if isinstance(scripted, tuple):
            status = scripted[0]
            retry_after = float(scripted[1])
            scope = str(scripted[2]) if len(scripted) == 3 else "user"
        else:
            status, retry_after, scope = scripted, DEFAULT_SCRIPTED_RETRY_AFTER, "user"
        if status == 429:
            record.scope = scope
            retry_after = _ceil3(retry_after)
            headers = {"Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Scope": scope}
            if scope == "global":
                headers["X-RateLimit-Global"] = "true"
            else:
                bucket = self._bucket(CREATE_ROUTE, channel_id)
                headers.update(
                    self._bucket_headers(CREATE_ROUTE, bucket, remaining=0, reset_after=retry_after)
                )
            return self._limited_body(retry_after, scope == "global", headers)
        if status in (502, 503, 504):
            return _generic(status)
        headers = self._peek(CREATE_ROUTE, channel_id)
        if status == 403:
            return _error(403, "Missing Permissions", 50013, headers)
        if status == 404:
            return _error(404, "Unknown Channel", 10003, headers)
        return _generic(status, headers)

    def _validate(self, payload: dict[str, Any], *, creating: bool) -> web.Response | None:
        errors: dict[str, Any] = {}
        content = payload.get("content")
        if isinstance(content, str) and len(content) > MAX_CONTENT:
            _put(errors, ("content",), _too_long(MAX_CONTENT))
        nonce = payload.get("nonce")
        if creating and isinstance(nonce, str) and len(nonce) > MAX_NONCE:
            _put(errors, ("nonce",), _too_long(MAX_NONCE))
        embeds = payload.get("embeds")
        if isinstance(embeds, list):
            self._validate_embeds(embeds, errors)
        if errors:
            return _form_error(errors)
        if creating and self._is_empty(payload):
            return _error(400, "Cannot send an empty message", 50006)
        return None

    @staticmethod
    def _validate_embeds(embeds: list[Any], errors: dict[str, Any]) -> None:
        if len(embeds) > MAX_EMBEDS:
            _put(errors, ("embeds",), _too_long(MAX_EMBEDS))
        total = 0
        for index, embed in enumerate(embeds):
            if not isinstance(embed, dict):
                continue
            at = ("embeds", str(index))
            for key, limit in (("title", MAX_TITLE), ("description", MAX_DESCRIPTION)):
                length = _text_length(embed.get(key))
                total += length
                if length > limit:
                    _put(errors, (*at, key), _too_long(limit))
            fields = embed.get("fields")
            if isinstance(fields, list):
                if len(fields) > MAX_FIELDS:
                    _put(errors, (*at, "fields"), _too_long(MAX_FIELDS))
                for number, item in enumerate(fields):
                    if not isinstance(item, dict):
                        continue
                    for key, limit in (("name", MAX_FIELD_NAME), ("value", MAX_FIELD_VALUE)):
                        where = (*at, "fields", str(number), key)
                        if item.get(key) is None:
                            _put(errors, where, _required())
                        length = _text_length(item.get(key))
                        total += length
                        if length > limit:
                            _put(errors, where, _too_long(limit))
            for where in (("url",), ("thumbnail", "url"), ("image", "url"), ("author", "url")):
                value: Any = embed
                for part in where:
                    value = value.get(part) if isinstance(value, dict) else None
                problem = _url_problem(value)
                if problem is not None:
                    _put(errors, (*at, *where), problem)
            for part, key, limit in (
                ("footer", "text", MAX_FOOTER_TEXT),
                ("author", "name", MAX_AUTHOR_NAME),
            ):
                block = embed.get(part)
                if not isinstance(block, dict):
                    continue
                if block.get(key) is None:
                    _put(errors, (*at, part, key), _required())
                length = _text_length(block.get(key))
                total += length
                if length > limit:
                    _put(errors, (*at, part, key), _too_long(limit))
        if total > MAX_EMBED_TOTAL:
            _put(
                errors,
                ("embeds",),
                _problem(
                    "MAX_EMBED_SIZE_EXCEEDED",
                    f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
                ),
            )

    @staticmethod
    def _is_empty(payload: dict[str, Any]) -> bool:
        return not (
            payload.get("content")
            or payload.get("embeds")
            or payload.get("_files")
            or payload.get("attachments")
            or payload.get("sticker_ids")
            or payload.get("components")
            or payload.get("poll")
        )

    def _nonce_key(self, channel_id: int, nonce: Any) -> tuple[int | None, str]:
        return (channel_id if self.nonce_scope == "channel" else None, str(nonce))

    def _existing_for_nonce(
        self, channel_id: int, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        nonce = payload.get("nonce")
        if nonce is None or not payload.get("enforce_nonce"):
            return None
        entry = self._nonces.get(self._nonce_key(channel_id, nonce))
        if entry is None or self.nonce_clock() - entry.created > self.nonce_window:
            return None
        return entry.message

    def _next_snowflake(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(candidate, self._last_id + 1)
        return self._last_id

    @staticmethod
    def _embeds(payload: dict[str, Any]) -> list[dict[str, Any]]:
        embeds = []
        for embed in payload.get("embeds") or []:
            embed = copy.deepcopy(embed)
            embed.setdefault("type", "rich")
            embeds.append(embed)
        return embeds

    def _editable(self, payload: dict[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if "content" in payload:
            changes["content"] = payload["content"] or ""
        if "embeds" in payload:
            changes["embeds"] = self._embeds(payload)
        if "flags" in payload and payload["flags"] is not None:
            changes["flags"] = payload["flags"]
        return changes

    def _store(self, channel_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        message_id = self._next_snowflake()
        author_keys = (
            "id username avatar discriminator public_flags flags bot banner accent_color "
            "global_name avatar_decoration_data collectibles display_name_styles banner_color "
            "clan primary_guild"
        ).split()
        attachments = [
            {
                "id": str(self._next_snowflake()),
                "filename": filename,
                "size": size,
                "url": f"{self.base_url}/attachments/{channel_id}/{message_id}/{filename}",
                "proxy_url": f"{self.base_url}/attachments/{channel_id}/{message_id}/{filename}",
                "content_type": content_type,
            }
            for filename, content_type, size in payload.get("_files", [])
        ]
        message: dict[str, Any] = {
            "type": 0,
            "content": payload.get("content") or "",
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": self._embeds(payload),
            "timestamp": _snowflake_time(message_id),
            "edited_timestamp": None,
            "flags": payload.get("flags") or 0,
            "components": copy.deepcopy(payload.get("components") or []),
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": {key: self.bot_user.get(key) for key in author_keys},
            "pinned": False,
            "mention_everyone": False,
            "tts": bool(payload.get("tts")),
        }
        nonce = payload.get("nonce")
        if nonce is not None:
            message["nonce"] = nonce
            self._nonces[self._nonce_key(channel_id, nonce)] = _NonceEntry(
                self.nonce_clock(), message
            )
        self.messages.setdefault(channel_id, []).append(message)
        self.channels[channel_id]["last_message_id"] = message["id"]
        return message


__all__ = [
    "API_PREFIX",
    "BOT_USER_ID",
    "DEFAULT_GUILD_ID",
    "REFUSALS",
    "VALID_TOKEN",
    "FakeDiscord",
    "RecordedRequest",
    "Refusal",
    "ScriptedStatus",
    "invalid_embeds",
    "refusal",
]
