"""Two `questlog run` processes on one PostgreSQL database (issue 19's fault test): webhooks
are sent to both, as a load balancer would, and one process is killed with SIGKILL halfway.
Every acknowledged webhook is stored once, every feed event is posted once (the fake Discord
dedupes nonces as Discord does), and the Steam sync goes on in the survivor. Everything on
127.0.0.1 (the throwaway cluster of tests/postgres.py, the fake Discord and Steam), bounded in
requests and time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import GUILD, TEST_SECRET_KEY
from tests.fakes.discord import FakeDiscord
from tests.fakes.steam import ROBIN_ID, FakeSteam
from tests.process import cli, running, write_config

CHANNEL = 900000000000000071
GUILD_CHANNELS = {CHANNEL: None}
WEBHOOKS = 240
AT_ONCE = 8
TITLE = re.compile(r"ev\\?-(\d{4})")  # markdown escapes the dash


async def wait_until(check: Any, seconds: float, what: str) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


def posted_titles(discord_api: FakeDiscord) -> Counter[int]:
    seen: Counter[int] = Counter()
    for message in discord_api.messages.get(CHANNEL, []):
        for embed in message.get("embeds", []):
            for found in TITLE.findall(str(embed.get("title", ""))):
                seen[int(found)] += 1
    return seen


async def test_two_processes_share_the_work_and_survive_a_kill(
    tmp_path: Path, postgres_url: str, discord_api: FakeDiscord, steam: FakeSteam
) -> None:
    config = write_config(
        tmp_path,
        database={"url": postgres_url},
        security={"secret_key": TEST_SECRET_KEY},
        discord={
            "token": discord_api.token,
            "api_base_url": discord_api.api_base,
            "gateway_url": discord_api.gateway_url,
        },
        steam={
            "api_key": steam.api_key, "api_base_url": steam.base_url,
            "sync_interval_seconds": 60, "requests_per_second": 1000.0,
        },
    )  # fmt: skip
    cli("feed", "set", "--guild", str(GUILD), "--channel", str(CHANNEL), "--config", str(config),
        cwd=tmp_path)  # fmt: skip
    cli("link", "--guild", str(GUILD), "--user", "1", "--steam", ROBIN_ID, "--config", str(config),
        cwd=tmp_path)  # fmt: skip
    endpoint = json.loads(
        cli("endpoint", "create", "--kind", "custom", "--guild", str(GUILD), "--json",
            "--config", str(config), cwd=tmp_path).stdout
    )  # fmt: skip
    secret = endpoint["secret"].encode()
    acknowledged: set[int] = set()

    async def send(client: httpx.AsyncClient, targets: list[str], n: int) -> None:
        body = json.dumps({"event_type": "t", "title": f"ev-{n:04d}", "id": f"ev-{n}"}).encode()
        signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        headers = {"X-Signature": signature, "Content-Type": "application/json"}
        for base in (targets[n % len(targets)], *targets):  # the balancer tries the others
            try:
                response = await client.post(
                    f"{base}/webhooks/custom/{endpoint['path']}", content=body, headers=headers
                )
            except httpx.TransportError:
                continue
            if response.status_code == 200:
                acknowledged.add(n)
                return

    with running(config, cwd=tmp_path) as first:
        await wait_until(lambda: any("this process runs" in line for line in first.log), 30,
                         "the first process takes the instance jobs")  # fmt: skip
        with running(config, cwd=tmp_path) as second:
            targets = [first.base_url, second.base_url]
            async with httpx.AsyncClient(timeout=10) as client:
                for start in range(0, WEBHOOKS, AT_ONCE):
                    if start == WEBHOOKS // 2:
                        first.process.send_signal(signal.SIGKILL)
                        steam_calls = sum(steam.calls.values())
                    await asyncio.gather(
                        *(send(client, targets, n) for n in range(start, start + AT_ONCE))
                    )
            assert first.process.wait(timeout=10) == -signal.SIGKILL
            assert len(acknowledged) == WEBHOOKS  # the survivor took what the dead one lost
            await wait_until(lambda: set(posted_titles(discord_api)) >= acknowledged, 60,
                             "every acknowledged event posted")  # fmt: skip
            await wait_until(lambda: any("this process runs" in line for line in second.log),
                             40, "the survivor takes the instance jobs")  # fmt: skip
            await wait_until(lambda: sum(steam.calls.values()) > steam_calls, 30,
                             "the Steam sync goes on in the survivor")  # fmt: skip
            await asyncio.sleep(1.0)  # nothing is posted twice late either
            assert second.stop() == 0, "\n".join(second.log)
    posted = posted_titles(discord_api)
    assert set(posted) == acknowledged and max(posted.values()) == 1, posted.most_common(3)
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch("SELECT payload FROM raw_events WHERE source = 'custom'")
    finally:
        await conn.close()
    stored = Counter(json.loads(r["payload"])["id"] for r in rows)
    assert set(stored) == {f"ev-{n}" for n in acknowledged} and max(stored.values()) == 1
    assert not [line for line in second.log if "Traceback" in line], "\n".join(second.log)
