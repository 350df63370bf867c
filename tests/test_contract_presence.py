"""The ``presence`` part (presence playtime's stored half: consent, the game of an activity,
the member's presence link, sessions a stopped process left open), on every backend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from bot.clock import to_iso
from bot.ingest.policy import IngestPolicy
from bot.storage import Store
from bot.storage.events import compact_json, dedupe_hash
from bot.storage.records import Delivery, IngestResult, Link, PrivacyChoice
from connectors.base import WebhookContext
from connectors.registry import Registry
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

ALICE, BOB, CAROL, DAVE, ERIN = (4000000000000000201 + n for n in range(5))
FACTORIO_APP = "363409179668398080"


@part("presence", "privacy")
async def test_consent_is_the_members_choice_else_the_guilds_default(store: Store) -> None:
    presence, privacy = store.presence, store.privacy
    assert not await presence.consent(GUILD, ALICE)  # a guild Questlog knows nothing about
    assert await privacy.set_presence_default(GUILD, True, NOW)
    assert await presence.consent(GUILD, ALICE)  # no choice: the guild's default (on)
    assert not await presence.consent(OTHER, ALICE)  # only in that guild
    await privacy.set_choice(GUILD, BOB, PrivacyChoice(collecting=True, presence=False), NOW)
    await privacy.set_choice(GUILD, CAROL, PrivacyChoice(collecting=False, presence=None), NOW)
    await privacy.set_choice(GUILD, DAVE, PrivacyChoice(collecting=False, presence=True), NOW)
    await privacy.set_choice(GUILD, ERIN, PrivacyChoice(collecting=True, presence=True), NOW)
    assert [await presence.consent(GUILD, m) for m in (ALICE, BOB, CAROL, DAVE, ERIN)] == [
        True, False, False, False, True,
    ]  # fmt: skip
    assert await privacy.set_presence_default(GUILD, False, NOW)
    assert [await presence.consent(GUILD, m) for m in (ALICE, BOB, CAROL, DAVE, ERIN)] == [
        False, False, False, False, True,  # DAVE turned collecting off: never, whatever he chose
    ]  # fmt: skip
    await privacy.set_choice(GUILD, ALICE, PrivacyChoice(collecting=True, presence=True), NOW)
    assert await presence.consent(GUILD, ALICE)
    assert not await presence.consent(OTHER, ERIN)  # the choice is per guild
    await privacy.set_choice(OTHER, ERIN, PrivacyChoice(collecting=True, presence=True), NOW)
    assert await presence.consent(OTHER, ERIN)  # its guild is known now: her choice counts


@part("presence")
async def test_an_activity_lands_under_its_application_or_the_game_of_its_name(
    store: Store,
) -> None:
    game = store.presence.game
    later = NOW + timedelta(hours=1)
    factorio = f"discord:app:{FACTORIO_APP}"
    assert await game(FACTORIO_APP, "Factorio", NOW) == factorio  # nothing known yet
    # Learnt for the application: kept even if the name changes later.
    assert await game(FACTORIO_APP, "Factorio: Space Age", later) == factorio
    assert await game(None, "FACTORIO", later) == factorio  # the name remembered, any case
    assert await game(None, "Factorio: Space Age", later) == (
        "discord:name:factorio: space age"  # a mapped application's new name is not a game
    )
    assert await game("42", "factorio", later) == factorio  # another application, same name
    assert await game("42", "Something Else", later) == factorio  # and learnt for it
    assert await game(None, "minecraft", later) == "minecraft"  # a game Questlog knows
    assert await game("43", "Minecraft", later) == "minecraft"
    assert await game("43", "Anything", later) == "minecraft"
    assert await game(None, "Hades", NOW) == "discord:name:hades"
    assert await game(None, "hADES", NOW) == "discord:name:hades"
    assert await game("44", "Unknown Thing", NOW) == "discord:app:44"
    assert await game(None, "unknown thing", NOW) == "discord:app:44"
    long = "Quite " * 30
    assert await game(None, long, NOW) == "discord:name:" + long.casefold()[:100]
    assert await game(None, long.upper(), NOW) == "discord:name:" + long.casefold()[:100]


@part("presence")
async def test_names_beyond_ascii_match_by_case_folding(store: Store) -> None:
    game = store.presence.game
    assert await game(None, "Ёлки Палки", NOW) == "discord:name:ёлки палки"
    assert await game(None, "ёлки палки", NOW) == "discord:name:ёлки палки"  # beyond ASCII case
    assert await game(None, "ЁЛКИ ПАЛКИ", NOW) == "discord:name:ёлки палки"
    assert await game("7", "ёЛКИ пАЛКИ", NOW) == "discord:name:ёлки палки"
    assert await game(None, "Straße", NOW) == "discord:name:strasse"
    assert await game(None, "STRAẞE", NOW) == "discord:name:strasse"  # ẞ folds to ss
    assert await game(None, "Ёлки", NOW) == "discord:name:ёлки"  # another length: another game
    assert await game(None, "Éclair", NOW) == "discord:name:éclair"
    assert await game(None, "éCLAIR", NOW) == "discord:name:éclair"


@part("presence", "steam")
async def test_steam_app_ids_come_first_among_games_of_one_name(store: Store) -> None:
    game = store.presence.game
    assert await game(None, "Squad", NOW) == "discord:name:squad"
    await store.steam.record_lookup(SID, 393380, seconds=60, status="ok", name="Squad", now=NOW)
    assert await game(None, "SQUAD", NOW) == "393380"  # where the other sources' time is
    assert await game("squad-app", "squad", NOW) == "393380"
    assert await game("squad-app", "Squad Beta", NOW) == "393380"
    # Beyond ASCII: SQLite's NOCASE matches the same letters only, and then the other spellings
    # are not looked at; they are when it matches nothing.
    assert await game(None, "Ёлки Палки", NOW) == "discord:name:ёлки палки"
    await store.steam.record_lookup(SID, 999, seconds=60, status="ok", name="ёлки палки", now=NOW)
    assert await game(None, "ёлки палки", NOW) == "999"  # both match exactly: Steam's first
    assert await game(None, "Ёлки Палки", NOW) == "discord:name:ёлки палки"  # the same letters
    assert await game(None, "ЁЛКИ ПАЛКИ", NOW) == "999"  # no exact match: folded, Steam's first


@part("presence", "links")
async def test_the_presence_link_is_the_members_discord_account(store: Store) -> None:
    def link(name: str | None) -> Link:
        return Link("discord", str(ALICE), name, True, None, "presence", "discord")

    await store.presence.ensure_link(GUILD, ALICE, "Alice", NOW)
    assert await store.links.for_member(GUILD, ALICE) == [link("Alice")]
    await store.presence.ensure_link(GUILD, ALICE, "Alice", NOW)  # already there
    await store.presence.ensure_link(GUILD, ALICE, None, NOW)  # no name: the stored one stays
    assert await store.links.for_member(GUILD, ALICE) == [link("Alice")]
    await store.presence.ensure_link(GUILD, ALICE, "Alicia", NOW + timedelta(hours=1))
    assert await store.links.for_member(GUILD, ALICE) == [link("Alicia")]
    assert await store.links.for_member(OTHER, ALICE) == []  # per guild
    await store.presence.ensure_link(OTHER, ALICE, None, NOW)
    assert await store.links.for_member(OTHER, ALICE) == [link(None)]
    await store.presence.ensure_link(OTHER, ALICE, "Alice", NOW)
    assert await store.links.for_member(OTHER, ALICE) == [link("Alice")]
    await store.links.link(
        guild_id=GUILD, discord_user_id=ALICE, source="steam", external_id=SID, now=NOW
    )
    await store.presence.ensure_link(GUILD, ALICE, "Alice", NOW)
    found = await store.links.for_member(GUILD, ALICE)
    assert [(x.source, x.display_name) for x in found] == [("discord", "Alice"), ("steam", None)]
    assert await store.links.for_member(GUILD, BOB) == []


_REGISTRY = Registry().discover()


async def ingest(store: Store, source: str, raw: Mapping[str, Any]) -> IngestResult:
    connector = _REGISTRY.get(source)
    delivery = Delivery(
        GUILD, source, None, dedupe_hash(connector, raw), compact_json(raw), to_iso(NOW)
    )
    return await store.events.ingest(
        delivery, connector, raw, connector.effects(raw), IngestPolicy()
    )


def presence_raw(kind: str, user: int, session: str, game: str, at: str) -> dict[str, Any]:
    raw: dict[str, Any] = {"type": f"presence.{kind}", "session": session, "user_id": str(user),
                           "game_id": game, "game_name": game.title(), "at": at}  # fmt: skip
    if kind == "session.ended":
        raw.update(active_seconds=600, idle_seconds=0, reason="ended")
    return raw


@part("presence", "events")
async def test_sessions_a_stopped_process_left_open_are_closed(store: Store) -> None:
    for member, name in ((ALICE, "Alice"), (BOB, "Bob")):
        await store.presence.ensure_link(GUILD, member, name, NOW)
    assert await store.presence.close_interrupted() == 0
    start, end = "2025-03-01T12:00:00Z", "2025-03-01T12:10:00Z"
    results = [
        await ingest(store, "discord", presence_raw("session.started", ALICE, "a1", "g1", start)),
        await ingest(store, "discord", presence_raw("session.started", BOB, "b1", "g1", start)),
        await ingest(store, "discord", presence_raw("session.ended", BOB, "b1", "g1", end)),
    ]
    assert [r.status for r in results] == ["accepted"] * 3
    assert not any(r.details.get("withheld") for r in results)
    minecraft = _REGISTRY.get("minecraft").parse_webhook(
        {"type": "session.started", "player_uuid": "069a79f4-44e9-4726-a5be-fca90e38aaf5",
         "at": start},
        WebhookContext(received_at=NOW),
    )  # fmt: skip
    assert (await ingest(store, "minecraft", minecraft)).status == "accepted"  # not presence
    assert await store.presence.close_interrupted() == 1  # Alice's only
    assert await store.presence.close_interrupted() == 0
    later = "2025-03-01T13:00:00Z"
    for member, session in ((ALICE, "a2"), (BOB, "b2")):
        raw = presence_raw("session.started", member, session, "g2", later)
        assert (await ingest(store, "discord", raw)).status == "accepted"
    assert await store.presence.close_interrupted() == 2
