"""A small async client for the three Steam Web API calls Questlog needs.

* ``IPlayerService/GetOwnedGames/v1`` filtered to one app (a player's total playtime in a game),
  or the whole library (the Steam sync).
* ``ISteamUser/GetPlayerSummaries/v2``: persona names, profile URLs, avatars, visibility.
* ``ISteamUser/ResolveVanityURL/v1``: a custom profile URL name to a SteamID64.

How Steam answers (see ``tests/data/steam/SOURCES.md`` for the sources):

* A private profile, or public profile with private game details, gets HTTP 200 with
  ``{"response":{}}`` from GetOwnedGames; some keyed endpoints answer a JSON 403
  ``{"playerstats":{"error":"Profile is not public",...}}`` instead. Both are
  :class:`PrivateProfile`.
* A bad key gets an **HTML** 403 page, a missing key an HTML 400; both are :class:`InvalidKey`.
* 429 carries no documented ``Retry-After``: we back off exponentially with jitter and give up
  with :class:`RateLimited` after ``max_attempts``.

Every HTTP attempt, retries included, first takes one call from the daily :class:`CallBudget` and
then waits for the client-side rate limiter. The API key travels in the query string, so it is
kept out of exception messages and redacted from httpx's request log lines.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from connectors.steam.errors import (
    InvalidKey,
    NotConfigured,
    PrivateProfile,
    RateLimited,
    SteamError,
    Unavailable,
    VanityNotFound,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.steampowered.com"
#: GetPlayerSummaries accepts at most 100 comma-separated SteamIDs per call.
SUMMARIES_BATCH_SIZE = 100
#: ``communityvisibilitystate`` of a public profile; in practice Steam only returns 1 or 3.
VISIBILITY_PUBLIC = 3
#: ResolveVanityURL's ``success`` value for "No match".
VANITY_NO_MATCH = 42

_USER_AGENT = "Questlog/0.1 (Steam Web API client; httpx)"
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)
_KEY_WORD = re.compile(r"\bkey\b", re.IGNORECASE)
_KEY_PARAM = re.compile(r"(?i)([?&]key=)[^&\s\"'<>]*")
_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")


# --------------------------------------------------------------------------- budget


class CallBudget(Protocol):
    """The shared daily allowance of Steam Web API calls (Valve allows 100,000 a day)."""

    async def reserve(self) -> bool:
        """Take one call: True means a call may be made now, False that today's budget is spent."""
        ...


class MemoryBudget:
    """An in-memory :class:`CallBudget` for tests and the CLI: ``limit`` calls, never refilled."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.limit = limit
        self.used = 0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    async def reserve(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class OwnedGame:
    app_id: int
    playtime_forever_minutes: int
    name: str | None = None

    @property
    def playtime_seconds(self) -> int:
        """Steam reports whole minutes; the rest of Questlog counts seconds."""
        return self.playtime_forever_minutes * 60


@dataclass(frozen=True)
class PlayerSummary:
    steam_id: str
    persona_name: str
    profile_url: str | None
    avatar_url: str | None
    #: ``communityvisibilitystate``: 1 = private (or friends only), 3 = public.
    visibility: int
    #: ``gameid``: the app the player is in right now, when Steam shows it (public, not invisible).
    game_id: int | None = None
    #: ``personastate``: 0 offline (or invisible), 1 online, 2 busy, 3 away, ...
    persona_state: int = 0
    #: ``lastlogoff``: Unix seconds of the last log-off, when Steam shows it.
    last_logoff: int | None = None

    @property
    def public(self) -> bool:
        return self.visibility == VISIBILITY_PUBLIC


@dataclass(frozen=True)
class Unlock:
    """One of a player's achievements in a game."""

    api_name: str
    achieved: bool
    unlock_time: int | None  # Unix seconds; older answers carry none


@dataclass(frozen=True)
class AchievementInfo:
    """What GetSchemaForGame says about an achievement (in the requested language)."""

    api_name: str
    display_name: str
    description: str | None
    icon: str | None
    hidden: bool


@dataclass(frozen=True)
class _Endpoint:
    name: str
    path: str
    #: Whether a JSON 403 "Profile is not public" from this endpoint means a private profile.
    #: GetPlayerSummaries and ResolveVanityURL never answer 403 for privacy.
    privacy_403: bool


