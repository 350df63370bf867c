"""Configuration: one TOML file, environment overrides for secrets, validated once at start-up.

The core's keys, their types, defaults and documentation are declared in ``_SCHEMA`` below; each
connector declares its own section (``Connector.config``), found through the registry.
config-example.toml is generated from both (``questlog config example``; tests/test_config.py
checks the file is current). A bad value raises ``ConfigError`` whose message is one line naming
the key.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import ConfigKey
from connectors.registry import Registry

#: Why a PostgreSQL instance refuses to start without [security] secret_key.
SHARED_KEY_REQUIRED = (
    "security.secret_key: required with database.url (PostgreSQL): every process sharing the"
    " database must seal and open stored tokens with the same key. Moving from SQLite, use the"
    " key Questlog made there (the file secret.key beside the SQLite database); otherwise"
    " `questlog key new` prints one (or set QUESTLOG_SECRET_KEY)"
)


class ConfigError(Exception):
    """A configuration problem; str() is one line that names the key."""


def _int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise ConfigError(f"{key}: must be between {lo} and {hi}, got {value}")
        return value

    return check


def _number_range(lo: float, hi: float) -> Callable[[str, Any], float]:
    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise ConfigError(f"{key}: must be between {lo} and {hi}, got {value}")
        return float(value)

    return check


def _one_of(*choices: str) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")
        return value.lower()

    return check


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    return value


def _url(allow_empty: bool) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        text = _string(key, value).strip()
        if not text and allow_empty:
            return ""
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{key}: expected an http(s) URL such as https://example.org")
        return text.rstrip("/")

    return check


def _ws_url(key: str, value: Any) -> str:
    text = _string(key, value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(f"{key}: expected a ws:// or wss:// URL")
    return text


def _timezone(key: str, value: Any) -> str:
    text = _string(key, value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{key}: unknown time zone {text!r} (use an IANA name such as Europe/Berlin)"
        ) from None
    return text


def _hours_list(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 20:
        raise ConfigError(f"{key}: expected a list of 1 to 20 whole hours, e.g. [10, 50, 100]")
    hours = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 100_000:
            raise ConfigError(f"{key}: every entry must be a whole number of hours, 1-100000")
        hours.append(item)
    if len(set(hours)) != len(hours):
        raise ConfigError(f"{key}: an hour appears twice")
    return tuple(sorted(hours))


def _log_level(key: str, value: Any) -> str:
    text = _string(key, value).upper()
    if text not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{key}: expected one of DEBUG, INFO, WARNING, ERROR")
    return text


def _postgres_url(key: str, value: Any) -> str:
    """Empty, or a postgresql:// URL. The value is never echoed (it may hold a password)."""
    text = _string(key, value).strip()
    if text and not text.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{key}: expected a postgresql:// URL (or nothing, for SQLite)")
    return text


def _fernet_key(key: str, value: Any) -> str:
    """Empty, or a Fernet key (32 bytes in URL-safe base64). The value is never echoed."""
    text = _string(key, value).strip()
    if not text:
        return ""
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            f"{key}: not a Fernet key (44 characters of URL-safe base64);"
            " `questlog key new` prints one"
        )
    return text


def _snowflake(key: str, value: Any) -> str:
    """Empty, or a Discord id (digits; TOML may give it as an integer)."""
    text = str(value).strip() if isinstance(value, int) and not isinstance(value, bool) else None
    if text is None:
        text = _string(key, value).strip()
    if text and not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise ConfigError(f"{key}: expected a Discord id (digits), got {value!r}")
    return text


MAX_SHARDS = 4096


