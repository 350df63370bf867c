"""Sign in through Steam: the relying-party half of OpenID 2.0, as Steam speaks it.

Steam is an OpenID 2.0 provider at ``https://steamcommunity.com/openid/login`` (identifier
select; claimed ids ``https://steamcommunity.com/openid/id/<steamid64>``). A member's browser is
sent there with ``openid.mode=checkid_setup``; Steam sends it back to ``openid.return_to`` with
a positive assertion (``openid.mode=id_res``) that Questlog verifies directly with Steam
(``openid.mode=check_authentication``: "stateless" mode, no association to keep), after its own
checks (OpenID 2.0, section 11): the return address is exactly the one sent, the provider is
the configured one, the claimed id equals the identity and has Steam's form, and every one of
those fields is covered by the signature. Replayed assertions are refused by the caller, which
keeps the response nonces it has seen (``nonce_expiry``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx

DEFAULT_OPENID_URL = "https://steamcommunity.com/openid/login"
NS = "http://specs.openid.net/auth/2.0"
IDENTIFIER_SELECT = "http://specs.openid.net/auth/2.0/identifier_select"
_CLAIMED = re.compile(r"https://steamcommunity\.com/openid/id/(7656119[0-9]{10})", re.ASCII)
_NONCE_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})Z", re.ASCII)
#: The fields a positive assertion must sign (OpenID 2.0, 10.1), claimed_id and identity too.
MUST_SIGN = ("op_endpoint", "return_to", "response_nonce", "assoc_handle", "claimed_id", "identity")
#: How long an assertion is good for after the time in its nonce; seen nonces are kept as long.
NONCE_LIFETIME = timedelta(hours=1)
#: How far ahead of our clock a provider's nonce time may be (clock skew).
NONCE_SKEW = timedelta(minutes=5)


class OpenIDError(Exception):
    """The assertion is refused; ``reason`` says why (``cancelled``, ``not_an_assertion``,
    ``return_to``, ``op_endpoint``, ``claimed_id``, ``unsigned``, ``nonce``, ``rejected``,
    ``unavailable``). ``str()`` is safe to log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Assertion:
    steam_id: str
    nonce: str
    issued_at: datetime

    def nonce_expiry(self) -> datetime:
        return self.issued_at + NONCE_LIFETIME


class SteamOpenID:
    def __init__(
        self,
        endpoint: str = DEFAULT_OPENID_URL,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._http = httpx.AsyncClient(
            timeout=timeout, transport=transport, headers={"User-Agent": "Questlog OpenID"}
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def begin_url(self, return_to: str, realm: str) -> str:
        query = urlencode(
            {
                "openid.ns": NS,
                "openid.mode": "checkid_setup",
                "openid.return_to": return_to,
                "openid.realm": realm,
                "openid.identity": IDENTIFIER_SELECT,
                "openid.claimed_id": IDENTIFIER_SELECT,
            }
        )
        joiner = "&" if "?" in self.endpoint else "?"
        return f"{self.endpoint}{joiner}{query}"

    def check(self, params: Mapping[str, str], return_to: str, now: datetime) -> Assertion:
        """The local checks of a callback's parameters (no network): the proven SteamID64."""
        mode = params.get("openid.mode", "")
        if mode == "cancel":
            raise OpenIDError("cancelled")
        if mode != "id_res" or params.get("openid.ns") != NS:
            raise OpenIDError("not_an_assertion", f"mode {mode[:20]!r}")
        if params.get("openid.return_to") != return_to:
            raise OpenIDError("return_to", "openid.return_to is not the address Questlog sent")
        if params.get("openid.op_endpoint") != self.endpoint:
            raise OpenIDError("op_endpoint", "the assertion names another provider")
        claimed = params.get("openid.claimed_id", "")
        if claimed != params.get("openid.identity"):
            raise OpenIDError("claimed_id", "claimed_id and identity differ")
        match = _CLAIMED.fullmatch(claimed)
        if match is None:
            raise OpenIDError("claimed_id", "not a Steam community id")
        signed = set(params.get("openid.signed", "").split(","))
        missing = [name for name in MUST_SIGN if name not in signed]
        if missing or not params.get("openid.sig"):
            raise OpenIDError("unsigned", f"not signed: {', '.join(missing) or 'sig'}")
        nonce = params.get("openid.response_nonce", "")
        stamp = _NONCE_TIME.match(nonce)
        if stamp is None or len(nonce) > 255:
            raise OpenIDError("nonce", "the response nonce has no time")
        try:
            issued = datetime.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:  # digits in the right places, but no such time (month 13, ...)
            raise OpenIDError("nonce", "the response nonce's time is not a time") from None
        if issued > now + NONCE_SKEW or issued + NONCE_LIFETIME < now:
            raise OpenIDError("nonce", "the assertion is too old or from the future")
        return Assertion(match.group(1), nonce, issued)

    async def verify(self, params: Mapping[str, str], return_to: str, now: datetime) -> Assertion:
        """The local checks, then Steam's own: ``check_authentication`` with every ``openid.``
        field as received (the mode changed), which must answer ``is_valid:true``."""
        assertion = self.check(params, return_to, now)
        form = {k: v for k, v in params.items() if k.startswith("openid.")}
        form["openid.mode"] = "check_authentication"
        try:
            response = await self._http.post(self.endpoint, data=form)
        except httpx.HTTPError as exc:
            raise OpenIDError("unavailable", type(exc).__name__) from None
        if response.status_code >= 500:
            raise OpenIDError("unavailable", f"HTTP {response.status_code}")
        fields = _key_values(response.text)
        if response.status_code != 200 or fields.get("is_valid") != "true":
            raise OpenIDError("rejected", "Steam did not confirm the signature")
        if fields.get("ns", NS) != NS:
            raise OpenIDError("rejected", "not an OpenID 2.0 answer")
        return assertion


def _key_values(text: str) -> dict[str, str]:
    """OpenID's key-value form: ``key:value`` lines."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out
