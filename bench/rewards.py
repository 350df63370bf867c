"""Role reward cost: a BattleMetrics report ingested in a guild with rewards against one in a
guild without, and a full check of a large guild (what a new reward and the daily re-check
do), on a fresh SQLite database in a temporary folder.

Two guilds get the same ``--members`` members, each with a linked Steam account whose Squad
hours come from BattleMetrics reports over ``--days`` days (so the week and 30-day summaries
have rows), and Steam totals for a few games. One guild has ``--rewards`` rewards of every
kind (all time, a week, 30 days, the best game, a replace tier); the other none. Then:

1. ``--reports`` reports, one after another, alternating between the two guilds (each waits
   for its own commit, as a webhook does): the time per report in each, and their ratio;
2. a full check of the guild with rewards (its candidates read, then the writes in batches of
   200 members): seconds, and milliseconds per 1,000 members.

    .venv/bin/python bench/rewards.py [--members 5000] [--days 30] [--reports 2000] [--all-time]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import ManualClock, to_iso
from bot.config import parse_config
from bot.core import Core
from bot.storage.links import link_account
from bot.storage.playtime import record_playtime
from connectors.base import WebhookContext

PLAIN, REWARDED = 111111111111111111, 222222222222222222
SQUAD = "393380"
GAMES = ("219990", "730", "570")


def steam_of(i: int) -> str:
    return str(76561198000000000 + i)


def populate(conn: Any, guild: int, members: int, days: int, start: datetime) -> None:
    rng = random.Random(guild)
    for i in range(members):
        user = 10**17 + i
        link_account(conn, guild_id=guild, discord_user_id=user, source="steam",
                     external_id=steam_of(i), now=start)  # fmt: skip
        total = rng.randint(0, 400) * 3600
        for day in range(days):
            at = start + timedelta(days=day, hours=rng.random() * 20)
            total += rng.randint(0, 3) * 3600
            record_playtime(conn, scope=guild, source="battlemetrics", player_id=steam_of(i),
                            game_id=SQUAD, seconds=total, source_time=at,
                            now_text=to_iso(at))  # fmt: skip
        if guild == PLAIN:  # the global Steam totals, once for both guilds
            for game in GAMES:
                record_playtime(conn, scope=0, source="steam", player_id=steam_of(i),
                                game_id=game, seconds=rng.randint(0, 900) * 3600,
                                source_time=start, now_text=to_iso(start))  # fmt: skip


def report(core: Core, i: int, seconds: int, at: datetime, n: int) -> dict[str, Any]:
    context = WebhookContext(
        signed_at=at, signed_at_text=to_iso(at), signature=f"{n:064x}", received_at=at
    )
    body = {"steam_id": steam_of(i), "playtime": str(seconds), "game_id": int(SQUAD)}
    return core.registry.get("battlemetrics").parse_webhook(body, context)


async def run(members: int, days: int, reports: int, rewards: int, all_time: bool) -> int:
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(
            {"database": {"path": str(Path(folder) / "q.sqlite3")}, "web": {"port": 0}}, env={}
        )
        start = datetime(2026, 11, 1, tzinfo=UTC)
        clock = ManualClock(start + timedelta(days=days))
        core = await Core.start(config, clock)
        try:
            built = time.perf_counter()
            for guild in (PLAIN, REWARDED):
                await core.store.engine.write(
                    lambda c, g=guild: populate(c, g, members, days, start)
                )
            print(f"built {members} members x 2 guilds, {days} days: "
                  f"{time.perf_counter() - built:.1f} s")  # fmt: skip
            kinds = [
                {"hours": 100, "game_id": SQUAD},
                {"hours": 300, "game_id": SQUAD, "mode": "replace"},
                {"hours": 500, "game_id": SQUAD, "mode": "replace"},
                {"hours": 20, "game_id": SQUAD, "period": "week"},
                {"hours": 60, "game_id": SQUAD, "period": "30d"},
                {"hours": 800},  # the best game
            ]
            if all_time:  # the common case: hours of all time only
                kinds = [k for k in kinds if "period" not in k]
            for n in range(rewards):
                kind = kinds[n % len(kinds)]
                await core.store.rewards.add(
                    guild_id=REWARDED, role_id=10**18 + n, hours=kind["hours"] + n // len(kinds),
                    game_id=kind.get("game_id"), period=kind.get("period", "all"),
                    source="any", mode=kind.get("mode", "stack"), created_by=None,
                    now=clock.now(),
                )  # fmt: skip
            began = time.perf_counter()
            changes = await core.rewards.check_guild(REWARDED)
            full = time.perf_counter() - began
            print(f"full check of {members} members, {rewards} rewards: {full:.2f} s"
                  f" ({full / members * 1e6:.0f} ms per 1,000 members),"
                  f" {len(changes.granted)} grants queued")  # fmt: skip
            first = (await core.store.rewards.list(REWARDED))[0]  # 100 h of Squad, stacked
            over = await core.store.engine.fetchone(
                "SELECT count(*) FROM playtime WHERE scope_guild_id = ? AND source = ?"
                " AND game_id = ? AND seconds >= ?",
                (REWARDED, "battlemetrics", SQUAD, first.hours * 3600),
            )
            held = await core.store.engine.fetchone(
                "SELECT count(*) FROM reward_grants WHERE reward_id = ?", (first.id,)
            )
            print(f"checked: {held[0]:,} hold the {first.hours} h reward,"
                  f" {over[0]:,} members are over it")  # fmt: skip
            if held[0] != over[0]:
                return 1
            # Each report adds a minute to the player's stored total (a report of a player who
            # is playing): most change no reward, a few cross a threshold, as in a live server.
            totals: dict[tuple[int, str], int] = {}
            for guild in (PLAIN, REWARDED):
                for player, seconds in await core.store.engine.fetchall(
                    "SELECT player_id, seconds FROM playtime WHERE scope_guild_id = ?"
                    " AND source = 'battlemetrics'",
                    (guild,),
                ):
                    totals[guild, player] = seconds
            timings: dict[int, list[float]] = {PLAIN: [], REWARDED: []}
            queued = 0
            rng = random.Random(7)
            for n in range(reports):
                i = rng.randrange(members)
                clock.advance(1)
                for guild in (PLAIN, REWARDED) if n % 2 else (REWARDED, PLAIN):
                    totals[guild, steam_of(i)] += 60 * rng.randint(1, 30)
                    raw = report(core, i, totals[guild, steam_of(i)], clock.now(), n)
                    began = time.perf_counter()
                    result = await core.pipeline.ingest("battlemetrics", guild, raw)
                    timings[guild].append(time.perf_counter() - began)
                    queued += result.actions
            plain = statistics.median(timings[PLAIN]) * 1e3
            rewarded = statistics.median(timings[REWARDED]) * 1e3
            print(f"report, median: without rewards {plain:.3f} ms, with {rewards} rewards"
                  f" {rewarded:.3f} ms: ratio {rewarded / plain:.2f}"
                  f" ({queued} role actions queued by {reports} reports)")  # fmt: skip
        finally:
            await core.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reports", type=int, default=2000, help="per guild")
    parser.add_argument("--rewards", type=int, default=6)
    parser.add_argument("--all-time", action="store_true", help="no period rewards")
    args = parser.parse_args()
    return asyncio.run(run(args.members, args.days, args.reports, args.rewards, args.all_time))


if __name__ == "__main__":
    raise SystemExit(main())
