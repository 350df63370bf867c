"""Per-endpoint token buckets for ``[web] rate_limit_per_minute``."""

from __future__ import annotations

from collections.abc import Callable

MAX_KEYS = 50_000


class RateLimiter:
    def __init__(self, per_minute: int, monotonic: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self.monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def _evict(self, now: float) -> None:
        """Forget buckets that have refilled (they would start full anyway)."""
        full = 60.0  # a whole bucket refills within a minute
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}

    def check(self, key: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = self.monotonic()
        rate = self.per_minute / 60.0
        if len(self._buckets) > MAX_KEYS and key not in self._buckets:
            self._evict(now)  # keyed by something outside (an address): stay bounded
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate
