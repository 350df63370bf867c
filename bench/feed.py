"""Feed benchmark: 2,000 activity events across 3 channels drained through a fake Discord API.

The fake (tests/fakes/discord.py) enforces Discord's limits: 5 messages per 5 seconds per
channel and 50 requests per second globally, with real rate-limit headers and 429s. Questlog's
feed poster sends through discord.py's real HTTP client. The script prints events/s per channel
and messages sent, and verifies that every event was posted exactly once (none lost, none
duplicated). The bar: at least 9 events/s per channel (the limit allows 10: 10 embeds a message,
one message a second).

Run: ``.venv/bin/python bench/feed.py`` (about 70 seconds; everything stays on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import discord
from discord.http import HTTPClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import SystemClock, to_iso  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.discord_sender import DiscordSender  # noqa: E402
from bot.feed import FeedPoster  # noqa: E402
from connectors.base import WebhookContext  # noqa: E402
from tests.fakes.discord import FakeDiscord  # noqa: E402

BAR_EVENTS_PER_SECOND = 9.0


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
                    await core.db.write(
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
                poster = FeedPoster(core.db, core.clock, DiscordSender(http), poll_seconds=0.5)
                core.pipeline.on_event = poster.wake
                started = time.monotonic()
                await poster.start()
                deadline = started + limit_seconds
                while time.monotonic() < deadline:
                    pending = (
                        await core.db.fetchone(
                            "SELECT count(*) FROM feed_outbox WHERE status = 'pending'"
                        )
                    )[0]
                    if pending == 0:
                        break
                    await asyncio.sleep(0.2)
                elapsed = time.monotonic() - started
                await poster.stop()
                counts = dict(
                    await core.db.fetchall(
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="give up after this many seconds"
    )
    args = parser.parse_args()
    return asyncio.run(run(args.events, args.channels, args.timeout))


if __name__ == "__main__":
    raise SystemExit(main())
