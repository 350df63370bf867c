"""connectors.base.iso: the canonical UTC text, whatever the offset, cached or not."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from connectors import base
from connectors.base import iso


def reference(dt: datetime) -> str:
    # The plain way (strftime's %Y does not pad years before 1000 on every platform).
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def test_iso_matches_strftime_for_random_instants_and_offsets() -> None:
    rng = random.Random(20261123)
    earliest = datetime(1, 1, 2, tzinfo=UTC)
    span = (datetime(9999, 12, 30, tzinfo=UTC) - earliest).total_seconds()
    for _ in range(3000):
        dt = earliest + timedelta(seconds=rng.uniform(0, span), microseconds=rng.randrange(10**6))
        zone = timezone(timedelta(minutes=rng.randrange(-14 * 60, 14 * 60 + 1)))
        local = dt.astimezone(zone)
        assert iso(dt) == reference(dt)
        assert iso(local) == reference(dt)  # the same instant shares its text
        assert iso(local) == iso(dt)  # and again from the cache


def test_iso_keeps_a_bounded_cache_and_stays_right_after_clearing() -> None:
    start = datetime(2026, 11, 23, 6, 59, 59, 999_999, tzinfo=UTC)
    times = [start + timedelta(microseconds=n * 7_919_333) for n in range(3 * base._ISO_KEEP)]
    assert [iso(t) for t in times] == [reference(t) for t in times]
    assert len(base._ISO_TEXTS) <= base._ISO_KEEP
    assert len(base._ISO_MINUTES) <= base._ISO_KEEP
    assert iso(datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-12-31T22:00:00.000000Z"
    )


def test_iso_tells_the_two_readings_of_a_repeated_hour_apart() -> None:
    # 01:30 happens twice in New York on 2025-11-02; the two datetimes compare equal (and hash
    # alike), so a cache keyed by them would give both the same text.
    first = datetime(2025, 11, 2, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second
    for _ in range(2):  # uncached, then cached, in both orders
        assert iso(first) == "2025-11-02T05:30:00.000000Z"
        assert iso(second) == "2025-11-02T06:30:00.000000Z"
    for _ in range(2):
        assert iso(datetime(2025, 11, 2, 1, 45, fold=1, tzinfo=ZoneInfo("America/New_York"))) == (
            "2025-11-02T06:45:00.000000Z"
        )
        assert iso(datetime(2025, 11, 2, 1, 45, tzinfo=ZoneInfo("America/New_York"))) == (
            "2025-11-02T05:45:00.000000Z"
        )