_OWNED_GAMES = _Endpoint("GetOwnedGames", "/IPlayerService/GetOwnedGames/v1/", privacy_403=True)
_SUMMARIES = _Endpoint("GetPlayerSummaries", "/ISteamUser/GetPlayerSummaries/v2/", False)
_RESOLVE_VANITY = _Endpoint("ResolveVanityURL", "/ISteamUser/ResolveVanityURL/v1/", False)
_PLAYER_ACHIEVEMENTS = _Endpoint(
    "GetPlayerAchievements", "/ISteamUserStats/GetPlayerAchievements/v1/", privacy_403=True
)
_SCHEMA = _Endpoint("GetSchemaForGame", "/ISteamUserStats/GetSchemaForGame/v2/", False)
_PERCENTAGES = _Endpoint(
    "GetGlobalAchievementPercentagesForApp",
    "/ISteamUserStats/GetGlobalAchievementPercentagesForApp/v2/",
    False,
)


# --------------------------------------------------------------------------- rate limiter


class _RateLimiter:
    """At most ``rate`` calls per second, spaced evenly: a token bucket holding one token.

    Each call reserves the next free slot (``1/rate`` seconds after the previous one) and
    sleeps until it comes, so calls are never closer than ``1/rate`` seconds: no bursts. Steam is
    suspected to enforce an unadvertised per-IP limit of about 5 requests per second on top of
    the daily allowance. Reserving a slot needs no lock: nothing awaits between the read and the
    write of ``_next_slot``.
    """

    def __init__(
        self,
        rate: float,
        *,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._interval = 1.0 / rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._next_slot = monotonic()

    async def acquire(self) -> None:
        now = self._monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)


# --------------------------------------------------------------------------- key redaction


class _RedactSecrets(logging.Filter):
    """Removes API keys from httpx's ``HTTP Request: GET https://…?key=…`` log lines."""

    def __init__(self) -> None:
        super().__init__("")
        self._secrets: Counter[str] = Counter()

    def add(self, secret: str) -> None:
        self._secrets[secret] += 1

    def discard(self, secret: str) -> None:
        self._secrets[secret] -= 1
        if self._secrets[secret] <= 0:
            del self._secrets[secret]

    def redact(self, text: str) -> str:
        text = _KEY_PARAM.sub(r"\1***", text)
        for secret in self._secrets:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_REDACTOR = _RedactSecrets()
logging.getLogger("httpx").addFilter(_REDACTOR)


# --------------------------------------------------------------------------- the client


