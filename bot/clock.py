"""Time sources (everything in Questlog asks a Clock, so tests can move time by hand) and the
periods of local days that leaderboards, charts and rewards share."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from connectors.base import iso


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to (for tests and simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("aware datetime required")
        self._mono += max(0.0, (when - self._now).total_seconds())
        self._now = when


def to_iso(dt: datetime) -> str:
    """Canonical storage form: UTC, microseconds, 'Z' suffix (fixed width, sorts as text)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    return iso(dt)


def from_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries an offset (or 'Z'); returns aware UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError("timestamp has no timezone offset")
    return dt.astimezone(UTC)


#: The rolling windows charts, leaderboards and everything after them use: today since local
#: midnight, the last N local days including today, or all time.
Window = Literal["today", "7d", "30d", "90d", "365d", "all"]
WINDOWS: tuple[Window, ...] = ("today", "7d", "30d", "90d", "365d", "all")
#: Leaderboards also rank the calendar week (Monday to Sunday) and month that today is in.
Period = Literal["today", "7d", "30d", "90d", "365d", "all", "week", "month"]
PERIODS: tuple[Period, ...] = (*WINDOWS, "week", "month")
WINDOW_DAYS: dict[str, int] = {"today": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365}


def period_days(period: Period, now: datetime, tz: ZoneInfo) -> tuple[date, date] | None:
    """The local days a leaderboard of ``period`` ranks, first and last included, in the
    community's time zone: today; the last N days including today; the calendar week (Monday
    to Sunday) or month that today is in; None for all time."""
    today = now.astimezone(tz).date()
    if period == "all":
        return None
    if period == "week":
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=6)
    if period == "month":
        first = today.replace(day=1)
        following = (first + timedelta(days=31)).replace(day=1)
        return first, following - timedelta(days=1)
    return today - timedelta(days=WINDOW_DAYS[period] - 1), today
