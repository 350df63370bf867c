"""The Squad admin list a server polls once a minute: ``GET /squad/admins/<path>.cfg`` with
``--members`` members holding a Squad group, answered in full and as a 304 to a matching
``If-None-Match``, through aiohttp's test client on a fresh SQLite database in a temporary
folder (127.0.0.1 only). Prints the list's size and the milliseconds per request of each.

    .venv/bin/python bench/squad_list.py [--members 2000] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import ManualClock, to_iso
from bot.config import parse_config
from bot.core import Core
from web.app import create_app

GUILD = 1000000000000000001


async def run(members: int, requests: int) -> None:
    folder = tempfile.mkdtemp(prefix="questlog-squad-bench-")
    config = parse_config(
        {"database": {"path": str(Path(folder) / "q.sqlite3")},
         "web": {"port": 0, "rate_limit_per_minute": 1_000_000}},
        env={},
    )  # fmt: skip
    core = await Core.start(config, ManualClock(datetime(2026, 12, 2, tzinfo=UTC)))
    try:
        reward = await core.rewards.add(
            guild_id=GUILD, role_id=None, hours=10, squad_group="Regulars"
        )
        now = to_iso(core.clock.now())

        def fill(conn: sqlite3.Connection) -> None:
            for i in range(members):
                conn.execute(
                    "INSERT INTO account_links (guild_id, discord_user_id, source, external_id,"
                    " display_name, created_at, updated_at) VALUES (?, ?, 'steam', ?, ?, ?, ?)",
                    (GUILD, 5000 + i, f"765611980{i:08d}", f"player{i}", now, now),
                )
                conn.execute(
                    "INSERT INTO reward_grants (reward_id, discord_user_id, guild_id, role_id,"
                    " seconds, granted_at) VALUES (?, ?, ?, 0, 36000, ?)",
                    (reward.id, 5000 + i, GUILD, now),
                )

        await core.store.engine.write(fill)
        endpoint = await core.endpoint_admin.create(kind="squad_admins", guild_id=GUILD)
        await core.endpoints.refresh()
        async with TestClient(TestServer(create_app(core))) as client:
            url = f"/squad/admins/{endpoint.path}.cfg"
            first = await client.get(url)
            body = await first.read()
            etag = first.headers["ETag"]
            lines = body.count(b"\n") - 2  # less the comment and the group line
            print(f"{members} members: {lines} admin lines, {len(body):,} bytes")
            for label, headers in (("full answer", {}), ("304", {"If-None-Match": etag})):
                started = time.perf_counter()
                for _ in range(requests):
                    response = await client.get(url, headers=headers)
                    await response.read()
                elapsed = (time.perf_counter() - started) * 1000 / requests
                print(f"  {label:<12} {response.status}  {elapsed:.2f} ms per request")
    finally:
        await core.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.members, args.requests))


if __name__ == "__main__":
    main()
