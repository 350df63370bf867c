"""Feed benchmark against a fake Discord API that enforces Discord's limits.

The fake (tests/fakes/discord.py) enforces 5 messages per 5 seconds per channel and 50 requests
per second globally, with real rate-limit headers and 429s. Questlog's feed poster sends through
discord.py's real HTTP client. Two scenarios:

* throughput: 2,000 activity events across 3 channels. Prints events/s per channel and messages
  sent, and verifies that every event was posted exactly once (none lost, none duplicated). The
  bar: at least 9 events/s per channel (the limit allows 10: 10 embeds a message, one message a
  second).
* fairness: 10 channels holding 500 events each; while they drain, a new event for an idle 11th
  channel, every 3 seconds, 5 times. Prints how long each waited until it was posted. The bar:
  every one within 2 seconds (no channel waits for another's backlog).

Run: ``.venv/bin/python bench/feed.py`` (about 90 seconds; ``--scenario fairness`` for 20
seconds; everything stays on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import discord
from discord.http import HTTPClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import SystemClock, to_iso  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.feed.poster import FeedPoster  # noqa: E402
from bot.feed.sender import DiscordSender  # noqa: E402
from connectors.base import WebhookContext  # noqa: E402
from tests.fakes.discord import FakeDiscord  # noqa: E402

BAR_EVENTS_PER_SECOND = 9.0
BAR_IDLE_SECONDS = 2.0


async def run(events: int, channels: int, limit_seconds: float) -> int:
    channel_ids = [910000000000000000 + n for n in range(channels)]
    guild_ids = [810000000000000000 + n for n in range(channels)]
    with tempfile.TemporaryDirectory(prefix="questlog-feed-bench-") as tmp:
        config = parse_config({"database": {"path": f"{tmp}/q.sqlite3"}}, env={})
        async with FakeDiscord(
            per_channel=(5, 5.0), global_per_second=50, channels=channel_ids
        ) as fake:
            discord.http.Route.BASE = fake.api_base
            http = HTTPClient(asyncio.get_running_loop())
            await http.static_login(fake.token)
            core = await Core.start(config, SystemClock())
            try:
                now = to_iso(core.clock.now())
                for guild, channel in zip(guild_ids, channel_ids, strict=True):
                    await core.store.engine.write(
                        lambda c, g=guild, ch=channel: c.execute(
                            "INSERT INTO guilds (guild_id, feed_channel_id, created_at, updated_at)"
                            " VALUES (?, ?, ?, ?)",
                            (g, ch, now, now),
                        )
                    )
                connector = core.registry.get("custom")
                for n in range(events):
                    raw = connector.parse_webhook(
                        {"event_type": "bench", "title": f"bench event {n}", "id": f"bench-{n}"},
                        WebhookContext(received_at=core.clock.now()),
                    )
                    await core.pipeline.ingest("custom", guild_ids[n % channels], raw)
                poster = FeedPoster(core.store, core.clock, DiscordSender(http), poll_seconds=0.5)
                core.pipeline.on_event = poster.wake
                started = time.monotonic()
                await poster.start()
                deadline = started + limit_seconds
                while time.monotonic() < deadline:
                    pending = (
                        await core.store.engine.fetchone(
                            "SELECT count(*) FROM feed_outbox WHERE status = 'pending'"
                        )
                    )[0]
                    if pending == 0:
                        break
                    await asyncio.sleep(0.2)
                elapsed = time.monotonic() - started
                await poster.stop()
                counts = dict(
                    await core.store.engine.fetchall(
                        "SELECT status, count(*) FROM feed_outbox GROUP BY status"
                    )
                )
            finally:
                await core.stop()
                await http.close()

            titles = Counter(
                embed["title"]
                for channel in channel_ids
                for message in fake.messages.get(channel, [])
                for embed in message["embeds"]
            )
            expected = {f"📣 bench event {n}" for n in range(events)}
            lost = expected - set(titles)
            duplicated = {t for t, c in titles.items() if c > 1}
            print(
                f"{events} events across {channels} channels in {elapsed:.1f} s (fake Discord: 5 msg/5 s per channel, 50/s global)"
            )
            print(f"{'channel':>20} {'messages':>9} {'events':>7} {'events/s':>9}")
            posts = [r for r in fake.requests if r.method == "POST" and r.status == 200]
            first_post = min((r.time for r in posts), default=0.0)
            worst = float("inf")
            for channel in channel_ids:
                messages = fake.messages.get(channel, [])
                posted = sum(len(m["embeds"]) for m in messages)
                last = max((r.time for r in posts if r.channel_id == channel), default=first_post)
                span = max(last - first_post, 1.0)  # the drain of this channel, on the fake's clock
                rate = posted / span
                worst = min(worst, rate)
                print(
                    f"{channel:>20} {len(messages):>9} {posted:>7} {rate:>9.2f}   (drained in {span:.1f} s)"
                )
            print(f"429 answers from the fake: {len(fake.rate_limited())}")
            print(f"outbox: {counts}")
            ok = not lost and not duplicated and counts == {"sent": events}
            print(
                f"[{'PASS' if ok else 'FAIL'}] every event posted exactly once: {len(lost)} lost, {len(duplicated)} duplicated"
            )
            bar = worst >= BAR_EVENTS_PER_SECOND
            print(
                f"[{'PASS' if bar else 'FAIL'}] slowest channel {worst:.2f} events/s (bar {BAR_EVENTS_PER_SECOND})"
            )
            return 0 if ok and bar else 1


async def poll(check: Any, seconds: float, step: float = 0.005) -> None:
    """Return once ``check()`` is true (or after ``seconds``)."""
    for _ in range(int(seconds / step)):
        if check():
            return
        await asyncio.sleep(step)


async def fairness(busy_channels: int, backlog: int, probes: int) -> int:
    busy = [920000000000000000 + n for n in range(busy_channels)]
    idle = 920000000000000999
    channels = [*busy, idle]
    guilds = {channel: 820000000000000000 + n for n, channel in enumerate(channels)}
    with tempfile.TemporaryDirectory(prefix="questlog-feed-bench-") as tmp:
        config = parse_config({"database": {"path": f"{tmp}/q.sqlite3"}}, env={})
        async with FakeDiscord(
            per_channel=(5, 5.0), global_per_second=50, channels=channels
        ) as fake:
            discord.http.Route.BASE = fake.api_base
            http = HTTPClient(asyncio.get_running_loop())
            await http.static_login(fake.token)
            core = await Core.start(config, SystemClock())
            try:
                now = to_iso(core.clock.now())

                def setup(conn: Any) -> None:
                    for channel, guild in guilds.items():
                        conn.execute(
                            "INSERT INTO guilds (guild_id, feed_channel_id, created_at, updated_at)"
                            " VALUES (?, ?, ?, ?)",
                            (guild, channel, now, now),
                        )

                await core.store.engine.write(setup)
                custom = core.registry.get("custom")
                context = WebhookContext(received_at=core.clock.now())
                await asyncio.gather(
                    *(
                        core.pipeline.ingest(
                            "custom",
                            guilds[channel],
                            custom.parse_webhook(
                                {
                                    "event_type": "bench",
                                    "title": f"backlog {n}",
                                    "id": f"b{channel}-{n}",
                                },
                                context,
                            ),
                        )
                        for n in range(backlog)
                        for channel in busy
                    )
                )
                poster = FeedPoster(core.store, core.clock, DiscordSender(http))
                core.pipeline.on_event = poster.wake
                await poster.start()
                connector = core.registry.get("custom")
                waits: list[float] = []
                await poll(lambda: all(fake.count(c) for c in busy), 30)
                for n in range(probes):
                    raw = connector.parse_webhook(
                        {"event_type": "fresh", "title": f"fresh {n}", "id": f"fresh-{n}"},
                        WebhookContext(received_at=core.clock.now()),
                    )
                    started = time.monotonic()
                    await core.pipeline.ingest("custom", guilds[idle], raw)
                    await poll(lambda n=n: fake.count(idle) > n, 30)
                    waits.append(time.monotonic() - started)
                    await asyncio.sleep(3.0)
                busy_posted = sum(len(m["embeds"]) for c in busy for m in fake.messages.get(c, []))
                await poster.stop()
            finally:
                await core.stop()
                await http.close()
    print(
        f"{busy_channels} channels with {backlog} waiting events each; a new event for an idle"
        f" channel every 3 s, {probes} times"
    )
    print("idle channel waited: " + ", ".join(f"{w:.2f} s" for w in waits))
    print(f"meanwhile the busy channels posted {busy_posted} events")
    worst = max(waits)
    ok = worst < BAR_IDLE_SECONDS
    print(f"[{'PASS' if ok else 'FAIL'}] longest wait {worst:.2f} s (bar {BAR_IDLE_SECONDS} s)")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("all", "throughput", "fairness"), default="all")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up after this many seconds"
    )
    args = parser.parse_args()
    status = 0
    if args.scenario in ("all", "throughput"):
        status |= asyncio.run(run(args.events, args.channels, args.timeout))
    if args.scenario in ("all", "fairness"):
        if args.scenario == "all":
            print()
        status |= asyncio.run(fairness(10, 500, 5))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
