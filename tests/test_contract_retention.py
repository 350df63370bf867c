"""The retention part's contract (bot/storage/interface.py, RetentionStore) on every backend:
each walk in short steps, what goes after its window and what stays, the dry run counting what
the prune does, and the space report. Only interface methods are used."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from bot.clock import to_iso
from bot.ingest.policy import IngestPolicy
from bot.storage import Store
from bot.storage.records import PRUNE_KINDS, Delivery, RetentionPolicy
from connectors.base import WebhookContext
from connectors.registry import Registry
from tests.contract import GUILD, NOW, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

DAY = timedelta(days=1)
POLICY = RetentionPolicy()  # raw payloads 30 days, feed history 90, samples a year
PENDING_NAMES = {
    "outbox_rows", "activity_events", "feed_batches", "raw_events", "raw_payloads_blanked",
    "raw_payload_bytes", "samples_rolled_up", "steam_day_counters", "link_codes",
    "oauth_states", "link_notices", "actions",
}  # fmt: skip


async def prune(
    store: Store, now: datetime, policy: RetentionPolicy = POLICY, limit: int = 500
) -> tuple[Counter[str], int]:
    """A whole prune as the pruner runs it: every walk step by step to its end; what changed
    and how many steps it took."""
    changed: Counter[str] = Counter()
    steps = 0
    await store.retention.begin()
    for kind in PRUNE_KINDS:
        while True:
            step = await store.retention.prune_step(kind, now, policy, limit)
            steps += 1
            assert step.seconds >= 0
            changed.update(step.changed)
            if step.examined == 0:
                break
            assert steps < 1000
    return changed, steps


def assert_as_dry_run_said(dry: dict[str, int], changed: Counter[str]) -> None:
    for name, count in changed.items():
        assert dry[name] == count, (name, dry, dict(changed))


@part("retention")
async def test_an_empty_database_has_nothing_to_prune(store: Store) -> None:
    dry = await store.retention.pending(NOW, POLICY)
    assert set(dry) == PENDING_NAMES and set(dry.values()) == {0}
    for kind in ("feed", "batches", "raw", "samples"):
        step = await store.retention.prune_step(kind, NOW, POLICY)
        assert (step.examined, step.changed) == (0, {})
    step = await store.retention.prune_step("counters", NOW, POLICY)
    assert step.examined == 0 and set(step.changed.values()) == {0}
    assert set(step.changed) == {
        "steam_day_counters", "link_codes", "oauth_states", "link_notices", "actions"
    }  # fmt: skip
    changed, steps = await prune(store, NOW)
    assert sum(changed.values()) == 0 and steps == len(PRUNE_KINDS)


@part("retention")
async def test_the_space_report(store: Store) -> None:
    space = await store.retention.space()
    assert set(space) == {"page_size", "pages", "free_pages", "auto_vacuum"}
    assert space["page_size"] > 0 and space["pages"] > 0
    assert 0 <= space["free_pages"] <= space["pages"]
    assert space["auto_vacuum"] == 2  # freed space goes back in steps (or by itself)
    left = await store.retention.reclaim(512)
    assert 0 <= left <= space["free_pages"]


@part("retention", "links", "oauth")
async def test_expired_codes_states_nonces_and_old_notices_go(store: Store) -> None:
    links = store.links
    code = dict(guild_id=GUILD, discord_user_id=4, source="minecraft", code="ABCD2345")
    assert await links.add_code(now=NOW, expires=NOW + timedelta(minutes=10), **code)
    await store.oauth.create(kind="discord", guild_id=GUILD, user_id=4, language="en", now=NOW)
    assert await store.oauth.remember_nonce("openid", "n-1", NOW + timedelta(hours=1))
    await links.link(guild_id=GUILD, discord_user_id=5, source="minecraft", external_id="mc-1",
                     now=NOW)  # fmt: skip
    await links.verify(guild_id=GUILD, discord_user_id=6, accounts=[("minecraft", "mc-1", "X")],
                       verified_by="discord", now=NOW)  # fmt: skip
    assert len(await links.notices(GUILD, 5)) == 1

    soon = NOW + timedelta(hours=12)  # expired, but not a day ago yet: kept
    assert (await store.retention.prune_step("counters", soon, POLICY)).changed == {
        "steam_day_counters": 0, "link_codes": 0, "oauth_states": 0, "link_notices": 0,
        "actions": 0,
    }  # fmt: skip
    assert not await links.add_code(now=soon, expires=soon + DAY, **code)  # still taken
    later = NOW + 2 * DAY
    dry = await store.retention.pending(later, POLICY)
    assert (dry["link_codes"], dry["oauth_states"], dry["link_notices"]) == (1, 2, 0)
    step = await store.retention.prune_step("counters", later, POLICY)
    assert step.examined == 0
    assert (step.changed["link_codes"], step.changed["oauth_states"]) == (1, 2)
    assert await links.add_code(now=later, expires=later + DAY, **code)  # free again
    assert await store.oauth.remember_nonce("openid", "n-1", later + DAY)  # forgotten
    assert len(await links.notices(GUILD, 5)) == 1  # shown in /links for 30 days
    month = NOW + 31 * DAY
    assert (await store.retention.pending(month, POLICY))["link_notices"] == 1
    assert (await store.retention.prune_step("counters", month, POLICY)).changed[
        "link_notices"
    ] == 1
    assert await links.notices(GUILD, 5) == []


@part("retention", "actions")
async def test_finished_actions_go_after_the_feed_history_in_pages(store: Store) -> None:
    for n in range(5):
        await store.actions.enqueue(guild_id=GUILD, connector="discord", action="add_role",
                                    payload={"user_id": 1, "role_id": n}, idempotent=True,
                                    pause_key="roles", now=NOW, user_id=1)  # fmt: skip
    claimed = await store.actions.claim_due(NOW, 10)
    for action in claimed[:4]:
        assert await store.actions.begin(action, NOW)
        await store.actions.done(action, NOW)
    assert (await store.actions.status(GUILD, NOW)).counts == {"done": 4, "pending": 1}
    early = NOW + 89 * DAY
    assert (await store.retention.pending(early, POLICY))["actions"] == 0
    later = NOW + 91 * DAY
    assert (await store.retention.pending(later, POLICY))["actions"] == 4
    pages = []
    while True:
        step = await store.retention.prune_step("counters", later, POLICY, 3)
        pages.append((step.examined, step.changed["actions"]))
        if step.examined == 0:
            break
    assert pages == [(3, 3), (0, 1)]  # a full page says another step follows
    assert (await store.actions.status(GUILD, later)).counts == {"pending": 1}  # unfinished
    assert (await store.retention.pending(later, POLICY))["actions"] == 0


@part("retention", "steam")
async def test_steam_day_counters_go_after_a_week(store: Store) -> None:
    steam = store.steam
    for day in ("2025-02-20", "2025-02-21", "2025-02-28"):
        assert await steam.reserve_call(day, "sync", 5)
    assert await steam.reserve_lookups("2025-02-20", 7, 2, 10) == 2
    dry = await store.retention.pending(NOW, POLICY)  # a week before 2025-03-01: 02-22
    assert dry["steam_day_counters"] == 3
    step = await store.retention.prune_step("counters", NOW, POLICY)
    assert step.changed["steam_day_counters"] == 3
    assert await steam.calls_on("2025-02-20") == {} and await steam.calls_on("2025-02-21") == {}
    assert await steam.calls_on("2025-02-28") == {"sync": 1}
    assert await steam.reserve_lookups("2025-02-20", 7, 10, 10) == 10  # counted afresh


def custom_delivery(n: int, at: datetime, timestamped: bool = False) -> tuple[Delivery, Any, Any]:
    body = {"event_type": "test", "title": f"event {n}", "id": f"e{n}", "description": "x" * 50}
    connector = Registry().discover().get("custom")
    raw = connector.parse_webhook(body, WebhookContext(received_at=at))
    delivery = Delivery(GUILD, "custom", None, f"hash-{n}", json.dumps(body), to_iso(at),
                        timestamped)  # fmt: skip
    return delivery, connector, raw


async def ingest(store: Store, n: int, at: datetime, timestamped: bool = False) -> None:
    delivery, connector, raw = custom_delivery(n, at, timestamped)
    result = await store.events.ingest(
        delivery, connector, raw, connector.effects(raw), IngestPolicy()
    )
    assert result.status == "accepted"


class Embeds:
    @staticmethod
    def embed(event: Any, language: tuple[str | None, str | None]) -> dict[str, Any]:
        return {"title": event["title"]}

    @staticmethod
    def pack(embeds: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return embeds[:2]  # two events a message: several batches

    @staticmethod
    def fits(embeds: list[dict[str, Any]]) -> bool:
        return True


async def post_all(store: Store, now: datetime) -> int:
    posted = 0
    while (batch := await store.feed.next_work(900, to_iso(now), Embeds())) is not None:
        await store.feed.mark_sent(batch, 5000 + posted, to_iso(now))  # type: ignore[arg-type]
        posted += 1
    return posted


@part("retention", "events", "feed")
async def test_raw_payloads_then_feed_history_go_and_the_dedupe_keys_stay(store: Store) -> None:
    await store.feed.set_channel(GUILD, 900, to_iso(NOW))
    for n in range(4):  # every other one retried with its original signed time
        await ingest(store, n, NOW, timestamped=n % 2 == 1)
    assert await post_all(store, NOW) == 2
    await ingest(store, 4, NOW + DAY)  # never posted: its channel waits
    assert await store.events.counts() == (5, 5)

    inside = NOW + 29 * DAY
    changed, _ = await prune(store, inside, limit=2)
    assert sum(changed.values()) == 0  # inside every window

    month = NOW + 31 * DAY
    await ingest(store, 5, month)  # today's: untouched
    dry = await store.retention.pending(month, POLICY)
    assert dry["raw_payloads_blanked"] == 4 and dry["raw_payload_bytes"] > 0
    changed, steps = await prune(store, month, limit=2)
    assert_as_dry_run_said(dry, changed)
    assert changed["raw_payloads_blanked"] == 4 and changed["raw_events"] == 0
    assert changed["activity_events"] == 0  # the feed keeps 90 days
    assert steps == len(PRUNE_KINDS) + 2  # the raw walk: two rows a step, twice
    assert (await store.retention.pending(month, POLICY))["raw_payloads_blanked"] == 0
    for n in range(6):
        assert await store.events.seen(GUILD, f"hash-{n}")  # the dedupe keys stay
    delivery, connector, raw = custom_delivery(0, month)
    again = await store.events.ingest(delivery, connector, raw, connector.effects(raw),
                                      IngestPolicy())  # fmt: skip
    assert again.status == "duplicate"  # a month late: still a duplicate

    history = NOW + 92 * DAY
    await ingest(store, 6, history)
    dry = await store.retention.pending(history, POLICY)
    changed, _ = await prune(store, history, limit=3)
    assert_as_dry_run_said(dry, changed)
    # The four posted events go with their outbox rows; the one waiting for its channel
    # stays. Their timestamped raw events go (a late retry is stale by now), the others
    # keep their blanked dedupe rows; of the two sent batches the newest stays (its id is
    # part of a Discord nonce).
    assert (changed["outbox_rows"], changed["activity_events"]) == (4, 4)
    assert (changed["raw_events"], changed["feed_batches"]) == (2, 1)
    assert changed["raw_payloads_blanked"] == 2  # the two that were younger than 30 days
    assert await store.events.counts() == (5, 3)
    assert await store.events.seen(GUILD, "hash-0") and not await store.events.seen(GUILD, "hash-1")
    assert await post_all(store, history) >= 1  # what waited is still posted
    assert (await store.feed.status(GUILD)).pending == 0
    # Once sent, the event that waited goes at the next prune, as the dry run says.
    dry = await store.retention.pending(history, POLICY)
    assert (dry["activity_events"], dry["outbox_rows"], dry["raw_events"]) == (1, 1, 0)
    changed, _ = await prune(store, history)
    assert_as_dry_run_said(dry, changed)
    assert changed["activity_events"] == 1 and await store.events.counts() == (5, 2)


@part("retention", "links", "steam", "stats", "privacy")
async def test_old_samples_roll_up_per_local_day_with_the_same_days_and_totals(
    store: Store,
) -> None:
    await store.links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID,
                           now=NOW)  # fmt: skip
    old = (NOW - 400 * DAY).replace(hour=0, minute=0)
    totals = [(2, 7200), (3, 9000), (4, 9600), (20, 10000), (21, 10060), (48 + 3, 10100)]
    for hour, seconds in totals:  # the first answer is a baseline, then five increases
        await store.steam.record_lookup(SID, 393380, seconds=seconds, status="ok", name="Squad",
                                        now=old + timedelta(hours=hour))  # fmt: skip
    young = NOW - 10 * DAY
    for minute in (0, 30):
        await store.steam.record_lookup(SID, 393380, seconds=10200 + minute, status="ok",
                                        name="Squad", now=young + timedelta(minutes=minute))  # fmt: skip
    assert (await store.privacy.summary(GUILD, 1)).samples == 7
    first, last = (old - DAY).date(), NOW.date()
    daily = await store.stats.daily(GUILD, 1, first, last)
    board = (await store.stats.leaderboard(GUILD, "393380", (first, last))).rows

    # In Los Angeles (UTC-8) 03:00Z and 04:00Z are the day before 20:00Z and 21:00Z.
    zone = RetentionPolicy(timezone="America/Los_Angeles")
    dry = await store.retention.pending(NOW, zone)
    assert dry["samples_rolled_up"] == 2  # two of the year-old days have two samples each
    changed, _ = await prune(store, NOW, zone, limit=1)  # a day split over steps still sums
    assert changed["samples_rolled_up"] == 2
    assert (await store.privacy.summary(GUILD, 1)).samples == 5
    assert await store.stats.daily(GUILD, 1, first, last) == daily
    assert (await store.stats.leaderboard(GUILD, "393380", (first, last))).rows == board
    again, _ = await prune(store, NOW, zone)
    assert again["samples_rolled_up"] == 0  # done; the young samples stay as they are
    exported = await store.privacy.export(GUILD, 1)
    [steam] = [a for a in exported["accounts"] if a["source"] == "steam"]
    assert [(s["at"], s["delta_seconds"]) for s in steam["samples"]] == [
        (to_iso(old + timedelta(hours=4)), 2400),
        (to_iso(old + timedelta(hours=21)), 460),
        (to_iso(old + timedelta(hours=51)), 40),
        (to_iso(young), 10200 - 10100),
        (to_iso(young + timedelta(minutes=30)), 30),
    ]
