"""The feed under faults, end to end: discord.py's real HTTP client against the fake Discord.

A refused channel pauses and resumes (probes, /feed channel, a move to another channel), one bad
embed fails alone, an upgraded database gets back what the old code failed, and every
acknowledged event is posted exactly once, in order."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from discord.http import HTTPClient

from bot.clock import ManualClock, from_iso, to_iso
from bot.config import Config
from bot.core import Core
from bot.gateway.client import Questlog
from bot.storage.engine import apply_migrations, connect_sync
from connectors.base import WebhookContext
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord, invalid_embeds
from tests.fakes.interactions import answer_text, command_interaction, run_command
from tests.test_feed import CHANNEL, add_events, set_feed, statuses
from tests.test_feed_discord import http, poster

__all__ = ["http"]  # the fixture, used by name

OTHER = 900000000000000002
GUILD_CHANNELS = {CHANNEL: None, OTHER: None}
FAKE_DISCORD = {"per_channel": (5, 1.0)}


def posts(fake: FakeDiscord, channel: int = CHANNEL) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.channel_id == channel]


def posted_titles(fake: FakeDiscord, channel: int = CHANNEL) -> list[str]:
    return [e["title"] for m in fake.messages.get(channel, []) for e in m["embeds"]]


def expected(count: int, start: int = 0) -> list[str]:
    return [f"📣 Event {n}" for n in range(start, start + count)]


def clock_seconds(text: str) -> float:
    return from_iso(text).timestamp()


async def status(core: Core) -> Any:
    return await core.store.feed.status(GUILD)


# --------------------------------------------------------------------------- pause and probe


@pytest.mark.parametrize("code", [50001, 50013])
async def test_a_refused_channel_is_probed_and_resumes_by_itself(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord, code: int
) -> None:
    await set_feed(core)
    await add_events(core, 15)
    discord_api.refused_channels[CHANNEL] = code
    feed = poster(core, clock, http)
    assert await feed.run_once() == 0
    assert await core.store.engine.read(statuses) == {"pending": 15}
    state = await status(core)
    assert (state.channel_state, state.pause_code, state.paused_since) == (
        "paused",
        code,
        to_iso(clock.now()),
    )
    assert state.next_probe_at is not None
    assert 54 <= (clock_seconds(state.next_probe_at) - clock_seconds(to_iso(clock.now()))) <= 66
    [first] = posts(discord_api)

    clock.advance(30)  # not due yet: nothing is sent
    assert await feed.run_once() == 0 and len(posts(discord_api)) == 1
    clock.advance(40)  # the first probe (about a minute): still refused
    assert await feed.run_once() == 0
    probes = posts(discord_api)
    assert len(probes) == 2 and probes[1].status == first.status
    # A probe is the oldest stored batch, resent unchanged with its stored nonce.
    assert probes[1].body == first.body
    state = await status(core)
    assert state.paused_since == to_iso(
        clock.now() - timedelta(seconds=70)
    )  # since the first refusal
    waited = clock_seconds(state.next_probe_at) - clock_seconds(to_iso(clock.now()))
    assert 108 <= waited <= 132  # the backoff doubled

    del discord_api.refused_channels[CHANNEL]  # the admin fixed the permission
    clock.advance(140)
    assert await feed.run_once() == 2
    assert posted_titles(discord_api) == expected(15)  # all of them, once, in order
    assert await core.store.engine.read(statuses) == {"sent": 15}
    assert (await status(core)).channel_state == "ok"
    assert posts(discord_api)[2].body["nonce"] == first.body["nonce"]


async def test_probes_back_off_to_an_hour(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 1)
    discord_api.refused_channels[CHANNEL] = 50013
    feed = poster(core, clock, http)
    waits = []
    for _ in range(9):
        await feed.run_once()
        state = await status(core)
        waits.append(clock_seconds(state.next_probe_at) - clock.now().timestamp())
        clock.set(from_iso(state.next_probe_at))
    nominal = [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert all(0.9 * n <= w <= 1.1 * n for w, n in zip(waits, nominal, strict=True)), waits
    assert len(posts(discord_api)) == 9  # one request per probe, never more
    assert await core.store.engine.read(statuses) == {"pending": 1}


async def test_a_deleted_channel_is_not_probed_and_a_move_takes_the_backlog(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 12)
    feed = poster(core, clock, http, backoff_base=1)
    discord_api.drop_response_next(CHANNEL)  # the first message is made, its answer lost
    assert await feed.run_once() == 0
    discord_api.deleted_channels.add(CHANNEL)  # then the channel is deleted
    clock.advance(10)
    assert await feed.run_once() == 0
    state = await status(core)
    assert (state.channel_state, state.pause_code, state.next_probe_at) == ("paused", 10003, None)
    old_nonces = {r.body["nonce"] for r in posts(discord_api)}
    clock.advance(6 * 3600)
    assert await feed.run_once() == 0
    assert len(posts(discord_api)) == 2  # never probed

    change = await core.store.feed.set_channel(GUILD, OTHER, to_iso(clock.now()))
    assert (change.previous_channel, change.moved, change.maybe_posted) == (CHANNEL, 12, 1)
    assert await feed.run_once() == 2
    assert posted_titles(discord_api, OTHER) == expected(12)
    new_nonces = {r.body["nonce"] for r in posts(discord_api, OTHER)}
    assert not new_nonces & old_nonces  # re-batched with new nonces for the new channel
    assert await core.store.engine.read(statuses) == {"sent": 12}
    state = await status(core)
    assert (state.channel_id, state.channel_state, state.pending) == (OTHER, "ok", 0)


async def test_other_400s_pause_like_a_403(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 3)
    discord_api.refused_channels[CHANNEL] = 50008  # a channel one cannot send messages to
    feed = poster(core, clock, http)
    assert await feed.run_once() == 0
    state = await status(core)
    assert (state.channel_state, state.pause_code, state.pending) == ("paused", 50008, 3)
    assert state.next_probe_at is not None
    del discord_api.refused_channels[CHANNEL]
    clock.advance(70)
    assert await feed.run_once() == 1
    assert posted_titles(discord_api) == expected(3)


# --------------------------------------------------------------------------- /feed channel


def feed_channel(bot: Questlog, channel: int) -> Any:
    return command_interaction(
        bot,
        guild_id=GUILD,
        channel_id=channel,
        group="feed",
        command="channel",
        options=[{"name": "channel", "type": 7, "value": str(channel)}],
        resolved={
            "channels": {
                str(channel): {
                    "id": str(channel),
                    "type": 0,
                    "name": "c",
                    "permissions": "0",
                    "guild_id": str(GUILD),
                }
            }
        },
    )


async def test_feed_channel_resumes_at_once_and_status_says_why_it_paused(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from bot.feed.poster import FeedPoster
    from bot.feed.sender import DiscordSender

    await set_feed(core)
    await add_events(core, 15)
    discord_api.refused_channels[CHANNEL] = 50013
    feed = FeedPoster(core.store, clock, DiscordSender(bot.http))
    assert await feed.run_once() == 0

    shown = command_interaction(
        bot, guild_id=GUILD, channel_id=CHANNEL, group="feed", command="status"
    )
    await run_command(bot, shown)
    text = answer_text(discord_api, shown)
    assert "**Posting is paused**" in text and "Send Messages or Embed Links" in text
    assert "tries again by itself <t:" in text and "**Waiting to post:** 15" in text

    del discord_api.refused_channels[CHANNEL]
    again = feed_channel(bot, CHANNEL)
    await run_command(bot, again)
    assert "resumes now" in answer_text(discord_api, again)
    assert await feed.run_once() == 2  # at once: no probe time to wait for
    assert posted_titles(discord_api) == expected(15)
    assert await core.store.engine.read(statuses) == {"sent": 15}


async def test_feed_channel_to_another_channel_says_what_moves(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from bot.feed.poster import FeedPoster
    from bot.feed.sender import DiscordSender

    await set_feed(core)
    await add_events(core, 4)
    discord_api.deleted_channels.add(CHANNEL)
    feed = FeedPoster(core.store, clock, DiscordSender(bot.http))
    await feed.run_once()
    shown = command_interaction(
        bot, guild_id=GUILD, channel_id=OTHER, group="feed", command="status"
    )
    await run_command(bot, shown)
    assert "deleted" in answer_text(discord_api, shown)
    assert "Pick a channel with `/feed channel`" in answer_text(discord_api, shown)
    moved = feed_channel(bot, OTHER)
    await run_command(bot, moved)
    text = answer_text(discord_api, moved)
    assert f"Events still waiting for <#{CHANNEL}>: 4" in text and "⚠️" not in text
    assert await feed.run_once() == 1
    assert posted_titles(discord_api, OTHER) == expected(4)


# --------------------------------------------------------------------------- one bad embed


async def test_a_refused_embed_fails_alone_and_the_rest_is_posted(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 3)
    # A script's icon URL that Discord will not take (a space in the host).
    await add_events(core, 1, start=3, icon="https://cdn.exa mple.org/x.png")
    await add_events(core, 6, start=4)
    feed = poster(core, clock, http)
    assert await feed.run_once() == 1
    refused, accepted = posts(discord_api)
    assert refused.status == 400 and len(refused.body["embeds"]) == 10
    assert posted_titles(discord_api) == [t for t in expected(10) if t != "📣 Event 3"]
    assert accepted.body["nonce"] != refused.body["nonce"]  # a new batch: nothing was posted
    assert await core.store.engine.read(statuses) == {"sent": 9, "failed": 1}
    state = await status(core)
    assert state.channel_state == "ok" and state.failed == 1
    [failure] = state.failures
    assert failure.title == "Event 3" and "Not a well formed URL." in failure.reason


async def test_an_invalid_body_without_an_index_is_split_down_to_the_event_at_fault(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 10)
    whole = "Embed size exceeds maximum size of 6000"
    # Discord names no embed: the batch is split in halves, and the half that starts with the
    # bad event again, down to that event, which fails alone; everything else goes through.
    discord_api.fail_next(CHANNEL, [invalid_embeds(whole=whole)] * 4)
    feed = poster(core, clock, http)
    await feed.run_once()
    sizes = [len(r.body["embeds"]) for r in posts(discord_api)]
    assert sizes[:4] == [10, 5, 2, 1]
    assert await core.store.engine.read(statuses) == {"sent": 9, "failed": 1}
    failed = await core.store.engine.fetchall(
        "SELECT e.title, o.last_error FROM feed_outbox o JOIN activity_events e"
        " ON e.id = o.event_id WHERE o.status = 'failed'"
    )
    [(title, error)] = failed
    assert title == "Event 0" and whole in error
    assert posted_titles(discord_api) == expected(9, start=1)  # still in order


async def test_the_cog_lists_refused_events(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from bot.feed.poster import FeedPoster
    from bot.feed.sender import DiscordSender

    await set_feed(core)
    await add_events(core, 2, icon="https://files example.org/x.png")
    await FeedPoster(core.store, clock, DiscordSender(bot.http)).run_once()
    shown = command_interaction(
        bot, guild_id=GUILD, channel_id=CHANNEL, group="feed", command="status"
    )
    await run_command(bot, shown)
    text = answer_text(discord_api, shown)
    assert "**Events Discord refused**" in text and "**Failed:** 2" in text
    assert "Event 0" in text and "Event 1" in text and "Not a well formed URL." in text


# --------------------------------------------------------------------------- upgrade


LEGACY_403 = (
    "Discord refused (403, Missing Permissions): the bot needs View Channel, Send Messages and"
    " Embed Links there"
)
LEGACY_404 = "channel not found (404, Unknown Channel): it was deleted or the bot left the server"
LEGACY_400 = "Discord rejected the message (400, Invalid Form Body)"


def legacy_database(path: Path) -> None:
    """A database at schema 11 as the previous release left it after refusals: events failed
    by a 403 (with their failed batch), one failed by a 404, one refused for its body."""
    conn = connect_sync(path)
    apply_migrations(conn, up_to=11)
    then = "2025-03-01T11:00:00.000000Z"
    conn.execute(
        "INSERT INTO guilds (guild_id, feed_channel_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (GUILD, CHANNEL, then, then),
    )
    ids = []
    for n in range(4):
        cur = conn.execute(
            "INSERT INTO activity_events (guild_id, type, source, title, payload, occurred_at,"
            " created_at) VALUES (?, 'custom.test', 'custom', ?, '{}', ?, ?)",
            (GUILD, f"Event {n}", then, then),
        )
        ids.append(cur.lastrowid)
    embeds = {"embeds": [{"type": "rich", "title": f"📣 Event {n}"} for n in range(2)]}
    conn.execute(
        "INSERT INTO feed_batches (id, guild_id, channel_id, nonce, payload, status, attempts,"
        " last_error, created_at) VALUES (7, ?, ?, 'qlabc-7', ?, 'failed', 1, ?, ?)",
        (GUILD, CHANNEL, json.dumps(embeds), LEGACY_403, then),
    )
    rows = [
        (ids[0], CHANNEL, 7, 0, LEGACY_403),
        (ids[1], CHANNEL, 7, 1, LEGACY_403),
        (ids[2], CHANNEL, None, None, LEGACY_403),  # arrived after the refusal
        (ids[3], CHANNEL, None, None, LEGACY_400),
    ]
    for event_id, channel, batch, index, error in rows:
        conn.execute(
            "INSERT INTO feed_outbox (event_id, guild_id, channel_id, status, batch_id,"
            " embed_index, last_error, created_at, updated_at)"
            " VALUES (?, ?, ?, 'failed', ?, ?, ?, ?, ?)",
            (event_id, GUILD, channel, batch, index, error, then, then),
        )
    conn.execute(
        "INSERT INTO feed_channels (channel_id, guild_id, status, reason, changed_at)"
        " VALUES (?, ?, 'failed', ?, ?)",
        (CHANNEL, GUILD, LEGACY_403, then),
    )
    conn.execute(
        "INSERT INTO feed_channels (channel_id, guild_id, status, reason, changed_at)"
        " VALUES (?, ?, 'failed', ?, ?)",
        (OTHER, GUILD + 1, LEGACY_404, then),
    )
    conn.close()


async def test_upgrade_puts_back_what_a_channel_refusal_failed(
    config: Config, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    legacy_database(Path(config.database.path))
    core = await Core.start(config, clock)
    try:
        assert await core.store.engine.read(statuses) == {"pending": 3, "failed": 1}
        channels = await core.store.engine.fetchall(
            "SELECT channel_id, status, code, next_probe_at FROM feed_channels ORDER BY channel_id"
        )
        assert [tuple(r) for r in channels] == [
            (CHANNEL, "paused", 50013, "2025-03-01T11:00:00.000000Z"),  # probed at once
            (OTHER, "paused", 10003, None),
        ]
        state = await core.store.feed.status(GUILD)
        assert state.channel_state == "paused" and state.pending == 3
        # The permission was fixed meanwhile: the probe (the stored batch, its nonce) goes
        # through and everything follows, once, in order.
        assert await poster(core, clock, http).run_once() == 2
        first, _ = posts(discord_api)
        assert first.body["nonce"] == "qlabc-7"
        assert [e["title"] for e in first.body["embeds"]] == ["📣 Event 0", "📣 Event 1"]
        assert posted_titles(discord_api) == expected(3)
        assert await core.store.engine.read(statuses) == {"sent": 3, "failed": 1}
        assert (await core.store.feed.status(GUILD)).channel_state == "ok"
    finally:
        await core.stop()


def test_upgrade_keeps_every_row_and_the_schema_checks(tmp_path: Path) -> None:
    path = tmp_path / "legacy.sqlite3"
    legacy_database(path)
    conn = connect_sync(path)
    try:
        apply_migrations(conn)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM feed_outbox").fetchone()[0] == 4
        batch = conn.execute("SELECT status, nonce, maybe_posted FROM feed_batches").fetchone()
        assert tuple(batch) == ("pending", "qlabc-7", 0)
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE feed_channels SET status = 'failed'")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("UPDATE feed_batches SET status = 'lost'")
    finally:
        conn.close()


async def test_the_cli_shows_a_pause_and_moves_the_feed(
    core: Core,
    clock: ManualClock,
    http: HTTPClient,
    discord_api: FakeDiscord,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli.commands import main
    from tests.process import write_config

    config = write_config(tmp_path, database={"path": str(core.config.database.path)})
    await set_feed(core)
    await add_events(core, 3)
    discord_api.refused_channels[CHANNEL] = 50001
    await poster(core, clock, http).run_once()

    def run(*args: str) -> int:  # the CLI runs its own event loop: in a thread of its own
        return main([*args, "--config", str(config)])

    assert await asyncio.to_thread(run, "feed", "status", "--guild", str(GUILD)) == 0
    shown = capsys.readouterr().out
    assert "paused since 2025-03-01T12:00:00.000000Z" in shown
    assert "no longer in the server (Missing Access) (Discord code 50001)" in shown
    assert "next probe at 2025-03-01T12:0" in shown
    assert await asyncio.to_thread(run, "feed", "status", "--guild", str(GUILD), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["channel_state"], data["pause_code"], data["pending"]) == ("paused", 50001, 3)
    moved = ["feed", "set", "--guild", str(GUILD), "--channel", str(OTHER)]
    assert await asyncio.to_thread(run, *moved) == 0
    assert f"3 waiting events moved there from channel {CHANNEL}" in capsys.readouterr().out
    assert await poster(core, clock, http).run_once() == 1
    assert posted_titles(discord_api, OTHER) == expected(3)


# --------------------------------------------------------------------------- review regressions


async def test_a_moved_backlog_goes_first_and_keeps_only_the_newest_version(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    await set_feed(core)
    await add_events(core, 1, start=1, title="score v1", update_key="match")
    await add_events(core, 1, start=2, title="old news")
    discord_api.refused_channels[CHANNEL] = 50013
    feed = poster(core, clock, http)
    assert await feed.run_once() == 0  # both wait in a refused batch
    await add_events(core, 1, start=3, title="score v2", update_key="match")  # before the move
    await core.store.feed.set_channel(GUILD, OTHER, to_iso(clock.now()))
    await add_events(core, 1, start=4, title="score v3", update_key="match")  # after it
    await add_events(core, 1, start=5, title="fresh")
    assert await feed.run_once() == 1
    assert posted_titles(discord_api, OTHER) == ["📣 old news", "📣 score v3", "📣 fresh"]
    assert await core.store.engine.read(statuses) == {"sent": 3, "superseded": 2}


async def test_a_probe_that_fails_with_a_5xx_after_a_resume_is_an_ordinary_retry(
    core: Core, clock: ManualClock
) -> None:
    from bot.feed.poster import FeedPoster, SendError

    await set_feed(core)
    await add_events(core, 2)

    class ResumedMeanwhile:
        """Refuses, then, while the probe is in flight, the admin resumes; the probe gets 503."""

        calls = 0

        async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
            self.calls += 1
            if self.calls == 1:
                raise SendError.refused(50013, "403, Missing Permissions")
            await core.store.feed.set_channel(GUILD, CHANNEL, to_iso(clock.now()))
            raise SendError.retry("Discord error 503", maybe_posted=True)

        async def edit(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
            raise AssertionError("not used")

    feed = FeedPoster(core.store, clock, ResumedMeanwhile())
    await feed.run_once()
    clock.advance(70)
    await feed.run_once()
    state = await status(core)
    assert (state.channel_state, state.pause_code) == ("ok", None)
    batch = await core.store.engine.fetchone(
        "SELECT status, next_attempt_at, maybe_posted FROM feed_batches"
    )
    assert batch[0] == "pending" and batch[1] > to_iso(clock.now()) and batch[2] == 1


async def test_due_channels_are_exactly_those_with_work(core: Core, clock: ManualClock) -> None:
    """The supervisor starts a worker only where _next_work finds something to do, so no worker
    is started on every wake-up for nothing."""
    from bot.feed.poster import EMBEDS, FeedPoster, SendError

    channels = {"retrying": 1001, "paused": 1002, "editing": 1003, "idle": 1004}
    guilds = {name: GUILD + n for n, name in enumerate(channels, start=10)}

    class Scripted:
        async def send(self, channel_id: int, payload: dict[str, Any], nonce: str) -> int:
            if channel_id == channels["retrying"]:
                raise SendError.retry("Discord error 503")
            if channel_id == channels["paused"]:
                raise SendError.refused(50001, "403, Missing Access")
            return channel_id * 10 + len(payload["embeds"])

        async def edit(self, channel_id: int, message_id: int, payload: dict[str, Any]) -> None:
            raise SendError.retry("Discord error 502")

    async def ingest(name: str, title: str, **extra: Any) -> None:
        raw = core.registry.get("custom").parse_webhook(
            {"event_type": "t", "title": title, "id": f"{name}-{title}", **extra},
            WebhookContext(received_at=clock.now()),
        )
        await core.pipeline.ingest("custom", guilds[name], raw)

    for name, channel in channels.items():
        await core.store.feed.set_channel(guilds[name], channel, to_iso(clock.now()))
    await ingest("retrying", "a")
    await ingest("paused", "a")
    await ingest("editing", "v1", update_key="k")
    feed = FeedPoster(core.store, clock, Scripted())
    await feed.run_once()
    await ingest("retrying", "b")  # newer events behind a batch that waits for its retry
    await ingest("paused", "b")
    await ingest("editing", "v2", update_key="k")  # an edit; it fails and waits
    await ingest("editing", "c")
    await feed.run_once()
    now = to_iso(clock.now())
    assert await core.store.feed.due_channels(now) == []
    for channel in channels.values():
        assert await core.store.feed.next_work(channel, now, EMBEDS) is None
    clock.advance(3600)
    later = to_iso(clock.now())
    due = set(await core.store.feed.due_channels(later))
    assert due == {channels["retrying"], channels["paused"], channels["editing"]}
    for channel in due:
        assert await core.store.feed.next_work(channel, later, EMBEDS) is not None


async def test_a_404_without_discords_code_is_probed(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    from tests.fakes.discord import Refusal

    await set_feed(core)
    await add_events(core, 2)
    discord_api.fail_next(CHANNEL, [Refusal(404, 0, "404: Not Found")])
    feed = poster(core, clock, http)
    assert await feed.run_once() == 0
    state = await status(core)
    assert state.channel_state == "paused" and state.next_probe_at is not None
    clock.advance(70)
    assert await feed.run_once() == 1
    assert posted_titles(discord_api) == expected(2)


async def test_an_event_automod_blocks_fails_alone(
    core: Core, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    from tests.fakes.discord import Refusal

    await set_feed(core)
    await add_events(core, 4)
    blocked = Refusal(400, 200000, "Message was blocked by automatic moderation")
    # The whole message, then its first half, then event 0 alone.
    discord_api.fail_next(CHANNEL, [blocked, blocked, blocked])
    feed = poster(core, clock, http)
    await feed.run_once()
    assert (await status(core)).channel_state == "ok"
    assert await core.store.engine.read(statuses) == {"sent": 3, "failed": 1}
    assert posted_titles(discord_api) == expected(3, start=1)


async def test_upgrade_expires_what_is_past_its_servers_maximum_age_and_restores_400s(
    config: Config, clock: ManualClock, http: HTTPClient, discord_api: FakeDiscord
) -> None:
    path = Path(config.database.path)
    legacy_database(path)
    conn = connect_sync(path)
    recent = to_iso(datetime.now(UTC) - timedelta(minutes=5))  # the migration compares to now
    conn.execute("UPDATE guilds SET feed_max_age_seconds = 3600")
    conn.execute("UPDATE feed_outbox SET created_at = ? WHERE id IN (1, 2)", (recent,))
    cur = conn.execute(
        "INSERT INTO activity_events (guild_id, type, source, title, payload, occurred_at,"
        " created_at) VALUES (?, 'custom.test', 'custom', 'Event 9', '{}', ?, ?)",
        (GUILD, recent, recent),
    )
    conn.execute(
        "INSERT INTO feed_outbox (event_id, guild_id, channel_id, status, last_error, created_at,"
        " updated_at) VALUES (?, ?, ?, 'failed', ?, ?, ?)",
        (cur.lastrowid, GUILD, CHANNEL, "Discord rejected the message (400, Cannot send"
         " messages in a non-text channel)", recent, recent),
    )  # fmt: skip
    conn.execute("UPDATE feed_channels SET reason = NULL WHERE channel_id = ?", (OTHER,))
    conn.close()
    core = await Core.start(config, clock)
    try:
        rows = await core.store.engine.fetchall(
            "SELECT e.title, o.status FROM feed_outbox o JOIN activity_events e"
            " ON e.id = o.event_id ORDER BY o.id"
        )
        assert [tuple(r) for r in rows] == [
            ("Event 0", "pending"),
            ("Event 1", "pending"),
            ("Event 2", "expired"),  # an hour older than the server's maximum age
            ("Event 3", "failed"),  # its body was refused: it stays failed
            ("Event 9", "pending"),  # a 400 that refused the channel
        ]
        # A failed channel without a stored reason is still probed.
        other = await core.store.engine.fetchone(
            "SELECT code, next_probe_at FROM feed_channels WHERE channel_id = ?", (OTHER,)
        )
        assert other[0] == 50013 and other[1] is not None
        assert await poster(core, clock, http).run_once() == 2
        assert posted_titles(discord_api) == ["📣 Event 0", "📣 Event 1", "📣 Event 9"]
    finally:
        await core.stop()
