"""The store's contract (bot/storage/interface.py), run against every backend.

Only interface methods are used here. PostgreSQL is being built part by part: each test names
the part it is about (``@part``), and runs on every backend that has that part (PostgreSQL's are
``PostgresStore.PARTS``, on the throwaway cluster of tests/postgres.py). What is specific to
SQLite (group commit, migrations, checkpoints) is tested in tests/test_storage.py."""

from __future__ import annotations

import inspect
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import to_iso
from bot.ingest.policy import IngestPolicy
from bot.storage import Store, interface
from bot.storage.postgres.store import PostgresStore
from bot.storage.records import GLOBAL_SCOPE, AccountTaken, Delivery, EndpointRefused
from connectors.base import WebhookContext
from connectors.registry import Registry
from tests.contract import BACKENDS, GUILD, NOW, OTHER, PARTS, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported


def _methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(value)
        for name, value in vars(cls).items()
        if callable(value) and not name.startswith("_")
    }


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_every_part_implements_the_interface(backend: str, tmp_path: Path) -> None:
    store = await BACKENDS[backend](tmp_path / "store.db")
    try:
        for name, protocol in [*PARTS.items(), ("", interface.Store)]:
            part = getattr(store, name) if name else store
            for method, wanted in _methods(protocol).items():
                found = getattr(part, method, None)
                assert found is not None, f"{backend}: {name or 'store'}.{method} is missing"
                assert list(inspect.signature(found).parameters) == list(wanted.parameters)[1:]
    finally:
        await store.close()


async def test_the_postgres_store_implements_its_parts_of_the_interface(
    postgres_url: str,
) -> None:
    store = await PostgresStore.open(postgres_url)
    try:
        assert await store.ping()
        assert set(PostgresStore.PARTS) <= set(PARTS)
        for name in PostgresStore.PARTS:
            for method, wanted in _methods(PARTS[name]).items():
                found = getattr(getattr(store, name), method, None)
                assert found is not None, f"postgresql: {name}.{method} is missing"
                assert list(inspect.signature(found).parameters) == list(wanted.parameters)[1:]
    finally:
        await store.close()


async def test_store_answers_and_describes_itself(store: Store) -> None:
    assert await store.ping()
    info = await store.describe()
    assert info["schema_version"] == info["schema_latest"] > 0
    assert info["database"] and info["database_bytes"] > 0
    rows = await store.table_rows()
    assert rows["account_links"] == 0
    await store.links.link(
        guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW
    )
    assert (await store.table_rows())["account_links"] == 1
    lock = store.instance_lock("jobs")
    assert await lock.acquire() and await lock.held()
    await lock.release()
    assert not await lock.held()


async def test_sqlite_backs_up_into_a_file_it_opens(tmp_path: Path) -> None:
    """(PostgreSQL's backup, a pg_dump, is restored in tests/test_postgres_store.py.)"""
    store = await BACKENDS["sqlite"](tmp_path / "store.db")
    try:
        await store.links.link(
            guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW
        )
        target = tmp_path / "copy" / "backup.db"
        await store.backup(target)
    finally:
        await store.close()
    copy = await BACKENDS["sqlite"](target)
    try:
        assert [link.external_id for link in await copy.links.for_member(GUILD, 1)] == [SID]
    finally:
        await copy.close()


@part("endpoints")
async def test_endpoints(store: Store) -> None:
    version = await store.endpoints.version()
    endpoint = await store.endpoints.create(
        path="p" * 24, kind="playtime", guild_id=GUILD, secret="s1", read_secret=None,
        game_id=393380, now=NOW,
    )  # fmt: skip
    assert endpoint is not None and (endpoint.kind, endpoint.game_id) == ("playtime", 393380)
    assert await store.endpoints.version() != version
    taken = await store.endpoints.create(
        path="p" * 24, kind="custom", guild_id=OTHER, secret="s", read_secret=None,
        game_id=None, now=NOW,
    )  # fmt: skip
    assert taken is None
    assert await store.endpoints.by_path("p" * 24) == endpoint
    assert await store.endpoints.by_path("nope") is None
    assert await store.endpoints.list(OTHER) == []
    later = NOW + timedelta(hours=24)
    rotated = await store.endpoints.rotate(endpoint.id, "s2", read=False, keep_previous_until=later)
    assert rotated.write_secrets(NOW) == ["s2", "s1"] and rotated.write_secrets(later) == ["s2"]
    with pytest.raises(EndpointRefused) as refused:
        await store.endpoints.rotate(endpoint.id, "s2", read=False, keep_previous_until=None)
    assert refused.value.problem == "same_secret"
    read = await store.endpoints.rotate(endpoint.id, "r", read=True, keep_previous_until=None)
    assert read.read_secrets(later)[0] == "r"
    await store.endpoints.touch(endpoint.id, NOW + timedelta(minutes=5))
    assert (await store.endpoints.disable(endpoint.id, NOW)).disabled
    with pytest.raises(EndpointRefused) as refused:
        await store.endpoints.rotate(endpoint.id, "s3", read=False, keep_previous_until=None)
    assert refused.value.problem == "disabled"
    version, everything = await store.endpoints.snapshot()
    assert [e.last_used_at for e in everything] == [NOW + timedelta(minutes=5)]
    assert await store.endpoints.count() == (0, 1)


