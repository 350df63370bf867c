"""The store's interface: what every backend implements (SQLite today, PostgreSQL next).

Everything outside ``bot/storage`` talks to these named, typed, async methods and never to SQL
or a connection. Writes are committed before a method returns ("committed before
acknowledged"); a backend may group concurrent writes into one commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bot.storage.records import (
    ActionStatus,
    Batch,
    BoardPage,
    ConfirmStatus,
    ConsoleSettings,
    DailyPlaytime,
    DayRange,
    Delivery,
    Edit,
    Endpoint,
    FeedChange,
    FeedStatus,
    ForgetReport,
    IngestResult,
    Link,
    LinkNotice,
    OAuthState,
    PrivacyChoice,
    PrivacySummary,
    QueuedAction,
    RetentionPolicy,
    Reward,
    RewardChanges,
    RewardSummary,
    RoleValues,
    StepResult,
    StoredPlaytime,
    StoredTokens,
    Total,
    VerifyOutcome,
)
from connectors.base import Action, ActivityEvent, Connector, Effect
from connectors.steam.client import OwnedGame, Unlock


class ChangeListener(Protocol):
    """A subscription to a backend's change notifications (``EndpointStore.listen``)."""

    @property
    def alive(self) -> bool:
        """False once its connection was lost: listen again (and poll meanwhile)."""
        ...

    async def close(self) -> None: ...


class EndpointStore(Protocol):
    async def create(
        self,
        *,
        path: str,
        kind: str,
        guild_id: int,
        secret: str | None,
        read_secret: str | None,
        game_id: int | None,
        now: datetime,
    ) -> Endpoint | None:
        """The new endpoint, or None when its path is taken."""
        ...

    async def by_path(self, path: str) -> Endpoint | None: ...

    async def list(self, guild_id: int | None = None) -> list[Endpoint]: ...

    async def rotate(
        self, endpoint_id: int, secret: str, *, read: bool, keep_previous_until: datetime | None
    ) -> Endpoint:
        """A new (read) secret, checked and changed in one transaction; raises
        EndpointRefused (disabled, same_secret)."""
        ...

    async def disable(self, endpoint_id: int, now: datetime) -> Endpoint: ...

    async def enable(self, endpoint_id: int) -> Endpoint: ...

    async def touch(self, endpoint_id: int, now: datetime) -> None: ...

    async def version(self) -> str:
        """Changes whenever any endpoint changes, whichever process changed it."""
        ...

    async def snapshot(self) -> tuple[str, list[Endpoint]]: ...

    async def listen(self, changed: Callable[[], None]) -> ChangeListener | None:
        """Call ``changed`` soon after any endpoint changes, in any process; None when the
        backend has no notifications (SQLite: poll ``version()``) or cannot subscribe now."""
        ...

    async def count(self) -> tuple[int, int]:
        """(active, disabled)."""
        ...

    async def set_listening(self, url: str | None) -> None:
        """Where the running server listens (None: it stopped)."""
        ...

    async def listening(self) -> str | None: ...