class SteamClient:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        budget: CallBudget | None = None,
        timeout: float = 10.0,
        requests_per_second: float = 5.0,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if backoff_base < 0:
            raise ValueError("backoff_base must not be negative")
        self._api_key = (api_key or "").strip()
        self._budget = budget
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._sleep = sleep
        self._limiter = _RateLimiter(requests_per_second, monotonic=monotonic, sleep=sleep)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            transport=transport,
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )
        self._closed = False
        self._owns_http = True
        if self._api_key:
            _REDACTOR.add(self._api_key)

    def with_budget(self, budget: CallBudget | None) -> SteamClient:
        """A client for another purpose: it shares this one's connections and pacing (one rate
        limit for every caller, as Steam counts per key and IP) but takes its calls from
        ``budget``. Closing it closes nothing; close the client it came from."""
        view = copy.copy(self)
        view._budget = budget
        view._owns_http = False
        return view

    def __repr__(self) -> str:  # never show the key
        return f"<SteamClient base_url={str(self._http.base_url)!r} configured={self.configured}>"

    @property
    def configured(self) -> bool:
        return bool(self._api_key)

    async def __aenter__(self) -> SteamClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._owns_http:
            return
        await self._http.aclose()
        if self._api_key:
            _REDACTOR.discard(self._api_key)

    # ------------------------------------------------------------------ public calls

    async def get_owned_game(self, steam_id: str, app_id: int) -> OwnedGame | None:
        """The player's entry for ``app_id``, or None when they do not own it.

        Raises :class:`PrivateProfile` when Steam hides the library (``{"response":{}}``).
        """
        self._require_key()
        if isinstance(app_id, bool) or not isinstance(app_id, int) or app_id <= 0:
            raise ValueError("app_id must be a positive integer")
        params = {
            "steamid": steam_id.strip(),
            "appids_filter[0]": str(app_id),
            # include_appinfo adds the game's name; with a one-app filter it costs nothing.
            "include_appinfo": "1",
            "include_played_free_games": "1",
        }
        for game in _owned_games(await self._call(_OWNED_GAMES, params)):
            # Steam honours appids_filter, but match by appid anyway in case it did not.
            if game.app_id == app_id:
                return game
        return None

    async def get_owned_games(self, steam_id: str) -> list[OwnedGame]:
        """Every game in the player's library with its total playtime (one call).

        Raises :class:`PrivateProfile` when Steam hides the library (``{"response":{}}``).
        """
        self._require_key()
        params = {
            "steamid": steam_id.strip(),
            "include_appinfo": "1",
            "include_played_free_games": "1",
        }
        return _owned_games(await self._call(_OWNED_GAMES, params))

    async def get_player_achievements(self, steam_id: str, app_id: int) -> list[Unlock]:
        """The player's achievements in a game; empty when the game has no achievements.

        Raises :class:`PrivateProfile` for the JSON 403 "Profile is not public".
        """
        self._require_key()
        params = {"steamid": steam_id.strip(), "appid": str(int(app_id))}
        try:
            data = await self._call(_PLAYER_ACHIEVEMENTS, params)
        except Unavailable as exc:
            # HTTP 400 {"playerstats":{"error":"Requested app has no stats",...}}: nothing to track.
            if exc.http_status == 400 and "no stats" in str(exc).lower():
                return []
            raise
        stats = data.get("playerstats") if isinstance(data, dict) else None
        if not isinstance(stats, dict):
            raise _malformed(_PLAYER_ACHIEVEMENTS, "no 'playerstats' object")
        entries = stats.get("achievements", [])
        if not isinstance(entries, list):
            raise _malformed(_PLAYER_ACHIEVEMENTS, "'achievements' is not a list")
        unlocks = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("apiname"), str):
                raise _malformed(_PLAYER_ACHIEVEMENTS, "an achievement has no 'apiname'")
            unlocks.append(
                Unlock(
                    api_name=entry["apiname"],
                    achieved=_as_int(entry.get("achieved")) == 1,
                    unlock_time=_as_int(entry.get("unlocktime")) or None,
                )
            )
        return unlocks

    async def get_schema_for_game(
        self, app_id: int, language: str = "english"
    ) -> dict[str, AchievementInfo]:
        """Display names, descriptions and icons of a game's achievements, by API name."""
        self._require_key()
        data = await self._call(_SCHEMA, {"appid": str(int(app_id)), "l": language})
        game = data.get("game") if isinstance(data, dict) else None
        stats = game.get("availableGameStats") if isinstance(game, dict) else None
        entries = stats.get("achievements", []) if isinstance(stats, dict) else []
        if not isinstance(entries, list):
            raise _malformed(_SCHEMA, "'achievements' is not a list")
        schema = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            display = entry.get("displayName")
            schema[entry["name"]] = AchievementInfo(
                api_name=entry["name"],
                display_name=display if isinstance(display, str) and display else entry["name"],
                description=_optional_str(entry.get("description")),
                icon=_optional_str(entry.get("icon")),
                hidden=_as_int(entry.get("hidden")) == 1,
            )
        return schema

    async def get_global_achievement_percentages(self, app_id: int) -> dict[str, float]:
        """Share of all players (in %) who unlocked each achievement, by API name."""
        self._require_key()
        data = await self._call(_PERCENTAGES, {"gameid": str(int(app_id))})
        wrapper = data.get("achievementpercentages") if isinstance(data, dict) else None
        entries = wrapper.get("achievements", []) if isinstance(wrapper, dict) else []
        if not isinstance(entries, list):
            raise _malformed(_PERCENTAGES, "'achievements' is not a list")
        found = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            raw = entry.get("percent")
            try:  # a number, or (in newer answers) a string holding one
                percent = float(raw) if not isinstance(raw, bool) else None
            except (TypeError, ValueError):
                percent = None
            if percent is not None and 0.0 <= percent <= 100.0:
                found[entry["name"]] = percent
        return found

    async def get_player_summaries(self, steam_ids: Sequence[str]) -> dict[str, PlayerSummary]:
        """Summaries by SteamID64, in batches of 100 ids per call. Unknown ids are left out."""
        self._require_key()
        if isinstance(steam_ids, str):
            raise TypeError("steam_ids must be a sequence of SteamID64 strings, not one string")
        ids = list(dict.fromkeys(s.strip() for s in steam_ids if s and s.strip()))
        summaries: dict[str, PlayerSummary] = {}
        for start in range(0, len(ids), SUMMARIES_BATCH_SIZE):
            batch = ids[start : start + SUMMARIES_BATCH_SIZE]
            data = await self._call(_SUMMARIES, {"steamids": ",".join(batch)})
            players = _response_object(data, _SUMMARIES).get("players", [])
            if not isinstance(players, list):
                raise _malformed(_SUMMARIES, "'players' is not a list")
            for entry in players:
                summary = _player_summary(entry)
                summaries[summary.steam_id] = summary
        return summaries

    async def resolve_vanity(self, vanity: str) -> str:
        """The SteamID64 behind a custom profile URL name (``steamcommunity.com/id/<vanity>``).

        Steam can return a group's id for a name; it is returned as given and the caller checks
        it is an individual SteamID64.
        """
        self._require_key()
        name = vanity.strip()
        if not name:
            raise VanityNotFound("the custom URL name is empty")
        data = await self._call(_RESOLVE_VANITY, {"vanityurl": name})
        response = _response_object(data, _RESOLVE_VANITY)
        success = _as_int(response.get("success"))
        if success == VANITY_NO_MATCH:
            raise VanityNotFound(
                f"no Steam profile has the custom URL {_shorten(name)!r}", http_status=200
            )
        if success != 1:
            raise _malformed(
                _RESOLVE_VANITY, f"unexpected success value {response.get('success')!r}"
            )
        steam_id = response.get("steamid")
        if isinstance(steam_id, int) and not isinstance(steam_id, bool):
            steam_id = str(steam_id)
        if not isinstance(steam_id, str) or not _DIGITS.fullmatch(steam_id):
            raise _malformed(_RESOLVE_VANITY, "success 1 without a numeric 'steamid'")
        return steam_id

    # ------------------------------------------------------------------ plumbing

    def _require_key(self) -> None:
        if not self.configured:
            raise NotConfigured("no Steam Web API key is configured")

    def _backoff(self, retry: int) -> float:
        """Delay before retry number ``retry`` (0 for the first): exponential with jitter."""
        return self._backoff_base * 2**retry * random.uniform(0.5, 1.5)

    async def _call(self, endpoint: _Endpoint, params: dict[str, str]) -> Any:
        """One logical call: budget, rate limit, retries; returns the decoded JSON of a 200."""
        self._require_key()
        query = {"key": self._api_key, **params, "format": "json"}
        failure: SteamError | None = None
        for attempt in range(self._max_attempts):
            if failure is not None:
                delay = self._backoff(attempt - 1)
                log.info(
                    "Steam %s attempt %d/%d failed (%s); retrying in %.2f s",
                    endpoint.name,
                    attempt,
                    self._max_attempts,
                    failure,
                    delay,
                )
                await self._sleep(delay)
            if self._budget is not None and not await self._budget.reserve():
                raise RateLimited(
                    "today's Steam Web API call budget is spent; Steam was not called",
                    local=True,
                )
            await self._limiter.acquire()
            try:
                response = await self._http.get(endpoint.path, params=query)
            except httpx.TimeoutException:
                failure = Unavailable(
                    f"Steam {endpoint.name} did not answer within {self._timeout:g} s"
                )
                continue
            except httpx.TransportError as exc:
                failure = Unavailable(
                    f"could not reach Steam {endpoint.name}: {self._describe(exc)}"
                )
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise Unavailable(
                    f"Steam {endpoint.name} request failed: {self._describe(exc)}"
                ) from None
            status = response.status_code
            if status == 429:
                failure = RateLimited(
                    f"Steam {endpoint.name} answered HTTP 429 Too Many Requests", http_status=429
                )
                continue
            if status >= 500:
                failure = Unavailable(
                    f"Steam {endpoint.name} answered HTTP {status}", http_status=status
                )
                continue
            return self._interpret(endpoint, response)
        assert failure is not None
        raise failure

    def _interpret(self, endpoint: _Endpoint, response: httpx.Response) -> Any:
        status = response.status_code
        try:
            data: Any = json.loads(response.content)
            is_json = True
        except ValueError:  # includes UnicodeDecodeError
            data, is_json = None, False
        if status == 200:
            if not is_json:
                raise Unavailable(
                    f"Steam {endpoint.name} answered HTTP 200 with a body that is not JSON",
                    http_status=status,
                )
            return data
        text = response.content.decode("utf-8", "replace")
        if status == 403 and is_json and endpoint.privacy_403:
            if "profile is not public" in text.lower():
                raise PrivateProfile("the Steam profile is not public", http_status=status)
        if status in (401, 403):
            raise InvalidKey(
                f"Steam refused the Web API key (HTTP {status} from {endpoint.name})",
                http_status=status,
            )
        if status == 400 and not is_json and _KEY_WORD.search(text):
            raise InvalidKey(
                f"Steam says the Web API key is missing or malformed (HTTP 400 from "
                f"{endpoint.name})",
                http_status=status,
            )
        raise Unavailable(
            f"Steam {endpoint.name} answered HTTP {status} unexpectedly: {self._snippet(text)!r}",
            http_status=status,
        )

    def _describe(self, exc: Exception) -> str:
        detail = self._redact(str(exc))
        name = type(exc).__name__
        return f"{name}: {detail}" if detail else name

    def _snippet(self, text: str) -> str:
        plain = _SPACES.sub(" ", _TAGS.sub(" ", text)).strip()
        return _shorten(self._redact(plain), 160)

    def _redact(self, text: str) -> str:
        text = _KEY_PARAM.sub(r"\1***", text)
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text


