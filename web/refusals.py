"""One INFO line per refused request, so a misconfigured sender can be found in the log.

Each line names the route's endpoint kind, the first characters of the endpoint path, the
status, the error code and our own reason (never the secret, a signature or the body). At
most one line per endpoint path and reason a minute: the refusals in between are counted and
the next line for the same pair says how many were not logged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("questlog.web.refused")

WINDOW_SECONDS = 60.0
PREFIX = 6  # characters of the endpoint path shown: enough to tell endpoints apart
MAX_KEYS = 10_000  # distinct (path, reason) pairs remembered; beyond, the oldest are dropped


@dataclass
class _Seen:
    logged_at: float
    suppressed: int = 0


def path_prefix(path: str | None) -> str:
    if not path:
        return "-"
    return path[:PREFIX] + ("…" if len(path) > PREFIX else "")


class RefusalLog:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._seen: dict[tuple[str, str], _Seen] = {}

    def refused(self, kind: str, path: str | None, status: int, code: str, reason: str) -> bool:
        """Record one refusal; True when it was logged (not suppressed)."""
        now = self._monotonic()
        prefix = path_prefix(path)
        key = (prefix, code)
        seen = self._seen.get(key)
        if seen is not None and now - seen.logged_at < WINDOW_SECONDS:
            seen.suppressed += 1
            return False
        suppressed = seen.suppressed if seen is not None else 0
        if seen is None and len(self._seen) >= MAX_KEYS:
            self._seen.pop(next(iter(self._seen)))
        self._seen[key] = _Seen(now)
        more = (
            f" ({suppressed} more like it in the last minute were not logged)" if suppressed else ""
        )
        log.info("refused %s webhook %s: %d %s: %s%s", kind, prefix, status, code, reason, more)
        return True
