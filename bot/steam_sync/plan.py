"""The Steam sync's budget planner: how often summaries and library reads run so a day's calls
stay within the key's budget (see bot/steam_sync/sync.py for the whole schedule)."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

SUMMARY_SHARE = 0.4  # of the sync's calls a day, at most, for GetPlayerSummaries
SWEEP_SHARE = 0.3  # of the sync's calls a day, at most, for the daily sweep of every library
SWEEP_SECONDS = 86_400
SUMMARY_BATCH = 100
TICK_SECONDS = 5.0
DUE_PER_TICK = 200
CALLS_PER_ACTIVE_READ = 2  # the library, and the achievements of the game being played
ENROL_SECONDS = 30.0  # new links are picked up within this (or at once via links_changed)
BACKOFF_BASE_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class Plan:
    """How often each kind of call runs, and what that costs a day."""

    summary_interval: int  # seconds between two GetPlayerSummaries passes over every account
    active_interval: int  # seconds between two library reads of a player in a game
    sweep_interval: int  # seconds between two library reads of everyone else
    summary_calls: int  # per day
    active_calls: int  # per day, at the number of players in a game now
    sweep_calls: int  # per day

    @property
    def projected_calls(self) -> int:
        return self.summary_calls + self.active_calls + self.sweep_calls


def make_plan(accounts: int, in_game: int, configured: int, sync_calls: int) -> Plan:
    """The plan for ``accounts`` linked SteamIDs of which ``in_game`` play right now, within
    the sync's share of the day's calls (``sync_calls``; the rest is kept for lookups)."""
    usable = max(1.0, float(sync_calls))
    day = 86_400
    batches = math.ceil(accounts / SUMMARY_BATCH)
    summary_interval = max(configured, math.ceil(batches * day / (usable * SUMMARY_SHARE)))
    sweep_interval = max(SWEEP_SECONDS, math.ceil(accounts * day / (usable * SWEEP_SHARE)))
    summary_calls = math.ceil(batches * day / summary_interval)
    sweep_calls = math.ceil(accounts * day / sweep_interval)
    left = max(1.0, usable - summary_calls - sweep_calls)
    active_interval = max(configured, math.ceil(in_game * CALLS_PER_ACTIVE_READ * day / left))
    active_calls = math.ceil(in_game * CALLS_PER_ACTIVE_READ * day / active_interval)
    return Plan(
        summary_interval, active_interval, sweep_interval, summary_calls, active_calls, sweep_calls
    )


def first_slot(steam_id: str, interval: int) -> float:
    """A stable offset within the interval for a new account (spreads first syncs out)."""
    digest = hashlib.sha256(steam_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % max(1, interval)


def next_time(now: datetime, interval: int) -> datetime:
    """``interval`` from now, within 5 %: accounts that synced together drift apart."""
    return now + timedelta(seconds=interval * random.uniform(0.95, 1.05))


def retry_delay(failures: int) -> float:
    """Seconds before a library read that failed ``failures`` times in a row is tried again:
    exponential from a minute to six hours, with jitter."""
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(failures - 1, 16))
    return delay * random.uniform(0.5, 1.5)
