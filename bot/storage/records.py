"""Records the store hands out: plain typed values, the same whatever the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

ConfirmStatus = Literal["linked", "unknown_code", "expired_code"]

#: The playtime scope of public per-SteamID data (Steam); webhook sources store under their guild.
GLOBAL_SCOPE = 0


class EndpointRefused(Exception):
    """A change the endpoint's current state does not allow (checked in the same transaction
    as the change): ``problem`` is disabled or same_secret."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class AccountTaken(Exception):
    """The game account is linked to another member of the guild."""

    def __init__(self, owner_user_id: int) -> None:
        super().__init__(f"linked to member {owner_user_id}")
        self.owner_user_id = owner_user_id


@dataclass(frozen=True)
class Link:
    """A member's linked game account in one guild."""

    source: str
    external_id: str
    display_name: str | None
    verified: bool
    status: str | None  # e.g. private_profile (seen by the Steam sync)
    linked_by: str = "member"  # member, admin:<discord id>, cli or import
    verified_by: str = "none"  # none, discord, openid, minecraft_code or admin


@dataclass(frozen=True)
class VerifyOutcome:
    """A proven link: ``displaced`` is the member who held the account before (told why in
    /links), ``changed`` False when the member already had it, proven the same way."""

    link: Link
    displaced: int | None
    changed: bool = True


@dataclass(frozen=True)
class LinkNotice:
    source: str
    external_id: str
    reason: str  # verified_by_other, verified_later
    at: datetime


@dataclass(frozen=True)
class PrivacySummary:
    """What Questlog stores about a member in a guild (``/privacy show``): the links (source,
    external id, how proven) and how many rows of each kind; never a token."""

    links: list[tuple[str, str, str]]
    sessions: int
    samples: int
    events: int
    tokens: bool


@dataclass(frozen=True)
class QueuedAction:
    """An action the worker claimed (marked in flight); ``probe``: the one action tried to
    see whether its paused key works again."""

    id: int
    guild_id: int
    connector: str
    action: str
    payload: dict[str, Any]
    idempotent: bool
    user_id: int | None
    pause_key: str
    attempts: int
    probe: bool = False


@dataclass(frozen=True)
class ActionRow:
    """An action as /actions status shows it."""

    id: int
    guild_id: int
    connector: str
    action: str
    payload: dict[str, Any]
    idempotent: bool
    user_id: int | None
    pause_key: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: str
    created_at: str
    finished_at: str | None


@dataclass
class ActionStatus:
    """Counts per status, paused keys (guild, key, reason, paused at, next probe) and the
    actions worth looking at."""

    counts: dict[str, int]
    pauses: list[tuple[Any, ...]]
    recent: list[ActionRow]


@dataclass(frozen=True)
class PrivacyChoice:
    """A member's privacy choices in a guild: whether Questlog collects about them (False
    after /privacy off) and their presence choice (None: the guild's default)."""

    collecting: bool = True
    presence: bool | None = None


@dataclass
class ForgetReport:
    """What forgetting a member in a guild removed: rows per table (only tables that had
    any), the Steam accounts whose shared data stayed because another guild links them, and
    whether the row that records their opt-out stayed."""

    removed: dict[str, int] = field(default_factory=dict)
    shared_steam: list[str] = field(default_factory=list)
    kept_opt_out: bool = False

    @property
    def total(self) -> int:
        return sum(self.removed.values())


@dataclass(frozen=True)
class RoleValues:
    """What Questlog publishes for a member as their Linked Roles values."""

    hours_total: int
    hours_30d: int
    last_played: datetime | None
    steam_verified: bool
    steam_name: str | None  # shown as the connection's username in Discord


@dataclass(frozen=True)
class StoredTokens:
    """A member's Discord OAuth tokens as stored: ``access_token`` and ``refresh_token`` are
    sealed (bot/vault), never the tokens themselves."""

    user_id: int
    access_token: str
    refresh_token: str
    scope: str
    expires_at: datetime
    locale: str | None = None
    username: str | None = None
    pushed_values: str | None = None
    pushed_at: datetime | None = None
    push_due_at: datetime | None = None

    def __repr__(self) -> str:
        return f"StoredTokens(user_id={self.user_id}, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class OAuthState:
    """What an OAuth or OpenID state was bound to when its flow began."""

    kind: str  # discord, steam or linked_roles
    guild_id: int | None
    user_id: int | None
    language: str
    expires_at: datetime


@dataclass(frozen=True)
class Endpoint:
    """A webhook endpoint: an unguessable path with a kind, a guild, HMAC secrets, options."""

    id: int
    path: str
    kind: str
    guild_id: int
    secret: str | None  # None: a kind whose requests are not signed
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
        found = [self.secret] if self.secret else []
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


@dataclass(frozen=True)
class Total:
    """A member's stored playtime for one game from one source: ``seconds`` active, and
    ``away`` seconds of AFK and idle time in the same sessions (total: their sum)."""

    game_id: str
    source: str
    seconds: int
    away: int = 0


@dataclass(frozen=True)
class DailyPlaytime:
    """Seconds of ``game_id`` played on a local day, as ``source`` measured them."""

    day: date
    source: str
    game_id: str
    seconds: int


#: A leaderboard's local days in the summary time zone: the first and the last, both included.
DayRange = tuple[date, date]


