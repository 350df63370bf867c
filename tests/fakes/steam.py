"""A fake Steam Web API served by aiohttp on 127.0.0.1 (random port), built from real bodies.

    async with FakeSteam() as steam:
        client = SteamClient(steam.api_key, base_url=steam.base_url)
        steam.fail_next("GetOwnedGames", [429, 500])  # then normal answers
        ...
        assert steam.calls["GetOwnedGames"] == 3

The fixtures and ``SOURCES.md`` explaining each are in ``tests/data/steam/``. What the fake does,
and where it follows the real service:

* Routes ``/IPlayerService/GetOwnedGames/v1/``, ``/ISteamUser/GetPlayerSummaries/v2/`` and
  ``/ISteamUser/ResolveVanityURL/v1/``, with or without the trailing slash.
* Key check on every route: no ``key`` -> HTTP 400 HTML "Required parameter 'key' is missing";
  a wrong key -> HTTP 403 with the real HTML page (``any_endpoint-error_bad_key_http403.html``).
* JSON is served as ``application/json; charset=UTF-8`` (the content type recorded in the
  ValvePython/steam cassette).
* A private library is HTTP 200 ``{"response":{}}`` (the real body); steamids in
  :attr:`FakeSteam.not_public_403` get the real JSON 403 "Profile is not public" instead.
* 429 answers carry no ``Retry-After`` (Steam documents none) and a short HTML body; no real 429
  body is known, so that body is ours.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "steam"

#: The valid key of a fresh FakeSteam: 32 upper-case hex digits, the shape of real keys.
VALID_KEY = "0123456789ABCDEF0123456789ABCDEF"

# SteamID64s. ROBIN_ID and SAPHYEL_ID are the players of the summary fixtures; which account the
# 487-game library fixture belongs to is not recorded, we give it to Robin.
ROBIN_ID = "76561197960435530"  # 487 games (2015 field set) + public summary, vanity robinwalker
SAPHYEL_ID = "76561198109613067"  # 1 game (Grim Dawn, 2019) + public summary, vanity Saphyel
MODERN_ID = "76561198000000001"  # the modern-fields library (2 games); no summary
PRIVATE_ID = "76561198000000002"  # GetOwnedGames answers 200 {"response":{}}
NOT_PUBLIC_403_ID = "76561198000000003"  # GetOwnedGames answers the JSON 403
VALVE_GROUP_ID = "103582791429521412"  # the group id ResolveVanityURL gives for "valve"

ENDPOINTS: dict[str, str] = {
    "GetOwnedGames": "/IPlayerService/GetOwnedGames/v1/",
    "GetPlayerSummaries": "/ISteamUser/GetPlayerSummaries/v2/",
    "ResolveVanityURL": "/ISteamUser/ResolveVanityURL/v1/",
    "GetPlayerAchievements": "/ISteamUserStats/GetPlayerAchievements/v1/",
    "GetSchemaForGame": "/ISteamUserStats/GetSchemaForGame/v2/",
    "GetGlobalAchievementPercentagesForApp": (
        "/ISteamUserStats/GetGlobalAchievementPercentagesForApp/v2/"
    ),
}

MAX_SUMMARY_IDS = 100
JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
# Fields include_appinfo adds (compare GetOwnedGames_v1-no_appinfo_public.json with the others).
APPINFO_FIELDS = frozenset({"name", "img_icon_url", "img_logo_url", "has_community_visible_stats"})

_TOO_MANY_REQUESTS_HTML = (
    b"<html><head><title>Too Many Requests</title></head>"
    b"<body><h1>Too Many Requests</h1></body></html>"
)
_SERVER_ERROR_HTML = (
    b"<html><head><title>Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1></body></html>"
)


GRIM_DAWN_APP = 219990  # the game of the 2019 achievement and schema fixtures


def _achievements(name: str) -> list[dict[str, Any]]:
    return list(fixture_json(name)["playerstats"]["achievements"])


def _schema(name: str) -> list[dict[str, Any]]:
    return list(fixture_json(name)["game"]["availableGameStats"]["achievements"])


def fixture_bytes(name: str) -> bytes:
    return (DATA_DIR / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def _bad_request_html(parameter: str) -> bytes:
    return (
        "<html><head><title>Bad Request</title></head><body><h1>Bad Request</h1>"
        f"Required parameter '{parameter}' is missing</body></html>"
    ).encode()


def _json(body: Any, status: int = 200) -> web.Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return web.Response(status=status, body=data, headers={"Content-Type": JSON_TYPE})


def _raw(body: bytes, status: int, content_type: str) -> web.Response:
    return web.Response(status=status, body=body, headers={"Content-Type": content_type})


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"1", "true"}


@dataclass
class RecordedRequest:
    endpoint: str
    path: str
    #: The query string (last value per name). Includes ``key``: never print it in real logs.
    params: dict[str, str]
    #: The status answered; 0 while the answer is pending.
    status: int = 0


class FakeSteam:
    """The fake Steam Web API. All state is public and may be changed between requests."""

    def __init__(self, *, api_key: str = VALID_KEY) -> None:
        self.api_key = api_key
        #: steamid -> owned games (GetOwnedGames entries with include_appinfo fields).
        self.players: dict[str, list[dict[str, Any]]] = {
            ROBIN_ID: _games("GetOwnedGames_v1-include_appinfo_487games_2015.json"),
            SAPHYEL_ID: _games("GetOwnedGames_v1-include_appinfo_1game_2019.json"),
            MODERN_ID: _games("GetOwnedGames_v1-include_appinfo_modern_fields_UNATTRIBUTED.json"),
        }
        #: steamid -> GetPlayerSummaries entry. Only these (and only when public) are returned.
        self.summaries: dict[str, dict[str, Any]] = {
            ROBIN_ID: _players("GetPlayerSummaries_v2-success_public_robinwalker_2015.json")[0],
            SAPHYEL_ID: _players("GetPlayerSummaries_v2-success_public_2019.json")[0],
        }
        #: GetOwnedGames answers 200 {"response":{}} for these.
        self.private: set[str] = {PRIVATE_ID}
        #: GetOwnedGames answers the JSON 403 "Profile is not public" for these.
        self.not_public_403: set[str] = {NOT_PUBLIC_403_ID}
        #: Custom URL name -> steamid, matched case-insensitively. A group id may be a value.
        self.vanities: dict[str, str] = {
            "robinwalker": ROBIN_ID,
            "saphyel": SAPHYEL_ID,
            "valve": VALVE_GROUP_ID,
        }
        #: (steamid, appid) -> GetPlayerAchievements entries (apiname, achieved, unlocktime).
        self.achievements: dict[tuple[str, int], list[dict[str, Any]]] = {
            (SAPHYEL_ID, GRIM_DAWN_APP): _achievements(
                "GetPlayerAchievements_v1-success_with_unlocktime_2019.json"
            ),
        }
        #: appid -> GetSchemaForGame achievement entries. A game without one has no stats.
        self.schemas: dict[int, list[dict[str, Any]]] = {
            GRIM_DAWN_APP: _schema("GetSchemaForGame_v2-success_1achievement_2019.json"),
        }
        #: appid -> {apiname: percent} for GetGlobalAchievementPercentagesForApp.
        self.percentages: dict[int, dict[str, Any]] = {GRIM_DAWN_APP: {"ACH001": 2.3}}
        #: steamid -> seconds to wait before answering any request naming it.
        self.delays: dict[str, float] = {}
        #: Requests per endpoint name ("GetOwnedGames", ...), failures and key errors included.
        self.calls: Counter[str] = Counter()
        #: Every steamid named by a request, in order (GetOwnedGames and GetPlayerSummaries).
        self.requested_steamids: list[str] = []
        self.requests: list[RecordedRequest] = []
        self._failures: dict[str, deque[int]] = {name: deque() for name in ENDPOINTS}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._port = 0

    # ------------------------------------------------------------------ scripting

    def fail_next(self, endpoint: str, statuses: Iterable[int]) -> None:
        """The next requests to ``endpoint`` answer these statuses in order, then normally.

        429 -> short HTML, no Retry-After; 5xx -> HTML error page; 403 -> the real bad-key page
        (Steam also answers 403 to networks it has blocked); 400 -> "Required parameter 'key' is
        missing"; any other status -> an empty text/plain body.
        """
        if endpoint not in ENDPOINTS:
            raise KeyError(f"unknown endpoint {endpoint!r}; use one of {sorted(ENDPOINTS)}")
        self._failures[endpoint].extend(statuses)

    def pending_failures(self, endpoint: str) -> list[int]:
        return list(self._failures[endpoint])

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeSteam is not running")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> FakeSteam:
        app = web.Application()
        for name, path in ENDPOINTS.items():
            handler = self._handler(name)
            app.router.add_get(path, handler)
            app.router.add_get(path.rstrip("/"), handler)
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        self._closing.set()  # ends delayed answers at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSteam:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ serving

    def _handler(self, endpoint: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            record = RecordedRequest(endpoint, request.path, dict(request.query))
            self.requests.append(record)
            response = await self._answer(endpoint, request)
            record.status = response.status
            return response

        return handle

    async def _answer(self, endpoint: str, request: web.Request) -> web.Response:
        query = request.query
        self.calls[endpoint] += 1
        steamids = self._steamids(endpoint, query.get)
        self.requested_steamids.extend(steamids)
        delay = max((self.delays.get(s, 0.0) for s in steamids), default=0.0)
        if delay > 0:
            await self._pause(delay)

        failures = self._failures[endpoint]
        if failures:
            return self._failure(failures.popleft())

        key = query.get("key", "")
        if not key:
            return _raw(_bad_request_html("key"), 400, HTML_TYPE)
        if key != self.api_key:
            return _raw(fixture_bytes("any_endpoint-error_bad_key_http403.html"), 403, HTML_TYPE)

        if endpoint == "GetOwnedGames":
            return self._owned_games(query)
        if endpoint == "GetPlayerSummaries":
            return self._player_summaries(query)
        if endpoint == "GetPlayerAchievements":
            return self._player_achievements(query)
        if endpoint == "GetSchemaForGame":
            return self._schema_for_game(query)
        if endpoint == "GetGlobalAchievementPercentagesForApp":
            return self._percentages(query)
        return self._resolve_vanity(query)

    def _player_achievements(self, query: Any) -> web.Response:
        steamid = (query.get("steamid") or "").strip()
        try:
            appid = int(query.get("appid") or "")
        except ValueError:
            return _raw(_bad_request_html("appid"), 400, HTML_TYPE)
        if steamid in self.private or steamid in self.not_public_403:
            body = fixture_bytes("GetPlayerAchievements_v1-error_profile_not_public_http403.json")
            return _raw(body, 403, JSON_TYPE)
        if appid not in self.schemas:
            body = fixture_bytes("GetPlayerAchievements_v1-error_no_stats_http400.json")
            return _raw(body, 400, JSON_TYPE)
        entries = self.achievements.get((steamid, appid))
        if entries is None:  # a player who never unlocked anything: every one achieved 0
            entries = [
                {"apiname": a["name"], "achieved": 0, "unlocktime": 0} for a in self.schemas[appid]
            ]
        stats = {
            "steamID": steamid,
            "gameName": "",
            "achievements": copy.deepcopy(entries),
            "success": True,
        }
        return _json({"playerstats": stats})

    def _schema_for_game(self, query: Any) -> web.Response:
        try:
            appid = int(query.get("appid") or "")
        except ValueError:
            return _raw(_bad_request_html("appid"), 400, HTML_TYPE)
        if appid not in self.schemas:
            return _json({"game": {}})
        stats = {"achievements": copy.deepcopy(self.schemas[appid])}
        return _json({"game": {"gameName": "", "gameVersion": "1", "availableGameStats": stats}})

    def _percentages(self, query: Any) -> web.Response:
        try:
            appid = int(query.get("gameid") or "")
        except ValueError:
            return _raw(_bad_request_html("gameid"), 400, HTML_TYPE)
        entries = [{"name": k, "percent": v} for k, v in self.percentages.get(appid, {}).items()]
        return _json({"achievementpercentages": {"achievements": entries}})

    @staticmethod
    def _steamids(endpoint: str, get: Callable[[str], str | None]) -> list[str]:
        if endpoint in ("GetOwnedGames", "GetPlayerAchievements"):
            value = (get("steamid") or "").strip()
            return [value] if value else []
        if endpoint == "GetPlayerSummaries":
            return [s.strip() for s in (get("steamids") or "").split(",") if s.strip()]
        return []

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)
        except TimeoutError:
            pass

    @staticmethod
    def _failure(status: int) -> web.Response:
        if status == 429:
            return _raw(_TOO_MANY_REQUESTS_HTML, 429, HTML_TYPE)
        if status >= 500:
            return _raw(_SERVER_ERROR_HTML, status, HTML_TYPE)
        if status == 403:
            return _raw(fixture_bytes("any_endpoint-error_bad_key_http403.html"), 403, HTML_TYPE)
        if status == 400:
            return _raw(_bad_request_html("key"), 400, HTML_TYPE)
        return _raw(b"", status, "text/plain; charset=UTF-8")

    def _owned_games(self, query: Any) -> web.Response:
        steamid = (query.get("steamid") or "").strip()
        if not steamid:
            return _raw(_bad_request_html("steamid"), 400, HTML_TYPE)
        if steamid in self.not_public_403:
            body = fixture_bytes("GetPlayerAchievements_v1-error_profile_not_public_http403.json")
            return _raw(body, 403, JSON_TYPE)
        if steamid in self.private or steamid not in self.players:
            # Private library, or an account we know nothing about: the real 200 answer.
            body = fixture_bytes("GetOwnedGames_v1-private_game_details_http200.json")
            return _raw(body, 200, JSON_TYPE)

        games = [copy.deepcopy(g) for g in self.players[steamid]]
        wanted: set[int] = set()
        index = 0
        while (raw := query.get(f"appids_filter[{index}]")) is not None:
            try:
                wanted.add(int(raw))
            except ValueError:
                return _raw(_bad_request_html(f"appids_filter[{index}]"), 400, HTML_TYPE)
            index += 1
        if index:
            games = [g for g in games if g.get("appid") in wanted]
        if not _truthy(query.get("include_appinfo")):
            games = [{k: v for k, v in g.items() if k not in APPINFO_FIELDS} for g in games]
        # include_played_free_games is recorded but not modelled: the fixtures do not say which
        # games are free, so every owned game is listed.
        if not games:
            # Choice: a public library that owns none of the filtered apps answers game_count 0
            # and no "games" key, which keeps it distinct from the private {"response":{}}.
            return _json({"response": {"game_count": 0}})
        return _json({"response": {"game_count": len(games), "games": games}})

    def _player_summaries(self, query: Any) -> web.Response:
        raw = query.get("steamids")
        if raw is None or not raw.strip():
            return _raw(_bad_request_html("steamids"), 400, HTML_TYPE)
        ids = [s.strip() for s in raw.split(",") if s.strip()]
        if len(ids) > MAX_SUMMARY_IDS:
            body = (
                "<html><head><title>Bad Request</title></head><body><h1>Bad Request</h1>"
                f"Too many steamids: at most {MAX_SUMMARY_IDS} per call</body></html>"
            ).encode()
            return _raw(body, 400, HTML_TYPE)
        # Known public players in full. Private profiles are listed too, as Steam documents
        # (communityvisibilitystate 1, only the always-public fields); no captured body of that
        # shape is known, so the field list follows Valve's GetPlayerSummaries documentation.
        hidden = self.private | self.not_public_403
        players = []
        for sid in dict.fromkeys(ids):
            if sid in hidden:
                players.append(
                    {
                        "steamid": sid,
                        "communityvisibilitystate": 1,
                        "profilestate": 1,
                        "personaname": f"private-{sid[-4:]}",
                        "profileurl": f"https://steamcommunity.com/profiles/{sid}/",
                        "avatar": "",
                        "avatarmedium": "",
                        "avatarfull": "",
                        "personastate": 0,
                    }
                )
            elif sid in self.summaries:
                players.append(copy.deepcopy(self.summaries[sid]))
        return _json({"response": {"players": players}})

    def _resolve_vanity(self, query: Any) -> web.Response:
        name = (query.get("vanityurl") or "").strip()
        if not name:
            return _raw(_bad_request_html("vanityurl"), 400, HTML_TYPE)
        found = {k.casefold(): v for k, v in self.vanities.items()}.get(name.casefold())
        if found is None:
            return _raw(
                fixture_bytes("ResolveVanityURL_v1-no_match_success42.json"), 200, JSON_TYPE
            )
        return _json({"response": {"steamid": found, "success": 1}})


def _games(name: str) -> list[dict[str, Any]]:
    games = fixture_json(name)["response"]["games"]
    assert isinstance(games, list)
    return games


def _players(name: str) -> list[dict[str, Any]]:
    players = fixture_json(name)["response"]["players"]
    assert isinstance(players, list)
    return players


__all__ = [
    "DATA_DIR",
    "ENDPOINTS",
    "MODERN_ID",
    "NOT_PUBLIC_403_ID",
    "PRIVATE_ID",
    "ROBIN_ID",
    "SAPHYEL_ID",
    "VALID_KEY",
    "VALVE_GROUP_ID",
    "FakeSteam",
    "RecordedRequest",
    "fixture_bytes",
    "fixture_json",
]
