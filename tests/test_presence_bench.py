"""bench/presence.py in a short run: it flushes, compares, and checks every second stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_presence_bench_runs_and_stores_every_second() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "presence.py"), "--sessions", "40", "--rounds", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio flush / one at a time" in result.stdout
    assert "stored presence seconds: 4,800 of 4,800" in result.stdout
