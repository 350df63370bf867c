"""bench/scale.py with 500 members: it builds the database, times every command warm, cold and
10 at once, compares ingest on the large and the empty database, and runs the web server on
it. At this size the query bounds hold by a wide margin, so they are checked here; ingest ratios
and RSS growth need the full run (README "Performance"), which is done by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def test_scale_bench_with_500_members(tmp_path: Path) -> None:
    figures = tmp_path / "scale.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            *("--members", "500", "--days", "120", "--repeat", "3", "--cold-repeat", "1"),
            *("--ingest-rounds", "1", "--ingest-count", "400", "--webhooks", "600"),
            *("--json", str(figures)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # 0: every bound met; 1: a bound missed (the figures are still written); anything else
    # is a failure of the benchmark itself.
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(figures.read_text())
    assert data["build"]["rows"]["playtime_samples"] > 10_000
    assert data["build"]["rows"]["playtime_daily"] > 1_000
    assert data["build"]["rows"]["account_links"] == 625  # 425 Steam + 200 Minecraft
    expected = {"/playtime show", "/playtime chart all", "questlog status", "autocomplete 'st'"}
    assert expected <= set(data["warm"])
    # 8 periods (6 rolling windows, calendar week and month) x 2 games x 2 pages
    assert sum(1 for name in data["warm"] if name.startswith("/leaderboard")) == 32
    for name, times in data["warm"].items():
        limit = 20.0 if name.startswith("autocomplete") else 50.0
        assert times["p99_ms"] < limit, (name, times)
    for name, times in data["concurrent"].items():
        assert times["p99_ms"] < 50.0, (name, times)
    assert data["cold_resident_share"] < 0.05  # the file really left the page cache
    for name, times in data["cold"].items():
        assert times["max_ms"] < 1000.0, (name, times)
    assert data["ingest"]["ratio_median"] > 0
    server = data["server"]
    assert server["webhooks"] == 600 and server["startup_seconds"] < 10
    assert 0 < server["rss_idle_mb"] and server["rss_final_mb"] < 150
    assert all(count > 0 for count in data["answers"].values()), data["answers"]


def test_scale_bench_on_postgres_with_300_members(tmp_path: Path, postgres_cluster: Any) -> None:
    """``--database``: the built databases are copied into PostgreSQL and measured there too
    (the bench's own databases, dropped afterwards). The runs here check that every command
    answers the same on both; the bounds need the full run (README "Scaling out")."""
    figures = tmp_path / "scale.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            *("--members", "300", "--days", "60", "--repeat", "2", "--cold-repeat", "0"),
            *("--ingest-rounds", "1", "--ingest-count", "200", "--webhooks", "0"),
            *("--database", postgres_cluster.url, "--json", str(figures)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(figures.read_text())
    postgres = data["postgres"]
    assert set(postgres["warm"]) == set(data["warm"])
    assert postgres["answers"] == data["answers"]  # the same answers, as large, from both
    assert postgres["ingest"]["ratio_median"] > 0