class LinkStore(Protocol):
    async def link(
        self,
        *,
        guild_id: int,
        discord_user_id: int,
        source: str,
        external_id: str,
        now: datetime,
        display_name: str | None = None,
        verified: bool = False,
        status: str | None = None,
        reassign: bool = False,
        linked_by: str = "member",
    ) -> Link:
        """Link the game account to the member; raises AccountTaken when another member of the
        guild holds it, unless ``reassign``. ``linked_by``: member, admin:<id>, cli, import."""
        ...

    async def unlink(
        self, *, guild_id: int, discord_user_id: int, source: str, now: datetime
    ) -> int: ...

    async def verify(
        self,
        *,
        guild_id: int,
        discord_user_id: int,
        accounts: Sequence[tuple[str, str, str | None]],
        verified_by: str,
        now: datetime,
    ) -> list[VerifyOutcome]:
        """Link the (source, external id, name) accounts the member proved: a proof beats
        another member's unverified claim, the later of two proofs wins (the one who lost it
        finds a notice in /links)."""
        ...

    async def notices(self, guild_id: int, discord_user_id: int) -> list[LinkNotice]: ...

    async def set_require_verified(self, guild_id: int, on: bool, now: datetime) -> int:
        """Count only proven Steam links in the guild (on) or every link (off); the summaries
        follow. Returns how many links changed whether they count."""
        ...

    async def require_verified(self, guild_id: int) -> bool: ...

    async def unproven_steam(self, guild_id: int) -> int: ...

    async def for_member(self, guild_id: int, discord_user_id: int) -> list[Link]: ...

    async def steam_ids(
        self, guild_id: int | None = None, discord_user_id: int | None = None
    ) -> list[str]:
        """The distinct linked SteamIDs (of a guild, of a member)."""
        ...

    async def add_code(
        self,
        *,
        guild_id: int,
        discord_user_id: int,
        source: str,
        code: str,
        now: datetime,
        expires: datetime,
    ) -> bool:
        """Store a single-use link code (the member's older unused ones end); False when the
        code is taken in the guild."""
        ...

    async def confirm_code(
        self,
        *,
        guild_id: int,
        source: str,
        code: str,
        external_id: str,
        display_name: str | None,
        now: datetime,
    ) -> ConfirmStatus: ...

    async def steam_private(self, guild_id: int, discord_user_id: int) -> bool:
        """Whether the member's linked Steam account hides its game details."""
        ...

    async def linked_elsewhere(self, discord_user_id: int, guild_id: int) -> bool:
        """Whether the member has links in a guild other than ``guild_id``."""
        ...

    async def count(self) -> int: ...

    async def import_links(
        self,
        guild_id: int,
        rows: Sequence[tuple[int, str, str]],
        now: datetime,
        *,
        linked_by: str,
        reassign: bool = False,
    ) -> list[str]:
        """Many links in one transaction; per row linked, unchanged or taken."""
        ...


class StatsStore(Protocol):
    """Read-only playtime queries; per member and game the larger source counts. Periods are
    local days in the time zone set with ``use_timezone``."""

    async def role_values(self, guild_id: int, user_id: int, first: str, last: str) -> RoleValues:
        """A member's Linked Roles values (hours, hours in the local days first..last, last
        played, a proven Steam link) from the links that count in the guild."""
        ...

    async def use_timezone(self, name: str) -> bool:
        """Count days in the IANA zone ``name`` from now on; True when the stored days were
        rebuilt for it (it changed, or none was set)."""
        ...

    async def member_totals(
        self, guild_id: int, user_id: int, game_id: str | None = None
    ) -> list[Total]: ...

    async def leaderboard(
        self,
        guild_id: int,
        game_id: str,
        days: DayRange | None,
        offset: int = 0,
        limit: int = 10,
    ) -> BoardPage:
        """One page, best first: all-time totals, or played on the local days ``days`` (first
        and last included); an offset past the end gives the last page."""
        ...

    async def daily(
        self,
        guild_id: int,
        user_id: int,
        first: date,
        last: date,
        game_id: str | None = None,
    ) -> list[DailyPlaytime]:
        """Per local day from ``first`` to ``last`` (both included), source and game."""
        ...

    async def guild_games(self, guild_id: int) -> list[tuple[str, str | None]]:
        """(game id, name if known) of every game with playtime in the guild."""
        ...

    async def guild_daily(
        self, guild_id: int, first: date, last: date
    ) -> list[tuple[date, str, int, str, int]]:
        """(day, game, member, source, seconds) per local day for the guild's linked accounts."""
        ...

    async def games_version(self) -> int:
        """A number that changes whenever any guild's games or any game's name change."""
        ...

    async def game_names(self, game_ids: list[str]) -> dict[str, str]: ...


#: ``delay(code, probes)``: seconds until a paused channel's next probe, None: never probed.
ProbeDelay = Callable[[int | None, int], float | None]