def _shard_ids(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_SHARDS:
        raise ConfigError(f"{key}: expected a list of shard ids, e.g. [0, 1]")
    ids = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < MAX_SHARDS:
            raise ConfigError(f"{key}: every entry must be a shard id, 0-{MAX_SHARDS - 1}")
        ids.append(item)
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{key}: a shard appears twice")
    return tuple(sorted(ids))


def _host(key: str, value: Any) -> str:
    text = _string(key, value).strip()
    if not text:
        raise ConfigError(f"{key}: must not be empty")
    return text


# section -> key -> (default, validator, environment variable that overrides it, description).
# The connectors' sections ([steam], [battlemetrics], ...) are declared by the connectors
# (ConfigKey) and added from the registry.
Spec = tuple[Any, Callable[[str, Any], Any], str | None, str]
_SCHEMA: dict[str, dict[str, Spec]] = {
    "general": {
        "timezone": (
            "UTC",
            _timezone,
            None,
            'IANA time zone used for "today" and for daily charts.',
        ),
        "log_level": ("INFO", _log_level, None, "DEBUG, INFO, WARNING or ERROR."),
        "milestone_hours": (
            (10, 50, 100, 500, 1000),
            _hours_list,
            None,
            "Playtime milestones announced in the feed, in hours. A player's best-known total"
            " for a game\n(the largest across Steam, BattleMetrics and Minecraft) counts;"
            " thresholds already passed when\na source first reports a player are not"
            " announced.",
        ),
    },
    "discord": {
        "token": (
            "",
            _string,
            "DISCORD_TOKEN",
            "Bot token from https://discord.com/developers/applications (Bot -> Reset Token).\n"
            "Empty: Questlog runs web-only and says how to get one. Environment: DISCORD_TOKEN.",
        ),
        "dev_guild_id": (
            0,
            _int_range(0, 2**63 - 1),
            None,
            "A server (guild) id to sync slash commands to instantly while developing; 0 = sync"
            " globally.",
        ),
        "api_base_url": (
            "https://discord.com/api/v10",
            _url(allow_empty=False),
            None,
            "Where Discord's REST API and gateway are. Change these only to go through a"
            " Discord proxy\n(for example a shared rate-limit proxy) or a test double.",
        ),
        "gateway_url": ("wss://gateway.discord.gg/", _ws_url, None, ""),
        "client_id": (
            "",
            _snowflake,
            None,
            "Login with Discord and Linked Roles (verified Steam links): the application's\n"
            "Client ID (Developer Portal -> OAuth2). Empty: members link unverified only.",
        ),
        "client_secret": (
            "",
            _string,
            "DISCORD_CLIENT_SECRET",
            "The application's Client Secret (OAuth2 -> Reset Secret). Environment:"
            " DISCORD_CLIENT_SECRET.",
        ),
        "authorize_url": (
            "https://discord.com/oauth2/authorize",
            _url(allow_empty=False),
            None,
            "Where members approve the link; the token endpoint is {api_base_url}/oauth2/token.",
        ),
        "shard_count": (
            0,
            _int_range(0, MAX_SHARDS),
            None,
            "Gateway shards in all, across every process; 0: the count Discord recommends for\n"
            "the bot (one per about 1,000 servers).",
        ),
        "shard_ids": (
            (),
            _shard_ids,
            None,
            "The shards this process runs, e.g. [0, 1] (needs shard_count); empty: all of them.\n"
            "Slash commands are synced by the process that runs shard 0.",
        ),
    },
    "linked_roles": {
        "guild_id": (
            0,
            _int_range(0, 2**63 - 1),
            None,
            "The server whose playtime a member's Linked Roles values come from (a role\n"
            "connection is per member and application, not per server). 0: Linked Roles off.",
        ),
    },
    "presence": {
        "enabled": (
            False,
            _boolean,
            None,
            "Presence playtime: time members play what their Discord status shows (for games\n"
            "not on Steam or a game server). Needs the Presence and Server Members intents\n"
            "(Developer Portal -> Bot -> Privileged Gateway Intents); without them the bot runs\n"
            "on without presence. Collected only for members who consent (/privacy presence;\n"
            "a server's default: /admin settings presence_default).",
        ),
        "pause_when_idle": (
            True,
            _boolean,
            None,
            'A member whose status is "idle" is not counted as playing meanwhile.',
        ),
        "max_session_hours": (
            12,
            _int_range(1, 168),
            None,
            "A session stops counting after this many hours, idle time included (a game left\n"
            "running).",
        ),
        "min_session_seconds": (
            120,
            _int_range(0, 3_600),
            None,
            "Sessions shorter than this are dropped (a game opened and closed).",
        ),
        "flush_seconds": (
            60,
            _int_range(5, 3_600),
            None,
            "Open sessions are written this often, so a crash loses at most this much.",
        ),
        "disconnect_grace_seconds": (
            120,
            _int_range(0, 86_400),
            None,
            "Time the bot was away from Discord's gateway counts as played when the member's\n"
            "presence is unchanged after a disconnect at most this long; a longer one does not\n"
            "count.",
        ),
    },
    "web": {
        "host": (
            "127.0.0.1",
            _host,
            None,
            "Address the webhook server listens on. 127.0.0.1 serves only this machine (put a"
            " reverse proxy\nin front); use 0.0.0.0 to listen on every interface.",
        ),
        "port": (8080, _int_range(0, 65535), None, "0 picks a free port and logs it."),
        "public_url": (
            "",
            _url(allow_empty=True),
            None,
            "The address game servers and BattleMetrics reach, used to print endpoint URLs,\n"
            'e.g. "https://questlog.example.org". Empty: http://<host>:<port>.',
        ),
        "rate_limit_per_minute": (
            0,
            _int_range(0, 1_000_000),
            None,
            "Requests per minute allowed per endpoint before answering 429; 0 = no limit.",
        ),
        "metrics_token": (
            "",
            _string,
            "QUESTLOG_METRICS_TOKEN",
            'When set, GET /metrics needs "Authorization: Bearer <token>". Environment:'
            " QUESTLOG_METRICS_TOKEN.",
        ),
        "access_log": (False, _boolean, None, "Log every HTTP request (costs some throughput)."),
        "keepalive_seconds": (
            75.0,
            _number_range(1, 86_400),
            None,
            "Seconds a connection may stay idle, or take to send its request headers, before\n"
            "it is closed without an answer. Behind a reverse proxy, keep the proxy's upstream\n"
            "idle timeout shorter than this.",
        ),
        "body_timeout_seconds": (
            10.0,
            _number_range(0.1, 3_600),
            None,
            "Seconds a client has to send a request's body; then it gets 408 and the\n"
            "connection is closed.",
        ),
    },
    "database": {
        "path": (
            "data/questlog.sqlite3",
            _string,
            None,
            "SQLite database file; its folder is created when missing.",
        ),
        "url": (
            "",
            _postgres_url,
            "QUESTLOG_DATABASE_URL",
            "PostgreSQL instead of SQLite: postgresql://user:password@host:5432/questlog (then\n"
            "path is not used). Several `questlog run` processes may share one PostgreSQL\n"
            "database; they then need the same [security] secret_key. `questlog db copy` moves\n"
            "a SQLite database over (README, Scaling out). Environment: QUESTLOG_DATABASE_URL.",
        ),
        "synchronous": (
            "normal",
            _one_of("normal", "full"),
            None,
            '"normal": an acknowledged delivery survives the process being killed, but a power\n'
            'loss or OS crash can lose the last ones; "full" survives those too (an fsync per\n'
            "group commit; see README, Data and backups).",
        ),
        "raw_payload_days": (
            30,
            _int_range(3, 36_500),
            None,
            "Days a raw event keeps its payload (the delivery as it arrived); at least 3. After\n"
            "that the payload is blanked and its dedupe key kept, so a late retry is still a\n"
            "duplicate; a BattleMetrics report (retried only with its original signature) is\n"
            "removed then, and a retry that late is refused as stale.",
        ),
        "feed_history_days": (
            90,
            _int_range(2, 36_500),
            None,
            "Days posted feed messages (activity events, sent outbox rows, feed batches) are\n"
            "kept. Playtime totals, days, sessions and milestones are never pruned.",
        ),
    },
    "security": {
        "secret_key": (
            "",
            _fernet_key,
            "QUESTLOG_SECRET_KEY",
            "The instance key that encrypts OAuth tokens at rest (a Fernet key: 44 characters\n"
            "of URL-safe base64; `questlog key new` prints one). Empty: a file secret.key beside\n"
            "the database, created on first use (mode 0600): back it up with the database, or\n"
            "stored tokens cannot be read. Environment: QUESTLOG_SECRET_KEY.",
        ),
    },
    "webhooks": {
        "tolerance_seconds": (
            300,
            _int_range(1, 86_400),
            None,
            "Same, for the X-Timestamp header of Minecraft and custom webhooks.",
        ),
        "rotate_grace_hours": (
            24.0,
            _number_range(0, 24 * 90),
            None,
            "After `questlog endpoint rotate`, the old secret stays valid this many hours.",
        ),
    },
}
# Where each section goes in config.toml (connectors' sections before [webhooks]).
_CORE_ORDER = ("general", "discord", "linked_roles", "presence", "web", "database", "security")


def _validator(key: ConfigKey) -> Callable[[str, Any], Any]:
    """The check of a connector's config key, from its default's type."""
    low = key.minimum if key.minimum is not None else float("-inf")
    high = key.maximum if key.maximum is not None else float("inf")
    if isinstance(key.default, bool):
        return _boolean
    if isinstance(key.default, int):
        return _int_range(int(max(low, -(2**63))), int(min(high, 2**63 - 1)))
    if isinstance(key.default, float):
        return _number_range(low, high)
    if key.url:
        return _url(allow_empty=False)
    return _string


def _schema(registry: Registry) -> dict[str, dict[str, Spec]]:
    """Every section and key: the core's and each connector's, in config.toml's order."""
    sections = {name: _SCHEMA[name] for name in _CORE_ORDER}
    for section, keys in registry.config_sections().items():
        if section in _SCHEMA:
            raise ConfigError(f"[{section}]: a connector's section is named like the core's")
        sections[section] = {k.name: (k.default, _validator(k), k.env, k.description) for k in keys}
    sections["webhooks"] = _SCHEMA["webhooks"]
    return sections


@dataclass(frozen=True)
class GeneralConfig:
    timezone: str = "UTC"
    log_level: str = "INFO"
    milestone_hours: tuple[int, ...] = (10, 50, 100, 500, 1000)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class DiscordConfig:
    token: str = ""
    dev_guild_id: int = 0
    api_base_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    client_id: str = ""
    client_secret: str = ""
    authorize_url: str = "https://discord.com/oauth2/authorize"
    shard_count: int = 0
    shard_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.shard_ids and not self.shard_count:
            raise ConfigError(
                "discord.shard_ids: needs discord.shard_count (how many shards all the"
                " processes run together)"
            )
        if self.shard_ids and self.shard_ids[-1] >= self.shard_count:
            raise ConfigError(
                f"discord.shard_ids: shard {self.shard_ids[-1]} is not below shard_count"
                f" {self.shard_count} (shard ids count from 0)"
            )


@dataclass(frozen=True)
class LinkedRolesConfig:
    guild_id: int = 0


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    rate_limit_per_minute: int = 0
    metrics_token: str = ""
    access_log: bool = False
    keepalive_seconds: float = 75.0
    body_timeout_seconds: float = 10.0

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class DatabaseConfig:
    path: str = "data/questlog.sqlite3"
    url: str = field(default="", repr=False)  # PostgreSQL (may hold a password); empty: SQLite
    synchronous: str = "normal"
    raw_payload_days: int = 30
    feed_history_days: int = 90
    #: The relative path as written in the config file, when ``path`` was resolved against
    #: the file's folder (earlier releases took it from the current directory).
    written_path: str | None = None


class Section:
    """A connector's config section: its keys as attributes (``config.steam.api_key``)."""

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self._name = name
        self._values = dict(values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"[{self._name}] has no key {key!r}") from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Section) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"Section({self._name!r}, {self._values!r})"


