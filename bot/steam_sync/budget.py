"""The Steam Web API's daily call budget, persisted so restarts and other processes share it."""

from __future__ import annotations

from bot.clock import Clock
from bot.storage import Store


def _day(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m-%d")  # Valve counts per day; we count per UTC day


class DatabaseBudget:
    """Implements the Steam client's ``CallBudget``: one count per UTC day in the store."""

    def __init__(self, store: Store, clock: Clock, limit: int) -> None:
        self.store = store
        self.clock = clock
        self.limit = limit

    async def reserve(self) -> bool:
        return await self.store.steam.reserve_call(_day(self.clock), self.limit)

    async def used_today(self) -> int:
        return await self.store.steam.calls_on(_day(self.clock))

    async def collect(self) -> dict[str, float]:
        used = await self.used_today()
        return {
            "questlog_steam_calls_today": used,
            "questlog_steam_calls_left_today": max(0, self.limit - used),
        }