class Composer(Protocol):
    """How stored events become a message (bot/feed/embeds.py)."""

    def embed(
        self, event: Mapping[str, Any], language: tuple[str | None, str | None]
    ) -> dict[str, Any]:
        """One embed in the guild's feed language: (the one chosen, or None; the Discord
        server's primary language as last seen, or None)."""
        ...

    def pack(
        self, embeds: list[tuple[int, dict[str, Any]]]
    ) -> list[tuple[int, dict[str, Any]]]: ...

    def fits(self, embeds: list[dict[str, Any]]) -> bool: ...


@dataclass(frozen=True)
class Refusal:
    """Why a send failed, for ``pause``: ``refused`` when Discord refused the channel (with its
    ``code``), else a failure of a probe (a 5xx), which keeps the channel paused."""

    refused: bool
    code: int
    reason: str
    maybe_posted: bool = False


class IngestPolicy(Protocol):
    """What the ingest path decides for every source (bot/ingest/policy.py): the milestone
    hours and how one is announced, and the event types a feed leaves out unless turned on."""

    hours: tuple[int, ...]
    off_by_default: frozenset[str]

    def event(
        self,
        *,
        guild_id: int,
        source: str,
        player_id: str,
        game_id: str,
        game_name: str | None,
        hours: int,
        total: int,
        at: datetime,
        name: str | None,
        user_id: int | None,
    ) -> ActivityEvent: ...

    def console_line(
        self, event: Mapping[str, Any], language: tuple[str | None, str | None]
    ) -> str | None:
        """An event as one plain line for a game server's chat, in the feed's language."""
        ...


@dataclass(frozen=True)
class Observer:
    """Where a polled source's observations go: its connector (``dedupe_key``, ``normalize``)
    and the ingest policy, through the one ingest path, once per guild that links the player."""

    connector: Connector
    policy: IngestPolicy


@dataclass(frozen=True)
class Growth:
    """How a Steam total that grew is observed: by whom, and the community's midnight that
    starts the day being announced."""

    observer: Observer
    midnight: datetime


class EventStore(Protocol):
    async def ingest(
        self,
        delivery: Delivery,
        connector: Connector,
        raw: Mapping[str, Any],
        effects: list[Effect],
        policy: IngestPolicy,
    ) -> IngestResult:
        """The whole ingest of one raw event in one transaction: dedupe (a duplicate changes
        nothing), effects, normalize, milestones, feed. Committed when it returns."""
        ...

    async def seen(self, guild_id: int, dedupe_hash: str) -> bool: ...

    async def counts(self) -> tuple[int, int]:
        """(raw events, activity events)."""
        ...


