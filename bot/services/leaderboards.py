"""Playtime views for members (/playtime show, /playtime chart, /leaderboard, /stats server):
totals, leaderboards by period and playtime per day, in the community's time zone."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import PERIODS, WINDOW_DAYS, WINDOWS, Period, Window, period_days
from bot.i18n import DEFAULT, Texts, texts
from bot.storage import Store
from bot.storage.records import Total

CHART_DAYS_MAX = 365  # an all-time chart shows at most the last 365 days
GAMES_SHOWN = 25  # Discord shows at most 25 autocomplete choices
PAGE_SIZE = 10  # leaderboard rows per page
GAME_LISTS_KEPT = 64  # guilds whose game list the autocomplete keeps in memory

__all__ = [
    "CHART_DAYS_MAX",
    "PAGE_SIZE",
    "PERIODS",
    "WINDOWS",
    "Board",
    "Period",
    "PlaytimeStats",
    "Total",
    "Window",
    "game_label",
    "period_days",
]


def game_label(game_id: str, names: dict[str, str] | None = None, t: Texts | None = None) -> str:
    """A game's name: the stored one, else "Minecraft" or "Steam app 393380" (in the language
    of ``t``; English without one, as the CLI writes it)."""
    if names and game_id in names:
        return names[game_id]
    t = t or texts(DEFAULT)
    if game_id == "minecraft":
        return t("game.minecraft")
    return t("game.steam_app", app_id=game_id)


def _each_day(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True)
class MemberPlaytime:
    totals: list[Total]
    names: dict[str, str]  # game id -> name, where known
    steam_private: bool  # the member's linked Steam account hides its game details


@dataclass(frozen=True)
class Board:
    rows: list[tuple[int, int]]  # (discord user, seconds) of this page, best first
    label: str  # the game's name
    page: int  # 0-based, within the board
    pages: int
    members: int  # how many members the whole board ranks
    away: dict[int, int] = field(default_factory=dict)  # AFK and idle seconds beside a row

    @property
    def first_rank(self) -> int:
        return self.page * PAGE_SIZE + 1


class PlaytimeStats:
    def __init__(self, store: Store, tz: ZoneInfo) -> None:
        self.store = store
        self.tz = tz
        self._zone_set = False
        # (guild, language) -> (games_version, [(game id, label, casefolded label)] by label);
        # bounded
        self._games: OrderedDict[tuple[int, str], tuple[int, list[tuple[str, str, str]]]] = (
            OrderedDict()
        )

    async def prepare(self) -> None:
        """Count the stored days in the community's time zone (rebuilt once when it changed)."""
        if not self._zone_set:
            await self.store.stats.use_timezone(self.tz.key)
            self._zone_set = True

    async def member(
        self, guild_id: int, user_id: int, game_id: str | None = None
    ) -> MemberPlaytime:
        totals = await self.store.stats.member_totals(guild_id, user_id, game_id)
        return MemberPlaytime(
            totals,
            await self.store.stats.game_names(sorted({t.game_id for t in totals})),
            await self.store.links.steam_private(guild_id, user_id),
        )

    async def leaderboard(
        self,
        guild_id: int,
        game_id: str,
        period: Period,
        now: datetime,
        page: int = 0,
        t: Texts | None = None,
    ) -> Board:
        """One page of the board (a page past the end shows the last one)."""
        await self.prepare()
        days = period_days(period, now, self.tz)
        found = await self.store.stats.leaderboard(
            guild_id, game_id, days, max(0, page) * PAGE_SIZE, PAGE_SIZE
        )
        pages = max(1, -(-found.total // PAGE_SIZE))
        page = found.offset // PAGE_SIZE
        names = await self.store.stats.game_names([game_id])
        label = game_label(game_id, names, t)
        return Board(found.rows, label, page, pages, found.total, found.away)

    async def games(
        self, guild_id: int, typed: str, t: Texts | None = None
    ) -> list[tuple[str, str]]:
        """(game id, name) of the guild's games whose name contains what the member typed:
        names that start with it first, then alphabetically. Every keystroke asks; the guild's
        list is read again only when a game was listed or renamed since (games_version)."""
        wanted = typed.strip().casefold()
        starts: list[tuple[str, str]] = []
        contains: list[tuple[str, str]] = []
        for game, label, folded in await self._guild_games(guild_id, t or texts(DEFAULT)):
            if folded.startswith(wanted):
                starts.append((game, label))
                if len(starts) == GAMES_SHOWN:
                    break
            elif len(contains) < GAMES_SHOWN and wanted in folded:
                contains.append((game, label))
        return (starts + contains)[:GAMES_SHOWN]

    async def _guild_games(self, guild_id: int, t: Texts) -> list[tuple[str, str, str]]:
        version = await self.store.stats.games_version()
        key = (guild_id, t.lang)
        cached = self._games.get(key)
        if cached is not None and cached[0] == version:
            self._games.move_to_end(key)
            return cached[1]
        labelled = []
        for game, name in await self.store.stats.guild_games(guild_id):
            label = game_label(game, {game: name} if name else None, t)
            labelled.append((game, label, label.casefold()))
        labelled.sort(key=lambda item: item[2])
        self._games[key] = (version, labelled)
        self._games.move_to_end(key)
        while len(self._games) > GAME_LISTS_KEPT:
            self._games.popitem(last=False)
        return labelled

    def window_days(self, window: Window, now: datetime) -> tuple[date, date]:
        """The first and last local day a chart of ``window`` covers (an all-time chart: the
        last CHART_DAYS_MAX days, trimmed to the first played one by ``daily_games``)."""
        today = now.astimezone(self.tz).date()
        days = WINDOW_DAYS.get(window, CHART_DAYS_MAX)
        return today - timedelta(days=days - 1), today

    async def daily_games(
        self, guild_id: int, user_id: int, window: Window, now: datetime, t: Texts | None = None
    ) -> tuple[list[tuple[date, dict[str, int]]], dict[str, str]]:
        """Seconds per local day and game over the window (every day present; per day and game
        the larger source counts, as everywhere else), and the names of the games played. An
        all-time window starts at the first day played (within the last 365)."""
        first, last = self.window_days(window, now)
        days = await self._member_days(guild_id, user_id, first, last)
        if window == "all":  # from the first day played
            days = days[next((i for i, (_, games) in enumerate(days) if games), len(days)) :]
        played = sorted({g for _, games in days for g in games})
        names = await self.store.stats.game_names(played) if played else {}
        return days, {g: game_label(g, names, t) for g in played}

    async def server_days(
        self, guild_id: int, window: Window, now: datetime, t: Texts | None = None
    ) -> tuple[list[tuple[date, int]], list[tuple[str, int]], int]:
        """Members who played per local day over the window, the games by seconds played
        (per member, game and day the larger source counts), most played first. An all-time
        window starts at the first day anyone played (within the last 365); and how many
        members played at all."""
        await self.prepare()
        first, last = self.window_days(window, now)
        best: dict[tuple[date, str, int], int] = {}
        for day, game, member, _source, seconds in await self.store.stats.guild_daily(
            guild_id, first, last
        ):
            key = (day, game, member)
            best[key] = max(best.get(key, 0), seconds)
        active: dict[date, set[int]] = defaultdict(set)
        games: dict[str, int] = defaultdict(int)
        for (day, game, member), seconds in best.items():
            if seconds > 0:
                active[day].add(member)
                games[game] += seconds
        if window == "all" and active:
            first = min(active)
        days = [(day, len(active.get(day, ()))) for day in _each_day(first, last)]
        names = await self.store.stats.game_names(list(games)) if games else {}
        ranked = sorted(games.items(), key=lambda item: (-item[1], item[0]))
        members = len(set().union(*active.values())) if active else 0
        labelled = [(game_label(game, names, t), seconds) for game, seconds in ranked]
        return days, labelled, members

    async def _member_days(
        self, guild_id: int, user_id: int, first: date, last: date, game_id: str | None = None
    ) -> list[tuple[date, dict[str, int]]]:
        """Seconds per game for every local day from ``first`` to ``last`` (empty dicts
        included): the member's accounts of one source add up, and per day and game the
        larger source counts, as everywhere else."""
        await self.prepare()
        per_day: dict[date, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        for row in await self.store.stats.daily(guild_id, user_id, first, last, game_id):
            per_day[row.day][(row.game_id, row.source)] += row.seconds
        days = []
        for day in _each_day(first, last):
            games: dict[str, int] = defaultdict(int)
            for (game, _source), seconds in per_day.get(day, {}).items():
                games[game] = max(games[game], seconds)
            days.append((day, {g: sec for g, sec in games.items() if sec > 0}))
        return days
