"""bench/retention.py in a short run of the same shape (14 days, windows of 3 and 5 days): once
every window is full, the file grows by under 300 bytes per webhook (the full 120-day run is in
README "Performance")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_growth_per_webhook_stays_under_the_bar_once_windows_are_full(tmp_path: Path) -> None:
    out = tmp_path / "retention.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "retention.py"), "--days", "14", "--from-day", "10",
         "--raw-days", "3", "--feed-days", "5", "--per-day", "1000", "--players", "100",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert 0 < figures["bytes_per_webhook"] < 300
    assert figures["free_bytes_in_file_at_end"] < 64 * 4096  # the prune gave pages back
    rows = figures["rows_at_end"]
    # The windows hold: five days of feed history (2 events per session, 250 sessions a day,
    # plus milestones) and no more, while the Minecraft deliveries' dedupe rows all stay.
    assert rows["activity_events"] <= 6 * 500
    assert rows["raw_events"] >= 14 * 500