@dataclass(frozen=True)
class PresenceConfig:
    enabled: bool = False
    pause_when_idle: bool = True
    max_session_hours: int = 12
    min_session_seconds: int = 120
    flush_seconds: int = 60
    disconnect_grace_seconds: int = 120


@dataclass(frozen=True)
class SecurityConfig:
    secret_key: str = ""


@dataclass(frozen=True)
class WebhooksConfig:
    tolerance_seconds: int = 300
    rotate_grace_hours: float = 24.0


@dataclass(frozen=True)
class Config:
    general: GeneralConfig = field(default_factory=GeneralConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    web: WebConfig = field(default_factory=WebConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    linked_roles: LinkedRolesConfig = field(default_factory=LinkedRolesConfig)
    presence: PresenceConfig = field(default_factory=PresenceConfig)
    #: The connectors' sections, by name (also reachable as attributes: ``config.steam``).
    connectors: Mapping[str, Section] = field(default_factory=dict)
    source: Path | None = None  # the file it was read from, when one existed

    def __getattr__(self, name: str) -> Section:
        connectors = self.__dict__.get("connectors", {})
        if name in connectors:
            return connectors[name]
        raise AttributeError(f"no config section [{name}]")

    def section(self, name: str) -> Section:
        return self.connectors[name]


_SECTION_TYPES: dict[str, type] = {
    "general": GeneralConfig,
    "discord": DiscordConfig,
    "web": WebConfig,
    "database": DatabaseConfig,
    "webhooks": WebhooksConfig,
    "security": SecurityConfig,
    "linked_roles": LinkedRolesConfig,
    "presence": PresenceConfig,
}


def schema(registry: Registry | None = None) -> Mapping[str, Mapping[str, Any]]:
    """Section -> key -> default, for documentation checks."""
    return {
        s: {k: list(spec[0]) if isinstance(spec[0], tuple) else spec[0] for k, spec in keys.items()}
        for s, keys in _schema(registry or default_config_registry()).items()
    }


def default_config_registry() -> Registry:
    """The connectors found in connectors/ (whose sections config.toml may hold)."""
    return Registry().discover()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


EXAMPLE_HEADER = """\
# Questlog configuration. Copy to config.toml and change what you need; every key below shows
# its default, and a missing config.toml means "all defaults". Secrets can also come from the
# environment, which wins over this file: {variables}.
# A bad value stops start-up with one line naming the key.
"""


def example_toml(registry: Registry | None = None) -> str:
    """config-example.toml: every section and key with its default and what it does, the
    connectors' sections included (``questlog config example`` prints it)."""
    sections = _schema(registry or default_config_registry())
    variables = [env for keys in sections.values() for (_, _, env, _) in keys.values() if env]
    lines = [EXAMPLE_HEADER.format(variables=", ".join(variables))]
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        for key, (default, _check, _env, description) in keys.items():
            lines.extend(f"# {line}".rstrip() for line in description.splitlines())
            lines.append(f"{key} = {_toml_value(default)}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def parse_config(
    data: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    source: Path | None = None,
    registry: Registry | None = None,
) -> Config:
    env = os.environ if env is None else env
    sections_schema = _schema(registry or default_config_registry())
    for section, body in data.items():
        if section not in sections_schema:
            raise ConfigError(f"[{section}]: unknown section (known: {', '.join(sections_schema)})")
        if not isinstance(body, dict):
            raise ConfigError(f"[{section}]: expected a table")
        for key in body:
            if key not in sections_schema[section]:
                raise ConfigError(f"{section}.{key}: unknown key")
    core: dict[str, Any] = {}
    connectors: dict[str, Section] = {}
    for section, keys in sections_schema.items():
        values: dict[str, Any] = {}
        given = data.get(section, {})
        for key, (default, check, env_name, _description) in keys.items():
            name = f"{section}.{key}"
            if env_name and env.get(env_name):
                values[key] = check(f"{name} (from ${env_name})", env[env_name])
            elif key in given:
                values[key] = check(name, given[key])
            else:
                values[key] = default
        if section in _SECTION_TYPES:
            core[section] = _SECTION_TYPES[section](**values)
        else:
            connectors[section] = Section(section, values)
    return Config(**core, connectors=connectors, source=source)


def load_config(
    path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> Config:
    """Read PATH (default ./config.toml). A missing file means every default."""
    file = Path(path) if path is not None else Path("config.toml")
    if not file.exists():
        return parse_config({}, env)
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror})") from None
    config = parse_config(data, env, source=file)
    return resolve_paths(config)


def resolve_paths(config: Config) -> Config:
    """A relative ``[database] path`` is taken from the folder of the config file in use (so
    every command finds the same database wherever it is run from); without a config file it
    stays relative to the current directory."""
    written = Path(config.database.path)
    if config.source is None or written.is_absolute() or str(written) == ":memory:":
        return config
    resolved = (config.source.resolve().parent / written).resolve()
    database = dataclasses.replace(
        config.database, path=str(resolved), written_path=config.database.path
    )
    return dataclasses.replace(config, database=database)
