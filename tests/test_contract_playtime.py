"""The playtime part's contract (``store.playtime``), and what the ingest path's playtime
helpers store, on every backend: stored totals (newer measurements win, scoped per guild), the
members a total is credited to (links that count, reassignment, a server's reset), growth on
its local day, week and month (a first report is a silent baseline) and the guild's games."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bot.clock import to_iso
from bot.ingest.policy import IngestPolicy
from bot.storage import Store
from bot.storage.events import compact_json, dedupe_hash
from bot.storage.records import (
    GLOBAL_SCOPE,
    DailyPlaytime,
    Delivery,
    IngestResult,
    PrivacyChoice,
    StoredPlaytime,
    Total,
)
from connectors.base import WebhookContext, sha256_hex
from connectors.registry import Registry
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

H = 3600
SQUAD = "393380"
SID2 = "76561198000000002"
STEVE = "8667ba71-b85a-4004-af54-457a9734eed7"
REGISTRY = Registry().discover()
POLICY = IngestPolicy.from_registry(REGISTRY)


async def deliver(
    store: Store,
    source: str,
    guild: int,
    raw: dict[str, Any],
    received: datetime = NOW,
    policy: IngestPolicy = POLICY,
) -> IngestResult:
    """One raw event through the ingest path, as the pipeline hands it over."""
    connector = REGISTRY.get(source)
    delivery = Delivery(
        guild, source, None, dedupe_hash(connector, raw), compact_json(raw), to_iso(received)
    )
    return await store.events.ingest(delivery, connector, raw, connector.effects(raw), policy)


async def report(
    store: Store,
    seconds: int,
    at: datetime = NOW,
    *,
    steam_id: str = SID,
    game: str = SQUAD,
    guild: int = GUILD,
    received: datetime | None = None,
    policy: IngestPolicy = POLICY,
) -> IngestResult:
    """A BattleMetrics report of the player's total, measured (signed) at ``at``."""
    connector = REGISTRY.get("battlemetrics")
    context = WebhookContext(
        signed_at=at,
        signed_at_text=to_iso(at),
        signature=sha256_hex(f"{steam_id}:{game}:{seconds}:{to_iso(at)}"),
        received_at=received or at,
    )
    body = {"steam_id": steam_id, "playtime": str(seconds), "game_id": int(game)}
    raw = connector.parse_webhook(body, context)
    return await deliver(store, "battlemetrics", guild, raw, received or at, policy)


async def minecraft(
    store: Store,
    kind: str,
    at: datetime,
    *,
    player: str = STEVE,
    server: str = "survival",
    guild: int = GUILD,
    **extra: Any,
) -> IngestResult:
    """A Minecraft server's webhook (session.started, afk.started, ...) about ``player``."""
    connector = REGISTRY.get("minecraft")
    body = {"type": kind, "player_uuid": player, "server_id": server, "at": to_iso(at), **extra}
    raw = connector.parse_webhook(body, WebhookContext(received_at=at))
    return await deliver(store, "minecraft", guild, raw, at)


async def link(
    store: Store, user: int, external_id: str = SID, source: str = "steam", **more: Any
) -> None:
    more.setdefault("guild_id", GUILD)
    await store.links.link(
        discord_user_id=user, source=source, external_id=external_id, now=NOW, **more
    )


async def board(store: Store, days: tuple[date, date] | None = None, game: str = SQUAD) -> Any:
    return (await store.stats.leaderboard(GUILD, game, days)).rows


