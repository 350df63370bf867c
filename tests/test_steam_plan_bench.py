"""The planner over a simulated day with 1,000 linked accounts, through bench/steam_plan.py (the
10,000-account run takes minutes and is run by hand; see README "Performance")."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_1000_links_stay_within_the_budget_and_every_change_is_caught() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "steam_plan.py"), "--links", "1000", "--tick", "240"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    calls = int(re.search(r"calls in total\s+([\d,]+)", result.stdout)[1].replace(",", ""))  # type: ignore[index]
    assert calls <= 10_000  # a tenth of the budget for a tenth of the 10,000-link bar
    assert "changes never caught: 0" in result.stdout
    visible = float(re.search(r"players seen in a game: ([\d.]+) min", result.stdout)[1])  # type: ignore[index]
    assert visible <= 14.0  # two 5-minute intervals, measured in 4-minute steps
