"""Steam sync planner benchmark: 10,000 linked accounts over one simulated day.

Questlog's real Steam sync (bot/steam_sync/sync.py: GetPlayerSummaries planner, library reads,
achievements) runs against the fake Steam Web API (tests/fakes/steam.py) on 127.0.0.1, with a
manual clock that steps through one day. The simulated population:

* ``--active`` (default 10 %) of the players play one session that day, at a random time, for
  30 minutes to 3 hours; Steam shows them in a game (``gameid``) meanwhile and their
  ``playtime_forever`` grows by one minute per minute played;
* ``--invisible`` (default 1 %) play the same way but Steam never shows them in a game
  (invisible, or private summaries): only the daily sweep can catch them;
* everyone else does not play.

A change is caught when the stored total equals Steam's. The script prints the calls spent (per
endpoint, and the budget counter), the largest detection delay for visible and invisible players,
and the wall time. The bar: at most 100,000 calls for 10,000 links with every change caught
(visible players within two intervals, everyone within a day).

Run: ``.venv/bin/python bench/steam_plan.py`` (a few minutes; ``--links 1000`` for a quick run).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import ManualClock, to_iso  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.steam_sync.plan import DUE_PER_TICK  # noqa: E402
from tests.fakes.steam import FakeSteam  # noqa: E402

BAR_CALLS = 100_000
APP = 393380  # Squad
START = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
DAY = 86_400


@dataclass
class Player:
    steam_id: str
    visible: bool
    start: int  # seconds into the day
    minutes: int
    played: int = 0  # minutes credited so far
    changed_at: float | None = None  # simulated time of the oldest change not yet stored
    worst_delay: float = 0.0


def population(links: int, active: float, invisible: float, seed: int) -> list[Player]:
    rng = random.Random(seed)
    ids = [f"7656119{8_300_000_000 + n:010d}" for n in range(links)]
    players = []
    chosen = rng.sample(range(links), int(links * (active + invisible)))
    visible_count = int(links * active)
    for rank, index in enumerate(chosen):
        players.append(
            Player(
                steam_id=ids[index],
                visible=rank < visible_count,
                start=rng.randrange(600, DAY - 4 * 3600),
                minutes=rng.randrange(30, 181),
            )
        )
    return players


async def run(args: argparse.Namespace) -> int:
    players = population(args.links, args.active, args.invisible, args.seed)
    by_id = {p.steam_id: p for p in players}
    clock = ManualClock(START)
    async with FakeSteam() as steam:
        for n in range(args.links):
            steam_id = f"7656119{8_300_000_000 + n:010d}"
            steam.players[steam_id] = [
                {"appid": APP, "name": "Squad", "playtime_forever": 600, "playtime_2weeks": 0}
            ]
        with tempfile.TemporaryDirectory(prefix="questlog-steam-plan-") as workdir:
            config = parse_config(
                {
                    "database": {"path": f"{workdir}/questlog.sqlite3"},
                    "steam": {
                        "api_key": steam.api_key,
                        "api_base_url": steam.base_url,
                        "requests_per_second": 1000.0,
                        "max_concurrency": 16,
                        "sync_interval_seconds": args.interval,
                    },
                },
                env={},
            )
            core = await Core.start(config, clock)
            try:
                return await simulate(args, core, steam, clock, players, by_id)
            finally:
                await core.stop()


async def simulate(
    args: argparse.Namespace,
    core: Core,
    steam: FakeSteam,
    clock: ManualClock,
    players: list[Player],
    by_id: dict[str, Player],
) -> int:
    now_text = to_iso(clock.now())
    await core.store.engine.write(
        lambda c: c.executemany(
            "INSERT INTO account_links (guild_id, discord_user_id, source, external_id,"
            " created_at, updated_at) VALUES (1, ?, 'steam', ?, ?, ?)",
            [
                (10_000 + n, f"7656119{8_300_000_000 + n:010d}", now_text, now_text)
                for n in range(args.links)
            ],
        )
    )
    for player in players:
        steam.summaries[player.steam_id] = {
            "steamid": player.steam_id,
            "communityvisibilitystate": 3,
            "personaname": player.steam_id[-4:],
            "personastate": 0,
        }
    sync = core.steam_sync
    started = time.monotonic()
    ids = [p.steam_id for p in players]
    for second in range(0, DAY + args.tick, args.tick):
        # Steam's side: sessions start, playtime grows a minute per minute, sessions end.
        for player in players:
            summary = steam.summaries[player.steam_id]
            playing = player.start <= second < player.start + player.minutes * 60
            due_minutes = min(player.minutes, max(0, (second - player.start) // 60))
            if due_minutes > player.played:
                steam.players[player.steam_id][0]["playtime_forever"] += due_minutes - player.played
                player.played = due_minutes
                if player.changed_at is None:
                    player.changed_at = second
            if playing and player.visible:
                summary["gameid"] = str(APP)
                summary["personastate"] = 1
            else:
                summary.pop("gameid", None)
                summary["personastate"] = 0
        # The server runs a pass every 5 s, reading up to DUE_PER_TICK due accounts each time;
        # the simulation steps a minute, so it repeats the pass while a full page was due.
        while await sync.run_once() >= DUE_PER_TICK:
            pass
        # Questlog's side: which changes are stored now?
        rows = await core.store.engine.fetchall(
            "SELECT player_id, seconds FROM playtime WHERE scope_guild_id = 0 AND source = 'steam'"
            f" AND game_id = '{APP}' AND player_id IN ({','.join('?' * len(ids))})",
            tuple(ids),
        )
        stored = {r[0]: r[1] for r in rows}
        for steam_id, seconds in stored.items():
            player = by_id[steam_id]
            if player.changed_at is not None and seconds == (600 + player.played) * 60:
                player.worst_delay = max(player.worst_delay, second - player.changed_at)
                player.changed_at = None
        clock.advance(args.tick)
        if second % 7200 == 0:
            print(
                f"  simulated {second // 3600:2d} h: {sum(steam.calls.values()):,} calls",
                flush=True,
            )
    # Until everyone's last change is caught (invisible players need the next daily sweep).
    extra = 0
    while any(p.changed_at is not None for p in players) and extra < DAY:
        await sync.run_once()
        rows = await core.store.engine.fetchall(
            "SELECT player_id, seconds FROM playtime WHERE scope_guild_id = 0 AND source = 'steam'"
            f" AND game_id = '{APP}'"
        )
        for steam_id, seconds in rows:
            player = by_id.get(steam_id)
            if player and player.changed_at is not None and seconds == (600 + player.played) * 60:
                player.worst_delay = max(player.worst_delay, DAY + extra - player.changed_at)
                player.changed_at = None
        clock.advance(args.tick)
        extra += args.tick
    wall = time.monotonic() - started
    return report(args, core, steam, players, wall)


def report(
    args: argparse.Namespace,
    core: Core,
    steam: FakeSteam,
    players: list[Player],
    wall: float,
) -> int:
    calls = sum(steam.calls.values())
    visible = [p for p in players if p.visible]
    invisible = [p for p in players if not p.visible]
    missed = [p for p in players if p.changed_at is not None]
    worst_visible = max((p.worst_delay for p in visible), default=0.0)
    worst_invisible = max((p.worst_delay for p in invisible), default=0.0)
    print(
        f"\n{args.links:,} linked accounts, {len(visible):,} played visibly and"
        f" {len(invisible):,} invisibly in one simulated day; interval {args.interval} s"
    )
    for endpoint, count in sorted(steam.calls.items()):
        print(f"  {endpoint:<40}{count:>10,}")
    print(f"  {'calls in total':<40}{calls:>10,}   (bar: at most {BAR_CALLS:,})")
    print(
        f"  largest detection delay, players seen in a game: {worst_visible / 60:.1f} min"
        f" (two intervals: {2 * args.interval / 60:.0f} min)"
    )
    print(f"  largest detection delay, invisible players: {worst_invisible / 3600:.1f} h")
    print(f"  changes never caught: {len(missed)}")
    print(f"  wall time: {wall:.0f} s")
    ok = (
        calls <= BAR_CALLS
        and not missed
        and worst_visible <= 2 * args.interval + args.tick
        and worst_invisible <= DAY * 1.05 + args.tick
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/steam_plan.py", description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=10_000, help="linked accounts (10000)")
    parser.add_argument("--active", type=float, default=0.10, help="share playing visibly (0.10)")
    parser.add_argument("--invisible", type=float, default=0.01, help="share playing invisibly")
    parser.add_argument("--interval", type=int, default=300, help="sync_interval_seconds (300)")
    parser.add_argument("--tick", type=int, default=60, help="simulated seconds per step (60)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