@dataclass(frozen=True)
class BoardPage:
    """One page of a leaderboard: (discord user, active seconds) best first, and how many
    members the whole board ranks; ``away``: the AFK and idle seconds beside a row's active
    time (members with none left out)."""

    rows: list[tuple[int, int]]
    total: int
    offset: int  # the rank of the first row, minus one
    away: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """A feed message fixed before it is sent: sent again unchanged (same nonce) until Discord
    answers."""

    id: int
    guild_id: int
    channel_id: int
    nonce: str
    payload: dict[str, Any]
    attempts: int
    keys: tuple[int, ...]  # the outbox rows of its embeds, in order
    probe: bool = False  # the channel is paused and this send probes it


@dataclass(frozen=True)
class Edit:
    """A newer version of a posted event: its message is edited with the event's embed in
    place (the whole message is sent again, so the edit can be repeated safely)."""

    outbox_id: int
    guild_id: int
    channel_id: int
    message_id: int
    batch_id: int
    embed_index: int
    payload: dict[str, Any]
    attempts: int
    probe: bool = False


@dataclass(frozen=True)
class FeedFailure:
    """An event Discord refused (its embed), with Discord's reason."""

    title: str
    reason: str
    at: str


@dataclass(frozen=True)
class FeedStatus:
    channel_id: int | None
    channel_state: str  # ok | paused | unset
    pause_code: int | None  # Discord's code of a paused channel's refusal
    pause_detail: str | None  # Discord's words for it
    paused_since: str | None
    next_probe_at: str | None  # None while paused: waits for /feed channel
    pending: int
    failed: int
    expired: int
    sent: int
    last_error: str | None
    failures: tuple[FeedFailure, ...] = ()  # the latest refused events


@dataclass(frozen=True)
class FeedChange:
    """What setting a guild's feed channel did."""

    previous_channel: int | None
    resumed: bool  # the channel was paused and posts again now
    moved: int  # waiting events that moved here from another channel
    maybe_posted: int  # given-up batches whose answer was lost: they may show in the old channel
    backfilled: int = 0  # stored events queued now because ``backfill`` asked for them
    not_posted: int = 0  # stored events the feed never queued (stored before it had a channel)


@dataclass(slots=True)
class PlaytimeChange:
    """A stored total before and after a report (``applied`` False: an older report, ignored)."""

    old: int | None
    new: int | None
    applied: bool


@dataclass
class IngestResult:
    status: Literal["accepted", "duplicate"]
    raw_event_id: int | None = None
    event_ids: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    actions: int = 0  # actions queued (role rewards earned or lost, lines said in game)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A raw event as it arrived, for the ingest transaction."""

    guild_id: int
    source: str
    endpoint_id: int | None
    dedupe_hash: str
    payload: str  # the raw event as JSON text
    received_at: str  # ISO text (bot.clock.to_iso)
    timestamped: bool = False  # retried with its original signed time (migration 0020)


@dataclass(frozen=True)
class StoredPlaytime:
    """A stored total for one player and game (``seconds`` None: known to have none)."""

    seconds: int | None
    status: str
    created_at: str
    updated_at: str


#: The walks of a prune, in the order they run (bot/storage/retention.py).
PRUNE_KINDS = ("feed", "batches", "raw", "samples", "counters")
#: What a prune counts, by name.
PRUNE_COUNTS = (
    "outbox_rows",
    "activity_events",
    "feed_batches",
    "raw_events",
    "raw_payloads_blanked",
    "samples_rolled_up",
    "steam_day_counters",
    "link_codes",
    "oauth_states",
    "link_notices",
)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long what may be forgotten is kept ([database] raw_payload_days and
    feed_history_days; samples are rolled up per day after a year)."""

    raw_payload_days: int = 30
    feed_history_days: int = 90
    sample_days: int = 365
    timezone: str = "UTC"  # the summary time zone: samples roll up per local day


@dataclass
class StepResult:
    """What one prune step did: rows examined (0: the walk is done for now) and, by name, what
    it removed or changed."""

    examined: int
    changed: dict[str, int]
    seconds: float = 0.0  # how long the step held the writer


@dataclass(frozen=True)
class ConsoleSettings:
    """An endpoint's game server console (RCON). ``sealed_password``: encrypted with the
    instance key (bot/vault); never shown. ``announce``: milestones and rewards of linked
    members are announced in game."""

    endpoint_id: int
    game: str  # minecraft | squad
    host: str
    port: int
    sealed_password: str = field(repr=False)
    announce: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Reward:
    """A role for hours played (``/rewards add``). ``game_id`` None: the member's best game;
    ``source`` ``any``: the best known total across sources; ``mode`` ``replace``: only the
    highest earned of the replace rewards of the same game and period is held."""

    id: int
    guild_id: int
    role_id: int | None  # None: no role (only a Squad group)
    hours: int
    game_id: str | None
    period: str
    source: str
    mode: str
    created_at: str
    created_by: int | None = None
    squad_group: str | None = None  # listed in the guild's Squad admin lists
    squad_permissions: str | None = None  # comma-separated, Squad's names
    counting: str = "active"  # or "total": AFK and idle time included


@dataclass(frozen=True)
class RewardSummary:
    """A reward as /rewards list shows it: how many hold it through Questlog, how many of its
    actions wait, and why its actions are paused (None when they are not)."""

    reward: Reward
    holders: int
    waiting: int
    paused_reason: str | None
    paused_since: str | None


@dataclass
class RewardChanges:
    """What a reward check queued: (reward, member, seconds) granted and taken away."""

    granted: list[tuple[Reward, int, int]] = field(default_factory=list)
    removed: list[tuple[Reward, int]] = field(default_factory=list)

    def __iadd__(self, other: RewardChanges) -> RewardChanges:
        self.granted += other.granted
        self.removed += other.removed
        return self

    @property
    def queued(self) -> int:
        return len(self.granted) + len(self.removed)
