"""In-process counters and gauges, rendered in the Prometheus text exposition format."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Awaitable, Callable

_LABEL = re.compile(r'(\w+)="([^"\\]*)"')

_HELP = {
    "questlog_http_requests_total": ("counter", "HTTP requests by route and status"),
    "questlog_ingest_total": ("counter", "Webhook and sync events by source and result"),
    "questlog_outbox_pending": ("gauge", "Activity events waiting to be posted to Discord"),
    "questlog_outbox_failed": ("gauge", "Activity events that could not be posted"),
    "questlog_steam_calls_today": (
        "gauge",
        "Steam Web API calls made today (UTC), by purpose (sync, lookup)",
    ),
    "questlog_steam_calls_left_today": (
        "gauge",
        "Steam Web API calls left in today's share, by purpose (sync, lookup)",
    ),
    "questlog_db_write_batches_total": ("counter", "Group commits made by the database writer"),
    "questlog_db_write_ops_total": ("counter", "Write operations committed by the writer"),
    "questlog_db_write_ops_seconds_total": (
        "counter",
        "Seconds the writer spent running operations",
    ),
    "questlog_db_commit_seconds_total": ("counter", "Seconds the writer spent in COMMIT"),
    "questlog_discord_connected": ("gauge", "1 when the Discord bot is connected"),
    "questlog_oauth_total": (
        "counter",
        "Sign-in flows (Login with Discord, Sign in through Steam) by flow and result",
    ),
}

LabelKey = tuple[tuple[str, str], ...]
Collector = Callable[[], Awaitable[dict[str, float]]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self._values: dict[str, dict[LabelKey, float]] = defaultdict(dict)
        self._collectors: list[Collector] = []

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        # Label order is the caller's (stable per call site); render() sorts the series.
        key = tuple(labels.items())
        series = self._values[name]
        series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        self._values[name][tuple(sorted(labels.items()))] = value

    def get(self, name: str, **labels: str) -> float:
        wanted = sorted(labels.items())
        series = self._values.get(name, {})
        return sum(v for k, v in series.items() if sorted(k) == wanted)

    def add_collector(self, collector: Collector) -> None:
        """An async callable run at scrape time that returns {metric name: value}; a name may
        carry labels as Prometheus writes them: ``'name{purpose="sync"}'``."""
        self._collectors.append(collector)

    async def render(self) -> str:
        for collector in self._collectors:
            for series, value in (await collector()).items():
                name, _, rest = series.partition("{")
                self.set(name, value, **dict(_LABEL.findall(rest)))
        lines: list[str] = []
        for name in sorted(self._values):
            kind, text = _HELP.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            merged: dict[LabelKey, float] = {}
            for key, value in self._values[name].items():
                canonical = tuple(sorted(key))
                merged[canonical] = merged.get(canonical, 0.0) + value
            for labels, value in sorted(merged.items()):
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                number = int(value) if float(value).is_integer() else value
                lines.append(
                    f"{name}{{{label_text}}} {number}" if label_text else f"{name} {number}"
                )
        return "\n".join(lines) + "\n"
