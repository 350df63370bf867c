"""Webhook endpoints: unguessable paths with a kind, a guild, HMAC secrets and options.

The operations are plain functions over a sqlite3 connection, so the CLI (another process) and
the server's writer share them. The running server keeps an in-memory :class:`EndpointCache`
that polls a counter maintained by triggers, so a change made by the CLI takes effect within
about half a second, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock, from_iso, to_iso
from bot.storage.engine import Database
from bot.tasks import cancel_task

log = logging.getLogger(__name__)

KINDS = ("playtime", "minecraft", "custom")
_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}", re.ASCII)
MIN_SAFE_PATH_LENGTH = 22  # 22 URL-safe base64 characters carry 132 bits
MAX_SECRET_LENGTH = 512
POLL_SECONDS = 0.5


class EndpointError(Exception):
    """A user mistake (bad path, unknown endpoint, duplicate path); str() is one clear line."""


@dataclass(frozen=True)
class Endpoint:
    id: int
    path: str
    kind: str
    guild_id: int
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    read_secret: str | None
    game_id: int | None
    created_at: datetime
    last_used_at: datetime | None
    disabled: bool

    def write_secrets(self, now: datetime) -> list[str]:
        """Secrets that may sign deliveries now: the current one, plus the previous one during
        the grace period after a rotation."""
        found = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and now < self.previous_secret_expires_at
        ):
            found.append(self.previous_secret)
        return found

    def read_secrets(self, now: datetime) -> list[str]:
        """Secrets accepted by get-playtime: the read secret when set, and the write secrets."""
        return ([self.read_secret] if self.read_secret else []) + self.write_secrets(now)

    def urls(self, base_url: str) -> list[str]:
        base = base_url.rstrip("/")
        if self.kind == "playtime":
            return [f"{base}/set-playtime/bm/{self.path}/", f"{base}/get-playtime/{self.path}/"]
        return [f"{base}/webhooks/{self.kind}/{self.path}"]


def _row_to_endpoint(row: sqlite3.Row | tuple) -> Endpoint:
    (
        id_,
        path,
        kind,
        guild_id,
        secret,
        prev,
        prev_exp,
        read_secret,
        game_id,
        created,
        used,
        disabled,
    ) = row
    return Endpoint(
        id=id_,
        path=path,
        kind=kind,
        guild_id=guild_id,
        secret=secret,
        previous_secret=prev,
        previous_secret_expires_at=from_iso(prev_exp) if prev_exp else None,
        read_secret=read_secret,
        game_id=game_id,
        created_at=from_iso(created),
        last_used_at=from_iso(used) if used else None,
        disabled=disabled is not None,
    )


_COLUMNS = (
    "id, path, kind, guild_id, secret, previous_secret, previous_secret_expires_at, read_secret,"
    " game_id, created_at, last_used_at, disabled_at"
)


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


def _check_secret(name: str, value: str) -> str:
    if not value or not value.strip():
        raise EndpointError(f"{name}: must not be empty")
    if len(value) > MAX_SECRET_LENGTH:
        raise EndpointError(f"{name}: must be at most {MAX_SECRET_LENGTH} characters")
    if value != value.strip():
        raise EndpointError(f"{name}: has leading or trailing spaces; paste it exactly")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EndpointError(f"{name}: is not valid text (UTF-8)") from None
    return value


def ensure_guild(conn: sqlite3.Connection, guild_id: int, now: datetime) -> None:
    conn.execute(
        "INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (guild_id) DO NOTHING",
        (guild_id, to_iso(now), to_iso(now)),
    )


def create_endpoint(
    conn: sqlite3.Connection,
    *,
    kind: str,
    guild_id: int,
    now: datetime,
    secret: str | None = None,
    read_secret: str | None = None,
    game_id: int | None = None,
    path: str | None = None,
) -> Endpoint:
    if kind not in KINDS:
        raise EndpointError(f"kind: must be one of {', '.join(KINDS)}")
    if not 0 < guild_id < 2**63:
        raise EndpointError("guild: must be a Discord server (guild) id")
    if path is not None and not _PATH.fullmatch(path):
        raise EndpointError(
            "path: use 1-128 characters of A-Z, a-z, 0-9, '_' and '-', not starting with '-'"
        )
    if kind != "playtime" and (read_secret is not None or game_id is not None):
        raise EndpointError("--read-secret and --game-id apply only to endpoints of kind playtime")
    if game_id is not None and not 0 < game_id < 2**32:
        raise EndpointError("game-id: must be a Steam app id such as 393380")
    secret = _check_secret("secret", secret) if secret is not None else new_secret()
    if read_secret is not None:
        _check_secret("read-secret", read_secret)
        if read_secret == secret:
            raise EndpointError("read-secret: must differ from the secret")
    path = path or _token(24)
    ensure_guild(conn, guild_id, now)
    try:
        cur = conn.execute(
            "INSERT INTO endpoints (path, kind, guild_id, secret, read_secret, game_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (path, kind, guild_id, secret, read_secret, game_id, to_iso(now)),
        )
    except sqlite3.IntegrityError:
        raise EndpointError("path: an endpoint with this path already exists") from None
    return get_endpoint(conn, int(cur.lastrowid or 0))


def get_endpoint(conn: sqlite3.Connection, endpoint_id: int) -> Endpoint:
    row = conn.execute(f"SELECT {_COLUMNS} FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone()
    if row is None:
        raise EndpointError(f"no endpoint with id {endpoint_id}")
    return _row_to_endpoint(row)


def find_by_path(conn: sqlite3.Connection, path: str) -> Endpoint:
    row = conn.execute(f"SELECT {_COLUMNS} FROM endpoints WHERE path = ?", (path,)).fetchone()
    if row is None:
        raise EndpointError("no endpoint with that path")
    return _row_to_endpoint(row)


def list_endpoints(conn: sqlite3.Connection, guild_id: int | None = None) -> list[Endpoint]:
    if guild_id is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM endpoints ORDER BY id").fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM endpoints WHERE guild_id = ? ORDER BY id", (guild_id,)
        ).fetchall()
    return [_row_to_endpoint(r) for r in rows]


def rotate_endpoint(
    conn: sqlite3.Connection,
    path: str,
    *,
    now: datetime,
    grace: timedelta,
    secret: str | None = None,
    read: bool = False,
) -> Endpoint:
    """Give the endpoint a new secret. The old one stays valid for ``grace`` so senders can be
    updated; with ``read`` the read secret is replaced instead (effective at once)."""
    endpoint = find_by_path(conn, path)
    if endpoint.disabled:
        raise EndpointError("endpoint is disabled")
    if read:
        if endpoint.kind != "playtime":
            raise EndpointError("--read applies only to endpoints of kind playtime")
        value = _check_secret("secret", secret) if secret is not None else new_secret()
        conn.execute("UPDATE endpoints SET read_secret = ? WHERE id = ?", (value, endpoint.id))
    else:
        value = _check_secret("secret", secret) if secret is not None else new_secret()
        if value == endpoint.secret:
            raise EndpointError("secret: the new secret equals the current one")
        expires = to_iso(now + grace) if grace > timedelta(0) else None
        conn.execute(
            "UPDATE endpoints SET previous_secret = ?, previous_secret_expires_at = ?, secret = ?"
            " WHERE id = ?",
            (endpoint.secret if expires else None, expires, value, endpoint.id),
        )
    return get_endpoint(conn, endpoint.id)


def disable_endpoint(conn: sqlite3.Connection, path: str, *, now: datetime) -> Endpoint:
    endpoint = find_by_path(conn, path)
    if not endpoint.disabled:
        conn.execute(
            "UPDATE endpoints SET disabled_at = ? WHERE id = ?", (to_iso(now), endpoint.id)
        )
    return get_endpoint(conn, endpoint.id)


def _version(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = 'endpoints_version'").fetchone()
    return row[0] if row else "0"


def _load_all(conn: sqlite3.Connection) -> tuple[str, list[Endpoint]]:
    return _version(conn), list_endpoints(conn)


class EndpointCache:
    """Active endpoints by path, refreshed when the trigger-maintained version changes."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._by_path: dict[str, Endpoint] = {}
        self._version: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_touch: dict[int, float] = {}

    async def refresh(self) -> bool:
        version = await self.db.read(_version)
        if version == self._version:
            return False
        version, endpoints = await self.db.read(_load_all)
        self._by_path = {e.path: e for e in endpoints if not e.disabled}
        self._version = version
        log.debug("endpoint cache: %d active endpoints (version %s)", len(self._by_path), version)
        return True

    def get(self, path: str) -> Endpoint | None:
        return self._by_path.get(path)

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="questlog-endpoint-cache")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving from the cache; the next poll retries
                log.warning("endpoint cache refresh failed: %s", exc)

    def should_touch(self, endpoint: Endpoint) -> bool:
        """At most one last_used_at write per endpoint per minute."""
        now = self.clock.monotonic()
        last = self._last_touch.get(endpoint.id)
        if last is not None and now - last < 60:
            return False
        self._last_touch[endpoint.id] = now
        return True


def touch_op(endpoint_id: int, now: datetime):  # type: ignore[no-untyped-def]
    def op(conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE endpoints SET last_used_at = ? WHERE id = ?", (to_iso(now), endpoint_id)
        )

    return op