class FeedStore(Protocol):
    """The feed outbox, as the poster works through it (times are ISO texts, bot.clock)."""

    async def due_channels(self, now: str) -> list[int]:
        """Channels whose next step is due (exactly those ``next_work`` has work for)."""
        ...

    async def next_work(self, channel_id: int, now: str, composer: Composer) -> Batch | Edit | None:
        """The channel's next step, fixing (storing) a new batch when it starts one. With
        several processes (PostgreSQL) it also takes the channel's lease for this process:
        None while another process holds it; no work releases it."""
        ...

    async def renew(self, channel_id: int, now: str) -> bool:
        """Keep this process's lease on the channel while its step is being sent (call it more
        often than every ``LEASE_SECONDS``); False when the lease was lost to another process.
        One server per database (SQLite) always holds it."""
        ...

    async def mark_sent(self, batch: Batch, message_id: int, now: str) -> None: ...

    async def mark_retry(
        self, batch: Batch, reason: str, maybe_posted: bool, retry_at: str, now: str
    ) -> None: ...

    async def pause(
        self, work: Batch | Edit, refusal: Refusal, now: str, delay: ProbeDelay, retry_at: str
    ) -> tuple[bool, int | None, str | None]:
        """(paused, code, next probe time)."""
        ...

    async def isolate(
        self, batch: Batch, refused: Mapping[int, str], reason: str, now: str
    ) -> list[int]: ...

    async def mark_edited(self, edit: Edit, now: str) -> None: ...

    async def mark_edit_retry(self, edit: Edit, reason: str, retry_at: str, now: str) -> None: ...

    async def mark_edit_gone(self, edit: Edit) -> None: ...

    async def mark_edit_refused(self, edit: Edit, message: str, now: str) -> None: ...

    async def expire_old(self, now: str) -> int: ...

    async def set_channel(
        self,
        guild_id: int,
        channel_id: int,
        now: str,
        *,
        max_age: int | None = None,
        backfill_since: str | None = None,
        off_by_default: frozenset[str] = frozenset(),
    ) -> FeedChange:
        """Post the guild's events there from now on; with ``backfill_since``, also the
        stored events since then that were never queued (at most 500)."""
        ...

    async def event_types(self, guild_id: int) -> list[str] | None: ...

    async def set_event_types(self, guild_id: int, types: list[str] | None, now: str) -> None: ...

    async def language(self, guild_id: int) -> tuple[str | None, str | None]:
        """(the feed language chosen with /feed language, or None; the Discord server's
        primary language as the bot last saw it, or None)."""
        ...

    async def set_language(self, guild_id: int, language: str | None, now: str) -> None:
        """``ru``, ``en``, or None: the server's primary language."""
        ...

    async def note_locale(self, guild_id: int, locale: str, now: str) -> bool:
        """Remember the Discord server's primary language; True when it changed."""
        ...

    async def channel(self, guild_id: int) -> int | None:
        """The guild's feed channel (None: none set)."""
        ...

    async def status(self, guild_id: int) -> FeedStatus: ...

    async def counts(self) -> dict[str, int]:
        """pending, failed (events) and paused_channels, over every guild."""
        ...


class PlaytimeStore(Protocol):
    async def for_players(
        self, scope: int, source: str, game_id: str, player_ids: Sequence[str]
    ) -> dict[str, StoredPlaytime]: ...


class SteamStore(Protocol):
    """The Steam sync's state (times are aware datetimes)."""

    async def enrol(self, now: datetime, first_read: Callable[[str], datetime]) -> tuple[int, int]:
        """Track newly linked accounts, forget unlinked ones: (linked, in a game)."""
        ...

    async def accounts(self) -> list[str]: ...

    async def due(self, now: datetime, limit: int) -> list[str]: ...

    async def seen(
        self,
        batch: list[str],
        games: dict[str, int | None],
        now: datetime,
        active_interval: int,
        observer: Observer,
        logoffs: dict[str, int | None],
    ) -> None: ...

    async def mark_private(self, steam_id: str, now: datetime, next_at: datetime) -> None: ...

    async def mark_retry(
        self, steam_id: str, now: datetime, state: str, error: str, delay: Callable[[int], float]
    ) -> None: ...

    async def apply_library(
        self,
        steam_id: str,
        games: list[OwnedGame],
        now: datetime,
        *,
        soon: datetime,
        later: datetime,
        growth: Growth,
    ) -> int: ...

    async def record_lookup(
        self,
        steam_id: str,
        app_id: int,
        *,
        seconds: int | None,
        status: str,
        name: str | None,
        now: datetime,
        growth: Growth | None = None,
    ) -> int: ...

    async def pending_checks(self, steam_id: str) -> list[int]: ...

    async def checked(self, steam_id: str, app_id: int) -> None: ...

    async def unlocks(
        self, steam_id: str, app_id: int
    ) -> tuple[set[str], str | None, str | None]: ...

    async def store_unlocks(
        self,
        steam_id: str,
        game: OwnedGame,
        *,
        silent: list[Unlock],
        fresh: list[Unlock],
        schema: dict[str, Any],
        percentages: dict[str, Any],
        now: datetime,
        observer: Observer,
        baseline: bool,
    ) -> int: ...

    async def cached(
        self, app_id: int, kind: str, language: str
    ) -> tuple[dict[str, Any], datetime] | None: ...

    async def cache(
        self, app_id: int, kind: str, language: str, body: dict[str, Any], now: datetime
    ) -> None: ...

    async def counts(self, now: datetime) -> dict[str, int]: ...

    async def reserve_call(self, day: str, purpose: str, limit: int) -> bool: ...

    async def calls_on(self, day: str) -> dict[str, int]: ...

    async def set_key_state(
        self, refused_since: datetime | None, next_probe: datetime | None, detail: str | None
    ) -> None: ...

    async def key_state(self) -> dict[str, str]: ...

    async def reserve_lookups(self, day: str, endpoint_id: int, wanted: int, limit: int) -> int: ...