@part("playtime", "events")
async def test_stored_totals_newer_measurements_win_and_stay_in_their_guild(store: Store) -> None:
    playtime = store.playtime
    assert await playtime.for_players(GUILD, "battlemetrics", SQUAD, []) == {}
    assert await playtime.for_players(GUILD, "battlemetrics", SQUAD, [SID]) == {}
    first = await report(store, 2 * H)
    assert first.details == {"playtime_updated": True}
    await report(store, H, steam_id=SID2, game="440")
    stored = await playtime.for_players(GUILD, "battlemetrics", SQUAD, [SID, SID2, "nobody"])
    assert stored == {SID: StoredPlaytime(2 * H, "ok", to_iso(NOW), to_iso(NOW))}
    later = NOW + timedelta(minutes=1)
    assert (await report(store, 2 * H + 600, later)).details == {"playtime_updated": True}
    # Measured before the stored value (a delivery that arrived late): ignored.
    older = await report(store, 2 * H + 300, NOW + timedelta(seconds=30), received=later)
    assert older.status == "accepted" and older.details == {"playtime_updated": False}
    stored = await playtime.for_players(GUILD, "battlemetrics", SQUAD, [SID])
    assert stored == {SID: StoredPlaytime(2 * H + 600, "ok", to_iso(NOW), to_iso(later))}
    assert (await playtime.for_players(GUILD, "battlemetrics", "440", [SID2]))[SID2].seconds == H
    # Scoped to the guild of the delivery: the other guild and the global scope have nothing.
    assert await playtime.for_players(OTHER, "battlemetrics", SQUAD, [SID]) == {}
    assert await playtime.for_players(GLOBAL_SCOPE, "battlemetrics", SQUAD, [SID]) == {}
    assert await playtime.for_players(GUILD, "steam", SQUAD, [SID]) == {}
    # A lower total (a server's reset) is a newer measurement like any other.
    await report(store, 600, NOW + timedelta(minutes=2))
    assert (await playtime.for_players(GUILD, "battlemetrics", SQUAD, [SID]))[SID].seconds == 600


@part("playtime", "events", "links", "stats")
async def test_totals_are_credited_to_the_members_who_link_the_account(store: Store) -> None:
    await link(store, 1)
    await link(store, 3, guild_id=OTHER)
    await report(store, 2 * H)
    await report(store, 3 * H, NOW + timedelta(minutes=1))
    assert await board(store) == [(1, 3 * H)]
    assert await store.stats.member_totals(GUILD, 1) == [Total(SQUAD, "battlemetrics", 3 * H, 0)]
    # A guild's BattleMetrics totals are its own: the other guild's member has none.
    assert (await store.stats.leaderboard(OTHER, SQUAD, None)).rows == []
    # Played before it was linked: the total joins the member when they link it ...
    await report(store, 5 * H, steam_id=SID2)
    await link(store, 2, SID2)
    assert await board(store) == [(2, 5 * H), (1, 3 * H)]
    # ... leaves them for another member ...
    await link(store, 4, SID2, reassign=True)
    assert await board(store) == [(4, 5 * H), (1, 3 * H)]
    # ... and goes with the link (and later growth is credited to nobody).
    assert await store.links.unlink(guild_id=GUILD, discord_user_id=4, source="steam", now=NOW)
    await report(store, 6 * H, NOW + timedelta(minutes=1), steam_id=SID2)
    assert await board(store) == [(1, 3 * H)]
    # A server's reset lowers the member's total as it lowers the stored one.
    await report(store, H, NOW + timedelta(minutes=2))
    assert await board(store) == [(1, H)]


@part("playtime", "events", "links", "stats")
async def test_an_unproven_link_gets_no_credit_where_proof_is_required(store: Store) -> None:
    await link(store, 1)
    await link(store, 2, SID2, linked_by="admin:9")  # linked by an admin: proven
    await store.links.set_require_verified(GUILD, True, NOW)
    await report(store, H)
    await report(store, H, steam_id=SID2)
    await report(store, 2 * H, NOW + timedelta(minutes=1))
    await report(store, 3 * H, NOW + timedelta(minutes=1), steam_id=SID2)
    assert await board(store) == [(2, 3 * H)]
    stored = await store.playtime.for_players(GUILD, "battlemetrics", SQUAD, [SID, SID2])
    assert {p: s.seconds for p, s in stored.items()} == {SID: 2 * H, SID2: 3 * H}  # kept
    await store.links.set_require_verified(GUILD, False, NOW)
    assert await board(store) == [(2, 3 * H), (1, 2 * H)]


