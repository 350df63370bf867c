"""Webhook endpoints for admins (/webhook and ``questlog endpoint``): create, list, rotate,
disable, with every check a user can get wrong worded as one clear line."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.storage import Endpoint, Store
from bot.storage.records import EndpointRefused
from connectors.base import EndpointKind

_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}", re.ASCII)
MIN_SAFE_PATH_LENGTH = 22  # 22 URL-safe base64 characters carry 132 bits
MAX_SECRET_LENGTH = 512


REFUSED = {
    "disabled": "endpoint is disabled",
    "same_secret": "secret: the new secret equals the current one",
}
OPTION_FLAGS = {"read_secret": "--read-secret", "game_id": "--game-id"}


class EndpointError(Exception):
    """A user mistake (bad path, unknown endpoint, duplicate path); str() is one clear line in
    English (the CLI's), ``code`` and ``fields`` the same for a translated one (the slash
    commands say ``endpoint.<code>`` of the catalogues)."""

    def __init__(self, message: str, code: str = "other", **fields: str) -> None:
        super().__init__(message)
        self.code = code
        self.fields = fields


class UnknownEndpoint(EndpointError):
    """No endpoint has that path (or, asked for one guild, not in that guild)."""


def _token(nbytes: int) -> str:
    """A URL-safe random token that does not start with '-' (a command line would take it for
    an option: `questlog endpoint rotate -abc...` fails)."""
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token


def new_secret() -> str:
    return _token(32)


def path_warnings(path: str) -> list[str]:
    warnings = []
    if len(path) < MIN_SAFE_PATH_LENGTH:
        warnings.append(
            f"path is {len(path)} characters; an unguessable path needs at least {MIN_SAFE_PATH_LENGTH}"
            " random URL-safe characters (anyone who guesses it can send unsigned requests that"
            " count against its rate limit)"
        )
    elif path.isdigit() or (path.isalpha() and (path.islower() or path.isupper())):
        warnings.append("path uses a single kind of character and may be guessable")
    return warnings


MIN_SECRET_BITS = 128


def secret_bits(secret: str) -> float:
    """A rough estimate of a secret's entropy: its length times log2 of the alphabet its
    characters are drawn from (lower case, upper case, digits, other), the alphabet shrunk to
    the distinct characters when it uses very few (``aaaa...``). Generated secrets (43
    URL-safe characters) estimate at about 250 bits; a word like ``bmsharedsecret`` at 66."""
    if not secret:
        return 0.0
    pool = 0
    pool += 26 if any(c.islower() for c in secret) else 0
    pool += 26 if any(c.isupper() for c in secret) else 0
    pool += 10 if any(c.isdigit() for c in secret) else 0
    pool += 33 if any(not c.isalnum() for c in secret) else 0
    distinct = len(set(secret))
    if distinct < 8:
        pool = min(pool, distinct)
    return len(secret) * math.log2(max(pool, 1))


def secret_warnings(name: str, secret: str) -> list[str]:
    bits = secret_bits(secret)
    if bits >= MIN_SECRET_BITS:
        return []
    return [
        f"{name} looks weak (about {bits:.0f} bits; {MIN_SECRET_BITS} or more is safe): anyone"
        " who guesses it can sign deliveries. Let Questlog generate one (leave the option out),"
        " or use a long random one."
    ]


def _check_secret(name: str, value: str) -> str:
    if not value or not value.strip():
        raise EndpointError(f"{name}: must not be empty", "secret_empty")
    if len(value) > MAX_SECRET_LENGTH:
        raise EndpointError(
            f"{name}: must be at most {MAX_SECRET_LENGTH} characters",
            "secret_long",
            limit=str(MAX_SECRET_LENGTH),
        )
    if value != value.strip():
        raise EndpointError(
            f"{name}: has leading or trailing spaces; paste it exactly", "secret_spaces"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EndpointError(f"{name}: is not valid text (UTF-8)", "secret_text") from None
    return value


def _allowing(kinds: Mapping[str, EndpointKind], option: str) -> str:
    return ", ".join(sorted(name for name, kind in kinds.items() if option in kind.options))


class EndpointAdmin:
    """``kinds``: the endpoint kinds the connectors declare (Registry.endpoint_kinds)."""

    def __init__(
        self, store: Store, clock: Clock, kinds: Mapping[str, tuple[str, EndpointKind]]
    ) -> None:
        self.store = store
        self.clock = clock
        self.kinds = {name: kind for name, (_, kind) in kinds.items()}

    async def create(
        self,
        *,
        kind: str,
        guild_id: int,
        secret: str | None = None,
        read_secret: str | None = None,
        game_id: int | None = None,
        path: str | None = None,
        now: datetime | None = None,
    ) -> Endpoint:
        declared = self.kinds.get(kind)
        if declared is None:
            kinds = ", ".join(sorted(self.kinds))
            raise EndpointError(f"kind: must be one of {kinds}", "kind", kinds=kinds)
        if not 0 < guild_id < 2**63:
            raise EndpointError("guild: must be a Discord server (guild) id")
        if path is not None and not _PATH.fullmatch(path):
            raise EndpointError(
                "path: use 1-128 characters of A-Z, a-z, 0-9, '_' and '-', not starting with '-'"
            )
        given = {"read_secret": read_secret, "game_id": game_id}
        unfit = [o for o, v in given.items() if v is not None and o not in declared.options]
        if unfit:
            flags = " and ".join(OPTION_FLAGS[o] for o in unfit)
            where = {_allowing(self.kinds, o) for o in unfit}
            kinds = " or ".join(sorted(where))
            raise EndpointError(
                f"{flags} apply only to endpoints of kind {kinds}", "option_kind", kinds=kinds
            )
        if game_id is not None and not 0 < game_id < 2**32:
            raise EndpointError("game-id: must be a Steam app id such as 393380", "game_id")
        if not declared.needs_secret:
            if secret is not None:
                raise EndpointError(
                    f"secret: endpoints of kind {kind} are not signed", "unsigned", kind=kind
                )
        elif secret is not None:
            secret = _check_secret("secret", secret)
        else:
            secret = new_secret()
        if read_secret is not None:
            _check_secret("read-secret", read_secret)
            if read_secret == secret:
                raise EndpointError("read-secret: must differ from the secret")
        endpoint = await self.store.endpoints.create(
            path=path or _token(24),
            kind=kind,
            guild_id=guild_id,
            secret=secret,
            read_secret=read_secret,
            game_id=game_id,
            now=now or self.clock.now(),
        )
        if endpoint is None:
            raise EndpointError("path: an endpoint with this path already exists")
        return endpoint

    def kind_choices(self) -> list[tuple[str, str]]:
        """(kind, what sends to it) for every kind the connectors declare."""
        return [(name, kind.description) for name, kind in sorted(self.kinds.items())]

    def urls(self, endpoint: Endpoint, base_url: str) -> list[tuple[str | None, str]]:
        """(label, URL) of every route the endpoint serves, as its senders reach them; the
        label is the route's own (a product name: "BattleMetrics webhook"), or None for the
        endpoint's one webhook route."""
        kind = self.kinds.get(endpoint.kind)
        base = base_url.rstrip("/")
        return [
            (
                route.label or None,
                base + route.path.replace("{path}", endpoint.path),
            )
            for route in (kind.routes if kind else ())
        ]

    async def find(self, path: str, *, guild_id: int | None = None) -> Endpoint:
        """The endpoint with this path; with ``guild_id``, only if it belongs to that guild
        (another guild's endpoint reads as unknown)."""
        endpoint = await self.store.endpoints.by_path(path)
        if endpoint is None or (guild_id is not None and endpoint.guild_id != guild_id):
            raise UnknownEndpoint("no endpoint with that path")
        return endpoint

    async def list(self, guild_id: int | None = None) -> list[Endpoint]:
        return await self.store.endpoints.list(guild_id)

    async def rotate(
        self,
        path: str,
        *,
        grace: timedelta,
        secret: str | None = None,
        read: bool = False,
        guild_id: int | None = None,
    ) -> Endpoint:
        """Give the endpoint a new secret. The old one stays valid for ``grace`` so senders can
        be updated; with ``read`` the read secret is replaced instead (effective at once)."""
        endpoint = await self.find(path, guild_id=guild_id)
        # The usual order of complaints (an admin with two mistakes hears about the endpoint
        # first); the store checks the state again in the transaction that changes it.
        if endpoint.disabled:
            raise EndpointError("endpoint is disabled", "disabled")
        kind = self.kinds.get(endpoint.kind)
        if read and (kind is None or "read_secret" not in kind.options):
            raise EndpointError(
                f"--read applies only to endpoints of kind {_allowing(self.kinds, 'read_secret')}"
            )
        if kind is not None and not kind.needs_secret:
            raise EndpointError(
                f"endpoints of kind {endpoint.kind} have no secret to rotate",
                "no_secret",
                kind=endpoint.kind,
            )
        value = _check_secret("secret", secret) if secret is not None else new_secret()
        keep = self.clock.now() + grace if grace > timedelta(0) else None
        try:
            return await self.store.endpoints.rotate(
                endpoint.id, value, read=read, keep_previous_until=None if read else keep
            )
        except EndpointRefused as refused:
            raise EndpointError(REFUSED[refused.problem], refused.problem) from None

    async def disable(self, path: str, *, guild_id: int | None = None) -> Endpoint:
        endpoint = await self.find(path, guild_id=guild_id)
        return await self.store.endpoints.disable(endpoint.id, self.clock.now())

    async def enable(self, path: str, *, guild_id: int | None = None) -> Endpoint:
        endpoint = await self.find(path, guild_id=guild_id)
        return await self.store.endpoints.enable(endpoint.id)