class RetentionStore(Protocol):
    async def begin(self) -> None:
        """Start a prune (the walks that look again at what they kept start over)."""
        ...

    async def prune_step(
        self, kind: str, now: datetime, policy: RetentionPolicy, limit: int = 500
    ) -> StepResult:
        """One short step of one walk in ``PRUNE_KINDS``."""
        ...

    async def pending(self, now: datetime, policy: RetentionPolicy) -> dict[str, int]:
        """What a prune would remove or change now, by name (for a dry run)."""
        ...

    async def space(self) -> dict[str, int]:
        """page_size, pages, free_pages and auto_vacuum (0 none, 1 full, 2 incremental)."""
        ...

    async def reclaim(self, pages: int) -> int:
        """Return up to ``pages`` free pages to the file system; the free pages left."""
        ...


class OAuthStateStore(Protocol):
    """States of OAuth and OpenID flows: random, single use, bound, expiring in 10 minutes."""

    async def create(
        self,
        *,
        kind: str,
        guild_id: int | None,
        user_id: int | None,
        language: str,
        now: datetime,
    ) -> str:
        """A new state (returned once; only its hash is stored)."""
        ...

    async def peek(
        self, state: str, kinds: Sequence[str], now: datetime
    ) -> tuple[str, OAuthState | None]:
        """What ``consume`` would say now, without taking it."""
        ...

    async def consume(
        self, state: str, kinds: Sequence[str], now: datetime
    ) -> tuple[str, OAuthState | None]:
        """Take a state of one of ``kinds`` once: ("ok", it), else ("unknown" | "expired" |
        "used", it or None)."""
        ...

    async def outstanding(self, kind: str, now: datetime) -> int:
        """States of this kind neither used nor expired."""
        ...

    async def remember_nonce(self, endpoint: str, nonce: str, expires_at: datetime) -> bool:
        """True the first time an OpenID response nonce is seen (kept until it expires)."""
        ...


class TokenStore(Protocol):
    """Members' Discord OAuth tokens, sealed by the caller; pushes of role connections."""

    async def save(self, tokens: StoredTokens, now: datetime) -> None: ...

    async def refreshed(self, tokens: StoredTokens, now: datetime) -> bool:
        """Replace tokens after a refresh, only while the member's row exists."""
        ...

    async def get(self, user_id: int) -> StoredTokens | None: ...

    async def drop(self, user_id: int) -> bool: ...

    async def due(self, now: datetime, limit: int) -> list[StoredTokens]: ...

    async def expiring(
        self, before: datetime, limit: int, after: tuple[datetime, int] | None = None
    ) -> list[StoredTokens]: ...

    async def pushed(
        self, user_id: int, values: str, now: datetime, next_due: datetime | None
    ) -> None: ...

    async def postpone(self, user_id: int, until: datetime) -> None: ...

    async def mark_due(self, user_ids: Sequence[int], at: datetime) -> int: ...

    async def connected(self) -> list[StoredTokens]: ...


class PrivacyStore(Protocol):
    async def summary(self, guild_id: int, user_id: int) -> PrivacySummary:
        """What is stored about the member in the guild (/privacy show)."""
        ...

    async def export(self, guild_id: int, user_id: int) -> dict[str, object]:
        """Everything stored about the member in the guild, as plain data (never a token)."""
        ...

    async def choice(self, guild_id: int, user_id: int) -> PrivacyChoice:
        """The member's privacy choices in the guild (defaults when they made none)."""
        ...

    async def set_choice(
        self, guild_id: int, user_id: int, choice: PrivacyChoice, now: datetime
    ) -> bool:
        """Store the member's choices; whether they changed."""
        ...

    async def presence_default(self, guild_id: int) -> bool: ...

    async def set_presence_default(self, guild_id: int, on: bool, now: datetime) -> bool: ...

    async def forget(
        self, guild_id: int, user_id: int, now: datetime, *, drop_tokens: bool
    ) -> ForgetReport:
        """Remove everything stored about the member in the guild, in one transaction (see
        bot/storage/privacy.py, forget_member)."""
        ...


