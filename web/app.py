"""The aiohttp application: signed webhook endpoints, get-playtime, health and metrics.

Every request to an endpoint is checked in one fixed order, and the first failing check decides
the status: 404 (unknown or disabled path, or a path of another kind), 405, 413, 429, 401, 415,
400, 422. Nothing is acknowledged with 2xx before it is committed. Error bodies are
``{"error": code, "detail": text}``; no traceback ever reaches the caller.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from aiohttp import web

from bot.clock import to_iso
from bot.core import Core
from bot.ingest import (
    Endpoint,
    IgnoredDelivery,
    Route,
    SchemaError,
    StorageError,
    WebhookContext,
)
from bot.services.get_playtime import parse_query
from web.jsonbody import MalformedJson, parse_json
from web.pages import PER_MINUTE as PAGES_PER_MINUTE
from web.pages import add_routes as add_pages
from web.ratelimit import RateLimiter
from web.refusals import RefusalLog
from web.signatures import (
    BattleMetricsScheme,
    PlainHexScheme,
    Sha256Scheme,
    SignatureError,
    StaleSignature,
    Verified,
)

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
_JSON_TYPES = ("application/json",)


class AlreadyAccepted(Exception):
    """A late retry of a delivery that was already stored: acknowledged, nothing changes."""


class HttpError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = dict(headers or {})
        self.close = close  # close the connection as soon as the answer is written
        self.extra = extra


_JSON = "application/json"
_REPLIES: dict[tuple[str, bool | None], bytes] = {}


def status_reply(status: str, playtime_updated: bool | None = None) -> web.Response:
    """A 200 reply for the common answers, encoded once (this runs on every webhook)."""
    key = (status, playtime_updated)
    body = _REPLIES.get(key)
    if body is None:
        data: dict[str, Any] = {"status": status}
        if playtime_updated is not None:
            data["playtime_updated"] = playtime_updated
        body = _REPLIES[key] = json.dumps(data).encode()
    return web.Response(body=body, content_type=_JSON)


def error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    return web.json_response(
        {"error": code, "detail": detail, **extra}, status=status, headers=headers
    )


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


@dataclass(slots=True)
class Services:
    """What the handlers use, fetched from the app once per request (each ``request.app[key]``
    lookup cost about as much as a small dict comprehension)."""

    core: Core
    limiter: RateLimiter
    refusals: RefusalLog
    schemes: dict[str, BattleMetricsScheme | Sha256Scheme | PlainHexScheme]
    started: float


SERVICES_KEY = web.AppKey("services", Services)
Handler = Callable[[web.Request, Services], Awaitable[web.StreamResponse]]
AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(route: str, handler: Handler, kind: str | None = None) -> AiohttpHandler:
    """Wrap a handler: every error becomes a JSON answer with the right status, unexpected ones
    a 500 with a reference to the log (never a traceback), and every request is counted.
    ``kind``: the endpoint kind of a webhook route, whose refusals are logged (web/refusals.py).
    (A plain wrapper instead of an aiohttp middleware: measurably cheaper per request.)"""

    async def run(request: web.Request) -> web.StreamResponse:
        return await _guard(request, route, handler, kind)

    return run


def _refused(
    request: web.Request, svc: Services, kind: str | None, status: int, code: str, reason: str
) -> None:
    if kind is None:
        return
    path = request.match_info.get("path") if kind != "-" else request.path.lstrip("/")
    svc.refusals.refused(kind, path, status, code, reason)


async def _guard(
    request: web.Request, route: str, handler: Handler, kind: str | None = None
) -> web.StreamResponse:
    svc = request.app[SERVICES_KEY]
    core = svc.core
    status = 500
    try:
        response = await handler(request, svc)
        status = response.status
        return response
    except HttpError as exc:
        status = exc.status
        _refused(request, svc, kind, exc.status, exc.code, exc.detail)
        response = error_response(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)
        if exc.close:
            await _answer_and_close(request, response)
        return response
    except AlreadyAccepted:
        status = 200
        core.metrics.inc("questlog_ingest_total", source=route, result="duplicate")
        return status_reply("duplicate")
    except IgnoredDelivery as exc:  # well-formed, nothing to store: acknowledged and counted
        status = 202
        return web.json_response({"status": "ignored", "detail": str(exc)}, status=202)
    except web.HTTPException as exc:  # aiohttp's own, e.g. 413 from request.read()
        status = exc.status
        code = _STATUS_CODES.get(exc.status, "error")
        _refused(request, svc, kind, exc.status, code, exc.reason)
        if exc.status == 405:
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return error_response(405, "method_not_allowed", "method not allowed", allow)
        if exc.status == 404:
            return error_response(404, "not_found", "no such endpoint")
        if exc.status == 413:
            return error_response(413, "payload_too_large", f"body is larger than {MAX_BODY} bytes")
        return error_response(exc.status, _STATUS_CODES.get(exc.status, "error"), exc.reason)
    except StorageError as exc:
        status = 503
        log.error("storage unavailable for %s %s: %s", request.method, route, exc)
        return error_response(
            503, "unavailable", "storage is busy; retry shortly", {"Retry-After": "5"}
        )
    except asyncio.CancelledError:
        raise
    except Exception:
        status = 500
        reference = secrets.token_hex(6)
        log.exception("unexpected error [ref %s] on %s %s", reference, request.method, route)
        return error_response(500, "internal_error", f"unexpected error; reference {reference}")
    finally:
        core.metrics.inc("questlog_http_requests_total", route=route, status=str(status))


# --------------------------------------------------------------------------- request checks


def _endpoint(request: web.Request, core: Core, kind: str) -> Endpoint:
    endpoint = core.endpoints.get(request.match_info["path"])
    if endpoint is None or endpoint.kind != kind:
        raise HttpError(404, "not_found", "no such endpoint")
    return endpoint


def _method(request: web.Request) -> None:
    if request.method != "POST":
        raise HttpError(405, "method_not_allowed", "use POST", {"Allow": "POST"})


async def _body(request: web.Request, seconds: float) -> bytes:
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise HttpError(413, "payload_too_large", f"body is larger than {MAX_BODY} bytes")
    # client_max_size is MAX_BODY: a chunked body that grows past it raises aiohttp's 413,
    # which the middleware turns into ours.
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise HttpError(
            408,
            "request_timeout",
            f"the request body did not arrive within {seconds:g} s",
            {"Connection": "close"},
            close=True,
        ) from None


async def _answer_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Write the answer now and close the connection: aiohttp would otherwise keep reading
    the rest of an unread body for up to its lingering time (10 s) first."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()


def _rate_limit(limiter: RateLimiter, endpoint: Endpoint) -> None:
    wait = limiter.check(endpoint.path)
    if wait > 0:
        retry = max(1, int(wait + 0.999))
        raise HttpError(
            429,
            "rate_limited",
            f"too many requests; retry in {retry} s",
            {"Retry-After": str(retry)},
        )


def _content_type(request: web.Request, allowed: tuple[str, ...]) -> None:
    header = request.headers.get("Content-Type")
    if header is None:
        return  # many scripts send none; the body must still be JSON
    mime = header.split(";", 1)[0].strip().lower()
    if mime in allowed or (mime.startswith("application/") and mime.endswith("+json")):
        return
    raise HttpError(
        415, "unsupported_media_type", f"send JSON ({', '.join(allowed)}), not {mime or 'empty'}"
    )


def _decode(body: bytes) -> Any:
    try:
        return parse_json(body)
    except MalformedJson as exc:
        raise HttpError(400, "malformed_json", str(exc)) from None


def _schema(exc: SchemaError) -> HttpError:
    return HttpError(422, "invalid_payload", str(exc), field=exc.field)


def _parse(
    request: web.Request,
    core: Core,
    source: str,
    checked: _Checked,
    *,
    fixed_game_id: int | None = None,
) -> dict[str, Any]:
    """Validate the body with the source's connector (422 naming the field; an IgnoredDelivery
    propagates to the guard, which answers 202)."""
    context = WebhookContext(
        headers=request.headers,
        received_at=checked.received_at,
        signed_at=checked.verified.signed_at,
        signed_at_text=checked.verified.signed_at_text,
        signature=checked.verified.signature,
        fixed_game_id=fixed_game_id,
    )
    try:
        return core.pipeline.parse_webhook(source, checked.body, context)
    except SchemaError as exc:
        raise _schema(exc) from None


@dataclass(slots=True)
class _Checked:
    endpoint: Endpoint
    body: Any
    verified: Verified
    received_at: datetime  # the "now" the signature was checked against


async def _checked(
    request: web.Request,
    svc: Services,
    kind: str,
    scheme: BattleMetricsScheme | Sha256Scheme | PlainHexScheme,
    *,
    read: bool = False,
    content_types: tuple[str, ...] = _JSON_TYPES,
    late_retry_source: str | None = None,
) -> _Checked:
    core = svc.core
    endpoint = _endpoint(request, core, kind)
    _method(request)
    raw_body = await _body(request, core.config.web.body_timeout_seconds)
    _rate_limit(svc.limiter, endpoint)
    now = core.clock.now()
    candidates = endpoint.read_secrets(now) if read else endpoint.write_secrets(now)
    try:
        verified = scheme.verify(request.headers, raw_body, candidates, now)
    except StaleSignature as exc:
        # A correct but old signature: BattleMetrics retrying a delivery we already stored (our
        # answer was lost) is acknowledged, never refused, or it would disable the webhook.
        if late_retry_source is not None:
            late = exc.verified
            signed = to_iso(late.signed_at) if late.signed_at else None
            key = {"t": late.signed_at_text, "s": late.signature, "signed_at": signed}
            if await core.pipeline.already_ingested(late_retry_source, endpoint.guild_id, key):
                raise AlreadyAccepted() from None
        raise HttpError(401, "invalid_signature", str(exc)) from None
    except SignatureError as exc:
        raise HttpError(401, "invalid_signature", str(exc)) from None
    _content_type(request, content_types)
    body = _decode(raw_body)
    core.touch(endpoint)
    return _Checked(endpoint, body, verified, now)


# --------------------------------------------------------------------------- handlers


async def webhook(
    request: web.Request, svc: Services, source: str, kind: str, route: Route
) -> web.Response:
    """A signed delivery for a connector: verified as its route says, validated by the
    connector, then stored by the one ingest path (or, for a link code typed in game, the link
    confirmed)."""
    core = svc.core
    checked = await _checked(
        request,
        svc,
        kind,
        svc.schemes[route.scheme],
        read=route.read,
        content_types=route.content_types,
        late_retry_source=source if route.late_retries else None,
    )
    # An identical retry inside the signature's tolerance (its answer was lost) is answered as
    # the first delivery would be answered now and changes nothing: a duplicate event, or the
    # link the code already made. The same signature means the same body, so the dedupe key
    # and the used link code decide it, before and after a restart alike.
    raw = _parse(request, core, source, checked, fixed_game_id=checked.endpoint.game_id)
    # Retried with the original signature and time (BattleMetrics): pruning may drop its
    # dedupe row once a retry that late is refused as stale. Senders that may sign a retry
    # afresh keep theirs (bot/storage/retention.py).
    timestamped = route.late_retries and checked.verified.signed_at is not None
    status, playtime_updated = await core.accept(
        source, checked.endpoint, raw, checked.received_at, timestamped
    )
    return status_reply(status, playtime_updated)


async def get_playtime(
    request: web.Request, svc: Services, source: str, kind: str, route: Route
) -> web.Response:
    core = svc.core
    checked = await _checked(
        request, svc, kind, svc.schemes[route.scheme], read=route.read,
        content_types=route.content_types,
    )  # fmt: skip
    try:
        query = parse_query(checked.body, checked.endpoint.game_id)
    except SchemaError as exc:
        raise _schema(exc) from None
    answer = await core.playtime.lookup(checked.endpoint.guild_id, query, checked.endpoint.id)
    return web.json_response(answer)


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match: ``*`` or a list of ETags, weak ones (``W/"..."``) compared weakly."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


async def squad_admins(
    request: web.Request, svc: Services, source: str, kind: str, route: Route
) -> web.Response:
    """A Squad server's admin list (GET or HEAD; no signature, since Squad cannot sign: the
    unguessable path is the key). 304 when the server already has this version."""
    core = svc.core
    endpoint = _endpoint(request, core, kind)
    if request.method not in ("GET", "HEAD"):
        raise HttpError(405, "method_not_allowed", "use GET", {"Allow": "GET, HEAD"})
    _rate_limit(svc.limiter, endpoint)
    listed = await core.squad_lists.serve(endpoint)
    core.touch(endpoint)
    headers = {
        "ETag": listed.etag,
        "Last-Modified": format_datetime(listed.last_modified, usegmt=True),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    matches = request.headers.get("If-None-Match")
    if matches is not None:
        if _etag_matches(matches, listed.etag):
            return web.Response(status=304, headers=headers)
    elif (since := _http_date(request.headers.get("If-Modified-Since"))) is not None:
        if listed.last_modified <= since:
            return web.Response(status=304, headers=headers)
    return web.Response(
        body=listed.body, content_type="text/plain", charset="utf-8", headers=headers
    )


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


#: What the core does with a verified request, by the name a connector's route gives.
RouteHandler = Callable[[web.Request, Services, str, str, Route], Awaitable[web.Response]]
ROUTE_HANDLERS: dict[str, RouteHandler] = {
    "webhook": webhook,
    "get_playtime": get_playtime,
    "squad_admins": squad_admins,
}
#: Handlers that check no signature (what they serve holds no secret and changes nothing).
UNSIGNED_HANDLERS = frozenset({"squad_admins"})


async def not_found(request: web.Request, svc: Services) -> web.Response:
    raise HttpError(404, "not_found", "no such endpoint")


def _get_only(request: web.Request) -> None:
    if request.method not in ("GET", "HEAD"):
        raise HttpError(405, "method_not_allowed", "use GET", {"Allow": "GET, HEAD"})


async def healthz(request: web.Request, svc: Services) -> web.Response:
    _get_only(request)
    core = svc.core
    try:
        reachable = await asyncio.wait_for(core.store.ping(), timeout=2)
    except TimeoutError:
        reachable = False
    if not reachable:
        log.warning("health check: the database is not reachable")
    database = "ok" if reachable else "unavailable"
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "webhooks": "serving",
        "database": database,
        "discord": core.discord_state,
        "uptime_seconds": int(time.monotonic() - svc.started),
    }
    return web.json_response(body, status=200 if database == "ok" else 503)


async def metrics(request: web.Request, svc: Services) -> web.Response:
    _get_only(request)
    core = svc.core
    token = core.config.web.metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token}"
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
            raise HttpError(
                401,
                "unauthorized",
                "metrics need the bearer token",
                {"WWW-Authenticate": 'Bearer realm="questlog-metrics"'},
            )
    text = await core.metrics.render()
    return web.Response(
        text=text,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def create_app(core: Core) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    tolerance = core.config.webhooks.tolerance_seconds
    schemes: dict[str, BattleMetricsScheme | Sha256Scheme | PlainHexScheme] = {
        "sha256": Sha256Scheme(tolerance),
        "hex": PlainHexScheme(),
    }
    if "battlemetrics" in core.config.connectors:
        schemes["battlemetrics"] = BattleMetricsScheme(core.config.battlemetrics.tolerance_seconds)
    app[SERVICES_KEY] = Services(
        core=core,
        limiter=RateLimiter(core.config.web.rate_limit_per_minute, core.clock.monotonic),
        refusals=RefusalLog(core.clock.monotonic),
        schemes=schemes,
        started=time.monotonic(),
    )
    # The routes every connector declares for its endpoint kinds (the core hands them over:
    # this module knows no connector).
    for source, kind, route in core.routes():
        handler = ROUTE_HANDLERS.get(route.handler)
        unsigned = route.scheme == "none" and route.handler in UNSIGNED_HANDLERS
        if handler is None or (route.scheme not in schemes and not unsigned):
            raise ValueError(
                f"{source}: route {route.path} needs handler {route.handler!r} and scheme"
                f" {route.scheme!r}, which the web server does not have"
            )
        # Served with and without the trailing slash, never by redirect (BattleMetrics does not
        # follow redirects). Every method reaches the handler so 404 can win over 405.
        if route.path.rstrip("/").endswith("{path}"):
            pattern = route.path.rstrip("/").replace("{path}", "{path:[^/]+}{slash:/?}")
        else:  # a file name around the token (Squad's admins .cfg): no trailing slash
            pattern = route.path.replace("{path}", "{path:[A-Za-z0-9_-]+}")
        app.router.add_route(
            "*",
            pattern,
            guarded(
                route.name,
                functools.partial(handler, source=source, kind=kind, route=route),
                kind,
            ),
            name=route.name,
        )
    add_pages(app, RateLimiter(PAGES_PER_MINUTE, core.clock.monotonic))
    app.router.add_route("*", "/healthz", guarded("healthz", healthz), name="healthz")
    app.router.add_route("*", "/metrics", guarded("metrics", metrics), name="metrics")
    # An address that matches no endpoint (a mistyped URL) is logged like a refusal.
    app.router.add_route("*", "/{tail:.*}", guarded("unmatched", not_found, "-"), name="unmatched")
    return app
