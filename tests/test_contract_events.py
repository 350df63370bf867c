"""The events part's contract (``store.events``): the one ingest path, on every backend. A
delivery is stored once per guild (a duplicate changes nothing); effects become playtime and
sessions (AFK spans, a session a restart left open, an end without a start); at most one
activity event per delivery, queued for the feed that wants it (a later version replaces one
still waiting); milestones once per guild from the best-known total; what a member who
turned collecting off (or a presence player without a link) sends is withheld; rewards and
in-game announcements follow."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.clock import to_iso
from bot.storage import Store
from bot.storage.events import dedupe_hash
from bot.storage.records import PrivacyChoice, Total
from connectors.base import WebhookContext
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests
from tests.test_contract_playtime import (
    REGISTRY,
    SID2,
    SQUAD,
    STEVE,
    H,
    deliver,
    link,
    minecraft,
    report,
)

__all__ = ["store"]  # the fixture, imported

ALEX = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


class Embeds:
    """A composer that shows what was queued: type, title and actor of each event."""

    @staticmethod
    def embed(event: Any, language: tuple[str | None, str | None]) -> dict[str, Any]:
        return {"type": event["type"], "title": event["title"], "actor": event["actor_user_id"]}

    @staticmethod
    def pack(embeds: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return embeds[:10]

    @staticmethod
    def fits(embeds: list[dict[str, Any]]) -> bool:
        return True


async def queued(store: Store, channel: int = 900) -> list[dict[str, Any]]:
    """The embeds of the channel's next batch ([] when nothing waits)."""
    batch = await store.feed.next_work(channel, to_iso(NOW), Embeds())
    return [] if batch is None else list(batch.payload["embeds"])  # type: ignore[union-attr]


async def custom(store: Store, guild: int = GUILD, **body: Any) -> Any:
    connector = REGISTRY.get("custom")
    raw = connector.parse_webhook(
        {"event_type": "raid.won", "title": "Raid won", **body}, WebhookContext(received_at=NOW)
    )
    return await deliver(store, "custom", guild, raw)


async def steve_seconds(store: Store) -> int | None:
    stored = await store.playtime.for_players(GUILD, "minecraft", "minecraft", [STEVE])
    return stored[STEVE].seconds if stored else None


@part("events")
async def test_a_delivery_is_stored_once_per_guild(store: Store) -> None:
    assert await store.events.counts() == (0, 0)
    first = await custom(store, id="1")
    assert first.status == "accepted" and first.raw_event_id and len(first.event_ids) == 1
    again = await custom(store, id="1")
    assert (again.status, again.raw_event_id, again.event_ids) == ("duplicate", None, [])
    other = await custom(store, OTHER, id="1")  # the same delivery in another guild: its own
    assert other.status == "accepted" and other.event_ids != first.event_ids
    second = await custom(store, id="2")
    assert second.raw_event_id != first.raw_event_id
    assert await store.events.counts() == (3, 3)
    # The identity of a source whose key holds a time is led by its hour.
    started = await minecraft(store, "session.started", NOW)
    assert started.status == "accepted"
    connector = REGISTRY.get("minecraft")
    raw = connector.parse_webhook(
        {"type": "session.started", "player_uuid": STEVE, "server_id": "survival",
         "at": to_iso(NOW)}, WebhookContext(received_at=NOW),
    )  # fmt: skip
    identity = dedupe_hash(connector, raw)
    assert identity.startswith("2025-03-01T12~")
    assert await store.events.seen(GUILD, identity)
    assert not await store.events.seen(OTHER, identity)
    assert not await store.events.seen(GUILD, identity[:14] + "0" * 64)
    assert (await minecraft(store, "session.started", NOW)).status == "duplicate"
    assert await store.events.counts() == (4, 4)


@part("events", "feed")
async def test_events_are_queued_for_the_feed_that_wants_them(store: Store) -> None:
    await custom(store, id="before", title="Before")  # no feed channel yet: stored only
    await store.feed.set_channel(GUILD, 900, to_iso(NOW))
    assert await queued(store) == []
    await custom(store, id="a", title="A")
    await store.feed.set_event_types(GUILD, ["minecraft.achievement", "raid.*"], to_iso(NOW))
    await custom(store, id="b", title="B")  # custom.raid.won: not among the types
    await minecraft(store, "session.started", NOW)  # nor this
    await minecraft(
        store, "achievement.unlocked", NOW + timedelta(minutes=1), key="minecraft:story/root"
    )
    await store.feed.set_event_types(GUILD, ["custom.*"], to_iso(NOW))
    await custom(store, id="c", title="C")
    embeds = await queued(store)
    assert [(e["type"], e["title"]) for e in embeds] == [
        ("custom.raid.won", "A"),
        ("minecraft.achievement", embeds[1]["title"]),
        ("custom.raid.won", "C"),
    ]
    assert "root" in embeds[1]["title"].lower() or "Minecraft" in embeds[1]["title"]
    assert (await store.feed.status(GUILD)).pending == 3
    assert await store.events.counts() == (6, 6)  # every delivery is an event, queued or not


