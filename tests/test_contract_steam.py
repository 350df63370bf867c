"""The ``steam`` part of the store's contract (bot/storage/interface.py, SteamStore): the
accounts the sync tracks and their schedule, what the summaries and library reads store and
announce (through the one ingest path, once per guild that links the account), lookups,
achievements, the game cache, the daily call budget and the key's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.clock import to_iso
from bot.ingest.policy import IngestPolicy
from bot.storage import Store
from bot.storage.interface import Growth, Observer
from bot.storage.records import GLOBAL_SCOPE, DailyPlaytime, PrivacyChoice
from connectors.registry import Registry
from connectors.steam.client import OwnedGame, Unlock
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

SID2, SID3 = "76561198000000002", "76561198000000003"
SQUAD, CS = 393380, 730
ALICE, BOB, CAROL = 1, 2, 3
OBSERVER = Observer(Registry().discover().get("steam"), IngestPolicy())
GROWTH = Growth(OBSERVER, datetime(2025, 3, 1, tzinfo=UTC))
MINUTE = timedelta(minutes=1)


async def link(store: Store, user: int, steam_id: str, guild: int = GUILD) -> None:
    await store.links.link(
        guild_id=guild, discord_user_id=user, source="steam", external_id=steam_id, now=NOW,
        display_name=f"Player {user}",
    )  # fmt: skip


async def library(
    store: Store, minutes: int, at: datetime, steam_id: str = SID, game: int = SQUAD
) -> int:
    """A library read: the game's total in minutes (the next read a day later, or in five
    minutes while in a game)."""
    return await store.steam.apply_library(
        steam_id, [OwnedGame(game, minutes, "Squad" if game == SQUAD else None)], at,
        soon=at + 5 * MINUTE, later=at + timedelta(days=1), growth=GROWTH,
    )  # fmt: skip


class Titles:
    """A feed composer that keeps the events' titles."""

    @staticmethod
    def embed(event: Any, language: tuple[str | None, str | None]) -> dict[str, Any]:
        return {"title": event["title"]}

    @staticmethod
    def pack(embeds: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return embeds[:10]

    @staticmethod
    def fits(embeds: list[dict[str, Any]]) -> bool:
        return True


@part("links", "steam", "privacy")
async def test_enrol_tracks_linked_accounts_and_forgets_unlinked_ones(store: Store) -> None:
    steam = store.steam
    assert await steam.enrol(NOW, lambda steam_id: NOW) == (0, 0)
    await link(store, ALICE, SID2)
    await link(store, BOB, SID)
    await link(store, CAROL, SID, guild=OTHER)  # one account, two guilds: tracked once
    first = {SID: NOW + MINUTE, SID2: NOW + 2 * MINUTE}
    assert await steam.enrol(NOW, first.__getitem__) == (2, 0)
    assert await steam.accounts() == [SID, SID2]
    assert await steam.due(NOW, 10) == []
    assert await steam.due(NOW + MINUTE, 10) == [SID]
    assert await steam.due(NOW + 5 * MINUTE, 10) == [SID, SID2]  # the longest waiting first
    assert await steam.due(NOW + 5 * MINUTE, 1) == [SID]
    # Known accounts keep their schedule.
    assert await steam.enrol(NOW, lambda steam_id: NOW + timedelta(days=9)) == (2, 0)
    assert await steam.due(NOW + 2 * MINUTE, 10) == [SID, SID2]
    await store.links.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam", now=NOW)
    assert await steam.enrol(NOW, lambda steam_id: NOW) == (1, 0)
    assert await steam.accounts() == [SID]
    # /privacy off stops the sync of a member's accounts, unless another member collects.
    off = PrivacyChoice(collecting=False)
    await store.privacy.set_choice(GUILD, BOB, off, NOW)
    assert await steam.enrol(NOW, lambda steam_id: NOW) == (1, 0)
    await store.privacy.set_choice(OTHER, CAROL, off, NOW)
    assert await steam.enrol(NOW, lambda steam_id: NOW) == (0, 0)
    assert await steam.accounts() == []
    counts = await steam.counts(NOW)
    assert (counts["accounts"], counts["linked"]) == (0, 1)  # still linked, not synced
    await store.privacy.set_choice(GUILD, BOB, PrivacyChoice(collecting=True), NOW)
    assert await steam.enrol(NOW, lambda steam_id: NOW + timedelta(hours=3)) == (1, 0)
    assert await steam.due(NOW + timedelta(hours=2), 10) == []  # enrolled anew: its first read


@part("links", "steam", "events")
async def test_summaries_open_and_close_sessions_and_pull_reads_in(store: Store) -> None:
    steam = store.steam
    await link(store, ALICE, SID)
    await link(store, BOB, SID2)
    await steam.enrol(NOW, lambda steam_id: NOW + timedelta(days=1))
    before = await store.events.counts()
    await steam.seen([SID, SID2, "unknown"], {SID: SQUAD}, NOW, 300, OBSERVER, {})
    assert (await steam.counts(NOW))["in_game"] == 1
    assert await steam.enrol(NOW, lambda steam_id: NOW) == (2, 1)
    assert await steam.due(NOW + 4 * MINUTE, 10) == []
    assert await steam.due(NOW + 5 * MINUTE, 10) == [SID]  # playing: read within the interval
    raw, _ = await store.events.counts()
    assert raw == before[0] + 1  # the session's start, observed once (one guild links it)
    # Still playing: no new session, the active read stands.
    await steam.seen([SID], {SID: SQUAD}, NOW + MINUTE, 300, OBSERVER, {})
    assert (await store.events.counts())[0] == raw
    assert await steam.due(NOW + 5 * MINUTE, 10) == [SID]
    # Another game: the session ends and another starts.
    await steam.seen([SID], {SID: CS}, NOW + 2 * MINUTE, 300, OBSERVER, {})
    assert (await store.events.counts())[0] == raw + 2
    # Left the game: read now, for the session's last minutes.
    left = NOW + 10 * MINUTE
    await steam.seen([SID], {}, left, 300, OBSERVER, {})
    assert (await store.events.counts())[0] == raw + 3
    assert await steam.due(left, 10) == [SID]
    counts = await steam.counts(left)
    assert (counts["in_game"], counts["due"]) == (0, 1)
    await library(store, 60, left)  # the read: the next one a day later
    assert await steam.due(left + timedelta(hours=23), 10) == []
    # Online and gone again without a visible game (a later logoff): maybe played, read now.
    await steam.seen([SID], {}, left + MINUTE, 300, OBSERVER, {SID: 1000})
    assert await steam.due(left + timedelta(hours=23), 10) == []  # the first logoff seen
    await steam.seen([SID], {}, left + 2 * MINUTE, 300, OBSERVER, {SID: 1000})
    assert await steam.due(left + timedelta(hours=23), 10) == []  # the same logoff
    await steam.seen([SID], {}, left + 3 * MINUTE, 300, OBSERVER, {SID: 2000})
    assert await steam.due(left + 3 * MINUTE, 10) == [SID]
    # Backing off after a failure: the summaries do not pull the read in.
    await steam.mark_retry(SID, left, "rate_limited", "429", lambda failures: 3600.0)
    await steam.seen([SID], {SID: SQUAD}, left + 4 * MINUTE, 300, OBSERVER, {})
    assert await steam.due(left + 59 * MINUTE, 10) == []
    assert await steam.due(left + 60 * MINUTE, 10) == [SID]
    assert (await steam.counts(left))["in_game"] == 1


@part("links", "steam", "events", "feed")
async def test_a_session_closes_with_its_length(store: Store) -> None:
    await store.feed.set_channel(GUILD, 900, to_iso(NOW))
    await link(store, ALICE, SID)
    await store.steam.enrol(NOW, lambda steam_id: NOW)
    await library(store, 60, NOW)  # a name for the game
    await store.steam.seen([SID], {SID: SQUAD}, NOW, 300, OBSERVER, {})
    await store.steam.seen([SID], {}, NOW + 65 * MINUTE, 300, OBSERVER, {})
    batch = await store.feed.next_work(900, to_iso(NOW + timedelta(hours=2)), Titles())
    assert batch is not None
    assert [e["title"] for e in batch.payload["embeds"]] == [  # type: ignore[union-attr]
        "Player 1 started playing Squad",
        "Player 1 played Squad for 1 h 5 min",
    ]


@part("links", "steam", "events", "playtime", "stats", "feed")
async def test_a_library_read_is_a_silent_baseline_then_announces_what_grew(store: Store) -> None:
    steam = store.steam
    assert await store.stats.use_timezone("UTC")
    await store.feed.set_channel(GUILD, 900, to_iso(NOW))
    await link(store, ALICE, SID)
    await link(store, CAROL, SID, guild=OTHER)
    await steam.enrol(NOW, lambda steam_id: NOW)
    games = [OwnedGame(SQUAD, 600, "Squad"), OwnedGame(CS, 0, None)]
    later = NOW + timedelta(days=1)
    assert await steam.apply_library(
        SID, games, NOW, soon=NOW + 5 * MINUTE, later=later, growth=GROWTH
    ) == 0  # fmt: skip
    assert await store.events.counts() == (0, 0)
    stored = await store.playtime.for_players(GLOBAL_SCOPE, "steam", str(SQUAD), [SID])
    assert stored[SID].seconds == 36000
    assert await store.stats.game_names([str(SQUAD), str(CS)]) == {str(SQUAD): "Squad"}
    assert await store.stats.daily(GUILD, ALICE, NOW.date(), NOW.date()) == []  # not a day's
    assert await steam.due(later - MINUTE, 10) == [] and await steam.due(later, 10) == [SID]
    assert await steam.pending_checks(SID) == []
    assert await steam.unlocks(SID, SQUAD) == (set(), None, to_iso(NOW))
    # What grew after the baseline: a sample, the day's line in each guild, an achievement
    # check; the account's next read a day later.
    at = NOW + timedelta(hours=1)
    assert await library(store, 660, at) == 2
    assert await store.stats.daily(GUILD, ALICE, NOW.date(), NOW.date()) == [
        DailyPlaytime(NOW.date(), "steam", str(SQUAD), 3600)
    ]
    assert await steam.pending_checks(SID) == [SQUAD]
    batch = await store.feed.next_work(900, to_iso(at), Titles())
    assert batch is not None
    assert [e["title"] for e in batch.payload["embeds"]] == [  # type: ignore[union-attr]
        "Player 1 played Squad today: 1 h"
    ]
    assert await library(store, 660, at + MINUTE) == 0  # nothing grew: nothing announced
    # Crossing a milestone: the day's line and the milestone, in both guilds.
    assert await library(store, 3000, at + 2 * MINUTE) == 4
    _, activity = await store.events.counts()
    assert activity == 6
    # An older read never overwrites a newer one.
    assert await library(store, 4000, at) == 0
    stored = await store.playtime.for_players(GLOBAL_SCOPE, "steam", str(SQUAD), [SID])
    assert stored[SID].seconds == 3000 * 60


@part("links", "steam")
async def test_private_profiles_retries_and_a_read_that_clears_them(store: Store) -> None:
    steam = store.steam
    await link(store, ALICE, SID)
    await steam.enrol(NOW, lambda steam_id: NOW)
    await steam.mark_private(SID, NOW, NOW + timedelta(hours=6))
    assert await store.links.steam_private(GUILD, ALICE)
    counts = await steam.counts(NOW)
    assert (counts["private"], counts["due"]) == (1, 0)
    assert await steam.due(NOW + timedelta(hours=6), 10) == [SID]
    # Failures in a row wait longer each time.
    waits: list[int] = []

    def delay(failures: int) -> float:
        waits.append(failures)
        return 60.0 * 2**failures

    await steam.mark_retry(SID, NOW, "rate_limited", "x" * 500, delay)
    await steam.mark_retry(SID, NOW, "unavailable", "503", delay)
    assert waits == [1, 2]
    assert await steam.due(NOW + 239 * timedelta(seconds=1), 10) == []
    assert await steam.due(NOW + 4 * MINUTE, 10) == [SID]
    await steam.mark_retry("unknown", NOW, "unavailable", "503", delay)  # not tracked: nothing
    assert await steam.accounts() == [SID] and waits == [1, 2, 1]
    # A library that reads again: the mark goes, the failures are forgotten.
    await library(store, 10, NOW + MINUTE)
    assert not await store.links.steam_private(GUILD, ALICE)
    assert (await steam.counts(NOW))["private"] == 0
    await steam.mark_retry(SID, NOW, "rate_limited", "429", delay)
    assert waits == [1, 2, 1, 1]  # the first failure again
    # An account no guild tracks keeps nothing.
    assert await library(store, 10, NOW, steam_id=SID3) == 0
    assert await store.playtime.for_players(GLOBAL_SCOPE, "steam", str(SQUAD), [SID3]) == {}
    assert await steam.accounts() == [SID]


@part("links", "steam", "events", "playtime", "privacy")
async def test_lookups_keep_totals_and_announce_growth_after_the_baseline(store: Store) -> None:
    steam = store.steam
    found = store.playtime.for_players
    # Nobody links it: the answer is kept (a lookup of any player).
    assert await steam.record_lookup(SID3, SQUAD, seconds=60, status="ok", name=None, now=NOW) == 0
    assert (await found(GLOBAL_SCOPE, "steam", str(SQUAD), [SID3]))[SID3].seconds == 60
    # Linked only by a member who turned collecting off: nothing is kept.
    await link(store, ALICE, SID)
    await store.privacy.set_choice(GUILD, ALICE, PrivacyChoice(collecting=False), NOW)
    kept = await steam.record_lookup(
        SID, SQUAD, seconds=3600, status="ok", name="Squad", now=NOW, growth=GROWTH
    )
    assert kept == 0 and await found(GLOBAL_SCOPE, "steam", str(SQUAD), [SID]) == {}
    await link(store, BOB, SID, guild=OTHER)  # someone who collects links it
    await steam.record_lookup(SID, SQUAD, seconds=3600, status="ok", name="Squad", now=NOW)
    assert (await found(GLOBAL_SCOPE, "steam", str(SQUAD), [SID]))[SID].seconds == 3600
    # Growth before the sync's baseline is not announced; after it, as the sync's own reads.
    at = NOW + MINUTE
    kept = await steam.record_lookup(
        SID, SQUAD, seconds=4000, status="ok", name="Squad", now=at, growth=GROWTH
    )
    assert kept == 0 and await steam.pending_checks(SID) == []
    await steam.enrol(NOW, lambda steam_id: NOW)
    await library(store, 4000 // 60, at)
    kept = await steam.record_lookup(
        SID, SQUAD, seconds=7200, status="ok", name="Squad", now=at + MINUTE, growth=GROWTH
    )
    assert kept == 1  # the day's line in the guild that collects
    assert await steam.pending_checks(SID) == [SQUAD]
    # Without growth to observe, or an older answer: nothing announced.
    assert await steam.record_lookup(
        SID, SQUAD, seconds=9000, status="ok", name=None, now=at + 2 * MINUTE
    ) == 0  # fmt: skip
    assert await steam.record_lookup(
        SID, SQUAD, seconds=9999, status="ok", name=None, now=at, growth=GROWTH
    ) == 0  # fmt: skip
    assert (await found(GLOBAL_SCOPE, "steam", str(SQUAD), [SID]))[SID].seconds == 9000
    # A known "no value" (a private library).
    await steam.record_lookup(
        SID, CS, seconds=None, status="private", name="CS", now=at + 3 * MINUTE
    )
    none = (await found(GLOBAL_SCOPE, "steam", str(CS), [SID]))[SID]
    assert (none.seconds, none.status) == (None, "private")


@part("links", "steam", "events")
async def test_achievements_baseline_silently_then_announce_each_unlock_once(
    store: Store,
) -> None:
    steam = store.steam
    game = OwnedGame(SQUAD, 60, "Squad")
    unlocked = int(datetime(2025, 2, 1, tzinfo=UTC).timestamp())
    first = Unlock("FIRST", True, unlocked)
    kwargs: dict[str, Any] = dict(schema={}, percentages={}, observer=OBSERVER)
    # Not tracked (unlinked while the achievements were read): nothing is kept.
    assert await steam.store_unlocks(
        SID, game, silent=[first], fresh=[], now=NOW, baseline=True, **kwargs
    ) == 0  # fmt: skip
    assert await steam.unlocks(SID, SQUAD) == (set(), None, None)
    await link(store, ALICE, SID)
    await link(store, BOB, SID, guild=OTHER)
    await steam.enrol(NOW, lambda steam_id: NOW)
    await library(store, 60, NOW)
    await library(store, 120, NOW + MINUTE)  # grew: a pending check
    assert await steam.pending_checks(SID) == [SQUAD]
    raw, activity = await store.events.counts()
    silent = [first, Unlock("NO_TIME", True, None), Unlock("ABSURD", True, 0)]
    assert await steam.store_unlocks(
        SID, game, silent=silent, fresh=[], now=NOW + 2 * MINUTE, baseline=True, **kwargs
    ) == 0  # fmt: skip
    assert await store.events.counts() == (raw, activity)
    assert await steam.pending_checks(SID) == []  # checked
    assert await steam.unlocks(SID, SQUAD) == (
        {"FIRST", "NO_TIME", "ABSURD"}, to_iso(NOW + 2 * MINUTE), to_iso(NOW),
    )  # fmt: skip
    # New unlocks: stored and announced once in every guild that links the account.
    fresh = [Unlock("NEW", True, unlocked + 86_400), first, Unlock("LATE", True, None)]
    kwargs |= dict(schema={"NEW": {"displayName": "New one"}}, percentages={"NEW": 1.5})
    assert await steam.store_unlocks(
        SID, game, silent=[], fresh=fresh, now=NOW + 3 * MINUTE, baseline=False, **kwargs
    ) == 4  # fmt: skip
    names, game_baseline, _ = await steam.unlocks(SID, SQUAD)
    assert names == {"FIRST", "NO_TIME", "ABSURD", "NEW", "LATE"}
    assert game_baseline == to_iso(NOW + 2 * MINUTE)  # the first check's
    assert await steam.store_unlocks(
        SID, game, silent=[], fresh=fresh, now=NOW + 4 * MINUTE, baseline=False, **kwargs
    ) == 0  # fmt: skip
    # Another game's first check: its own baseline; the account's stays.
    other = OwnedGame(CS, 5, None)
    await steam.store_unlocks(
        SID, other, silent=[], fresh=[], now=NOW + 5 * MINUTE, baseline=True, **kwargs
    )
    assert await steam.unlocks(SID, CS) == (set(), to_iso(NOW + 5 * MINUTE), to_iso(NOW))


@part("links", "steam", "events")
async def test_pending_checks_in_the_order_they_grew(store: Store) -> None:
    steam = store.steam
    await link(store, ALICE, SID)
    await steam.enrol(NOW, lambda steam_id: NOW)
    await library(store, 10, NOW, game=CS)
    await library(store, 10, NOW)
    await library(store, 20, NOW + MINUTE, game=CS)
    await library(store, 20, NOW + 2 * MINUTE)
    await library(store, 30, NOW + 3 * MINUTE, game=CS)  # already pending: the first time counts
    assert await steam.pending_checks(SID) == [CS, SQUAD]
    await steam.checked(SID, CS)
    assert await steam.pending_checks(SID) == [SQUAD]
    await steam.checked(SID, CS)  # again: nothing
    assert await steam.pending_checks(SID) == [SQUAD] and await steam.pending_checks(SID2) == []


@part("steam")
async def test_the_game_cache(store: Store) -> None:
    steam = store.steam
    assert await steam.cached(SQUAD, "schema", "english") is None
    body = {"A": {"name": "Первый", "icon": None}, "n": [1, 2.5]}
    await steam.cache(SQUAD, "schema", "english", body, NOW)
    assert await steam.cached(SQUAD, "schema", "english") == (body, NOW)
    assert await steam.cached(SQUAD, "schema", "russian") is None
    assert await steam.cached(SQUAD, "percentages", "english") is None
    assert await steam.cached(CS, "schema", "english") is None
    await steam.cache(SQUAD, "schema", "english", {"B": 1}, NOW + MINUTE)  # replaced
    assert await steam.cached(SQUAD, "schema", "english") == ({"B": 1}, NOW + MINUTE)
    await steam.cache(SQUAD, "percentages", "", {"A": 12.5}, NOW)
    assert await steam.cached(SQUAD, "percentages", "") == ({"A": 12.5}, NOW)


@part("steam")
async def test_the_daily_call_budget_and_lookup_shares(store: Store) -> None:
    steam = store.steam
    day, next_day = "2025-03-01", "2025-03-02"
    assert await steam.calls_on(day) == {}
    assert [await steam.reserve_call(day, "sync", 3) for _ in range(5)] == [True] * 3 + [False] * 2
    assert await steam.calls_on(day) == {"sync": 3}  # refused calls are not counted
    assert await steam.reserve_call(day, "sync", 4)  # a larger limit (a new plan)
    assert not await steam.reserve_call(day, "lookup", 0)
    assert await steam.calls_on(day) == {"sync": 4, "lookup": 1}
    assert await steam.reserve_call(next_day, "sync", 1)
    assert await steam.calls_on(next_day) == {"sync": 1}
    # An endpoint's lookups: up to what is left of its limit.
    assert await steam.reserve_lookups(day, 7, 3, 5) == 3
    assert await steam.reserve_lookups(day, 7, 3, 5) == 2
    assert await steam.reserve_lookups(day, 7, 3, 5) == 0
    assert await steam.reserve_lookups(day, 7, 3, 6) == 1  # a larger limit
    assert await steam.reserve_lookups(day, 8, 10, 5) == 5  # each endpoint its own
    assert await steam.reserve_lookups(next_day, 7, 2, 5) == 2  # each day its own
    assert await steam.reserve_lookups(day, 9, 0, 5) == 0
    assert await steam.reserve_lookups(day, 9, 5, 0) == 0


@part("steam")
async def test_the_key_state(store: Store) -> None:
    steam = store.steam
    assert await steam.key_state() == {}
    probe = NOW + timedelta(minutes=5)
    await steam.set_key_state(NOW, probe, "403 Forbidden")
    assert await steam.key_state() == {
        "steam_key_refused_since": to_iso(NOW),
        "steam_key_next_probe": to_iso(probe),
        "steam_key_problem": "403 Forbidden",
    }
    await steam.set_key_state(NOW, None, "403 again")
    assert await steam.key_state() == {
        "steam_key_refused_since": to_iso(NOW),
        "steam_key_problem": "403 again",
    }
    await steam.set_key_state(None, None, None)
    assert await steam.key_state() == {}
