"""The sign-in routes (Login with Discord, Sign in through Steam, the Linked Roles entry) and
the small HTML pages they answer.

Every value a page shows (a Discord or Steam name, Discord's ``error_description``) is
HTML-escaped; pages load nothing (``Content-Security-Policy: default-src 'none'``), leak no
address onwards (``Referrer-Policy: no-referrer``) and are never cached. Redirects carry the
same headers. A state that was used, expired or forged, another member's callback, Discord or
Steam failing: each is a page saying what to do, never a 500.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.i18n import texts
from bot.identity import (
    DISCORD_CALLBACK,
    DISCORD_START,
    LINKED_ROLES_ENTRY,
    STEAM_CALLBACK,
    STEAM_START,
    IdentityService,
    Page,
    Redirect,
)
from bot.ingest import StorageError
from web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
#: Sign-in requests per minute from one address (a burst of members is far below this).
PER_MINUTE = 300


def render(page: Page) -> web.Response:
    t = texts(page.language)
    title = html.escape(t(f"page.{page.key}.title"))
    # The catalogue's text is ours, escaped as written; only its fields come from outside, and
    # they are escaped before they are put in.
    template = html.escape(t.get(f"page.{page.key}.text") or "", quote=False)
    fields = {name: html.escape(value) for name, value in page.fields.items()}
    body = template.format_map(fields)
    parts = [
        "<!doctype html>",
        f'<html lang="{page.language}">',
        '<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} · Questlog</title></head>",
        f"<body><main><h1>{title}</h1>",
        *(f"<p>{line}</p>" for line in body.split("\n") if line),
    ]
    if page.items:
        parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in page.items) + "</ul>")
    if page.link is not None:
        url, label = page.link
        parts.append(f'<p><a href="{html.escape(url)}">{html.escape(t(label))}</a></p>')
    parts.append("</main></body></html>")
    return web.Response(
        text="\n".join(parts),
        status=page.status,
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


def _single(query: Mapping[str, str]) -> dict[str, str] | None:
    """The query as one value per name, or None when a name is repeated (an OpenID assertion
    with two claimed ids, say, must not be read one way and verified another)."""
    out: dict[str, str] = {}
    for name, value in query.items():
        if name in out:
            return None
        out[name] = value
    return out


def _answer(result: Redirect | Page) -> web.Response:
    if isinstance(result, Redirect):
        return web.Response(status=302, headers={**SECURITY_HEADERS, "Location": result.location})
    return render(result)


Flow = Callable[[IdentityService, dict[str, str]], Awaitable[Redirect | Page]]


def _route(flow: Flow, limiter: RateLimiter) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        from web.app import SERVICES_KEY

        svc = request.app[SERVICES_KEY]
        status = 500
        try:
            if request.method not in ("GET", "HEAD"):
                response = render(Page(405, "method"))
                response.headers["Allow"] = "GET, HEAD"
            elif limiter.check(request.remote or "-") > 0:
                response = render(Page(429, "busy"))
                response.headers["Retry-After"] = "60"
            elif (query := _single(request.query)) is None:
                response = render(Page(400, "state_unknown"))
            else:
                response = _answer(await flow(svc.core.identity, query))
        except StorageError as exc:
            log.error("storage unavailable for a sign-in page: %s", exc)
            response = render(Page(503, "busy"))
            response.headers["Retry-After"] = "5"
        except asyncio.CancelledError:
            raise
        except Exception:  # a defect: logged with a reference, never a traceback to the browser
            reference = secrets.token_hex(6)
            log.exception("unexpected error [ref %s] on a sign-in page", reference)
            response = render(Page(500, "unexpected", fields={"reference": reference}))
        status = response.status
        svc.core.metrics.inc("questlog_http_requests_total", route="oauth", status=str(status))
        return response

    return handle


def add_routes(app: web.Application, limiter: RateLimiter) -> None:
    routes: dict[str, Flow] = {
        DISCORD_START: lambda svc, q: svc.discord_start(q.get("s", "")),
        DISCORD_CALLBACK: lambda svc, q: svc.discord_callback(q),
        LINKED_ROLES_ENTRY: lambda svc, q: svc.linked_roles_start(),
        STEAM_START: lambda svc, q: svc.steam_start(q.get("s", ""), q.get("go") == "1"),
        STEAM_CALLBACK: lambda svc, q: svc.steam_callback(q),
    }
    for path, flow in routes.items():
        app.router.add_route("*", path, _route(flow, limiter))
