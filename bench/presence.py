"""Presence flush cost: one flush of N open presence sessions against N presence events
ingested one after another, on a fresh SQLite database in a temporary folder.

Every ``flush_seconds`` the tracker writes each open session's new time through the one ingest
path. This measures how long a flush of ``--sessions`` sessions takes, sent side by side (what
the tracker does), against the same number of presence events ingested one at a time in the
same run (each waits for its own commit), and prints their ratio.

    .venv/bin/python bench/presence.py [--sessions 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import ManualClock, to_iso
from bot.config import parse_config
from bot.core import Core
from bot.presence import MemberPresence, PlayedGame

GUILD = 111111111111111111


async def run(sessions: int, rounds: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(
            {
                "database": {"path": str(Path(folder) / "q.sqlite3")},
                "web": {"port": 0},
                "presence": {"enabled": True, "min_session_seconds": 0},
            },
            env={},
        )
        clock = ManualClock(datetime(2026, 12, 1, 12, tzinfo=UTC))
        core = await Core.start(config, clock)
        try:
            tracker = core.presence
            assert tracker is not None
            await core.privacy.set_presence_default(GUILD, True)
            for n in range(sessions):
                member = MemberPresence(
                    10**17 + n, "online", (PlayedGame(f"Game {n % 50}", str(1000 + n % 50)),),
                    name=f"member {n}",
                )  # fmt: skip
                await tracker.update(GUILD, member)
            flushes, singles = [], []
            for r in range(rounds):
                clock.advance(60)
                started = time.perf_counter()
                await tracker.flush()
                flushes.append(time.perf_counter() - started)
                started = time.perf_counter()
                for n in range(sessions):  # the same events, one commit each
                    raw = {"type": "presence.played", "session": f"b{r}-{n}", "seq": 1,
                           "user_id": str(10**17 + n), "game_id": str(1000 + n % 50),
                           "game_name": "x", "seconds": 60, "at": to_iso(clock.now())}  # fmt: skip
                    await core.pipeline.ingest("discord", GUILD, raw, timestamped=True)
                singles.append(time.perf_counter() - started)
            stored = await core.store.engine.fetchone(
                "SELECT coalesce(sum(seconds), 0) FROM playtime WHERE source = 'discord'"
            )
        finally:
            await core.stop()
    flush, single = statistics.median(flushes), statistics.median(singles)
    print(f"{sessions} open sessions, {rounds} rounds (median)")
    print(
        f"  one flush, sent side by side    {flush * 1000:8.1f} ms ({flush / sessions * 1e6:.0f} µs per session)"
    )
    print(
        f"  the same, one event at a time   {single * 1000:8.1f} ms ({single / sessions * 1e6:.0f} µs per event)"
    )
    print(f"  ratio flush / one at a time: {flush / single:.2f}")
    expected = sessions * 60 * rounds * 2
    print(f"  stored presence seconds: {stored[0]:,} of {expected:,}")
    return 0 if stored[0] == expected else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    return asyncio.run(run(args.sessions, args.rounds))


if __name__ == "__main__":
    raise SystemExit(main())