@part("events", "feed")
async def test_a_later_version_replaces_the_one_still_waiting(store: Store) -> None:
    await store.feed.set_channel(GUILD, 900, to_iso(NOW))
    await custom(store, id="1", title="Score 1", update_key="score")
    await custom(store, id="x", title="Other")
    await custom(store, id="2", title="Score 2", update_key="score")
    await custom(store, OTHER, id="3", title="Elsewhere", update_key="score")  # another guild's
    assert (await store.feed.status(GUILD)).pending == 2
    await custom(store, id="4", title="Score 3", update_key="score")
    assert (await store.feed.status(GUILD)).pending == 2
    assert [e["title"] for e in await queued(store)] == ["Other", "Score 3"]
    # A version already in a fixed batch stays there (the next one edits its message).
    await custom(store, id="5", title="Score 4", update_key="score")
    assert [e["title"] for e in await queued(store)] == ["Other", "Score 3"]
    assert (await store.feed.status(GUILD)).pending == 3


@part("events", "feed", "links")
async def test_milestones_are_announced_once_and_a_first_report_is_silent(store: Store) -> None:
    await store.feed.set_channel(GUILD, 900, to_iso(NOW))
    await link(store, 1, display_name="Alice")
    assert (await report(store, 9 * H)).event_ids == []
    crossed = await report(store, 11 * H, NOW + timedelta(seconds=10))
    assert len(crossed.event_ids) == 1
    again = await report(store, 12 * H, NOW + timedelta(seconds=20))
    assert again.event_ids == []
    two = await report(store, 101 * H, NOW + timedelta(seconds=30))  # 50 h and 100 h at once
    assert len(two.event_ids) == 2
    # Down and up again (a server's reset): each milestone is announced once per guild.
    await report(store, 5 * H, NOW + timedelta(seconds=40))
    assert (await report(store, 11 * H, NOW + timedelta(seconds=50))).event_ids == []
    # A veteran's first report: silent, however high.
    assert (await report(store, 600 * H, steam_id=SID2)).event_ids == []
    # In another guild the same player's milestones are that guild's.
    await report(store, 9 * H, guild=OTHER)
    assert len((await report(store, 10 * H, NOW + timedelta(seconds=5), guild=OTHER)).event_ids)
    assert await queued(store) == [
        {"type": "playtime.milestone", "title": "Alice reached 10 h", "actor": 1},
        {"type": "playtime.milestone", "title": "Alice reached 50 h", "actor": 1},
        {"type": "playtime.milestone", "title": "Alice reached 100 h", "actor": 1},
    ]


@part("events", "steam")
async def test_milestones_follow_the_best_total_across_sources(store: Store) -> None:
    """Steam already knows 12 h: BattleMetrics crossing 10 h later announces nothing; crossing
    50 h (beyond Steam) does."""
    await store.steam.record_lookup(SID, int(SQUAD), seconds=12 * H, status="ok", name="Squad",
                                    now=NOW)  # fmt: skip
    await report(store, 9 * H)
    assert (await report(store, 11 * H, NOW + timedelta(seconds=10))).event_ids == []
    assert len((await report(store, 51 * H, NOW + timedelta(seconds=20))).event_ids) == 1


@part("events", "playtime")
async def test_a_session_pair_becomes_playtime(store: Store) -> None:
    await minecraft(store, "session.started", NOW, player_name="Notch")
    ended = await minecraft(
        store, "session.ended", NOW + timedelta(hours=1, minutes=30), duration_seconds=999
    )
    assert ended.details == {"duration_seconds": 5400}  # from the pair, not the hint
    assert await steve_seconds(store) == 5400
    # An end without a start counts its hint; none at all, nothing.
    alone = await minecraft(store, "session.ended", NOW + timedelta(hours=3), player=ALEX,
                            duration_seconds=600)  # fmt: skip
    assert alone.details == {"duration_seconds": 600}
    bare = await minecraft(store, "session.ended", NOW + timedelta(hours=4), player=ALEX)
    assert bare.details == {"duration_seconds": 0}
    stored = await store.playtime.for_players(GUILD, "minecraft", "minecraft", [ALEX])
    assert stored[ALEX].seconds == 600
    # A second start supersedes a session with nothing but its join; the end pairs with it.
    await minecraft(store, "session.started", NOW + timedelta(hours=5))
    await minecraft(store, "session.started", NOW + timedelta(hours=6))
    last = await minecraft(store, "session.ended", NOW + timedelta(hours=6, minutes=30))
    assert last.details == {"duration_seconds": 1800}
    assert await steve_seconds(store) == 5400 + 1800
    # Another server's session is its own.
    await minecraft(store, "session.started", NOW + timedelta(hours=7), server="creative")
    await minecraft(store, "session.ended", NOW + timedelta(hours=8))  # none open on survival
    assert await steve_seconds(store) == 5400 + 1800