@part("consoles")
async def test_consoles(store: Store) -> None:
    endpoint = await store.endpoints.create(
        path="c" * 24, kind="minecraft", guild_id=GUILD, secret="s", read_secret=None,
        game_id=None, now=NOW,
    )  # fmt: skip
    assert endpoint is not None
    assert await store.consoles.get(endpoint.id) is None
    saved = await store.consoles.set(
        endpoint.id, game="minecraft", host="127.0.0.1", port=25575, sealed_password="sealed",
        announce=True, now=NOW,
    )  # fmt: skip
    assert (saved.game, saved.host, saved.port, saved.announce) == ("minecraft", "127.0.0.1",
                                                                   25575, True)  # fmt: skip
    assert saved.sealed_password == "sealed" and saved.created_at == saved.updated_at == NOW
    later = NOW + timedelta(hours=1)
    changed = await store.consoles.set(
        endpoint.id, game="minecraft", host="mc.example.org", port=25576,
        sealed_password="other", announce=False, now=later,
    )  # fmt: skip
    assert (changed.host, changed.port, changed.announce) == ("mc.example.org", 25576, False)
    assert (changed.created_at, changed.updated_at) == (NOW, later)  # replaced, not added
    assert await store.consoles.get(endpoint.id) == changed
    assert await store.consoles.list(GUILD) == [changed] == await store.consoles.list()
    assert await store.consoles.list(OTHER) == []
    await store.endpoints.disable(endpoint.id, later)
    assert await store.consoles.get(endpoint.id) is None  # a disabled endpoint has no console
    assert await store.consoles.list(GUILD) == [changed]  # but it is still listed
    await store.endpoints.enable(endpoint.id)
    assert await store.consoles.remove(endpoint.id) is True
    assert await store.consoles.remove(endpoint.id) is False
    assert await store.consoles.get(endpoint.id) is None


@part("links")
async def test_links_and_codes(store: Store) -> None:
    links = store.links
    await links.link(guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW)
    with pytest.raises(AccountTaken) as taken:
        await links.link(
            guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID, now=NOW
        )
    assert taken.value.owner_user_id == 1
    await links.link(
        guild_id=GUILD, discord_user_id=2, source="steam", external_id=SID, now=NOW,
        status="private_profile", reassign=True,
    )  # fmt: skip
    await links.link(guild_id=OTHER, discord_user_id=3, source="steam", external_id=SID, now=NOW)
    assert await links.for_member(GUILD, 1) == []
    assert await links.steam_private(GUILD, 2) and not await links.steam_private(OTHER, 3)
    assert await links.steam_ids() == [SID] and await links.steam_ids(GUILD, 1) == []
    assert await links.count() == 2
    assert await links.unlink(guild_id=GUILD, discord_user_id=2, source="steam", now=NOW) == 1
    code = dict(guild_id=GUILD, discord_user_id=4, source="minecraft", now=NOW)
    assert await links.add_code(code="ABCD2345", expires=NOW + timedelta(minutes=10), **code)
    assert not await links.add_code(code="ABCD2345", expires=NOW, **code)  # taken
    confirm = dict(guild_id=GUILD, source="minecraft", external_id="uuid-1", display_name="Notch")
    assert await links.confirm_code(code="ZZZZ0000", now=NOW, **confirm) == "unknown_code"
    late = NOW + timedelta(minutes=11)
    assert await links.confirm_code(code="ABCD2345", now=late, **confirm) == "expired_code"
    assert await links.confirm_code(code="abcd2345", now=NOW, **confirm) == "linked"
    assert await links.confirm_code(code="ABCD2345", now=NOW, **confirm) == "linked"  # a retry
    [linked] = await links.for_member(GUILD, 4)
    assert (linked.external_id, linked.verified, linked.display_name) == ("uuid-1", True, "Notch")


