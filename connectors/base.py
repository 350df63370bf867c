"""The connector contract (DESIGN.md, "Connector contract").

A connector is a subclass of :class:`Connector` in its own package under ``connectors/``; the
registry imports every subpackage and registers each subclass by ``key``. What every connector
implements, and what the core does with it:

* class attributes describe it (``key``, ``name``, ``capabilities``, ``secrets``, ``events``
  with their feed defaults, ``actions``, ``link_source``, ``announces``);
* ``dedupe_key(raw)``: a stable identity for each raw event (the one ingest path stores a raw
  event once per guild under sha256 of it); ``dedupe_time(raw)``, when the key contains when the
  event happened, keeps the recent identities together in the dedupe index;
* ``normalize(raw, link)``: at most one :class:`ActivityEvent` for a raw event, given the member
  the player is linked to in that guild;
* ``effects(raw)``: the playtime and session changes a raw event *describes*; the ingest path
  applies them in the same transaction as the event;
* ``parse_webhook(body, context)``, for a source that receives webhooks: validate the decoded
  body (with what the web layer verified, :class:`WebhookContext`) into a raw event, or raise
  :class:`SchemaError` (HTTP 422) or :class:`IgnoredDelivery` (202).

A source that is polled (``capabilities.can_sync``) is polled by the core: its sync service
holds the schedule and the budget (for Steam, bot/steam_sync/) and hands what it observes to
the same ingest path as raw events this connector identifies and normalizes. ``execute`` runs
the connector's declared actions (outbound: role grants, RCON commands).

Connectors never import discord, aiohttp or the core.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class RateLimits:
    requests_per_minute: int | None = None
    requests_per_day: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff_seconds: float = 0.0


@dataclass(frozen=True)
class Capabilities:
    can_sync: bool = False
    can_webhook: bool = False
    requires_auth: bool = False
    rate_limits: RateLimits = field(default_factory=RateLimits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class SecretSpec:
    name: str
    description: str


@dataclass(frozen=True)
class EventSpec:
    name: str
    description: str
    # Posted unless a guild turns it off; False: posted only when a guild turns it on (noisy).
    default_on: bool = True


@dataclass(frozen=True)
class ConfigKey:
    """A key of the connector's config section (``[<key>]`` in config.toml). The type and the
    check follow from the default (bool, int or float within ``minimum``..``maximum``, str;
    ``url`` for an http(s) URL). ``env`` names an environment variable that wins over the file
    (for secrets); ``description`` documents the key in config-example.toml."""

    name: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    env: str | None = None
    url: bool = False


@dataclass(frozen=True)
class RouteSpec:
    """An HTTP route the endpoints of a kind serve; ``path`` holds ``{path}``, the endpoint's
    token (served with and without a trailing slash; printed as written).

    ``scheme`` is how requests are signed: ``battlemetrics`` (X-Signature t=,s=), ``sha256``
    (X-Signature sha256=, optional X-Timestamp, replays refused) or ``hex`` (X-SIGNATURE).
    ``handler`` is what the core does with a verified request: ``webhook`` (the connector parses
    the body, the ingest path stores it) or a core service (``get_playtime``). ``read``: signed
    with the endpoint's read secret. ``late_retries``: a stale signature of a delivery already
    stored is acknowledged (BattleMetrics retries after a lost answer)."""

    path: str
    name: str
    label: str = ""  # how its URL is named when printed; "<kind> webhook" when empty
    scheme: str = "sha256"
    handler: str = "webhook"
    method: str = "POST"
    read: bool = False
    content_types: tuple[str, ...] = ("application/json",)
    late_retries: bool = False


@dataclass(frozen=True)
class EndpointKind:
    """A kind of webhook endpoint (``/webhook create``, ``questlog endpoint create --kind``):
    the routes its endpoints serve, whether it needs an HMAC secret, and which of the create
    options apply to it (``read_secret``, ``game_id``)."""

    name: str
    description: str
    routes: tuple[RouteSpec, ...]
    needs_secret: bool = True
    options: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LinkConfirmation:
    """A raw event that confirms a link code typed in game (``/link``)."""

    code: str
    external_id: str
    display_name: str | None = None


@dataclass(frozen=True)
class ActionSpec:
    """An outbound operation a connector offers: its payload ``model`` (a pydantic model: a
    payload that does not fit is refused naming the field) and the ``handler`` that carries it
    out, a method of the connector or one the core provides (``Connector.provide``: the
    Discord connector declares role actions whose handler is the bot's own HTTP client).
    ``idempotent``: running it twice has the effect of once (a role added), so it is retried
    until done; otherwise (a console command) it is retried only when it failed before
    anything was sent."""

    name: str
    description: str
    model: type[BaseModel]
    handler: str
    idempotent: bool = True


@dataclass(frozen=True)
class Action:
    type: str
    payload: Mapping[str, Any]


class ActionError(Exception):
    """An action that did not happen; ``str()`` is safe to show an admin (no secret)."""


class ActionRetry(ActionError):
    """A passing failure (the target is down, a 429, a timeout): try again later, after
    ``retry_after`` seconds when the target said. ``sent``: bytes may have reached the target
    (a non-idempotent action then has an unknown outcome and is not sent again); a handler
    says ``sent=False`` only when it knows nothing left (the connection was refused)."""

    def __init__(self, message: str, retry_after: float | None = None, *, sent: bool = True):
        super().__init__(message)
        self.retry_after = retry_after
        self.sent = sent


class ActionPaused(ActionError):
    """A refusal an admin can fix (a missing permission, a role moved above the bot): the
    actions of the same ``pause_key`` wait, and are probed now and then, instead of failing."""


class ActionFailed(ActionError):
    """A permanent failure (the payload can never work): recorded, never retried."""


class ActionDone(ActionError):
    """Nothing to do, which counts as done (the member it was for left the server).
    ``already``: the target was already as the action would make it (the member had the
    role), so what is there now is not the action's doing."""

    def __init__(self, reason: str, *, already: bool = False) -> None:
        super().__init__(reason)
        self.already = already


# --------------------------------------------------------------------------- values


@dataclass(slots=True)
class LinkInfo:
    """The Discord member an external account is linked to, in the event's guild."""

    discord_user_id: int
    external_id: str
    display_name: str | None = None


@dataclass(slots=True)
class ActivityEvent:
    type: str
    title: str
    occurred_at: datetime
    source: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    guild_id: int = 0
    actor_user_id: int | None = None
    actor_external_id: str | None = None
    actor_name: str | None = None
    external_id: str | None = None
    # Events of one guild sharing an update_key are versions of one feed item: a later version
    # edits the message that shows the earlier one instead of posting again (for example one
    # "played today" line per player, game and day, updated as the day goes on).
    update_key: str | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("ActivityEvent.occurred_at must be timezone-aware")


@dataclass(slots=True)
class SetPlaytime:
    """The source reports a player's *total* playtime for a game; newer measurements win."""

    player_id: str
    game_id: str
    seconds: int
    source_time: datetime


@dataclass(slots=True)
class SessionStart:
    player_id: str
    server_id: str
    game_id: str
    at: datetime


@dataclass(slots=True)
class SessionEnd:
    """Closes the open session; its duration minus ``idle_seconds`` (time the player was idle
    or away from the keyboard) adds to playtime, unless ``credited`` (the time was added while
    the session ran, by PlaytimeAdded). ``duration_hint`` is used when no matching start was
    recorded."""

    player_id: str
    server_id: str
    game_id: str
    at: datetime
    duration_hint: int | None = None
    idle_seconds: int = 0
    credited: bool = False


@dataclass(slots=True)
class SessionSeen:
    """The player did something on that server (any event but a join or a leave): the open
    session's last activity. A session a server restart leaves open (no leave ever comes) is
    closed at its last activity when the player joins again, not at the join."""

    player_id: str
    server_id: str
    game_id: str
    at: datetime


@dataclass(slots=True)
class SessionAway:
    """The player went away from the keyboard (``away``) or came back, in their open session
    on that server: the away time is left out of the session's active time, as presence's idle
    time is. It is activity seen too."""

    player_id: str
    server_id: str
    game_id: str
    at: datetime
    away: bool


@dataclass(slots=True)
class PlaytimeAdded:
    """Seconds of play to add now, from a session still running (presence flushes its open
    sessions so that a crash loses little); ``away_seconds``: idle time since the last flush,
    which counts in the total only."""

    player_id: str
    game_id: str
    seconds: int
    at: datetime
    away_seconds: int = 0


@dataclass(slots=True)
class PlaytimeGrew:
    """A total stored once for every guild (Steam's public playtime) grew from ``old`` to
    ``new``: each guild that links the player checks its milestones against it."""

    player_id: str
    game_id: str
    old: int
    new: int
    at: datetime


Effect = (
    SetPlaytime
    | SessionStart
    | SessionEnd
    | PlaytimeGrew
    | PlaytimeAdded
    | SessionSeen
    | SessionAway
)


# --------------------------------------------------------------------------- errors


class SchemaError(ValueError):
    """A webhook payload violates the connector's schema (HTTP 422, naming the field)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


# --------------------------------------------------------------------------- the contract


class Connector:
    key: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str] = "1.0.0"
    capabilities: ClassVar[Capabilities] = Capabilities()
    secrets: ClassVar[Sequence[SecretSpec]] = ()
    events: ClassVar[Sequence[EventSpec]] = ()
    actions: ClassVar[Sequence[ActionSpec]] = ()
    #: ``account_links.source`` whose external ids identify this connector's players.
    link_source: ClassVar[str | None] = None
    #: True for a source whose players are members themselves (presence): its events are kept
    #: only while the member's link exists, so nothing lands after a member was forgotten.
    requires_link: ClassVar[bool] = False
    #: False for a source whose raw events are state, never news by themselves (BattleMetrics
    #: playtime reports): the pipeline then skips normalize() and the linked-member lookup.
    announces: ClassVar[bool] = True
    #: The kinds of webhook endpoint this source's senders use, with their HTTP routes.
    endpoint_kinds: ClassVar[Sequence[EndpointKind]] = ()
    #: Its config section's keys (the section is named after ``key``); secrets are keys too.
    config: ClassVar[Sequence[ConfigKey]] = ()

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self.secret_values: dict[str, str] = dict(secrets or {})
        self._handlers: dict[str, Callable[[Any], Awaitable[Any]]] = {}

    # -- identity of raw events
    def dedupe_key(self, raw: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def dedupe_time(self, raw: Mapping[str, Any]) -> str | None:
        """When the event happened, as canonical UTC text (:func:`iso`), or None.

        Only a time that ``dedupe_key`` contains (or that a field of the key determines), so
        that two deliveries with one key always have one time: the store keeps identities in
        hour order by it, and a retry must land on its original. With None the identity is the
        key's hash alone, spread over the whole dedupe index."""
        return None

    def player_id(self, raw: Mapping[str, Any]) -> str | None:
        """The external player id the raw event is about (used to find the linked member)."""
        return None

    # -- inbound
    def parse_webhook(self, body: Any, context: WebhookContext) -> dict[str, Any]:
        """Validate a decoded JSON webhook body into a raw event dict, or raise SchemaError
        (422, naming the field) or IgnoredDelivery (202)."""
        raise NotImplementedError(f"{self.key} does not receive webhooks")

    def normalize(self, raw: Mapping[str, Any], link: LinkInfo | None) -> ActivityEvent | None:
        raise NotImplementedError

    def effects(self, raw: Mapping[str, Any]) -> list[Effect]:
        return []

    def link_confirmation(self, raw: Mapping[str, Any]) -> LinkConfirmation | None:
        """When the raw event confirms a link code typed in game: the code and the player."""
        return None

    # -- outbound
    def action_spec(self, name: str) -> ActionSpec:
        spec = next((a for a in self.actions if a.name == name), None)
        if spec is None:
            raise SchemaError("type", f"unknown action {name!r} for {self.key}")
        return spec

    def validate_action(self, action: Action) -> BaseModel:
        """The action's payload as its model, or SchemaError naming the first bad field
        (dotted for a nested one: ``target.role_id``)."""
        spec = self.action_spec(action.type)
        try:
            return spec.model.model_validate(dict(action.payload))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "payload"
            raise SchemaError(where, str(first.get("msg", "is not valid"))) from None

    def provide(self, handler: str, function: Callable[[Any], Awaitable[Any]]) -> None:
        """The core supplies a handler the connector declares but cannot run itself."""
        self._handlers[handler] = function

    async def execute(self, action: Action) -> Any:
        """Validate the payload, then run the declared handler (ActionError subclasses say
        what became of it)."""
        spec = self.action_spec(action.type)
        payload = self.validate_action(action)
        handler = self._handlers.get(spec.handler) or getattr(self, spec.handler, None)
        if handler is None:  # e.g. the bot's own client, while only the web server runs
            raise ActionRetry(
                f"nothing in this process carries out {self.key}.{action.type} yet", sent=False
            )
        return await handler(payload)

    @classmethod
    def event_names(cls) -> list[str]:
        return [e.name for e in cls.events]


# --------------------------------------------------------------------------- helpers


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces): the same value gives the same text in every
    process, unlike Python's ``hash()``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_STEAM_ID = re.compile(r"7656119[0-9]{10}", re.ASCII)
