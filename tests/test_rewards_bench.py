"""bench/rewards.py in a short run: it builds, checks, compares, and the grants it counts
match the members over the reward."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_rewards_bench_runs_and_grants_match() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rewards.py"), "--members", "60", "--days", "5",
         "--reports", "20"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "full check of 60 members, 6 rewards" in result.stdout
    assert "ratio" in result.stdout
    counts = result.stdout.split("checked: ")[1].split(" hold")[0]
    assert int(counts) > 0 and f"{counts} members are over it" in result.stdout