async def ingest_custom(store: Store, guild: int, body: dict[str, Any]) -> Any:
    connector = Registry().discover().get("custom")
    raw = connector.parse_webhook(body, WebhookContext(received_at=NOW))
    delivery = Delivery(guild, "custom", None, f"hash-{body['id']}", "{}", to_iso(NOW))
    return await store.events.ingest(
        delivery, connector, raw, connector.effects(raw), IngestPolicy()
    )


@part("events")
async def test_events_are_ingested_once(store: Store) -> None:
    first = await ingest_custom(store, GUILD, {"event_type": "t", "title": "T", "id": "1"})
    assert first.status == "accepted" and len(first.event_ids) == 1
    again = await ingest_custom(store, GUILD, {"event_type": "t", "title": "T", "id": "1"})
    assert again.status == "duplicate" and again.event_ids == []
    assert await store.events.seen(GUILD, "hash-1") and not await store.events.seen(OTHER, "hash-1")
    assert await store.events.counts() == (1, 1)


class Embeds:
    @staticmethod
    def embed(event: Any, language: tuple[str | None, str | None]) -> dict[str, Any]:
        return {"title": event["title"], "language": list(language)}

    @staticmethod
    def pack(embeds: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return embeds[:10]

    @staticmethod
    def fits(embeds: list[dict[str, Any]]) -> bool:
        return True


@part("feed", "events")
async def test_feed_outbox_from_queue_to_sent(store: Store) -> None:
    now = to_iso(NOW)
    feed = store.feed
    assert await feed.channel(GUILD) is None
    change = await feed.set_channel(GUILD, 900, now)
    assert (change.previous_channel, change.resumed, change.moved) == (None, False, 0)
    assert await feed.channel(GUILD) == 900
    for n in range(3):
        await ingest_custom(store, GUILD, {"event_type": "t", "title": f"e{n}", "id": f"f{n}"})
    assert await feed.due_channels(now) == [900]
    batch = await feed.next_work(900, now, Embeds())
    assert batch is not None and [e["title"] for e in batch.payload["embeds"]] == ["e0", "e1", "e2"]
    assert batch.payload["embeds"][0]["language"] == [None, None]  # nothing chosen or seen yet
    await feed.mark_sent(batch, 5555, now)  # type: ignore[arg-type]
    assert await feed.due_channels(now) == []
    status = await feed.status(GUILD)
    assert (status.channel_id, status.channel_state, status.sent, status.pending) == (
        900,
        "ok",
        3,
        0,
    )
    assert await feed.counts() == {"pending": 0, "failed": 0, "paused_channels": 0}
    await feed.set_event_types(GUILD, ["custom.t"], now)
    assert await feed.event_types(GUILD) == ["custom.t"]
    # The language a batch is written in: the one chosen, and the server's as last seen.
    assert await feed.note_locale(GUILD, "ru", now)
    assert not await feed.note_locale(GUILD, "ru", now)
    await feed.set_language(GUILD, "en", now)
    assert await feed.language(GUILD) == ("en", "ru")
    await ingest_custom(store, GUILD, {"event_type": "t", "title": "e3", "id": "f3"})
    later = await feed.next_work(900, now, Embeds())
    assert later is not None and later.payload["embeds"][0]["language"] == ["en", "ru"]


@part("feed", "events")
async def test_feed_pause_and_resume(store: Store) -> None:
    now = to_iso(NOW)
    feed = store.feed
    await feed.set_channel(GUILD, 900, now)
    await ingest_custom(store, GUILD, {"event_type": "t", "title": "a", "id": "a"})
    batch = await feed.next_work(900, now, Embeds())
    assert batch is not None
    refusal = interface.Refusal(True, 50013, "403, Missing Permissions")
    paused, code, next_probe = await feed.pause(
        batch, refusal, now, lambda code, probes: 60.0, to_iso(NOW)
    )
    assert paused and code == 50013 and next_probe == to_iso(NOW + timedelta(seconds=60))
    assert await feed.due_channels(now) == []
    status = await feed.status(GUILD)
    assert (status.channel_state, status.pause_code, status.pending) == ("paused", 50013, 1)
    assert (await feed.counts())["paused_channels"] == 1
    change = await feed.set_channel(GUILD, 900, now)
    assert change.resumed and await feed.due_channels(now) == [900]
    moved = await feed.set_channel(GUILD, 901, now)
    assert (moved.previous_channel, moved.moved) == (900, 1)
    assert await feed.due_channels(now) == [901]


@part("links", "steam", "playtime", "stats")
async def test_playtime_stats_and_steam_state(store: Store) -> None:
    steam = store.steam
    await store.links.link(
        guild_id=GUILD, discord_user_id=1, source="steam", external_id=SID, now=NOW
    )
    linked, in_game = await steam.enrol(NOW, lambda steam_id: NOW)
    assert (linked, in_game) == (1, 0)
    assert await steam.accounts() == [SID] and await steam.due(NOW, 10) == [SID]
    await steam.record_lookup(SID, 393380, seconds=7200, status="ok", name="Squad", now=NOW)
    stored = await store.playtime.for_players(GLOBAL_SCOPE, "steam", "393380", [SID, "other"])
    assert list(stored) == [SID] and stored[SID].seconds == 7200
    [total] = await store.stats.member_totals(GUILD, 1)
    assert (total.game_id, total.source, total.seconds) == ("393380", "steam", 7200)
    assert (await store.stats.leaderboard(GUILD, "393380", None)).rows == [(1, 7200)]
    assert await store.stats.guild_games(GUILD) == [("393380", "Squad")]
    assert await store.stats.game_names(["393380", "1"]) == {"393380": "Squad"}
    # Growth is summed per local day: period boards and charts read the days.
    assert await store.stats.use_timezone("Europe/Moscow")  # none was set: rebuilt
    assert not await store.stats.use_timezone("Europe/Moscow")
    later = NOW + timedelta(hours=10)  # 22:00 UTC: already the next day in Moscow (UTC+3)
    await steam.record_lookup(SID, 393380, seconds=9000, status="ok", name="Squad", now=later)
    moscow_day = (later + timedelta(hours=3)).date()
    [day] = await store.stats.daily(GUILD, 1, moscow_day, moscow_day)
    assert (day.day, day.source, day.game_id, day.seconds) == (moscow_day, "steam", "393380", 1800)
    one_day = (moscow_day, moscow_day)
    assert (await store.stats.leaderboard(GUILD, "393380", one_day)).rows == [(1, 1800)]
    assert moscow_day == date(2025, 3, 2)
    month = (date(2025, 3, 1), date(2025, 3, 31))  # a whole month's row
    assert (await store.stats.leaderboard(GUILD, "393380", month)).rows == [(1, 1800)]
    monday = moscow_day - timedelta(days=moscow_day.weekday())
    week = (monday, monday + timedelta(days=6))  # a whole week's row
    assert (await store.stats.leaderboard(GUILD, "393380", week)).rows == [(1, 1800)]
    last_week = (monday - timedelta(days=7), monday - timedelta(days=1))
    assert (await store.stats.leaderboard(GUILD, "393380", last_week)).rows == []
    rolling = (moscow_day - timedelta(days=29), moscow_day)  # weeks and days
    assert (await store.stats.leaderboard(GUILD, "393380", rolling)).rows == [(1, 1800)]
    assert await store.stats.daily(GUILD, 1, NOW.date(), NOW.date()) == []
    assert await store.stats.use_timezone("UTC")  # another zone: the days are counted again
    [day] = await store.stats.daily(GUILD, 1, later.date(), later.date())
    assert (day.day, day.seconds) == (later.date(), 1800)
    assert await steam.reserve_call("2025-03-01", "sync", 2)
    assert await steam.reserve_call("2025-03-01", "sync", 2)
    assert not await steam.reserve_call("2025-03-01", "sync", 2)
    assert await steam.reserve_call("2025-03-01", "lookup", 1)  # each purpose its own limit
    assert not await steam.reserve_call("2025-03-01", "lookup", 1)
    assert await steam.calls_on("2025-03-01") == {"sync": 2, "lookup": 1}
    assert await steam.calls_on("2025-03-02") == {}
    await steam.cache(393380, "schema", "english", {"A": {"name": "x"}}, NOW)
    assert await steam.cached(393380, "schema", "english") == ({"A": {"name": "x"}}, NOW)
    counts = await steam.counts(NOW)
    assert (counts["accounts"], counts["linked"], counts["private"]) == (1, 1, 0)