# --------------------------------------------------------------------------- parsing helpers


def _malformed(endpoint: _Endpoint, detail: str) -> Unavailable:
    return Unavailable(f"Steam {endpoint.name} answered an unexpected body: {detail}")


def _response_object(data: Any, endpoint: _Endpoint) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _malformed(endpoint, "the JSON is not an object")
    response = data.get("response")
    if not isinstance(response, dict):
        raise _malformed(endpoint, "no 'response' object")
    return response


def _as_int(value: Any) -> int | None:
    """A JSON integer (Steam sometimes writes numbers as strings of digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    return None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _player_summary(entry: Any) -> PlayerSummary:
    if not isinstance(entry, dict):
        raise _malformed(_SUMMARIES, "a 'players' entry is not an object")
    raw_id = entry.get("steamid")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not _DIGITS.fullmatch(raw_id):
        raise _malformed(_SUMMARIES, "a player has no numeric 'steamid'")
    visibility = _as_int(entry.get("communityvisibilitystate"))
    persona = entry.get("personaname")
    return PlayerSummary(
        steam_id=raw_id,
        persona_name=persona if isinstance(persona, str) else "",
        profile_url=_optional_str(entry.get("profileurl")),
        avatar_url=(
            _optional_str(entry.get("avatarfull"))
            or _optional_str(entry.get("avatarmedium"))
            or _optional_str(entry.get("avatar"))
        ),
        # Missing visibility is treated as private: never show what Steam did not call public.
        visibility=visibility if visibility is not None else 1,
        game_id=_steam_app(entry.get("gameid")),
        persona_state=_as_int(entry.get("personastate")) or 0,
        last_logoff=_as_int(entry.get("lastlogoff")),
    )


def _owned_games(data: Any) -> list[OwnedGame]:
    """The games of a GetOwnedGames answer. The documented private answer is HTTP 200 with an
    empty ``response`` object: :class:`PrivateProfile`."""
    response = _response_object(data, _OWNED_GAMES)
    if "game_count" not in response and "games" not in response:
        raise PrivateProfile("the Steam profile's game details are not public", http_status=200)
    games = response.get("games", [])
    if not isinstance(games, list):
        raise _malformed(_OWNED_GAMES, "'games' is not a list")
    owned = []
    for entry in games:
        if not isinstance(entry, dict):
            raise _malformed(_OWNED_GAMES, "a 'games' entry is not an object")
        app_id = _as_int(entry.get("appid"))
        minutes = _as_int(entry.get("playtime_forever"))
        if app_id is None or app_id <= 0 or minutes is None or minutes < 0:
            raise _malformed(_OWNED_GAMES, "a game has no valid 'appid' or 'playtime_forever'")
        name = entry.get("name")
        owned.append(
            OwnedGame(
                app_id=app_id,
                playtime_forever_minutes=minutes,
                name=name if isinstance(name, str) and name else None,
            )
        )
    return owned


def _steam_app(value: Any) -> int | None:
    """A Steam app id from ``gameid``. A game added to Steam as a non-Steam shortcut gets a
    64-bit id (top bit set) for which Steam keeps no playtime: treated as no Steam game."""
    app = _as_int(value)
    return app if app is not None and 0 < app < 2**32 else None


def _shorten(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "DEFAULT_BASE_URL",
    "SUMMARIES_BATCH_SIZE",
    "AchievementInfo",
    "CallBudget",
    "MemoryBudget",
    "OwnedGame",
    "PlayerSummary",
    "SteamClient",
    "Unlock",
]