@part("events", "playtime", "links", "stats")
async def test_away_time_is_left_out_of_a_session(store: Store) -> None:
    await link(store, 1, STEVE, "minecraft")
    t = NOW
    await minecraft(store, "afk.started", t - timedelta(hours=1))  # no session open: nothing
    await minecraft(store, "session.started", t)
    await minecraft(store, "afk.started", t + timedelta(hours=1))
    await minecraft(store, "afk.started", t + timedelta(hours=1, minutes=30))  # no effect
    await minecraft(store, "afk.ended", t + timedelta(hours=3))
    await minecraft(store, "afk.started", t + timedelta(hours=1), server="creative")  # elsewhere
    ended = await minecraft(store, "session.ended", t + timedelta(hours=5))
    assert ended.details == {"duration_seconds": 3 * H}
    assert await store.stats.member_totals(GUILD, 1) == [
        Total("minecraft", "minecraft", 3 * H, 2 * H)
    ]
    # An AFK span still open when the player leaves ends with the session.
    await minecraft(store, "session.started", t + timedelta(hours=10))
    await minecraft(store, "afk.started", t + timedelta(hours=12))
    await minecraft(store, "session.ended", t + timedelta(hours=16))
    assert await store.stats.member_totals(GUILD, 1) == [
        Total("minecraft", "minecraft", 5 * H, 6 * H)
    ]
    board = await store.stats.leaderboard(GUILD, "minecraft", None)
    assert (board.rows, board.away) == ([(1, 5 * H)], {1: 6 * H})


@part("events", "playtime", "links", "stats")
async def test_a_session_a_restart_left_open_counts_until_its_last_activity(
    store: Store,
) -> None:
    await link(store, 1, STEVE, "minecraft")
    t = NOW
    await minecraft(store, "session.started", t)
    await minecraft(
        store, "achievement.unlocked", t + timedelta(hours=2), key="minecraft:story/mine_stone"
    )
    # The server restarts: no session.ended; the player joins again the next day.
    await minecraft(store, "session.started", t + timedelta(hours=20))
    assert await steve_seconds(store) == 2 * H  # not 20 h
    await minecraft(store, "session.ended", t + timedelta(hours=21))
    assert await steve_seconds(store) == 3 * H
    # One that went AFK counts until the AFK began, and no away time at all.
    await minecraft(store, "session.started", t + timedelta(hours=30))
    await minecraft(store, "afk.started", t + timedelta(hours=31))
    await minecraft(store, "session.started", t + timedelta(hours=39))
    assert await store.stats.member_totals(GUILD, 1) == [Total("minecraft", "minecraft", 4 * H, 0)]
    # What the restart left open lands on the day of its last activity.
    day = (t + timedelta(hours=31)).date()
    [daily] = await store.stats.daily(GUILD, 1, day, day)
    assert (daily.day, daily.seconds) == (day, 2 * H)  # and the hour after the next join


@part("events", "links", "privacy", "playtime")
async def test_what_a_member_who_turned_collecting_off_sends_is_withheld(store: Store) -> None:
    alice = 4000000000000000401
    await link(store, alice)
    await link(store, alice, ALEX, "minecraft")
    await report(store, H)
    before = await store.events.counts()
    off = PrivacyChoice(collecting=False)
    await store.privacy.set_choice(GUILD, alice, off, NOW)
    later = NOW + timedelta(minutes=5)
    withheld = await report(store, 2 * H, later)
    assert withheld.status == "accepted" and withheld.details == {"withheld": True}
    assert withheld.event_ids == [] and withheld.raw_event_id
    assert (await report(store, 2 * H, later)).status == "duplicate"  # a retry changes nothing
    joined = await minecraft(store, "session.started", NOW, player=ALEX)
    assert joined.details == {"withheld": True} and joined.event_ids == []
    stored = await store.playtime.for_players(GUILD, "battlemetrics", SQUAD, [SID])
    assert stored[SID].seconds == H
    assert await store.events.counts() == (before[0] + 2, before[1])
    # Another guild's events about the same account are that guild's.
    other = await report(store, 3 * H, later, guild=OTHER)
    assert other.details == {"playtime_updated": True}
    # Back on: kept again.
    await store.privacy.set_choice(GUILD, alice, PrivacyChoice(), NOW)
    resumed = await minecraft(store, "session.started", NOW + timedelta(hours=1), player=ALEX)
    assert resumed.details == {} and len(resumed.event_ids) == 1


