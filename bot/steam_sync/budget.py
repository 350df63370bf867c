"""The Steam Web API's daily call budget, persisted so restarts and other processes share it."""

from __future__ import annotations

import sqlite3

from bot.clock import Clock
from bot.storage.engine import Database


def _day(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m-%d")  # Valve counts per day; we count per UTC day


class DatabaseBudget:
    """Implements the Steam client's ``CallBudget``: one row per UTC day in ``steam_budget``."""

    def __init__(self, db: Database, clock: Clock, limit: int) -> None:
        self.db = db
        self.clock = clock
        self.limit = limit

    async def reserve(self) -> bool:
        day, limit = _day(self.clock), self.limit

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "INSERT INTO steam_budget (day, calls) VALUES (?, 1)"
                " ON CONFLICT (day) DO UPDATE SET calls = calls + 1 WHERE calls < ?"
                " RETURNING calls",
                (day, limit),
            ).fetchone()
            return row is not None and row[0] <= limit

        return await self.db.write(op)

    async def used_today(self) -> int:
        day = _day(self.clock)
        row = await self.db.fetchone("SELECT calls FROM steam_budget WHERE day = ?", (day,))
        return int(row[0]) if row else 0

    async def collect(self) -> dict[str, float]:
        used = await self.used_today()
        return {
            "questlog_steam_calls_today": used,
            "questlog_steam_calls_left_today": max(0, self.limit - used),
        }
