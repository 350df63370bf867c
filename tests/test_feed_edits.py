"""Feed items that update in place: a newer version of a posted event edits its message.

End to end with discord.py's real HTTP client against the fake Discord API."""

from __future__ import annotations

from typing import Any

import pytest
from discord.http import HTTPClient

from bot.clock import ManualClock
from bot.core import Core
from connectors.base import SchemaError, WebhookContext
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.test_feed import CHANNEL, add_events, set_feed, statuses
from tests.test_feed_discord import http, poster

__all__ = ["http"]  # the fixture, used by name

GUILD_CHANNELS = {CHANNEL: None}
FAKE_DISCORD = {"per_channel": (5, 1.0)}


async def version(core: Core, n: int, key: str, title: str) -> None:
    await add_events(core, 1, start=n, title=title, update_key=key)


def titles(message: dict[str, Any]) -> list[str]:
    """The embeds' titles without the event type's icon."""
    return [e["title"].split(" ", 1)[1] for e in message["embeds"]]


async def message_ids(core: Core) -> list[int | None]:
    rows = await core.store.engine.fetchall("SELECT message_id FROM feed_outbox ORDER BY id")
    return [r[0] for r in rows]


async def test_a_newer_version_edits_the_posted_message(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await version(core, 1, "match-7", "Score 0:0")
    feed = poster(core, clock, http)
    assert await feed.run_once() == 1
    await version(core, 2, "match-7", "Score 1:0")
    assert await feed.run_once() == 0  # no new message...
    assert feed.edited_messages == 1  # ...the first one was edited
    [message] = discord_api.messages[CHANNEL]
    assert titles(message) == ["Score 1:0"]
    assert message["edited_timestamp"] is not None
    assert await core.store.engine.read(statuses) == {"sent": 2}
    assert len(set(await message_ids(core))) == 1
    edits = [r for r in discord_api.requests if r.method == "PATCH"]
    assert len(edits) == 1


async def test_the_edit_replaces_only_its_own_embed_and_keeps_the_order(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 1, start=1, title="A")
    await version(core, 2, "k", "B v1")
    await add_events(core, 1, start=3, title="C")
    feed = poster(core, clock, http)
    assert await feed.run_once() == 1
    # Pending now: D (new), then B v2 (an edit), then E (new): D is posted, then the edit, then E.
    await add_events(core, 1, start=4, title="D")
    await version(core, 5, "k", "B v2")
    await add_events(core, 1, start=6, title="E")
    assert await feed.run_once() == 2
    first, second, third = discord_api.messages[CHANNEL]
    assert titles(first) == ["A", "B v2", "C"]
    assert titles(second) == ["D"]
    assert titles(third) == ["E"]
    methods = [r.method for r in discord_api.requests if r.channel_id == CHANNEL]
    assert methods[-3:] == ["POST", "PATCH", "POST"]
    # The stored batch holds what Discord shows, so a later version edits from there.
    await version(core, 7, "k", "B v3")
    await feed.run_once()
    assert titles(discord_api.messages[CHANNEL][0]) == ["A", "B v3", "C"]


async def test_a_version_never_posted_is_superseded(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await version(core, 1, "daily", "1 h today")
    await version(core, 2, "daily", "2 h today")
    await version(core, 3, "other", "unrelated")
    assert await poster(core, clock, http).run_once() == 1
    [message] = discord_api.messages[CHANNEL]
    assert titles(message) == ["2 h today", "unrelated"]
    assert await core.store.engine.read(statuses) == {"sent": 2, "superseded": 1}


async def test_a_deleted_message_makes_the_update_a_new_post(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await version(core, 1, "k", "v1")
    feed = poster(core, clock, http)
    await feed.run_once()
    discord_api.messages[CHANNEL].clear()  # a moderator deleted it
    await version(core, 2, "k", "v2")
    assert await feed.run_once() == 1
    [message] = discord_api.messages[CHANNEL]
    assert titles(message) == ["v2"]
    assert await core.store.engine.read(statuses) == {"sent": 2}
    # Later versions edit the new message, never the deleted one.
    await version(core, 3, "k", "v3")
    assert await feed.run_once() == 0
    assert titles(discord_api.messages[CHANNEL][0]) == ["v3"]


async def test_edit_server_errors_back_off_and_lost_answers_are_repeated(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await version(core, 1, "k", "v1")
    feed = poster(core, clock, http, backoff_base=1)
    await feed.run_once()
    await version(core, 2, "k", "v2")
    discord_api.fail_next(CHANNEL, [503])
    await feed.run_once()
    assert await core.store.engine.read(statuses) == {"sent": 1, "pending": 1}
    await add_events(core, 1, start=3, title="after")
    await feed.run_once()  # the edit waits for its retry time, and what follows waits for it
    assert len(discord_api.messages[CHANNEL]) == 1
    clock.advance(10)
    discord_api.drop_response_next(CHANNEL)  # applied, but the answer is lost: sent again
    await feed.run_once()
    assert await core.store.engine.read(statuses) == {"sent": 1, "pending": 2}
    clock.advance(10)
    await feed.run_once()
    patches = [r for r in discord_api.requests if r.method == "PATCH"]
    assert [r.status for r in patches] == [503, 200, 200]
    first, second = discord_api.messages[CHANNEL]
    assert titles(first) == ["v2"] and titles(second) == ["after"]
    assert await core.store.engine.read(statuses) == {"sent": 3}


async def test_an_edit_refused_for_the_channel_pauses_it(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await version(core, 1, "k", "v1")
    feed = poster(core, clock, http)
    await feed.run_once()
    await version(core, 2, "k", "v2")
    discord_api.forbidden_channels.add(CHANNEL)
    await feed.run_once()
    assert await core.store.engine.read(statuses) == {"sent": 1, "pending": 1}
    state = await core.store.engine.fetchone(
        "SELECT status, code FROM feed_channels WHERE channel_id = ?", (CHANNEL,)
    )
    assert state is not None and tuple(state) == ("paused", 50013)
    # The probe is the refused edit itself, sent again once the probe is due.
    discord_api.forbidden_channels.clear()
    clock.advance(30)
    assert await feed.run_once() == 0 and feed.edited_messages == 0  # not yet due
    clock.advance(60)
    await feed.run_once()
    assert feed.edited_messages == 1 and await core.store.engine.read(statuses) == {"sent": 2}
    assert titles(discord_api.messages[CHANNEL][0]) == ["v2"]
    patches = [r.status for r in discord_api.requests if r.method == "PATCH"]
    assert patches == [403, 200]


async def test_a_version_too_long_for_its_message_is_posted_anew(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    # Two events that together nearly fill one message (6,000 characters).
    await add_events(core, 1, start=1, title="big", description="x" * 2900)
    await version(core, 2, "k", "small")
    feed = poster(core, clock, http)
    assert await feed.run_once() == 1
    await version(core, 3, "k", "grown")
    # A longer version no longer fits beside the big one: a new message, nothing lost.
    await add_events(core, 1, start=4, title="tail")
    await core.store.engine.write(
        lambda c: c.execute(
            "UPDATE activity_events SET payload = json_set(payload, '$.description', ?)"
            " WHERE title = 'grown'",
            ("y" * 3500,),
        )
    )
    assert await feed.run_once() == 1
    first, second = discord_api.messages[CHANNEL]
    assert titles(first) == ["big", "small"]
    assert titles(second) == ["grown", "tail"]


async def test_versions_are_scoped_to_their_guild(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await version(core, 1, "k", "guild one")
    other = GUILD + 1
    raw = core.registry.get("custom").parse_webhook(
        {"event_type": "test", "title": "guild two", "id": "x", "update_key": "k"},
        WebhookContext(received_at=core.clock.now()),
    )
    await core.pipeline.ingest("custom", other, raw)  # no feed there: stored, not queued
    assert await core.store.engine.read(statuses) == {"pending": 1}


@pytest.mark.parametrize("bad", [5, "", "x" * 201, ["k"]])
def test_custom_update_key_is_validated(core: Core, bad: Any) -> None:
    with pytest.raises(SchemaError) as caught:
        core.registry.get("custom").parse_webhook(
            {"event_type": "t", "title": "t", "update_key": bad}, WebhookContext()
        )
    assert caught.value.field == "update_key"