@part("events", "links", "privacy", "playtime")
async def test_an_unproven_claim_cannot_silence_another_player(store: Store) -> None:
    alice = 4000000000000000401
    await link(store, alice)  # typed, not proven
    await store.links.set_require_verified(GUILD, True, NOW)
    await store.privacy.set_choice(GUILD, alice, PrivacyChoice(collecting=False), NOW)
    result = await report(store, H)
    assert result.details == {"playtime_updated": True}  # the server's data stays
    stored = await store.playtime.for_players(GUILD, "battlemetrics", SQUAD, [SID])
    assert stored[SID].seconds == H


async def presence(store: Store, kind: str, user: int, at: datetime, **more: Any) -> Any:
    raw = {"type": kind, "session": f"s{user}", "user_id": str(user), "game_id": "g1",
           "game_name": "Game One", "at": to_iso(at), **more}  # fmt: skip
    return await deliver(store, "discord", GUILD, raw, at)


@part("events", "presence", "playtime")
async def test_presence_is_kept_only_while_the_member_is_linked(store: Store) -> None:
    member = 4000000000000000777
    started = await presence(store, "presence.session.started", member, NOW)
    assert started.details == {"withheld": True} and started.event_ids == []
    await store.presence.ensure_link(GUILD, member, "Seven", NOW)
    t = NOW + timedelta(minutes=1)
    assert len((await presence(store, "presence.session.started", member, t)).event_ids) == 1
    played = await presence(store, "presence.played", member, t + timedelta(minutes=10),
                            seconds=540, idle_seconds=60)  # fmt: skip
    assert played.status == "accepted" and played.event_ids == []
    await presence(store, "presence.played", member, t + timedelta(minutes=11), seconds=0)
    ended = await presence(
        store, "presence.session.ended", member, t + timedelta(minutes=20), started_at=to_iso(t),
        active_seconds=1080, idle_seconds=120, reason="stopped",
    )  # fmt: skip
    assert len(ended.event_ids) == 1  # its time was added while it ran: nothing more
    stored = await store.playtime.for_players(GUILD, "discord", "g1", [str(member)])
    assert stored[str(member)].seconds == 540


@part("events", "links", "rewards", "actions")
async def test_a_reward_earned_by_playing_is_granted_and_announced(store: Store) -> None:
    await link(store, 1, display_name="Alice")
    await store.rewards.add(
        guild_id=GUILD, role_id=1400000000000000011, hours=10, game_id=SQUAD, period="all",
        source="any", mode="stack", created_by=None, now=NOW,
    )  # fmt: skip
    assert (await report(store, 9 * H)).actions == 0
    earned = await report(store, 10 * H + 60, NOW + timedelta(minutes=1))
    assert earned.actions == 1  # the role action
    assert len(earned.event_ids) == 2  # the milestone and the reward
    status = await store.actions.status(GUILD, NOW, limit=10)
    assert [(r.action, r.user_id) for r in status.recent] == [("grant_role", 1)]
    assert (await report(store, 11 * H, NOW + timedelta(minutes=2))).actions == 0  # held


@part("events", "endpoints", "consoles", "links", "actions")
async def test_a_milestone_is_announced_in_game_where_the_guild_has_a_console(
    store: Store,
) -> None:
    endpoint = await store.endpoints.create(
        path="m" * 24, kind="minecraft", guild_id=GUILD, secret="s", read_secret=None,
        game_id=None, now=NOW,
    )  # fmt: skip
    assert endpoint is not None
    await store.consoles.set(
        endpoint.id, game="minecraft", host="127.0.0.1", port=25575, sealed_password="x",
        announce=True, now=NOW,
    )  # fmt: skip
    await link(store, 1, display_name="Alice")
    await report(store, 9 * H)
    crossed = await report(store, 11 * H, NOW + timedelta(minutes=1))
    assert len(crossed.event_ids) == 1 and crossed.actions == 1  # one line said in game
    assert (await store.actions.status(GUILD, NOW, limit=10)).counts.get("pending") == 1
    unlinked = await report(store, 11 * H, NOW + timedelta(minutes=1), steam_id=SID2)
    assert unlinked.actions == 0  # a first report
