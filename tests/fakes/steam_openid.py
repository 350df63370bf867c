"""A fake of Steam's OpenID 2.0 provider (``https://steamcommunity.com/openid/login``).

As Steam answers (OpenID Authentication 2.0, sections 9-11; Steam's "Sign in through Steam"):

* ``GET /openid/login?openid.mode=checkid_setup&...`` with ``openid.identity`` and
  ``openid.claimed_id`` set to identifier_select: the signed-in browser is redirected to
  ``openid.return_to`` with the assertion's fields appended to its query (``openid.ns``,
  ``openid.mode=id_res``, ``openid.op_endpoint``, ``openid.claimed_id`` and ``openid.identity``
  as ``https://steamcommunity.com/openid/id/<steamid64>``, ``openid.return_to``,
  ``openid.response_nonce`` (a UTC time and a unique part), ``openid.assoc_handle``
  ``1234567890``, ``openid.signed`` ``signed,op_endpoint,claimed_id,identity,return_to,
  response_nonce,assoc_handle`` and ``openid.sig``, base64 of an HMAC-SHA256 over those fields
  in key-value form). Cancelling sends ``openid.mode=cancel``.
* ``POST /openid/login`` with ``openid.mode=check_authentication`` and the assertion's fields:
  ``ns:http://specs.openid.net/auth/2.0\\nis_valid:true\\n`` when the signature matches and
  that assertion was not checked before (an OP verifies an assertion once), else
  ``is_valid:false``. Content type ``text/plain``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

NS = "http://specs.openid.net/auth/2.0"
SELECT = "http://specs.openid.net/auth/2.0/identifier_select"
SIGNED = "signed,op_endpoint,claimed_id,identity,return_to,response_nonce,assoc_handle"


class FakeSteamOpenID:
    def __init__(self) -> None:
        self.browser_steam_id: str | None = "76561197960287930"
        self.cancel = False
        self.unavailable = False  # answer check_authentication with a 503
        self._key = secrets.token_bytes(32)
        self._checked: set[str] = set()
        self.checks: list[dict[str, str]] = []
        self.clock = lambda: datetime.now(UTC)
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}/openid/login"

    async def __aenter__(self) -> FakeSteamOpenID:
        app = web.Application()
        app.router.add_get("/openid/login", self._login)
        app.router.add_post("/openid/login", self._check)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def sign(self, fields: dict[str, str]) -> str:
        names = fields["openid.signed"].split(",")
        text = "".join(f"{name}:{fields['openid.' + name]}\n" for name in names)
        return base64.b64encode(
            hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        ).decode()

    def assertion(self, return_to: str, steam_id: str | None = None) -> dict[str, str]:
        """The fields of a positive assertion for ``steam_id`` (the browser's by default)."""
        claimed = f"https://steamcommunity.com/openid/id/{steam_id or self.browser_steam_id}"
        fields = {
            "openid.ns": NS,
            "openid.mode": "id_res",
            "openid.op_endpoint": self.endpoint,
            "openid.claimed_id": claimed,
            "openid.identity": claimed,
            "openid.return_to": return_to,
            "openid.response_nonce": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            + secrets.token_hex(4),
            "openid.assoc_handle": "1234567890",
            "openid.signed": SIGNED,
        }
        fields["openid.sig"] = self.sign(fields)
        return fields

    async def _login(self, request: web.Request) -> web.Response:
        q = request.query
        if (
            q.get("openid.mode") != "checkid_setup"
            or q.get("openid.ns") != NS
            or q.get("openid.identity") != SELECT
            or q.get("openid.claimed_id") != SELECT
            or not q.get("openid.return_to", "").startswith(q.get("openid.realm", "\0"))
        ):
            return web.Response(status=400, text="Invalid OpenID request", content_type="text/html")
        return_to = q["openid.return_to"]
        if self.cancel or self.browser_steam_id is None:
            fields = {"openid.ns": NS, "openid.mode": "cancel"}
        else:
            fields = self.assertion(return_to)
        parts = urlsplit(return_to)
        query = parse_qsl(parts.query, keep_blank_values=True) + list(fields.items())
        location = urlunsplit(parts._replace(query=urlencode(query)))
        return web.Response(status=302, headers={"Location": location})

    async def _check(self, request: web.Request) -> web.Response:
        form: dict[str, Any] = dict(await request.post())
        self.checks.append(form)
        if self.unavailable:
            return web.Response(status=503, text="Service Unavailable")
        valid = False
        if form.get("openid.mode") == "check_authentication" and "openid.signed" in form:
            try:
                expected = self.sign({**form})
            except KeyError:
                expected = ""
            sig = str(form.get("openid.sig", ""))
            nonce = str(form.get("openid.response_nonce", ""))
            valid = hmac.compare_digest(expected, sig) and nonce not in self._checked
            if valid:
                self._checked.add(nonce)
        body = f"ns:{NS}\nis_valid:{'true' if valid else 'false'}\n"
        return web.Response(text=body, content_type="text/plain")
