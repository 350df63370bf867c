"""The feed poster's logic with an in-memory Discord stand-in (tests/test_feed_discord.py runs
the same flows through discord.py's real HTTP client and a fake Discord API)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.feed.embeds import CHARS_PER_MESSAGE, EMBEDS_PER_MESSAGE, embed_length, within_limits
from bot.feed.poster import FeedPoster, SendError
from bot.services.feed_admin import pause_reason
from connectors.base import WebhookContext
from tests.conftest import GUILD

CHANNEL = 900000000000000001


class MemoryDiscord:
    """Answers like Discord: a nonce seen before returns the message it already made."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, dict[str, Any], str]] = []
        self.by_nonce: dict[str, int] = {}
        self.failures: list[SendError] = []
        self.lose_next_response = False

    async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
        if self.failures:
            raise self.failures.pop(0)
        if nonce in self.by_nonce:
            return self.by_nonce[nonce]
        message_id = 1000 + len(self.messages)
        self.messages.append((channel_id, payload, nonce))
        self.by_nonce[nonce] = message_id
        if self.lose_next_response:
            self.lose_next_response = False
            raise SendError.retry(
                "connection to Discord failed: ServerDisconnectedError", maybe_posted=True
            )
        return message_id

    async def edit(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
        raise AssertionError("not used")

    def embeds(self) -> list[dict[str, Any]]:
        return [e for _, payload, _ in self.messages for e in payload["embeds"]]


async def set_feed(core: Core, channel: int | None = CHANNEL, max_age: int | None = None) -> None:
    now = to_iso(core.clock.now())
    await core.store.engine.write(
        lambda c: c.execute(
            "INSERT INTO guilds (guild_id, feed_channel_id, feed_max_age_seconds, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET"
            " feed_channel_id = excluded.feed_channel_id, feed_max_age_seconds = excluded.feed_max_age_seconds",
            (GUILD, channel, max_age, now, now),
        )
    )


async def add_events(
    core: Core, count: int, start: int = 0, title: str = "Event {n}", **extra: Any
) -> None:
    connector = core.registry.get("custom")
    for n in range(start, start + count):
        body = {"event_type": "test", "title": title.format(n=n), "id": f"e{n}", **extra}
        raw = connector.parse_webhook(body, WebhookContext(received_at=core.clock.now()))
        await core.pipeline.ingest("custom", GUILD, raw)


def statuses(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM feed_outbox GROUP BY status").fetchall())


async def test_batches_of_ten_in_order(core: Core, clock: ManualClock) -> None:
    await set_feed(core)
    await add_events(core, 25)
    discord_api = MemoryDiscord()
    poster = FeedPoster(core.store, clock, discord_api)
    assert await poster.run_once() == 3
    assert [len(p["embeds"]) for _, p, _ in discord_api.messages] == [10, 10, 5]
    titles = [e["title"] for e in discord_api.embeds()]
    assert titles == [f"📣 Event {n}" for n in range(25)]
    assert await core.store.engine.read(statuses) == {"sent": 25}
    assert await poster.run_once() == 0  # nothing left, nothing sent twice
    rows = await core.store.engine.fetchall("SELECT DISTINCT message_id FROM feed_outbox")
    assert len(rows) == 3


async def test_long_texts_stay_within_every_limit(core: Core, clock: ManualClock) -> None:
    await set_feed(core)
    # Titles at the connector's 256-character maximum: the icon pushes them over Discord's 256.
    await add_events(core, 12, title="{n:03d}" + "T" * 253, player={"id": "p", "name": "*N*" * 40})
    # Descriptions beyond Discord's 4,096: clipped, and at most one such embed per message.
    await add_events(core, 3, start=100, description="d" * 5000)
    discord_api = MemoryDiscord()
    await FeedPoster(core.store, clock, discord_api).run_once()
    assert len(discord_api.embeds()) == 15
    # 10 short ones fill a message; the 6,000-character limit then cuts the rest:
    assert [len(p["embeds"]) for _, p, _ in discord_api.messages] == [10, 3, 1, 1]
    for _, payload, _ in discord_api.messages:
        assert len(payload["embeds"]) <= EMBEDS_PER_MESSAGE
        assert sum(embed_length(e) for e in payload["embeds"]) <= CHARS_PER_MESSAGE
        assert all(within_limits(e) for e in payload["embeds"])
    assert all(len(e["title"]) <= 256 for e in discord_api.embeds())


async def test_retryable_failure_backs_off_and_resends_the_same_batch(
    core: Core, clock: ManualClock
) -> None:
    await set_feed(core)
    await add_events(core, 3)
    discord_api = MemoryDiscord()
    discord_api.failures = [SendError.retry("Discord error 503")]
    poster = FeedPoster(core.store, clock, discord_api, backoff_base=10)
    assert await poster.run_once() == 0
    assert await core.store.engine.read(statuses) == {"pending": 3}
    await add_events(core, 1, start=3)  # a new event must not jump the queue or skip the backoff
    assert await poster.run_once() == 0
    clock.advance(30)
    assert await poster.run_once() == 2  # the stored batch, unchanged, then the newer event
    first_nonce = discord_api.messages[0][2]
    assert [len(p["embeds"]) for _, p, _ in discord_api.messages] == [3, 1]
    batch = await core.store.engine.fetchone(
        "SELECT nonce, attempts, status FROM feed_batches ORDER BY id LIMIT 1"
    )
    assert tuple(batch) == (first_nonce, 2, "sent")
    assert await core.store.engine.read(statuses) == {"sent": 4}


async def test_refused_channel_pauses_keeps_everything_and_resumes(
    core: Core, clock: ManualClock
) -> None:
    await set_feed(core)
    await add_events(core, 12)
    discord_api = MemoryDiscord()
    discord_api.failures = [SendError.refused(50013, "403, Missing Permissions")]
    poster = FeedPoster(core.store, clock, discord_api)
    assert await poster.run_once() == 0
    assert await core.store.engine.read(statuses) == {"pending": 12}  # nothing failed, nothing lost
    status = await core.store.feed.status(GUILD)
    assert (status.channel_state, status.pause_code, status.pending) == ("paused", 50013, 12)
    assert "Send Messages or Embed Links" in (pause_reason(status.pause_code, status.pause_detail))
    assert "403" in (status.last_error or "")
    await add_events(core, 2, start=100)
    assert await poster.run_once() == 0  # paused: nothing is sent before the probe is due
    assert discord_api.messages == []
    change = await core.store.feed.set_channel(GUILD, CHANNEL, to_iso(clock.now()))
    assert change.resumed and change.moved == 0
    assert await poster.run_once() == 2
    assert [e["title"] for e in discord_api.embeds()] == [
        *(f"📣 Event {n}" for n in range(12)),
        "📣 Event 100",
        "📣 Event 101",
    ]
    assert await core.store.engine.read(statuses) == {"sent": 14}


async def test_lost_response_and_restart_post_once(
    core: Core, clock: ManualClock, config: Any
) -> None:
    await set_feed(core)
    await add_events(core, 4)
    discord_api = MemoryDiscord()
    discord_api.lose_next_response = True  # Discord made the message, the answer never came
    assert await FeedPoster(core.store, clock, discord_api, backoff_base=1).run_once() == 0
    assert len(discord_api.messages) == 1
    await core.stop()  # restart the whole process
    restarted = await Core.start(config, clock)
    try:
        clock.advance(5)
        assert await FeedPoster(restarted.store, clock, discord_api).run_once() == 1
        assert len(discord_api.messages) == 1  # the same nonce returned the same message
        assert await restarted.store.engine.read(statuses) == {"sent": 4}
        message = await restarted.store.engine.fetchone(
            "SELECT DISTINCT message_id FROM feed_outbox"
        )
        assert message[0] == 1000
    finally:
        await restarted.stop()
        core.stop = _noop  # type: ignore[method-assign]


async def _noop() -> None:
    return None


async def test_optional_maximum_age_expires_old_pending_events(
    core: Core, clock: ManualClock
) -> None:
    await set_feed(core, max_age=3600)
    await add_events(core, 3)
    clock.advance(7200)
    await add_events(core, 1, start=3)
    discord_api = MemoryDiscord()
    assert await FeedPoster(core.store, clock, discord_api).run_once() == 1
    assert [e["title"] for e in discord_api.embeds()] == ["📣 Event 3"]
    status = await core.store.feed.status(GUILD)
    assert (status.expired, status.sent, status.pending) == (3, 1, 0)


async def test_nothing_is_dropped_by_default(core: Core, clock: ManualClock) -> None:
    await set_feed(core)
    await add_events(core, 2)
    clock.advance(30 * 24 * 3600)
    discord_api = MemoryDiscord()
    assert await FeedPoster(core.store, clock, discord_api).run_once() == 1
    assert len(discord_api.embeds()) == 2


async def test_poster_is_woken_by_events_and_polls_for_other_processes(
    core: Core, clock: ManualClock
) -> None:
    import asyncio

    await set_feed(core)
    discord_api = MemoryDiscord()
    poster = FeedPoster(core.store, clock, discord_api, poll_seconds=0.2)
    core.pipeline.on_event = poster.wake
    await poster.start()
    try:
        await add_events(core, 1)
        for _ in range(50):
            if discord_api.messages:
                break
            await asyncio.sleep(0.01)
        assert len(discord_api.messages) == 1  # woken at once, well before the poll interval
        # An event written by another process (no wake-up): found by polling.
        other = sqlite3.connect(core.config.database.path, isolation_level=None)
        now = to_iso(clock.now())
        other.execute(
            "INSERT INTO activity_events (guild_id, type, source, title, payload, occurred_at, created_at)"
            " VALUES (?, 'custom.x', 'custom', 'From the CLI', '{}', ?, ?)",
            (GUILD, now, now),
        )
        event_id = other.execute("SELECT max(id) FROM activity_events").fetchone()[0]
        other.execute(
            "INSERT INTO feed_outbox (event_id, guild_id, channel_id, status, created_at, updated_at)"
            " VALUES (?, ?, ?, 'pending', ?, ?)",
            (event_id, GUILD, CHANNEL, now, now),
        )
        other.close()
        for _ in range(100):
            if len(discord_api.messages) == 2:
                break
            await asyncio.sleep(0.02)
        assert [e["title"] for e in discord_api.embeds()] == ["📣 Event 0", "📣 From the CLI"]
    finally:
        await poster.stop()


def test_embed_payload_is_plain_json() -> None:
    from bot.feed.embeds import build_embed

    embed = build_embed(
        {
            "type": "playtime.milestone",
            "title": "Alex reached 100 h of playtime",
            "payload": json.dumps({"game_id": "393380", "hours": 100}),
            "actor_user_id": 42,
            "actor_external_id": "76561198000000001",
            "actor_name": "Alex",
            "occurred_at": "2025-03-01T12:00:00.000000Z",
        }
    )
    assert json.loads(json.dumps(embed)) == embed
    assert embed["url"] == "https://store.steampowered.com/app/393380/"
    assert embed["description"] == "<@42>"
    assert any(
        "steamcommunity.com/profiles/76561198000000001" in f["value"] for f in embed["fields"]
    )


@pytest.mark.parametrize("text", ["@everyone", "**bold** [x](http://evil)", "`code`"])
def test_user_text_is_escaped(text: str) -> None:
    from bot.feed.embeds import build_embed

    embed = build_embed(
        {
            "type": "custom.x",
            "title": "t",
            "payload": "{}",
            "actor_name": text,
            "occurred_at": "2025-03-01T12:00:00Z",
        }
    )
    assert embed["description"] != text
    assert "@everyone" not in embed["description"]


async def test_events_stored_before_the_feed_are_counted_and_backfilled_once(
    core: Core, clock: ManualClock
) -> None:
    await add_events(core, 1, start=0, title="Old {n}")  # 80 hours ago: out of any backfill
    clock.advance(8 * 3600)
    await add_events(core, 4, start=1)
    connector = core.registry.get("custom")
    for version in ("v1", "v2"):  # two versions of one updated item: only the latest counts
        body = {"event_type": "test", "title": f"Item {version}", "id": f"item-{version}",
                "update_key": "item"}  # fmt: skip
        raw = connector.parse_webhook(body, WebhookContext(received_at=clock.now()))
        await core.pipeline.ingest("custom", GUILD, raw)
    clock.advance(72 * 3600)
    change = await core.feed_admin.set_channel(GUILD, CHANNEL)
    assert (change.backfilled, change.not_posted) == (0, 6)
    discord = MemoryDiscord()
    await FeedPoster(core.store, clock, discord).run_once()
    assert discord.embeds() == []  # nothing old is posted without being asked
    change = await core.feed_admin.set_channel(GUILD, CHANNEL, backfill_hours=72)
    assert (change.backfilled, change.not_posted) == (5, 1)  # the 80-hour-old one stays
    await FeedPoster(core.store, clock, discord).run_once()
    assert [e["title"] for e in discord.embeds()] == [
        *(f"📣 Event {n}" for n in range(1, 5)),
        "📣 Item v2",
    ]
    again = await core.feed_admin.set_channel(GUILD, CHANNEL, backfill_hours=72)
    assert (again.backfilled, again.not_posted) == (0, 1)  # exactly once
    with pytest.raises(ValueError):
        await core.feed_admin.set_channel(GUILD, CHANNEL, backfill_hours=73)


async def test_a_backfill_takes_at_most_500_events_the_newest(
    core: Core, clock: ManualClock
) -> None:
    await add_events(core, 510)
    change = await core.feed_admin.set_channel(GUILD, CHANNEL, backfill_hours=1)
    assert (change.backfilled, change.not_posted) == (500, 10)
    first = await core.store.engine.fetchone(
        "SELECT min(e.title) FROM feed_outbox o JOIN activity_events e ON e.id = o.event_id"
        " WHERE e.title LIKE 'Event 1_'"
    )
    assert first is not None and first[0] == "Event 10"  # events 0-9 are the ones left out