_UINT = re.compile(r"[0-9]+", re.ASCII)
SQLITE_INT_MAX = 2**63 - 1


def expect_object(value: Any, field_name: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaError(field_name, "must be a JSON object")
    return value


def steam_id(value: Any, field_name: str) -> str:
    """A SteamID64 as ASCII text: '7656119' followed by 10 digits (strings or JSON numbers)."""
    if value is None:
        raise SchemaError(field_name, "is required (a SteamID64 such as 76561198000000000)")
    if isinstance(value, bool):
        raise SchemaError(field_name, "must be a SteamID64 such as 76561198000000000")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _STEAM_ID.fullmatch(value.strip()):
        raise SchemaError(field_name, "must be a SteamID64 such as 76561198000000000")
    return value.strip()


def integer(value: Any, field_name: str, *, lo: int = 0, hi: int = SQLITE_INT_MAX) -> int:
    """An integer given as a JSON number or a string of ASCII digits (template substitution)."""
    if value is None:
        raise SchemaError(field_name, "is required (an integer)")
    if isinstance(value, bool):
        raise SchemaError(field_name, "must be an integer")
    if isinstance(value, str):
        text = value.strip()
        if not _UINT.fullmatch(text) or len(text) > 19:
            raise SchemaError(field_name, "must be a whole number")
        number = int(text)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise SchemaError(field_name, "must be a whole number")
        number = int(value)
    else:
        raise SchemaError(field_name, "must be an integer")
    if not lo <= number <= hi:
        raise SchemaError(field_name, f"must be between {lo} and {hi}")
    return number


def text(value: Any, field_name: str, *, max_len: int, min_len: int = 1) -> str:
    if value is None:
        raise SchemaError(field_name, "is required (a string)")
    if not isinstance(value, str):
        raise SchemaError(field_name, "must be a string")
    stripped = value.strip()
    if "\x00" in stripped:  # no database's text holds it (PostgreSQL refuses it outright)
        raise SchemaError(field_name, "must not contain NUL characters")
    if len(stripped) < min_len:
        raise SchemaError(field_name, "must not be empty")
    if len(stripped) > max_len:
        raise SchemaError(field_name, f"must be at most {max_len} characters")
    return stripped


def without_nul(value: Any, field_name: str) -> None:
    """Refuse a NUL character anywhere in a JSON value, keys included (free-form fields that
    are stored as they came: PostgreSQL's text and jsonb cannot hold it)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise SchemaError(field_name, "must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            without_nul(key, field_name)
            without_nul(item, f"{field_name}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            without_nul(item, f"{field_name}[{index}]")


def optional_text(value: Any, field_name: str, *, max_len: int) -> str | None:
    if value is None:
        return None
    return text(value, field_name, max_len=max_len)


# Times outside this range are no real event and would overflow date arithmetic downstream.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)


def timestamp(value: Any, field_name: str) -> datetime:
    """ISO 8601 with an offset (or 'Z'), or Unix seconds; returns aware UTC."""
    if isinstance(value, str):  # the usual case first: one cached lookup
        if len(value) > 64:
            raise SchemaError(field_name, _NOT_ISO)
        parsed = _checked_iso(value)
        if isinstance(parsed, str):
            raise SchemaError(field_name, parsed)
        return parsed
    if value is None:
        raise SchemaError(field_name, "is required (ISO 8601 with a timezone, or Unix seconds)")
    if isinstance(value, bool):
        raise SchemaError(field_name, _NOT_ISO)
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value <= LATEST.timestamp():
            raise SchemaError(field_name, "Unix timestamp out of range")
        return datetime.fromtimestamp(value, UTC)
    raise SchemaError(field_name, _NOT_ISO)


_NOT_ISO = "must be an ISO 8601 timestamp with a timezone"


@lru_cache(maxsize=4096)
def _checked_iso(value: str) -> datetime | str:
    """The aware UTC time, or why the text is not one. Cached: a raw event's timestamp is read
    again by effects() and normalize()."""
    candidate = value.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except (ValueError, OverflowError):
        return _NOT_ISO
    if parsed.tzinfo is None:
        return "needs a timezone offset such as Z or +02:00"
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # an offset pushing past year 1 or 9999
        return _NOT_ISO
    if not EARLIEST <= parsed <= LATEST:
        return "must be between 1970 and 9998"
    return parsed


def iso(dt: datetime) -> str:
    """Canonical UTC text for dedupe keys and payloads: 2025-03-01T12:00:00.000000Z.

    This runs several times per request, and datetime.isoformat costs about 16 times a dict
    lookup (measured in instructions). One event's time is formatted several times on its way
    (raw event, session, activity event), so recent texts are kept, keyed by the UTC time (an
    aware time in another zone compares by wall clock and ignores ``fold``, so it cannot be the
    key). A new time reuses its minute's prefix and formats only seconds and microseconds (half
    the cost of isoformat)."""
    utc = dt if dt.tzinfo is UTC else dt.astimezone(UTC)
    text = _ISO_TEXTS.get(utc)
    if text is not None:
        return text
    minute = (utc.year, utc.month, utc.day, utc.hour, utc.minute)
    prefix = _ISO_MINUTES.get(minute)
    if prefix is None:
        if len(_ISO_MINUTES) >= _ISO_KEEP:
            _ISO_MINUTES.clear()
        prefix = _ISO_MINUTES[minute] = utc.isoformat(timespec="minutes")[:-6] + ":"
    text = "%s%02d.%06dZ" % (prefix, utc.second, utc.microsecond)  # noqa: UP031 (fastest here)
    if len(_ISO_TEXTS) >= _ISO_KEEP:
        _ISO_TEXTS.clear()
    _ISO_TEXTS[utc] = text
    return text


_ISO_KEEP = 1024
_ISO_TEXTS: dict[datetime, str] = {}
_ISO_MINUTES: dict[tuple[int, int, int, int, int], str] = {}


@dataclass(slots=True)
class WebhookContext:
    """What the web layer verified about a delivery before handing its body to a connector.
    (Built per request; not frozen, because a frozen dataclass costs ~3x as much to build.)"""

    headers: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    signed_at: datetime | None = None  # the verified signature timestamp, when the scheme has one
    signed_at_text: str | None = None  # ...exactly as the sender wrote it
    signature: str | None = None  # the verified signature value
    fixed_game_id: int | None = None  # the endpoint's fixed game, which wins over the body's


class IgnoredDelivery(Exception):
    """A well-formed delivery that carries nothing to store (answered 202 and counted)."""


def human_duration(seconds: int) -> str:
    """'12 h 30 min', '45 min', '30 s'."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours} h {minutes} min"
    if hours:
        return f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"
