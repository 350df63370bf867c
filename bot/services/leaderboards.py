"""Playtime views for members (/playtime show, /playtime chart, /leaderboard): totals,
leaderboards by period and daily hours, in the community's time zone."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.storage import Store
from bot.storage.records import Total

Period = Literal["today", "week", "month", "all"]
PERIODS: tuple[Period, ...] = ("today", "week", "month", "all")
CHART_DAYS_ALL = 90  # "all time" charts show the last 90 days
GAMES_SHOWN = 25  # Discord shows at most 25 autocomplete choices

__all__ = ["PERIODS", "Period", "PlaytimeStats", "Total", "game_label", "period_start"]


def game_label(game_id: str, names: dict[str, str] | None = None) -> str:
    if names and game_id in names:
        return names[game_id]
    return "Minecraft" if game_id == "minecraft" else f"Steam app {game_id}"


def period_start(period: Period, now: datetime, tz: ZoneInfo) -> datetime | None:
    """Start of the period in the community's time zone (today, this week from Monday, this
    month); None for all time."""
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "today":
        return midnight
    if period == "week":
        return midnight - timedelta(days=midnight.weekday())
    if period == "month":
        return midnight.replace(day=1)
    return None


@dataclass(frozen=True)
class MemberPlaytime:
    totals: list[Total]
    names: dict[str, str]  # game id -> name, where known
    steam_private: bool  # the member's linked Steam account hides its game details


@dataclass(frozen=True)
class Board:
    rows: list[tuple[int, int]]  # (discord user, seconds), best first
    label: str  # the game's name


class PlaytimeStats:
    def __init__(self, store: Store, tz: ZoneInfo) -> None:
        self.store = store
        self.tz = tz

    async def member(
        self, guild_id: int, user_id: int, game_id: str | None = None
    ) -> MemberPlaytime:
        return MemberPlaytime(
            await self.store.stats.member_totals(guild_id, user_id, game_id),
            await self.store.stats.game_names(),
            await self.store.links.steam_private(guild_id, user_id),
        )

    async def leaderboard(
        self, guild_id: int, game_id: str, period: Period, now: datetime
    ) -> Board:
        since = period_start(period, now, self.tz)
        rows = await self.store.stats.leaderboard(guild_id, game_id, since)
        return Board(rows, game_label(game_id, await self.store.stats.game_names()))

    async def games(self, guild_id: int, typed: str) -> list[tuple[str, str]]:
        """(game id, name) of the guild's games whose name contains what the member typed."""
        games = await self.store.stats.guild_games(guild_id)
        names = await self.store.stats.game_names()
        labelled = [(g, game_label(g, names)) for g in games]
        return [(g, label) for g, label in labelled if typed.lower() in label.lower()][:GAMES_SHOWN]

    def chart_window(self, period: Period, now: datetime) -> datetime:
        """Where a chart of the period starts: today and the six days before (one bar is no
        chart), this week, this month, or the last 90 days for all time."""
        since = period_start(period, now, self.tz) or (now - timedelta(days=CHART_DAYS_ALL))
        return since - timedelta(days=6) if period == "today" else since

    async def daily_hours(
        self,
        guild_id: int,
        user_id: int,
        since: datetime,
        until: datetime,
        game_id: str | None = None,
    ) -> list[tuple[date, float]]:
        """Hours played per local day from ``since`` to ``until`` (every day present, zeros
        included); per day and game the larger source counts, as everywhere else."""
        per_day: dict[date, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        for sample in await self.store.stats.samples(guild_id, user_id, since, until, game_id):
            day = sample.at.astimezone(self.tz).date()
            per_day[day][(sample.game_id, sample.source)] += sample.delta
        first = since.astimezone(self.tz).date()
        last = (until - timedelta(microseconds=1)).astimezone(self.tz).date()
        days = []
        day = first
        while day <= last:
            games: dict[str, int] = defaultdict(int)
            for (game, _source), seconds in per_day.get(day, {}).items():
                games[game] = max(games[game], seconds)
            days.append((day, sum(games.values()) / 3600))
            day += timedelta(days=1)
        return days
