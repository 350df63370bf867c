"""The Steam Web API's daily call budget, persisted so restarts and other processes share it.

The key's daily limit is split in two shares, each enforced on its own: the sync (its schedule,
``/sync now`` and ``questlog sync``) may spend ``[steam] sync_share`` of it and lookups
(get-playtime and ``/link``) the rest, so a greedy script cannot stop the sync and a large sync
cannot starve the scripts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.clock import Clock
from bot.storage import Store

SYNC = "sync"
LOOKUP = "lookup"


def today(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m-%d")  # Valve counts per day; we count per UTC day


@dataclass(frozen=True)
class Shares:
    """How many calls a day each purpose may make."""

    sync: int
    lookup: int

    @classmethod
    def split(cls, daily_limit: int, sync_share: float) -> Shares:
        # round() first: 0.29 * 100 is 28.999999999999996 in floating point
        sync = math.floor(round(daily_limit * sync_share, 6))
        return cls(sync, daily_limit - sync)

    def of(self, purpose: str) -> int:
        return self.sync if purpose == SYNC else self.lookup


class DatabaseBudget:
    """Implements the Steam client's ``CallBudget`` for one purpose: one count per UTC day and
    purpose in the store, refused past that purpose's share."""

    def __init__(self, store: Store, clock: Clock, limit: int, purpose: str) -> None:
        if purpose not in (SYNC, LOOKUP):
            raise ValueError(f"unknown budget purpose {purpose!r}")
        self.store = store
        self.clock = clock
        self.limit = limit
        self.purpose = purpose

    async def reserve(self) -> bool:
        return await self.store.steam.reserve_call(today(self.clock), self.purpose, self.limit)

    async def used_today(self) -> int:
        return (await self.store.steam.calls_on(today(self.clock))).get(self.purpose, 0)


async def collect_budget(store: Store, clock: Clock, shares: Shares) -> dict[str, float]:
    """The metrics: calls made and left today per purpose."""
    calls = await store.steam.calls_on(today(clock))
    figures: dict[str, float] = {}
    for purpose in (SYNC, LOOKUP):
        used = calls.get(purpose, 0)
        figures[f'questlog_steam_calls_today{{purpose="{purpose}"}}'] = used
        figures[f'questlog_steam_calls_left_today{{purpose="{purpose}"}}'] = max(
            0, shares.of(purpose) - used
        )
    return figures
