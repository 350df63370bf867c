"""The feed part of the store (the outbox the poster works through), on every backend: batches
fixed with their nonces and sent again unchanged, retries, pauses and probes, refused embeds,
edits of posted messages, moves of the feed, maximum ages, backfills, statuses and counts; and
the in-game announcements the ingest queues with the feed's language. Events reach the outbox
only through the events part's ingest, so most tests need both parts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.clock import ManualClock, to_iso
from bot.feed.poster import FeedPoster, SendError
from bot.ingest.policy import IngestPolicy
from bot.storage import Store
from bot.storage.interface import Refusal
from bot.storage.records import Batch, Delivery, Edit, FeedChange, FeedFailure, FeedStatus
from connectors.base import WebhookContext
from connectors.registry import Registry
from tests.contract import GUILD, NOW, OTHER, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

REGISTRY = Registry().discover()
CUSTOM = REGISTRY.get("custom")
MINECRAFT = REGISTRY.get("minecraft")
CHANNEL, ELSEWHERE = 900, 901
REFUSED = Refusal(True, 50013, "403, Missing Permissions")
NOTCH = "069a79f4-44e9-4726-a5be-fca90e38aaf5"
ALICE = 4000000000000000501


def at(seconds: float = 0) -> str:
    return to_iso(NOW + timedelta(seconds=seconds))


class Titles:
    """A composer: an embed carries what the store handed over of its event; ``per_message``
    embeds make a message; ``fits`` takes any message unless told otherwise."""

    def __init__(self, per_message: int = 10, *, fits: bool = True) -> None:
        self.per_message = per_message
        self.fit = fits

    def embed(
        self, event: Mapping[str, Any], language: tuple[str | None, str | None]
    ) -> dict[str, Any]:
        payload = event["payload"]
        return {
            "title": event["title"],
            "type": event["type"],
            "language": list(language),
            "occurred_at": event["occurred_at"],
            "actor": [event["actor_user_id"], event["actor_external_id"], event["actor_name"]],
            "payload": json.loads(payload) if isinstance(payload, str) else dict(payload),
            "stored_title": event["stored_title"],
        }

    def pack(self, embeds: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return embeds[: self.per_message]

    def fits(self, embeds: list[dict[str, Any]]) -> bool:
        return self.fit


TITLES = Titles()


async def event(
    store: Store,
    title: str,
    *,
    guild: int = GUILD,
    key: str | None = None,
    occurred: float = 0,
    received: float = 0,
    kind: str = "t",
    player: dict[str, Any] | None = None,
) -> int:
    """Ingest one custom event (``title`` is its id too); its activity event id."""
    body: dict[str, Any] = {"event_type": kind, "title": title, "id": title, "at": at(occurred)}
    if key is not None:
        body["update_key"] = key
    if player is not None:
        body["player"] = player
    arrived = NOW + timedelta(seconds=received)
    raw = CUSTOM.parse_webhook(body, WebhookContext(received_at=arrived))
    delivery = Delivery(guild, "custom", None, f"hash-{guild}-{title}", "{}", to_iso(arrived))
    result = await store.events.ingest(
        delivery, CUSTOM, raw, CUSTOM.effects(raw), IngestPolicy(off_by_default=OFF)
    )
    assert result.status == "accepted" and len(result.event_ids) == 1
    return result.event_ids[0]


OFF = frozenset({"custom.quiet"})


def titles(work: Batch | Edit | None) -> list[str]:
    assert work is not None
    return [e["title"] for e in work.payload["embeds"]]


async def batch(store: Store, now: str, composer: Titles = TITLES, channel: int = CHANNEL) -> Batch:
    work = await store.feed.next_work(channel, now, composer)
    assert isinstance(work, Batch), work
    return work


async def edit(store: Store, now: str, channel: int = CHANNEL) -> Edit:
    work = await store.feed.next_work(channel, now, TITLES)
    assert isinstance(work, Edit), work
    return work


# --------------------------------------------------------------------------- settings


@part("feed")
async def test_a_guild_without_a_feed_and_its_settings(store: Store) -> None:
    feed, now = store.feed, at()
    assert await feed.channel(GUILD) is None
    assert await feed.event_types(GUILD) is None
    assert await feed.language(GUILD) == (None, None)
    assert await feed.status(GUILD) == FeedStatus(
        channel_id=None, channel_state="unset", pause_code=None, pause_detail=None,
        paused_since=None, next_probe_at=None, pending=0, failed=0, expired=0, sent=0,
        last_error=None, failures=(),
    )  # fmt: skip
    assert await feed.counts() == {"pending": 0, "failed": 0, "paused_channels": 0}
    assert await feed.due_channels(now) == []
    assert await feed.next_work(CHANNEL, now, TITLES) is None
    assert await feed.expire_old(now) == 0
    # The server's language as the bot sees it, and the one chosen with /feed language.
    assert await feed.note_locale(GUILD, "ru", now)  # a guild not stored yet
    assert not await feed.note_locale(GUILD, "ru", at(1))
    assert await feed.language(GUILD) == (None, "ru")
    assert await feed.note_locale(GUILD, "en-US", at(2))
    await feed.set_language(GUILD, "ru", now)
    assert await feed.language(GUILD) == ("ru", "en-US")
    await feed.set_language(GUILD, None, now)
    assert await feed.language(GUILD) == (None, "en-US")
    await feed.set_language(OTHER, "en", now)  # a new guild row
    assert await feed.language(OTHER) == ("en", None)
    # The event types it posts: None is every type; an empty list none.
    await feed.set_event_types(GUILD, ["custom.*", "playtime.milestone"], now)
    assert await feed.event_types(GUILD) == ["custom.*", "playtime.milestone"]
    await feed.set_event_types(GUILD, [], now)
    assert await feed.event_types(GUILD) == []
    await feed.set_event_types(GUILD, None, now)
    assert await feed.event_types(GUILD) is None
    await feed.set_event_types(3, ["x.y"], now)  # a new guild row
    assert await feed.event_types(3) == ["x.y"]
    # The channel.
    change = await feed.set_channel(GUILD, CHANNEL, now)
    assert change == FeedChange(None, False, 0, 0, 0, 0)
    assert await feed.channel(GUILD) == CHANNEL and await feed.channel(OTHER) is None
    assert await feed.language(GUILD) == (None, "en-US")  # the other settings stay
    status = await feed.status(GUILD)
    assert (status.channel_id, status.channel_state, status.pause_code) == (CHANNEL, "ok", None)
    change = await feed.set_channel(GUILD, ELSEWHERE, now)
    assert change == FeedChange(CHANNEL, False, 0, 0, 0, 0)
    assert await feed.channel(GUILD) == ELSEWHERE
    assert (await feed.set_channel(4, CHANNEL + 5, now)).previous_channel is None
    assert await feed.due_channels(now) == []


# --------------------------------------------------------------------------- batches


@part("feed", "events")
async def test_batches_are_fixed_in_order_and_sent_again_unchanged(store: Store) -> None:
    feed, now = store.feed, at()
    await feed.set_channel(GUILD, CHANNEL, now)
    await event(store, "e0", occurred=-60, player={"id": "p1", "name": "Pat"})
    for n in range(1, 5):
        await event(store, f"e{n}")
    assert await feed.due_channels(now) == [CHANNEL]
    three = Titles(per_message=3)
    first = await batch(store, now, three)
    assert titles(first) == ["e0", "e1", "e2"] and len(first.keys) == 3
    assert (first.guild_id, first.channel_id, first.attempts, first.probe) == (
        GUILD,
        CHANNEL,
        0,
        False,
    )
    assert first.nonce.startswith("ql") and len(first.nonce) <= 25
    embed = first.payload["embeds"][0]
    assert embed["type"] == "custom.t" and embed["occurred_at"] == at(-60)
    assert embed["actor"] == [None, "p1", "Pat"] and embed["stored_title"] is False
    assert embed["payload"]["title"] == "e0" and embed["payload"]["player"]["name"] == "Pat"
    assert embed["language"] == [None, None]
    # Until Discord answers, the same batch is the channel's next step, unchanged.
    assert await feed.next_work(CHANNEL, at(1), Titles(per_message=1)) == first
    await event(store, "e5")
    assert await feed.next_work(CHANNEL, at(2), three) == first
    await feed.mark_sent(first, 7001, at(3))
    status = await feed.status(GUILD)
    assert (status.sent, status.pending, status.last_error) == (3, 3, None)
    second = await batch(store, at(4), three)
    assert titles(second) == ["e3", "e4", "e5"]
    assert second.id != first.id and second.nonce != first.nonce and second.attempts == 0
    assert set(second.keys).isdisjoint(first.keys)
    await feed.mark_sent(second, 7002, at(5))
    assert await feed.due_channels(at(5)) == []
    assert await feed.next_work(CHANNEL, at(5), three) is None
    status = await feed.status(GUILD)
    assert (status.sent, status.pending, status.channel_state) == (6, 0, "ok")
    assert await feed.counts() == {"pending": 0, "failed": 0, "paused_channels": 0}


@part("feed", "events")
async def test_at_most_ten_events_are_read_for_a_batch(store: Store) -> None:
    await store.feed.set_channel(GUILD, CHANNEL, at())
    for n in range(12):
        await event(store, f"e{n:02d}")
    first = await batch(store, at(), Titles(per_message=50))
    assert titles(first) == [f"e{n:02d}" for n in range(10)]
    await store.feed.mark_sent(first, 1, at())
    assert titles(await batch(store, at(), Titles(per_message=50))) == ["e10", "e11"]


@part("feed", "events")
async def test_a_retry_waits_and_new_events_do_not_jump_the_queue(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "a")
    await event(store, "b")
    first = await batch(store, at())
    await feed.mark_retry(first, "Discord error 503", False, at(30), at(1))
    await event(store, "c", received=2)
    assert await feed.due_channels(at(29)) == []
    assert await feed.next_work(CHANNEL, at(29), TITLES) is None
    status = await feed.status(GUILD)
    assert (status.pending, status.last_error) == (3, "Discord error 503")
    assert await feed.due_channels(at(30)) == [CHANNEL]
    again = await batch(store, at(30))
    assert (again.id, again.nonce, again.keys, again.payload) == (
        first.id,
        first.nonce,
        first.keys,
        first.payload,
    )
    assert again.attempts == 1 and titles(again) == ["a", "b"]
    await feed.mark_retry(again, "Discord error 502", True, at(100), at(31))
    # Picking the channel again tries what waits now.
    change = await feed.set_channel(GUILD, CHANNEL, at(32))
    assert change == FeedChange(CHANNEL, False, 0, 0, 0, 0)
    assert await feed.due_channels(at(32)) == [CHANNEL]
    third = await batch(store, at(32))
    assert (third.id, third.attempts) == (first.id, 2)
    await feed.mark_sent(third, 555, at(33))
    assert titles(await batch(store, at(33))) == ["c"]
    assert (await feed.status(GUILD)).last_error == "Discord error 502"  # the latest one


# --------------------------------------------------------------------------- pauses


@part("feed", "events")
async def test_a_refused_channel_is_paused_probed_and_resumes_by_itself(store: Store) -> None:
    feed = store.feed
    asked: list[tuple[int | None, int]] = []

    def delay(code: int | None, probes: int) -> float | None:
        asked.append((code, probes))
        return 60.0 * 2**probes

    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "a")
    await event(store, "b")
    first = await batch(store, at())
    assert await feed.pause(first, REFUSED, at(1), delay, at(5)) == (True, 50013, at(61))
    assert asked == [(50013, 0)]
    await event(store, "c", received=2)
    assert await feed.due_channels(at(60)) == []
    assert await feed.next_work(CHANNEL, at(60), TITLES) is None
    status = await feed.status(GUILD)
    assert (status.channel_state, status.pause_code, status.pause_detail) == (
        "paused",
        50013,
        "403, Missing Permissions",
    )
    assert (status.paused_since, status.next_probe_at) == (at(1), at(61))
    assert (status.pending, status.last_error) == (3, "403, Missing Permissions")
    assert await feed.counts() == {"pending": 3, "failed": 0, "paused_channels": 1}
    # The probe is the channel's next step as it was: the stored batch.
    assert await feed.due_channels(at(61)) == [CHANNEL]
    probe = await batch(store, at(61))
    assert (probe.id, probe.nonce, probe.keys, probe.probe) == (
        first.id,
        first.nonce,
        first.keys,
        True,
    )
    assert probe.attempts == 1
    # A probe that fails with a 5xx keeps the channel paused for its old reason.
    paused = await feed.pause(probe, Refusal(False, 0, "Discord error 503"), at(62), delay, at(70))
    assert paused == (True, 50013, at(62 + 120))
    status = await feed.status(GUILD)
    assert (status.pause_code, status.pause_detail, status.paused_since) == (
        50013,
        "403, Missing Permissions",
        at(1),
    )
    assert status.last_error == "Discord error 503"
    # Refused again, for another reason: paused since the first refusal still.
    probe = await batch(store, at(182))
    refused = Refusal(True, 50001, "403, Missing Access")
    assert await feed.pause(probe, refused, at(183), delay, at(190)) == (True, 50001, at(183 + 240))
    assert asked == [(50013, 0), (50013, 1), (50001, 2)]
    status = await feed.status(GUILD)
    assert (status.pause_code, status.paused_since, status.next_probe_at) == (
        50001,
        at(1),
        at(423),
    )
    probe = await batch(store, at(423))
    assert probe.probe and probe.attempts == 3
    await feed.mark_sent(probe, 42, at(424))
    status = await feed.status(GUILD)
    assert (status.channel_state, status.pause_code, status.paused_since) == ("ok", None, None)
    assert (status.next_probe_at, status.sent, status.pending) == (None, 2, 1)
    assert await feed.counts() == {"pending": 1, "failed": 0, "paused_channels": 0}
    after = await batch(store, at(424))
    assert titles(after) == ["c"] and not after.probe


@part("feed", "events")
async def test_a_channel_that_is_not_probed_waits_for_set_channel(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "a")
    first = await batch(store, at())
    gone = Refusal(True, 10003, "404, Unknown Channel")
    assert await feed.pause(first, gone, at(1), lambda code, probes: None, at(2)) == (
        True,
        10003,
        None,
    )
    status = await feed.status(GUILD)
    assert (status.channel_state, status.next_probe_at, status.pause_code) == (
        "paused",
        None,
        10003,
    )
    assert await feed.due_channels(at(10**6)) == []
    assert await feed.next_work(CHANNEL, at(10**6), TITLES) is None
    assert (await feed.counts())["paused_channels"] == 1
    change = await feed.set_channel(GUILD, CHANNEL, at(5))
    assert change == FeedChange(CHANNEL, True, 0, 0, 0, 0)
    assert await feed.due_channels(at(5)) == [CHANNEL]
    again = await batch(store, at(5))
    assert again.id == first.id and not again.probe
    assert (await feed.status(GUILD)).channel_state == "ok"


@part("feed", "events")
async def test_a_probe_that_fails_after_a_resume_is_an_ordinary_retry(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "a")
    await event(store, "b")
    first = await batch(store, at())
    await feed.pause(first, REFUSED, at(), lambda code, probes: 60.0, at())
    probe = await batch(store, at(60))
    assert probe.probe
    assert (await feed.set_channel(GUILD, CHANNEL, at(61))).resumed  # while the probe is out
    lost = Refusal(False, 0, "Discord error 503", maybe_posted=True)
    assert await feed.pause(probe, lost, at(62), lambda code, probes: 60.0, at(90)) == (
        False,
        None,
        None,
    )
    status = await feed.status(GUILD)
    assert (status.channel_state, status.pause_code, status.last_error) == (
        "ok",
        None,
        "Discord error 503",
    )
    assert await feed.due_channels(at(89)) == []
    assert await feed.due_channels(at(90)) == [CHANNEL]
    retried = await batch(store, at(90))
    assert retried.attempts == 2
    await feed.mark_retry(retried, "Discord error 500", False, at(120), at(91))
    # An answer was lost once: it may have been posted, and moving the feed says so.
    change = await feed.set_channel(GUILD, ELSEWHERE, at(91))
    assert (change.previous_channel, change.moved, change.maybe_posted) == (CHANNEL, 2, 1)


@part("feed", "events")
async def test_a_refused_edit_pauses_the_channel_and_is_probed(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "v1", key="k")
    await feed.mark_sent(await batch(store, at()), 77, at())
    await event(store, "v2", key="k")
    change = await edit(store, at(1))
    assert await feed.pause(change, REFUSED, at(2), lambda code, probes: 30.0, at(3)) == (
        True,
        50013,
        at(32),
    )
    status = await feed.status(GUILD)
    assert (status.channel_state, status.pending, status.last_error) == (
        "paused",
        1,
        "403, Missing Permissions",
    )
    assert await feed.due_channels(at(31)) == []
    probe = await edit(store, at(32))
    assert probe.probe and probe.message_id == 77 and probe.attempts == 1
    await feed.mark_edited(probe, at(33))
    assert (await feed.status(GUILD)).channel_state == "ok"
    assert (await feed.counts())["paused_channels"] == 0


# --------------------------------------------------------------------------- refused embeds


@part("feed", "events")
async def test_a_refused_embed_fails_alone_and_the_rest_is_batched_anew(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    for name in "abcd":
        await event(store, name)
    first = await batch(store, at())
    failed = await feed.isolate(
        first, {1: "Embed size exceeds maximum size", 9: "not in it"}, "Invalid Form Body", at(1)
    )
    assert failed == [first.keys[1]]
    rest = await batch(store, at(2))
    assert titles(rest) == ["a", "c", "d"]
    assert rest.keys == (first.keys[0], first.keys[2], first.keys[3])
    assert rest.id != first.id and rest.nonce != first.nonce and rest.attempts == 0
    status = await feed.status(GUILD)
    assert (status.failed, status.pending) == (1, 3)
    assert status.failures == (
        FeedFailure("b", "Discord refused this event's embed: Embed size exceeds maximum size", at(1)),
    )  # fmt: skip
    assert (await feed.counts())["failed"] == 1
    await feed.mark_sent(rest, 9, at(3))
    assert (await feed.status(GUILD)).sent == 3


@part("feed", "events")
async def test_an_invalid_body_without_an_index_is_split_down_to_the_event(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    for name in "abcde":
        await event(store, name)
    whole = await batch(store, at())
    assert await feed.isolate(whole, {7: "out of range"}, "Invalid Form Body", at(1)) == []
    left = await batch(store, at(1))
    assert titles(left) == ["a", "b"]
    assert await feed.isolate(left, {}, "Invalid Form Body", at(2)) == []
    # The halves of the first half are newer batches, but hold older events: they go first.
    one = await batch(store, at(2))
    assert titles(one) == ["a"]
    assert await feed.isolate(one, {}, "Invalid Form Body", at(3)) == [one.keys[0]]
    two = await batch(store, at(3))
    assert titles(two) == ["b"]
    await feed.mark_sent(two, 1, at(4))
    assert titles(await batch(store, at(4))) == ["c", "d", "e"]
    status = await feed.status(GUILD)
    assert (status.failed, status.sent, status.pending) == (1, 1, 3)
    assert status.failures == (
        FeedFailure("a", "Discord refused this event's embed: Invalid Form Body", at(3)),
    )


@part("feed", "events")
async def test_the_status_lists_the_five_latest_refused_events(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    for n in range(7):
        await event(store, f"e{n}")
    one = Titles(per_message=1)
    for n in range(7):
        work = await batch(store, at(n), one)
        assert await feed.isolate(work, {0: f"no {n}"}, "Invalid Form Body", at(n)) == list(
            work.keys
        )
    status = await feed.status(GUILD)
    assert (status.failed, status.pending, status.last_error) == (
        7,
        0,
        "Discord refused this event's embed: no 6",
    )
    assert [f.title for f in status.failures] == ["e6", "e5", "e4", "e3", "e2"]
    assert status.failures[0] == FeedFailure(
        "e6", "Discord refused this event's embed: no 6", at(6)
    )
    assert await feed.counts() == {"pending": 0, "failed": 7, "paused_channels": 0}
    assert await feed.due_channels(at(10)) == []


# --------------------------------------------------------------------------- edits


@part("feed", "events")
async def test_a_newer_version_edits_its_posted_message(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "v1", key="match")
    await event(store, "x")
    posted = await batch(store, at())
    await feed.mark_sent(posted, 77, at(1))
    await event(store, "v2", key="match")
    assert await feed.due_channels(at(2)) == [CHANNEL]
    change = await edit(store, at(2))
    assert (change.guild_id, change.channel_id, change.message_id, change.batch_id) == (
        GUILD,
        CHANNEL,
        77,
        posted.id,
    )
    assert (change.embed_index, change.attempts, change.probe) == (0, 0, False)
    assert titles(change) == ["v2", "x"]
    assert change.payload["embeds"][1] == posted.payload["embeds"][1]
    # A failed edit waits for its retry time, then is tried again.
    await feed.mark_edit_retry(change, "Discord error 502", at(10), at(3))
    assert await feed.due_channels(at(9)) == []
    assert await feed.next_work(CHANNEL, at(9), TITLES) is None
    assert (await feed.status(GUILD)).last_error == "Discord error 502"
    again = await edit(store, at(10))
    assert (again.outbox_id, again.attempts, again.payload) == (change.outbox_id, 1, change.payload)
    await feed.mark_edited(again, at(11))
    assert await feed.due_channels(at(11)) == []
    status = await feed.status(GUILD)
    assert (status.sent, status.pending) == (3, 0)
    # The stored message now holds v2: the next version edits that.
    await event(store, "v3", key="match")
    third = await edit(store, at(12))
    assert titles(third) == ["v3", "x"] and third.message_id == 77 and third.attempts == 0
    await feed.mark_edit_refused(third, "Invalid Form Body", at(13))
    status = await feed.status(GUILD)
    assert (status.failed, status.sent, status.pending) == (1, 3, 0)
    assert status.failures == (
        FeedFailure("v3", "Discord refused this event's embed: Invalid Form Body", at(13)),
    )
    await event(store, "v4", key="match")
    assert titles(await edit(store, at(14))) == ["v4", "x"]  # the message still holds v2


@part("feed", "events")
async def test_an_edit_waits_for_what_came_before_and_a_deleted_message_is_posted_anew(
    store: Store,
) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "v1", key="k")
    first = await batch(store, at())
    await feed.mark_sent(first, 70, at())
    await event(store, "y")
    await event(store, "v2", key="k")
    await event(store, "z")
    before = await batch(store, at(1))
    assert titles(before) == ["y"]  # the edit follows in order
    await feed.mark_sent(before, 71, at(1))
    change = await edit(store, at(2))
    assert change.message_id == 70 and titles(change) == ["v2"]
    await feed.mark_edit_gone(change)
    assert await feed.due_channels(at(2)) == [CHANNEL]
    anew = await batch(store, at(2))
    assert titles(anew) == ["v2", "z"]
    await feed.mark_sent(anew, 72, at(3))
    await event(store, "v3", key="k")
    latest = await edit(store, at(4))  # the version posted anew is the one edited now
    assert (latest.message_id, latest.batch_id, latest.embed_index) == (72, anew.id, 0)
    assert titles(latest) == ["v3", "z"]


@part("feed", "events")
async def test_versions_that_do_not_fit_or_were_never_posted(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "s1", key="score")
    await event(store, "s2", key="score")  # the first was never posted: it is superseded
    first = await batch(store, at())
    assert titles(first) == ["s2"]
    await feed.mark_sent(first, 80, at())
    await event(store, "s3", key="score")
    too_long = await batch(store, at(1), Titles(fits=False))
    assert titles(too_long) == ["s3"] and too_long.id != first.id
    await feed.mark_sent(too_long, 81, at(1))
    status = await feed.status(GUILD)
    assert (status.sent, status.pending) == (2, 0)
    # Versions are scoped to their guild: another guild's same key is its own item, even in
    # the same channel.
    await feed.set_channel(OTHER, CHANNEL, at())
    await event(store, "o1", guild=OTHER, key="score")
    other = await batch(store, at(2))
    assert titles(other) == ["o1"] and other.guild_id == OTHER


# --------------------------------------------------------------------------- moves


@part("feed", "events")
async def test_a_move_takes_the_backlog_first_and_keeps_the_newest_version(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "score v1", key="match")
    await event(store, "old news")
    stuck = await batch(store, at())
    await feed.mark_retry(stuck, "connection lost", True, at(60), at())
    await event(store, "score v2", key="match")  # behind the fixed batch: kept, not superseded
    change = await feed.set_channel(GUILD, ELSEWHERE, at(1))
    assert change == FeedChange(CHANNEL, False, 3, 1, 0, 0)
    assert (await feed.status(GUILD)).pending == 2  # of the two versions, the newer stays
    await event(store, "score v3", key="match")
    await event(store, "fresh")
    assert await feed.due_channels(at(1)) == [ELSEWHERE]
    assert await feed.next_work(CHANNEL, at(1), TITLES) is None
    moved = await batch(store, at(1), channel=ELSEWHERE)
    assert titles(moved) == ["old news", "score v3", "fresh"]
    assert moved.nonce != stuck.nonce and moved.channel_id == ELSEWHERE
    # The send in flight to the old channel is answered after the new channel took its
    # events: they stay the new channel's.
    await feed.mark_sent(stuck, 555, at(2))
    status = await feed.status(GUILD)
    assert (status.channel_id, status.pending, status.sent) == (ELSEWHERE, 3, 0)
    assert await feed.next_work(ELSEWHERE, at(2), TITLES) == moved
    await feed.mark_sent(moved, 556, at(3))
    assert (await feed.status(GUILD)).sent == 3


@part("feed", "events")
async def test_a_send_answered_after_a_move_marks_what_the_new_channel_has_not_taken(
    store: Store,
) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "a")
    await event(store, "b")
    in_flight = await batch(store, at())
    change = await feed.set_channel(GUILD, ELSEWHERE, at(1))
    assert (change.moved, change.maybe_posted) == (2, 0)
    await event(store, "c")
    await feed.mark_sent(in_flight, 600, at(2))  # Discord did post it, in the old channel
    status = await feed.status(GUILD)
    assert (status.sent, status.pending) == (2, 1)
    assert titles(await batch(store, at(2), channel=ELSEWHERE)) == ["c"]
    assert await feed.due_channels(at(2)) == [ELSEWHERE]


@part("feed", "events")
async def test_after_a_move_a_newer_version_is_posted_in_the_new_channel(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await event(store, "v1", key="k")
    await feed.mark_sent(await batch(store, at()), 70, at())
    await feed.set_channel(GUILD, ELSEWHERE, at(1))
    await event(store, "v2", key="k")
    moved = await batch(store, at(2), channel=ELSEWHERE)  # not an edit of the old channel's
    assert titles(moved) == ["v2"] and moved.channel_id == ELSEWHERE
    await feed.mark_sent(moved, 71, at(2))
    await event(store, "v3", key="k")
    assert (await edit(store, at(3), channel=ELSEWHERE)).message_id == 71


# --------------------------------------------------------------------------- age, backfill


@part("feed", "events")
async def test_a_maximum_age_expires_old_events_that_are_not_in_a_batch(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at(), max_age=3600)
    await feed.set_channel(OTHER, ELSEWHERE, at())  # no maximum age
    await event(store, "a")
    await event(store, "b")
    await event(store, "old elsewhere", guild=OTHER)
    fixed = await batch(store, at(), Titles(per_message=1))
    assert titles(fixed) == ["a"]
    await event(store, "c", received=3000)
    assert await feed.expire_old(at(3600)) == 0
    assert await feed.expire_old(at(3601)) == 1  # b: a is in a batch, c is younger
    status = await feed.status(GUILD)
    assert (status.expired, status.pending) == (1, 2)
    assert status.last_error == "older than the feed maximum age"
    assert await feed.expire_old(at(3602)) == 0
    # Setting the channel again without an age keeps the one set.
    await feed.set_channel(GUILD, CHANNEL, at(3603))
    assert await feed.expire_old(at(6601)) == 1
    assert (await feed.status(GUILD)).expired == 2
    assert (await feed.status(OTHER)).pending == 1
    assert await feed.next_work(CHANNEL, at(6601), TITLES) == fixed


@part("feed", "events")
async def test_events_stored_before_the_feed_are_counted_and_backfilled_once(
    store: Store,
) -> None:
    feed = store.feed
    await event(store, "e1", occurred=-3 * 3600)
    await event(store, "e2", occurred=-3600)
    await event(store, "e3", occurred=-2 * 3600)  # stored after e2, happened before it
    await event(store, "v1", occurred=-100 * 60, key="day")
    await event(store, "v2", occurred=-90 * 60, key="day")
    await event(store, "q", occurred=-80 * 60, kind="quiet")  # a type off by default
    assert await feed.due_channels(at()) == []
    change = await feed.set_channel(GUILD, CHANNEL, at(), off_by_default=OFF)
    assert change == FeedChange(None, False, 0, 0, 0, 4)  # e1, e2, e3, v2: not q nor v1
    change = await feed.set_channel(
        GUILD, CHANNEL, at(1), backfill_since=at(-150 * 60), off_by_default=OFF
    )
    assert change == FeedChange(CHANNEL, False, 0, 0, 3, 1)
    assert titles(await batch(store, at(1))) == ["e3", "v2", "e2"]
    again = await feed.set_channel(
        GUILD, CHANNEL, at(2), backfill_since=at(-150 * 60), off_by_default=OFF
    )
    assert (again.backfilled, again.not_posted) == (0, 1)
    # With the types chosen, those decide.
    await feed.set_event_types(GUILD, ["custom.quiet"], at(3))
    chosen = await feed.set_channel(
        GUILD, CHANNEL, at(4), backfill_since=at(-5 * 3600), off_by_default=OFF
    )
    assert (chosen.backfilled, chosen.not_posted) == (1, 0)
    assert (await feed.status(GUILD)).pending == 4


@part("feed", "events")
async def test_a_backfill_takes_at_most_500_events_the_newest(store: Store) -> None:
    await asyncio.gather(*(event(store, f"e{n:03d}", occurred=-1000 + n) for n in range(503)))
    change = await store.feed.set_channel(GUILD, CHANNEL, at(), backfill_since=at(-2000))
    assert (change.backfilled, change.not_posted) == (500, 3)
    assert titles(await batch(store, at())) == [f"e{n:03d}" for n in range(3, 13)]
    assert (await store.feed.status(GUILD)).pending == 500


@part("feed", "events")
async def test_the_feed_language_and_the_titles_stored_before_it(store: Store) -> None:
    feed = store.feed
    await feed.set_channel(GUILD, CHANNEL, at())
    await feed.note_locale(GUILD, "ru", at())
    await event(store, "a")
    first = await batch(store, at())
    assert first.payload["embeds"][0]["language"] == [None, "ru"]
    assert first.payload["embeds"][0]["stored_title"] is False
    await feed.mark_sent(first, 1, at())
    await feed.set_language(GUILD, "en", at())
    await event(store, "b")
    assert (await batch(store, at())).payload["embeds"][0]["language"] == ["en", "ru"]


# --------------------------------------------------------------------------- due channels


@part("feed", "events")
async def test_due_channels_are_exactly_those_with_work(store: Store) -> None:
    feed = store.feed
    names = ["retrying", "paused", "editing", "idle", "ready", "unprobed"]
    channels = {name: 1001 + n for n, name in enumerate(names)}
    guilds = {name: GUILD + 10 + n for n, name in enumerate(names)}
    for name in names:
        await feed.set_channel(guilds[name], channels[name], at())

    async def step(name: str, now: str = at()) -> Batch | Edit | None:
        return await feed.next_work(channels[name], now, TITLES)

    for name in ["retrying", "paused", "unprobed"]:
        await event(store, f"{name}-a", guild=guilds[name])
    await event(store, "v1", guild=guilds["editing"], key="k")
    retrying, paused, unprobed = (
        await step("retrying"),
        await step("paused"),
        await step("unprobed"),
    )
    assert isinstance(retrying, Batch) and isinstance(paused, Batch)
    assert isinstance(unprobed, Batch)
    await feed.mark_retry(retrying, "Discord error 503", False, at(600), at())
    await feed.pause(paused, REFUSED, at(), lambda code, probes: 600.0, at())
    await feed.pause(
        unprobed, Refusal(True, 10003, "Unknown Channel"), at(), lambda c, p: None, at()
    )
    first = await step("editing")
    assert isinstance(first, Batch)
    await feed.mark_sent(first, 5, at())
    for name in ["retrying", "paused", "unprobed"]:
        await event(store, f"{name}-b", guild=guilds[name])  # behind what waits
    await event(store, "v2", guild=guilds["editing"], key="k")
    await event(store, "c", guild=guilds["editing"])
    change = await step("editing")
    assert isinstance(change, Edit)
    await feed.mark_edit_retry(change, "Discord error 502", at(600), at())
    await event(store, "r", guild=guilds["ready"])
    assert await feed.due_channels(at()) == [channels["ready"]]
    for name in names:
        assert (await step(name) is None) == (name != "ready")
    later = at(600)
    expected = [channels[n] for n in ["retrying", "paused", "editing", "ready"]]
    assert await feed.due_channels(later) == expected
    for name in names:
        assert (await step(name, later) is None) == (name in ("idle", "unprobed"))
    assert (await feed.counts())["paused_channels"] == 2


# --------------------------------------------------------------------------- the poster


class Discord:
    """Answers like Discord: a nonce seen before returns the message it already made."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, dict[str, Any], str]] = []
        self.by_nonce: dict[str, int] = {}
        self.edits: list[tuple[int, int, dict[str, Any]]] = []
        self.lose_next_answer = False

    async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
        if nonce in self.by_nonce:
            return self.by_nonce[nonce]
        message_id = 1000 + len(self.messages)
        self.messages.append((channel_id, payload, nonce))
        self.by_nonce[nonce] = message_id
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise SendError.retry("connection to Discord failed", maybe_posted=True)
        return message_id

    async def edit(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
        self.edits.append((channel_id, message_id, payload))


@part("feed", "events")
async def test_the_poster_posts_every_event_once_with_the_real_embeds(store: Store) -> None:
    clock = ManualClock(NOW)
    discord = Discord()
    poster = FeedPoster(store, clock, discord, backoff_base=1)
    await store.feed.set_channel(GUILD, CHANNEL, at())
    for n in range(23):
        await event(store, f"Event {n}", player={"id": "p", "name": "*N*"})
    assert await poster.run_once() == 3
    assert [len(p["embeds"]) for _, p, _ in discord.messages] == [10, 10, 3]
    shown = [e["title"] for _, p, _ in discord.messages for e in p["embeds"]]
    assert shown == [f"📣 Event {n}" for n in range(23)]
    assert await poster.run_once() == 0
    # A lost answer: the batch is sent again with its nonce, and Discord made one message.
    await event(store, "late", received=1)
    discord.lose_next_answer = True
    assert await poster.run_once() == 0 and len(discord.messages) == 4
    clock.advance(10)
    assert await poster.run_once() == 1 and len(discord.messages) == 4
    # A newer version edits its message in place.
    await event(store, "Score 0:0", key="match")
    assert await poster.run_once() == 1
    await event(store, "Score 1:0", key="match")
    assert await poster.run_once() == 0
    [(channel, message_id, payload)] = discord.edits
    assert (channel, message_id) == (CHANNEL, 1004)
    assert [e["title"] for e in payload["embeds"]] == ["📣 Score 1:0"]
    status = await store.feed.status(GUILD)
    assert (status.sent, status.pending, status.failed, status.channel_state) == (26, 0, 0, "ok")


# --------------------------------------------------------------------------- in game


async def play(store: Store, start: float, hours: float, endpoint_id: int | None) -> Any:
    """A Minecraft session of Notch's, ``hours`` long from ``start`` seconds after NOW."""
    results = []
    for kind, moment in [("session.started", start), ("session.ended", start + hours * 3600)]:
        when = NOW + timedelta(seconds=moment)
        body = {
            "type": kind, "player_uuid": NOTCH, "player_name": "Notch", "server_id": "survival",
            "at": when.isoformat(),
        }  # fmt: skip
        raw = MINECRAFT.parse_webhook(body, WebhookContext(received_at=when))
        delivery = Delivery(
            GUILD, "minecraft", endpoint_id, f"mc-{kind}-{moment}", "{}", to_iso(when)
        )
        results.append(
            await store.events.ingest(
                delivery, MINECRAFT, raw, MINECRAFT.effects(raw), IngestPolicy()
            )
        )
    return results[-1]


@part("feed", "events", "endpoints", "consoles", "links", "actions")
async def test_milestones_are_said_in_game_in_the_feed_language(store: Store) -> None:
    def made(now: datetime, path: str) -> Any:
        return store.endpoints.create(
            path=path, kind="minecraft", guild_id=GUILD, secret="s", read_secret=None,
            game_id=None, now=now,
        )  # fmt: skip

    loud, quiet, off = [await made(NOW, path) for path in ("mc-loud", "mc-quiet", "mc-off")]
    squad = await made(NOW, "squad")
    assert loud and quiet and off and squad
    for endpoint, game, announce in [
        (loud, "minecraft", True), (quiet, "minecraft", False), (off, "minecraft", True),
        (squad, "squad", True),
    ]:  # fmt: skip
        await store.consoles.set(
            endpoint.id, game=game, host="127.0.0.1", port=25575, sealed_password="sealed",
            announce=announce, now=NOW,
        )  # fmt: skip
    await store.endpoints.disable(off.id, NOW)
    result = await play(store, 0, 10.5, loud.id)  # Notch is not linked: nothing is said
    assert result.actions == 0 and await store.actions.claim_due(NOW + timedelta(days=1), 10) == []
    await store.links.link(
        guild_id=GUILD, discord_user_id=ALICE, source="minecraft", external_id=NOTCH, now=NOW,
        display_name="Notch",
    )  # fmt: skip
    await store.feed.set_language(GUILD, "ru", to_iso(NOW))
    result = await play(store, 12 * 3600, 40, loud.id)  # 50.5 hours: a milestone
    assert result.actions == 2  # on every announcing console of an enabled endpoint
    said = await store.actions.claim_due(NOW + timedelta(days=5), 10)
    assert [(a.connector, a.action, a.pause_key, a.user_id) for a in said] == [
        ("minecraft", "run_command", f"console:{loud.id}", ALICE),
        ("squad", "broadcast", f"console:{squad.id}", ALICE),
    ]
    assert said[0].payload["endpoint_id"] == loud.id
    assert said[0].payload["text"] == "Notch: 50 часов в Minecraft"
    assert said[1].payload == {"endpoint_id": squad.id, "message": "Notch: 50 часов в Minecraft"}
    assert not said[0].idempotent