class ActionStore(Protocol):
    """The action outbox (bot/storage/actions.py has what each step means)."""

    async def enqueue(
        self,
        *,
        guild_id: int,
        connector: str,
        action: str,
        payload: Mapping[str, Any],
        idempotent: bool,
        pause_key: str,
        now: datetime,
        user_id: int | None = None,
    ) -> int: ...

    async def queue(
        self,
        connector: Connector,
        action: Action,
        *,
        guild_id: int,
        pause_key: str,
        now: datetime,
        user_id: int | None = None,
    ) -> int:
        """Validate the payload with the action's model (SchemaError names the field), then
        queue it; idempotence comes from the ActionSpec."""
        ...

    async def begin(self, action: QueuedAction, now: datetime) -> bool:
        """Mark a claimed action in flight before its attempt; False when it no longer waits."""
        ...

    async def recover(self, now: datetime) -> tuple[int, int]:
        """At start-up: attempts left in flight by a process that stopped (idempotent ones
        pending again, the others "unknown"); (tried again, unknown). With several processes
        (PostgreSQL) only those whose lease ran out: the others' holders are alive."""
        ...

    async def expire(self, now: datetime) -> tuple[int, int]:
        """While running, as ``recover`` for attempts whose lease ran out (their process died
        mid-attempt). One server per database (SQLite): none can, (0, 0)."""
        ...

    async def renew(self, action: QueuedAction, now: datetime) -> bool:
        """Keep this process's lease on an attempt in flight (call it more often than every
        ``LEASE_SECONDS``); False when it was lost. SQLite: always True."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[QueuedAction]: ...

    async def done(
        self,
        action: QueuedAction,
        now: datetime,
        note: str | None = None,
        *,
        already: bool = False,
    ) -> None:
        """Done (``note``: why there was nothing to do; ``already``: a role the member had
        before, so not Questlog's)."""
        ...

    async def retry(
        self, action: QueuedAction, reason: str, retry_at: datetime, now: datetime
    ) -> None: ...

    async def final(
        self, action: QueuedAction, status: str, reason: str, now: datetime
    ) -> None: ...

    async def paused(
        self, action: QueuedAction, reason: str, now: datetime, probe_every: timedelta
    ) -> None: ...

    async def status(
        self, guild_id: int | None, now: datetime, limit: int = 20
    ) -> ActionStatus: ...

    async def next_due(self) -> str | None: ...


class RewardStore(Protocol):
    """Role rewards (bot/storage/rewards.py has how a member's hours are counted)."""

    async def add(
        self,
        *,
        guild_id: int,
        role_id: int | None,
        hours: int,
        game_id: str | None,
        period: str,
        source: str,
        mode: str,
        created_by: int | None,
        now: datetime,
        squad_group: str | None = None,
        squad_permissions: str | None = None,
        counting: str = "active",
    ) -> Reward: ...

    async def list(self, guild_id: int) -> list[Reward]: ...

    async def summaries(self, guild_id: int) -> list[RewardSummary]: ...

    async def guilds(self) -> list[int]:
        """The guilds with at least one reward."""
        ...

    async def candidates(self, guild_id: int, now: datetime) -> list[int]:
        """The members a full check must look at: who earns any reward now or holds a grant."""
        ...

    async def check(self, guild_id: int, users: Sequence[int], now: datetime) -> RewardChanges:
        """Grant and take away these members' rewards (role actions queued in the same
        transaction)."""
        ...

    async def preview(
        self, reward: Reward, now: datetime, limit: int = 10
    ) -> tuple[int, list[tuple[int, int]]]: ...

    async def remove(
        self, guild_id: int, reward_id: int, *, take_back: bool, now: datetime
    ) -> list[int] | None: ...

    async def known_game(self, guild_id: int, game_id: str) -> bool: ...

    async def forget_grants(self, guild_id: int, user_id: int) -> int: ...


class ConsoleStore(Protocol):
    """Endpoints' game server consoles (RCON settings, the password sealed by the caller)."""

    async def set(
        self,
        endpoint_id: int,
        *,
        game: str,
        host: str,
        port: int,
        sealed_password: str,
        announce: bool,
        now: datetime,
    ) -> ConsoleSettings: ...

    async def get(self, endpoint_id: int) -> ConsoleSettings | None:
        """The console of an enabled endpoint, None when it has none or is disabled."""
        ...

    async def list(self, guild_id: int | None = None) -> list[ConsoleSettings]: ...

    async def remove(self, endpoint_id: int) -> bool: ...


class InstanceLock(Protocol):
    """A named lock that at most one process of the instance holds at a time, for the jobs
    that must run once per instance (the Steam sync, pruning, the daily reward check). On
    SQLite the server lock already makes the process the only one (bot/storage/instance.py);
    on PostgreSQL it is a session-level advisory lock on a connection of its own, freed by the
    server the moment that connection ends, however the process ends."""

    async def acquire(self) -> bool:
        """Take the lock if it is free; whether this process holds it now. Never waits."""
        ...

    async def held(self) -> bool:
        """Whether this process still holds it (False once its connection was lost)."""
        ...

    async def release(self) -> None: ...


class SquadListStore(Protocol):
    async def admins(
        self, guild_id: int
    ) -> tuple[dict[str, set[str]], list[tuple[str, str, str | None]]]:
        """The guild's Squad groups (name -> permissions) and (SteamID64, group, name) of the
        members holding one."""
        ...

    async def changed_at(self, endpoint_id: int, etag: str, now: datetime) -> datetime:
        """Since when the endpoint's list has had this ETag."""
        ...


class PresenceStore(Protocol):
    async def consent(self, guild_id: int, user_id: int) -> bool:
        """Whether presence is collected for the member in the guild (their choice, else the
        guild's default; never while they turned collecting off)."""
        ...

    async def game(self, application_id: str | None, name: str, now: datetime) -> str:
        """The game id a Discord activity's time lands under (learnt and kept)."""
        ...

    async def ensure_link(
        self, guild_id: int, user_id: int, name: str | None, now: datetime
    ) -> None:
        """The member's presence link (their Discord account as a playtime source)."""
        ...

    async def close_interrupted(self) -> int:
        """Close presence sessions an earlier process left open; how many."""
        ...


class Store(Protocol):
    """One database. ``open`` and ``close`` are the backend's own (see ``open_store``)."""

    endpoints: EndpointStore
    links: LinkStore
    stats: StatsStore
    feed: FeedStore
    events: EventStore
    playtime: PlaytimeStore
    steam: SteamStore
    retention: RetentionStore
    oauth: OAuthStateStore
    tokens: TokenStore
    privacy: PrivacyStore
    presence: PresenceStore
    actions: ActionStore
    rewards: RewardStore
    consoles: ConsoleStore
    squad_lists: SquadListStore

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """Whether the database answers (for /healthz)."""
        ...

    def write_stats(self) -> dict[str, float]:
        """Counters of the writer (Prometheus names), for /metrics."""
        ...

    async def describe(self) -> dict[str, Any]:
        """database (where), database_bytes, schema_version, schema_latest."""
        ...

    async def table_rows(self) -> dict[str, int]:
        """Rows in every table, counted in full (slow on a large database: for benchmarks and
        support, never on a request path)."""
        ...

    async def backup(self, target: Path) -> None:
        """A consistent copy of the whole database at ``target`` while it is in use."""
        ...

    def instance_lock(self, name: str) -> InstanceLock:
        """The lock called ``name`` (not taken yet)."""
        ...