@part("playtime", "events", "links", "stats")
async def test_growth_lands_on_its_local_day_week_and_month(store: Store) -> None:
    await link(store, 1)
    today = NOW.date()  # Saturday 2025-03-01
    await report(store, H)  # the first report: a baseline, no one day's
    assert await board(store, (today, today)) == []
    assert await store.stats.daily(GUILD, 1, today, today) == []
    await report(store, H + 1800, NOW + timedelta(hours=1))
    assert await board(store, (today, today)) == [(1, 1800)]
    assert await store.stats.daily(GUILD, 1, today, today) == [
        DailyPlaytime(today, "battlemetrics", SQUAD, 1800)
    ]
    monday = today - timedelta(days=today.weekday())
    assert await board(store, (monday, monday + timedelta(days=6))) == [(1, 1800)]  # a week
    assert await board(store, (date(2025, 3, 1), date(2025, 3, 31))) == [(1, 1800)]  # a month
    assert await board(store, (date(2025, 2, 1), date(2025, 2, 28))) == []
    assert await board(store) == [(1, H + 1800)]
    # Days are local days: 22:00 UTC is already the next day in Moscow (UTC+3).
    await store.stats.use_timezone("Europe/Moscow")
    await report(store, 2 * H, NOW + timedelta(hours=10))
    tomorrow = today + timedelta(days=1)
    assert await store.stats.daily(GUILD, 1, tomorrow, tomorrow) == [
        DailyPlaytime(tomorrow, "battlemetrics", SQUAD, 1800)
    ]
    week = (monday, monday + timedelta(days=6))  # Sunday the 2nd: the same week, another day
    assert await board(store, week) == [(1, 3600)]
    assert await board(store, (tomorrow, tomorrow)) == [(1, 1800)]


@part("playtime", "events", "stats")
async def test_the_games_with_playtime_are_listed_for_the_guild(store: Store) -> None:
    assert await store.stats.guild_games(GUILD) == []
    version = await store.stats.games_version()
    await report(store, H)
    assert await store.stats.guild_games(GUILD) == [(SQUAD, None)]
    assert await store.stats.games_version() != version
    await minecraft(store, "session.started", NOW)
    await minecraft(store, "session.ended", NOW + timedelta(minutes=30))
    assert await store.stats.guild_games(GUILD) == [(SQUAD, None), ("minecraft", "Minecraft")]
    assert await store.stats.guild_games(OTHER) == []
    stored = await store.playtime.for_players(GUILD, "minecraft", "minecraft", [STEVE])
    assert stored[STEVE].seconds == 1800
    assert (stored[STEVE].created_at, stored[STEVE].updated_at) == (
        to_iso(NOW + timedelta(minutes=30)),
        to_iso(NOW + timedelta(minutes=30)),
    )


@part("playtime", "steam", "links", "privacy", "stats")
async def test_a_global_steam_total_counts_in_every_guild_that_links_it(store: Store) -> None:
    async def lookup(steam_id: str, game: str, seconds: int | None, at: datetime) -> None:
        await store.steam.record_lookup(
            steam_id, int(game), seconds=seconds, status="ok", name=None, now=at
        )

    await link(store, 1)
    await link(store, 2, guild_id=OTHER)
    await lookup(SID, "730", 600, NOW)
    await lookup(SID, "570", None, NOW)  # known to have no value: not listed
    await lookup(SID2, "440", 300, NOW)  # nobody links it (yet)
    assert await store.stats.guild_games(GUILD) == [("730", None)]
    assert await store.stats.guild_games(OTHER) == [("730", None)]
    stored = await store.playtime.for_players(GLOBAL_SCOPE, "steam", "730", [SID])
    assert stored[SID].seconds == 600
    assert await store.playtime.for_players(GUILD, "steam", "730", [SID]) == {}
    assert await board(store, game="730") == [(1, 600)]
    assert (await store.stats.leaderboard(OTHER, "730", None)).rows == [(2, 600)]
    # A member who turned collecting off is credited nothing new; the other guild's member is.
    await store.privacy.set_choice(GUILD, 1, PrivacyChoice(collecting=False), NOW)
    await lookup(SID, "730", 900, NOW + timedelta(hours=1))
    assert await board(store, game="730") == [(1, 600)]
    assert (await store.stats.leaderboard(OTHER, "730", None)).rows == [(2, 900)]
    # Linking an account brings its Steam games and its totals; a value seen later lists its game.
    await link(store, 3, SID2, guild_id=OTHER)
    assert [g for g, _ in await store.stats.guild_games(OTHER)] == ["440", "730"]
    assert (await store.stats.leaderboard(OTHER, "440", None)).rows == [(3, 300)]
    await lookup(SID, "570", 30, NOW + timedelta(hours=1))
    assert [g for g, _ in await store.stats.guild_games(OTHER)] == ["440", "570", "730"]
