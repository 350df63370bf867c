"""Retention benchmark: how much the database file grows per webhook once every window is full.

bench/ingest.py's workload (half BattleMetrics set-playtime reports, signed with a time; half
Minecraft session events, signed without one) runs through the real connectors and the one
ingest path of an in-process Core for ``--days`` simulated days on a manual clock, with the
feed posting every event to a channel (an in-memory Discord that answers like Discord: a
message id per message) and the daily prune running at the end of each day. Pruning's
windows are the config's (``--raw-days``, ``--feed-days``; the defaults 30 and 90).

After day ``--from-day`` and after the last day the WAL is checkpointed and the file measured;
the result is (size at the end - size at from-day) / webhooks in between, with the bytes per
table from SQLite's dbstat, the prune's longest step (how long it held the writer) and the
wall time. The bar (issue 12): under 300 bytes per webhook at days 100 to 120.

Run: ``.venv/bin/python bench/retention.py`` (a few minutes; ``--days 14 --from-day 10
--raw-days 3 --feed-days 5`` for a quick run with the same shape).
Exit status: 0 when the growth is under ``--bar`` bytes per webhook, else 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import ManualClock  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.feed.poster import FeedPoster  # noqa: E402
from bot.pruning.pruner import STEP_ROWS  # noqa: E402
from connectors.base import IgnoredDelivery, WebhookContext  # noqa: E402
from web.signatures import BattleMetricsScheme  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
GUILD = 1
CHANNEL = 900_000_000_000_000_001
BM_GAME_ID = 393380  # Squad


class Discord:
    """Posts and answers like Discord's create-message: a new message id per nonce."""

    def __init__(self) -> None:
        self.by_nonce: dict[str, int] = {}
        self.messages = 0

    async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
        if nonce not in self.by_nonce:
            self.messages += 1
            self.by_nonce[nonce] = 10**17 + self.messages
        return self.by_nonce[nonce]

    async def edit(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
        return None


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_us(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_bytes(path: Path) -> tuple[int, int, dict[str, int]]:
    """The database's size (its pages, as the file holds them once checkpointed), its free
    pages' bytes, and the bytes per table and index."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        size = conn.execute("PRAGMA page_count").fetchone()[0] * page
        free = conn.execute("PRAGMA freelist_count").fetchone()[0] * page
        tables = dict(
            conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            ).fetchall()
        )
    finally:
        conn.close()
    return size, free, tables


async def one_day(
    args: argparse.Namespace,
    core: Core,
    clock: ManualClock,
    endpoints: dict[str, Any],
    day: int,
    seconds_of: dict[int, int],
) -> int:
    """One simulated day of webhooks, spread evenly over it; returns how many were sent."""
    pipeline = core.pipeline
    per_kind = args.per_day // 2
    step = 86_400 / args.per_day
    sessions = per_kind // 2
    sent = 0
    for i in range(args.per_day):
        clock.advance(step)
        now = clock.now()
        if i % 2 == 0:  # BattleMetrics: a player's total grows through the day
            n = i // 2
            player = (day * per_kind + n) % args.players
            seconds_of[player] = seconds_of.get(player, 0) + 60 + (n * 37) % 1200
            steam_id = f"7656119{8_000_000_000 + player:010d}"
            body = {"steam_id": steam_id, "playtime": str(seconds_of[player]),
                    "game_id": BM_GAME_ID}  # fmt: skip
            raw_body = json.dumps(body, separators=(",", ":")).encode()
            t = iso_ms(now)
            header = BattleMetricsScheme.sign(endpoints["bm"].secret, raw_body, t)
            context = WebhookContext(
                received_at=now, signed_at=now, signed_at_text=t,
                signature=header.rsplit("s=", 1)[1], fixed_game_id=BM_GAME_ID,
            )  # fmt: skip
            source, endpoint, timestamped = "battlemetrics", endpoints["bm"], True
        else:  # Minecraft: session pairs, untimestamped (bench/ingest.py's signing)
            n = i // 2
            k, ended = day * sessions + n // 2, n % 2 == 1
            player_uuid = str(uuid.UUID(int=(0xBE4C << 112) | (k % args.players), version=4))
            duration = 60 + (k * 13) % 3600
            body = {
                "type": "session.ended" if ended else "session.started",
                "player_uuid": player_uuid,
                "player_name": f"P{k % args.players}",
                "server_id": "bench",
                "world": "survival",
                "at": iso_us(now),
            }
            if ended:
                body["duration_seconds"] = duration
            context = WebhookContext(received_at=now)
            source, endpoint, timestamped = "minecraft", endpoints["mc"], False
        try:
            raw = pipeline.parse_webhook(source, body, context)
        except IgnoredDelivery:
            continue
        await core.accept(source, endpoint, raw, now, timestamped)
        sent += 1
    return sent


async def run(args: argparse.Namespace) -> dict[str, Any]:
    clock = ManualClock(START)
    with tempfile.TemporaryDirectory(prefix="questlog-retention-") as workdir:
        path = Path(args.keep or workdir) / "questlog.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        config = parse_config(
            {
                "database": {
                    "path": str(path),
                    "raw_payload_days": args.raw_days,
                    "feed_history_days": args.feed_days,
                },
            },
            env={},
        )
        core = await Core.start(config, clock)
        try:
            endpoints = {
                "bm": await core.endpoint_admin.create(kind="playtime", guild_id=GUILD),
                "mc": await core.endpoint_admin.create(kind="minecraft", guild_id=GUILD),
            }
            await core.feed_admin.set_channel(GUILD, CHANNEL)
            discord = Discord()
            poster = FeedPoster(core.store, clock, discord)
            seconds_of: dict[int, int] = {}
            webhooks = 0
            marks: dict[int, tuple[int, int, int, dict[str, int]]] = {}
            longest: dict[str, float] = {}
            durations: dict[str, list[float]] = {}
            core.pruner.step_rows = args.step_rows
            started = time.perf_counter()
            for day in range(1, args.days + 1):
                webhooks += await one_day(args, core, clock, endpoints, day, seconds_of)
                while await poster.run_once():
                    pass
                report = await core.pruner.run_once()
                for kind, seconds in report.longest_by_kind.items():
                    longest[kind] = max(longest.get(kind, 0.0), seconds)
                if day > args.from_day:
                    for kind, steps in report.step_seconds.items():
                        durations.setdefault(kind, []).extend(steps)
                if day in (args.from_day, args.days):
                    marks[day] = (webhooks, *file_bytes(path))
                if args.progress and day % 10 == 0:
                    print(f"day {day}: {webhooks:,} webhooks, {report.summary()}", flush=True)
            wall = time.perf_counter() - started
            counts = await core.store.table_rows()
        finally:
            await core.stop()
    (w0, size0, _free0, tables0), (w1, size1, free1, tables1) = (
        marks[args.from_day],
        marks[args.days],
    )
    per_webhook = (size1 - size0) / max(1, w1 - w0)
    per_table = {
        name: round((tables1.get(name, 0) - tables0.get(name, 0)) / max(1, w1 - w0), 1)
        for name in sorted(set(tables0) | set(tables1))
        if tables1.get(name, 0) != tables0.get(name, 0)
    }
    return {
        "days": args.days,
        "webhooks_per_day": args.per_day,
        "raw_payload_days": args.raw_days,
        "feed_history_days": args.feed_days,
        "webhooks": w1,
        "messages_posted": discord.messages,
        "size_at_from_day": size0,
        "size_at_end": size1,
        "free_bytes_in_file_at_end": free1,
        "from_day": args.from_day,
        "bytes_per_webhook": round(per_webhook, 1),
        "bytes_per_webhook_by_table": dict(sorted(per_table.items(), key=lambda kv: -kv[1])),
        "prune_step_rows": args.step_rows,
        "longest_prune_step_ms": {k: round(v * 1000, 2) for k, v in longest.items()},
        "median_prune_step_ms_after_from_day": {
            k: round(statistics.median(v) * 1000, 2) for k, v in durations.items()
        },
        "rows_at_end": {k: v for k, v in counts.items() if v},
        "wall_seconds": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--from-day", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=2000, help="webhooks a day (default 2000)")
    parser.add_argument("--players", type=int, default=200, help="distinct players (200)")
    parser.add_argument("--raw-days", type=int, default=30)
    parser.add_argument("--feed-days", type=int, default=90)
    parser.add_argument("--step-rows", type=int, default=STEP_ROWS, help="rows per prune step")
    parser.add_argument("--bar", type=float, default=300.0, help="bytes per webhook (300)")
    parser.add_argument("--progress", action="store_true", help="a line every 10 days")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--keep", metavar="DIR", help="build the database in DIR and keep it")
    args = parser.parse_args(argv)
    if not 1 <= args.from_day < args.days:
        parser.error("--from-day must be between 1 and --days - 1")
    result = asyncio.run(run(args))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key.replace('_', ' '):<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = result["bytes_per_webhook"] < args.bar
    print(f"{'PASS' if ok else 'FAIL'}: {result['bytes_per_webhook']} bytes per webhook"
          f" (bar {args.bar:g})")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
