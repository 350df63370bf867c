"""Chart render time: bot/charts' renderers after warm-up: the windows /playtime chart draws,
/stats server, and a /leaderboard image page.

Each case renders ``--runs`` times after ``--warmup`` renders (matplotlib's first figure loads
fonts and builds caches); the median and the slowest are printed in milliseconds. Rendering
runs in a worker thread in the bot, so this is time off the event loop, not on it.

Run: ``.venv/bin/python bench/charts.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.charts import BoardRow, Day, render_board, render_daily, render_server


def sample(days: int, games: int) -> list[Day]:
    first = date(2025, 1, 1)
    return [
        Day(
            first + timedelta(days=i),
            {f"Game {g}": (600 + 300 * ((i * (g + 3)) % 11)) for g in range(games) if (i + g) % 3},
        )
        for i in range(days)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    cases = {"7 days, 1 game": sample(7, 1), "30 days, 3 games": sample(30, 3),
             "365 days, 8 games": sample(365, 8)}  # fmt: skip
    for _ in range(args.warmup):
        render_daily(cases["30 days, 3 games"], "warm-up", "warm-up")
    for name, days in cases.items():
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            render_daily(days, "Playtime per day · Alice", name)
            times.append((time.perf_counter() - started) * 1000)
        print(f"{name:<20} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms")
    server_days = [(d.day, len(d.seconds)) for d in cases["365 days, 8 games"]]
    games = [(f"Game {g}", 3600 * (9 - g)) for g in range(8)]
    for label, span in (("server, 30 days", server_days[-30:]), ("server, 365 days", server_days)):
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            render_server(span, games, "Activity · My Server", label)
            times.append((time.perf_counter() - started) * 1000)
        print(f"{label:<20} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms")
    rows = [BoardRow(rank, f"Member number {rank}", 400_000 // rank, f"{111 // rank} h")
            for rank in range(1, 11)]  # fmt: skip
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        render_board(rows, "Squad · the last 30 days", "Members ranked: 240 · page 1 of 24")
        times.append((time.perf_counter() - started) * 1000)
    label = "leaderboard, 10 rows"
    print(f"{label:<20} median {statistics.median(times):6.1f} ms   max {max(times):6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
