"""Configuration: one TOML file, environment overrides for secrets, validated once at start-up.

Every key, its type and its default is declared in ``_SCHEMA`` below; config-example.toml documents
the same keys (tests/test_config.py checks the two agree). A bad value raises ``ConfigError`` whose
message is one line naming the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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


def _host(key: str, value: Any) -> str:
    text = _string(key, value).strip()
    if not text:
        raise ConfigError(f"{key}: must not be empty")
    return text


# section -> key -> (default, validator, environment variable that overrides it)
_SCHEMA: dict[str, dict[str, tuple[Any, Callable[[str, Any], Any], str | None]]] = {
    "general": {
        "timezone": ("UTC", _timezone, None),
        "log_level": ("INFO", _log_level, None),
        "milestone_hours": ((10, 50, 100, 500, 1000), _hours_list, None),
    },
    "discord": {
        "token": ("", _string, "DISCORD_TOKEN"),
        "dev_guild_id": (0, _int_range(0, 2**63 - 1), None),
        "api_base_url": ("https://discord.com/api/v10", _url(allow_empty=False), None),
        "gateway_url": ("wss://gateway.discord.gg/", _ws_url, None),
    },
    "web": {
        "host": ("127.0.0.1", _host, None),
        "port": (8080, _int_range(0, 65535), None),
        "public_url": ("", _url(allow_empty=True), None),
        "rate_limit_per_minute": (0, _int_range(0, 1_000_000), None),
        "metrics_token": ("", _string, "QUESTLOG_METRICS_TOKEN"),
        "access_log": (False, _boolean, None),
    },
    "database": {
        "path": ("data/questlog.sqlite3", _string, None),
    },
    "steam": {
        "api_key": ("", _string, "STEAM_API_KEY"),
        "api_base_url": ("https://api.steampowered.com", _url(allow_empty=False), None),
        "daily_call_limit": (100_000, _int_range(1, 10_000_000), None),
        "requests_per_second": (5.0, _number_range(0.1, 1000), None),
        "timeout_seconds": (10.0, _number_range(0.5, 120), None),
        "max_concurrency": (8, _int_range(1, 64), None),
        "retry_backoff_seconds": (0.5, _number_range(0, 60), None),
        "sync_enabled": (True, _boolean, None),
        "sync_interval_seconds": (300, _int_range(60, 7 * 86_400), None),
    },
    "battlemetrics": {
        "tolerance_seconds": (300, _int_range(1, 86_400), None),
    },
    "webhooks": {
        "tolerance_seconds": (300, _int_range(1, 86_400), None),
        "rotate_grace_hours": (24.0, _number_range(0, 24 * 90), None),
    },
}


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


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    rate_limit_per_minute: int = 0
    metrics_token: str = ""
    access_log: bool = False

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class DatabaseConfig:
    path: str = "data/questlog.sqlite3"


@dataclass(frozen=True)
class SteamConfig:
    api_key: str = ""
    api_base_url: str = "https://api.steampowered.com"
    daily_call_limit: int = 100_000
    requests_per_second: float = 5.0
    timeout_seconds: float = 10.0
    max_concurrency: int = 8
    retry_backoff_seconds: float = 0.5
    sync_enabled: bool = True
    sync_interval_seconds: int = 300


@dataclass(frozen=True)
class BattleMetricsConfig:
    tolerance_seconds: int = 300


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
    steam: SteamConfig = field(default_factory=SteamConfig)
    battlemetrics: BattleMetricsConfig = field(default_factory=BattleMetricsConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    source: Path | None = None  # the file it was read from, when one existed


_SECTION_TYPES: dict[str, type] = {
    "general": GeneralConfig,
    "discord": DiscordConfig,
    "web": WebConfig,
    "database": DatabaseConfig,
    "steam": SteamConfig,
    "battlemetrics": BattleMetricsConfig,
    "webhooks": WebhooksConfig,
}


def schema() -> Mapping[str, Mapping[str, Any]]:
    """Section -> key -> default, for documentation checks."""
    return {
        s: {k: list(spec[0]) if isinstance(spec[0], tuple) else spec[0] for k, spec in keys.items()}
        for s, keys in _SCHEMA.items()
    }


def parse_config(
    data: Mapping[str, Any], env: Mapping[str, str] | None = None, source: Path | None = None
) -> Config:
    env = os.environ if env is None else env
    for section, body in data.items():
        if section not in _SCHEMA:
            raise ConfigError(f"[{section}]: unknown section (known: {', '.join(_SCHEMA)})")
        if not isinstance(body, dict):
            raise ConfigError(f"[{section}]: expected a table")
        for key in body:
            if key not in _SCHEMA[section]:
                raise ConfigError(f"{section}.{key}: unknown key")
    sections: dict[str, Any] = {}
    for section, keys in _SCHEMA.items():
        values: dict[str, Any] = {}
        given = data.get(section, {})
        for key, (default, check, env_name) in keys.items():
            name = f"{section}.{key}"
            if env_name and env.get(env_name):
                values[key] = check(f"{name} (from ${env_name})", env[env_name])
            elif key in given:
                values[key] = check(name, given[key])
            else:
                values[key] = default
        sections[section] = _SECTION_TYPES[section](**values)
    return Config(**sections, source=source)


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
    return parse_config(data, env, source=file)
