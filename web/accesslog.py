"""The access log (``[web] access_log = true``): aiohttp's usual line, except that the query of
a sign-in address is left out (it carries Discord's one-time code, the state and Steam's
signed assertion, which belong in no log)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

#: Paths whose query strings are never logged.
PRIVATE_QUERIES = ("/oauth/",)


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        target = request.path if request.path.startswith(PRIVATE_QUERIES) else request.path_qs
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs "%s"',
            request.remote or "-",
            request.method,
            target,
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
        )
