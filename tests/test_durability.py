"""kill -9 in the middle of a stream of webhooks: every acknowledged event is there afterwards."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.process import cli, running, write_config

TOTAL = 400
KILL_AFTER = 120


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    endpoint = json.loads(
        cli(
            "endpoint",
            "create",
            "--kind",
            "custom",
            "--guild",
            "7",
            "--json",
            "--config",
            str(config),
            cwd=tmp_path,
        ).stdout
    )
    acknowledged: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()
    with running(config, "--web-only", cwd=tmp_path) as server:
        url = f"{server.base_url}/webhooks/custom/{endpoint['path']}"

        def send(client: httpx.Client, n: int) -> None:
            if killed.is_set():
                return
            body = json.dumps(
                {"event_type": "tick", "title": f"tick {n}", "id": f"tick-{n}"}
            ).encode()
            signature = (
                "sha256=" + hmac.new(endpoint["secret"].encode(), body, hashlib.sha256).hexdigest()
            )
            try:
                response = client.post(
                    url,
                    content=body,
                    headers={"X-Signature": signature, "Content-Type": "application/json"},
                )
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                with lock:
                    acknowledged.append(f"tick-{n}")
                    if len(acknowledged) >= KILL_AFTER and not killed.is_set():
                        killed.set()
                        server.process.send_signal(signal.SIGKILL)

        with httpx.Client(timeout=5) as client, ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: send(client, n), range(TOTAL)))
        assert server.process.wait(timeout=10) == -signal.SIGKILL
    assert len(acknowledged) >= KILL_AFTER
    with sqlite3.connect(tmp_path / "data" / "q.sqlite3") as conn:
        stored = {row[0] for row in conn.execute("SELECT external_id FROM activity_events")}
        raw = conn.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert raw == len(stored)  # nothing stored twice
    # The restarted server serves the same data and still rejects the duplicates.
    with running(config, "--web-only", cwd=tmp_path) as server, httpx.Client(timeout=5) as client:
        body = json.dumps({"event_type": "tick", "title": "again", "id": acknowledged[0]}).encode()
        signature = (
            "sha256=" + hmac.new(endpoint["secret"].encode(), body, hashlib.sha256).hexdigest()
        )
        response = client.post(
            f"{server.base_url}/webhooks/custom/{endpoint['path']}",
            content=body,
            headers={"X-Signature": signature, "Content-Type": "application/json"},
        )
        assert response.json()["status"] == "duplicate"
        assert server.stop() == 0
