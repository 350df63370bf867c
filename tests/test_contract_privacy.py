"""The privacy part's contract (bot/storage/interface.py, PrivacyStore) on every backend: the
member's choices, what /privacy show counts, what /privacy export gives and what a forget
removes and keeps. Only interface methods are used."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.clock import to_iso
from bot.ingest.policy import IngestPolicy
from bot.storage import Store
from bot.storage.records import GLOBAL_SCOPE, Delivery, PrivacyChoice, StoredTokens
from connectors.base import WebhookContext
from connectors.registry import Registry
from tests.contract import GUILD, NOW, OTHER, SID, part, store
from tests.contract import pytest_generate_tests as pytest_generate_tests

__all__ = ["store"]  # the fixture, imported

ALICE, DAVE, BOB = 1001, 1002, 1003
MC = "4e1bc7a0-5b2f-4d8e-9f00-0a11ce000001"
DAVE_MC = "4e1bc7a0-5b2f-4d8e-9f00-0da7e0000004"
LATER = NOW + timedelta(hours=1)


@part("privacy")
async def test_choices_are_stored_only_while_they_differ_from_the_defaults(store: Store) -> None:
    privacy = store.privacy
    assert await privacy.choice(GUILD, ALICE) == PrivacyChoice(True, None)
    assert not await privacy.set_choice(GUILD, ALICE, PrivacyChoice(), NOW)  # the default
    assert await privacy.set_choice(GUILD, ALICE, PrivacyChoice(False, None), NOW)
    assert not await privacy.set_choice(GUILD, ALICE, PrivacyChoice(False, None), LATER)
    assert await privacy.choice(GUILD, ALICE) == PrivacyChoice(False, None)
    assert await privacy.choice(OTHER, ALICE) == PrivacyChoice()  # per guild
    assert await privacy.choice(GUILD, DAVE) == PrivacyChoice()  # per member
    assert await privacy.set_choice(GUILD, ALICE, PrivacyChoice(True, False), LATER)
    assert await privacy.choice(GUILD, ALICE) == PrivacyChoice(True, False)
    assert await privacy.set_choice(GUILD, ALICE, PrivacyChoice(True, True), LATER)
    assert (await privacy.choice(GUILD, ALICE)).presence is True
    assert await privacy.set_choice(GUILD, ALICE, PrivacyChoice(), LATER)  # back to defaults
    assert await privacy.choice(GUILD, ALICE) == PrivacyChoice()
    assert not await privacy.set_choice(GUILD, ALICE, PrivacyChoice(), LATER)


@part("privacy")
async def test_the_guilds_presence_default(store: Store) -> None:
    privacy = store.privacy
    assert await privacy.presence_default(GUILD) is False  # no guild row yet
    assert not await privacy.set_presence_default(GUILD, False, NOW)
    assert await privacy.set_presence_default(GUILD, True, NOW)
    assert await privacy.presence_default(GUILD) is True
    assert not await privacy.set_presence_default(GUILD, True, LATER)
    assert await privacy.presence_default(OTHER) is False
    assert await privacy.set_presence_default(GUILD, False, LATER)
    assert await privacy.presence_default(GUILD) is False


@part("privacy", "links", "tokens", "oauth")
async def test_summary_and_export_of_links_codes_sign_ins_and_choices(store: Store) -> None:
    links = store.links
    await links.link(guild_id=GUILD, discord_user_id=ALICE, source="steam", external_id=SID,
                     now=NOW, display_name="Alice")  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=ALICE, source="minecraft", external_id=MC,
                     now=NOW)  # fmt: skip
    await links.verify(guild_id=GUILD, discord_user_id=ALICE,
                       accounts=[("custom", "Zed", None), ("custom", "abc", None)],
                       verified_by="discord", now=NOW)  # fmt: skip
    await links.link(guild_id=OTHER, discord_user_id=ALICE, source="minecraft",
                     external_id="other-mc", now=NOW)  # fmt: skip
    assert await links.add_code(guild_id=GUILD, discord_user_id=ALICE, source="minecraft",
                                code="ABCD2345", now=NOW,
                                expires=NOW + timedelta(minutes=10))  # fmt: skip
    await store.oauth.create(kind="discord", guild_id=GUILD, user_id=ALICE, language="ru",
                             now=NOW)  # fmt: skip
    await store.privacy.set_choice(GUILD, ALICE, PrivacyChoice(True, True), NOW)

    summary = await store.privacy.summary(GUILD, ALICE)
    # By source, then external id in byte order (upper case first).
    assert summary.links == [
        ("custom", "Zed", "discord"), ("custom", "abc", "discord"),
        ("minecraft", MC, "none"), ("steam", SID, "none"),
    ]  # fmt: skip
    assert (summary.sessions, summary.samples, summary.events, summary.tokens) == (0, 0, 0, False)
    await store.tokens.save(StoredTokens(ALICE, "SEALED-A", "SEALED-R", "identify", LATER), NOW)
    assert (await store.privacy.summary(GUILD, ALICE)).tokens
    assert (await store.privacy.summary(GUILD, DAVE)).links == []

    data = await store.privacy.export(GUILD, ALICE)
    assert "SEALED" not in json.dumps(data)  # never a token, not even sealed
    assert (data["guild_id"], data["discord_user_id"]) == (GUILD, ALICE)
    assert [(x["source"], x["external_id"]) for x in data["links"]] == [
        (s, e) for s, e, _ in summary.links
    ]
    steam_link = data["links"][-1]
    assert steam_link == {
        "source": "steam", "external_id": SID, "display_name": "Alice", "verified": 0,
        "verified_by": "none", "status": None, "linked_by": "member",
        "created_at": to_iso(NOW), "updated_at": to_iso(NOW),
    }  # fmt: skip
    assert data["link_codes"] == [{"source": "minecraft", "created_at": to_iso(NOW),
                                   "expires_at": to_iso(NOW + timedelta(minutes=10)),
                                   "used_at": None}]  # fmt: skip
    assert data["sign_ins_begun"] == [{"kind": "discord", "language": "ru",
                                       "created_at": to_iso(NOW),
                                       "expires_at": to_iso(NOW + timedelta(minutes=10)),
                                       "used_at": None}]  # fmt: skip
    assert data["privacy_choices"] == {"collecting": True, "presence": True}
    assert data["discord_sign_in"] == {
        "connected": True, "tokens": "stored encrypted; not exported", "scope": "identify",
        "expires_at": to_iso(LATER), "locale": None, "linked_roles_values": None,
        "linked_roles_sent_at": None, "connected_at": to_iso(NOW),
    }  # fmt: skip
    # Per link, where its playtime lives: Steam's global totals and the guild's BattleMetrics.
    assert [(a["link_source"], a["source"]) for a in data["accounts"]] == [
        ("minecraft", "minecraft"), ("steam", "steam"), ("steam", "battlemetrics"),
    ]  # fmt: skip
    assert all(a["playtime"] == a["samples"] == a["sessions"] == [] for a in data["accounts"])
    assert data["steam"] == {"accounts": [], "achievements": []}
    for empty in ("link_notices", "playtime_per_game_and_source", "rewards_held",
                  "rewards_created", "actions", "feed_events"):  # fmt: skip
        assert data[empty] == [], empty
    nobody = await store.privacy.export(GUILD, DAVE)
    assert nobody["links"] == [] and nobody["discord_sign_in"] is None
    assert nobody["privacy_choices"] == {"collecting": True, "presence": "guild default"}
    assert [x["external_id"] for x in (await store.privacy.export(OTHER, ALICE))["links"]] == [
        "other-mc"
    ]


@part("privacy", "links", "tokens", "oauth", "actions")
async def test_forget_removes_the_member_and_keeps_the_guilds_other_data(store: Store) -> None:
    links = store.links
    await links.link(guild_id=GUILD, discord_user_id=ALICE, source="minecraft", external_id=MC,
                     now=NOW, display_name="AliceInGame")  # fmt: skip
    await links.link(guild_id=GUILD, discord_user_id=DAVE, source="minecraft",
                     external_id=DAVE_MC, now=NOW, linked_by=f"admin:{ALICE}")  # fmt: skip
    await links.link(guild_id=OTHER, discord_user_id=ALICE, source="minecraft", external_id=MC,
                     now=NOW)  # fmt: skip
    # Dave proves Alice's account (a notice for Alice), then Alice proves it back (for Dave).
    await links.verify(guild_id=GUILD, discord_user_id=DAVE, accounts=[("minecraft", MC, None)],
                       verified_by="discord", now=NOW)  # fmt: skip
    await links.verify(guild_id=GUILD, discord_user_id=ALICE,
                       accounts=[("minecraft", MC, "AliceInGame")], verified_by="discord",
                       now=LATER)  # fmt: skip
    assert await links.notices(GUILD, DAVE) and await links.notices(GUILD, ALICE)
    await links.add_code(guild_id=GUILD, discord_user_id=ALICE, source="minecraft",
                         code="ABCD2345", now=NOW, expires=LATER)  # fmt: skip
    for user in (ALICE, DAVE):
        await store.oauth.create(kind="discord", guild_id=GUILD, user_id=user, language="en",
                                 now=NOW)  # fmt: skip
    await store.oauth.create(kind="linked_roles", guild_id=None, user_id=ALICE, language="en",
                             now=NOW)  # fmt: skip
    await store.tokens.save(StoredTokens(ALICE, "sealed", "sealed", "identify", LATER), NOW)
    for user in (ALICE, DAVE):
        await store.actions.enqueue(guild_id=GUILD, connector="discord", action="add_role",
                                    payload={"user_id": user, "role_id": 5}, idempotent=True,
                                    pause_key="roles", now=NOW, user_id=user)  # fmt: skip
    exported = await store.privacy.export(GUILD, ALICE)
    [action] = exported["actions"]
    assert json.loads(str(action["payload"])) == {"role_id": 5, "user_id": ALICE}
    assert (action["status"], action["created_at"]) == ("pending", to_iso(NOW))
    assert [n["external_id"] for n in exported["link_notices"]] == [MC]

    report = await store.privacy.forget(GUILD, ALICE, LATER, drop_tokens=False)
    assert report.removed == {
        "account_links": 1, "action_outbox": 1, "link_codes": 1, "link_notices": 2,
        "oauth_states": 1,
    }  # fmt: skip
    assert report.total == 6 and report.shared_steam == [] and not report.kept_opt_out
    summary = await store.privacy.summary(GUILD, ALICE)
    assert summary.links == [] and summary.tokens  # an admin's forget keeps the sign-in
    assert await links.notices(GUILD, DAVE) == []  # it named her account
    [dave] = await links.for_member(GUILD, DAVE)
    assert dave.linked_by == "admin"  # made by an admin, no longer which one
    assert [x.external_id for x in await links.for_member(OTHER, ALICE)] == [MC]  # untouched
    assert (await store.privacy.export(GUILD, DAVE))["sign_ins_begun"]  # Dave's stays
    assert (await store.privacy.export(GUILD, DAVE))["actions"]
    after = await store.privacy.export(GUILD, ALICE)
    assert after["actions"] == after["link_codes"] == after["sign_ins_begun"] == []
    assert await store.tokens.get(ALICE) is not None

    again = await store.privacy.forget(GUILD, ALICE, LATER, drop_tokens=True)
    # The member's own request also ends the sign-in and the sign-ins begun without a guild.
    assert again.removed == {"discord_tokens": 1, "oauth_states": 1}
    assert await store.tokens.get(ALICE) is None
    assert not (await store.privacy.summary(GUILD, ALICE)).tokens
    nothing = await store.privacy.forget(GUILD, ALICE, LATER, drop_tokens=True)
    assert nothing.removed == {} and nothing.total == 0


@part("privacy", "links")
async def test_an_opt_out_outlives_the_forget(store: Store) -> None:
    await store.links.link(guild_id=GUILD, discord_user_id=ALICE, source="minecraft",
                           external_id=MC, now=NOW)  # fmt: skip
    assert await store.privacy.set_choice(GUILD, ALICE, PrivacyChoice(False, True), NOW)
    report = await store.privacy.forget(GUILD, ALICE, LATER, drop_tokens=True)
    assert report.kept_opt_out and report.removed == {"account_links": 1}
    # The opt-out stays; a presence choice means nothing while it holds.
    assert await store.privacy.choice(GUILD, ALICE) == PrivacyChoice(False, None)
    await store.privacy.set_choice(GUILD, DAVE, PrivacyChoice(True, True), NOW)
    dave = await store.privacy.forget(GUILD, DAVE, LATER, drop_tokens=True)
    assert not dave.kept_opt_out and dave.removed == {"member_privacy": 1}
    assert await store.privacy.choice(GUILD, DAVE) == PrivacyChoice()


@part("privacy", "links", "steam", "stats")
async def test_forget_takes_steam_playtime_unless_another_guild_links_the_account(
    store: Store,
) -> None:
    for guild, user in ((GUILD, ALICE), (OTHER, BOB)):
        await store.links.link(guild_id=guild, discord_user_id=user, source="steam",
                               external_id=SID, now=NOW)  # fmt: skip
    await store.steam.enrol(NOW, lambda steam_id: NOW)
    await store.steam.record_lookup(SID, 393380, seconds=7200, status="ok", name="Squad", now=NOW)
    await store.steam.record_lookup(SID, 393380, seconds=9000, status="ok", name="Squad",
                                    now=LATER)  # fmt: skip
    summary = await store.privacy.summary(GUILD, ALICE)
    assert summary.samples == 1  # the first answer is a baseline; the growth a sample
    data = await store.privacy.export(GUILD, ALICE)
    [steam] = [a for a in data["accounts"] if a["source"] == "steam"]
    assert [(p["game_id"], p["seconds"]) for p in steam["playtime"]] == [("393380", 9000)]
    assert [(s["game_id"], s["delta_seconds"], s["at"]) for s in steam["samples"]] == [
        ("393380", 1800, to_iso(LATER))
    ]
    assert [d["day"] for d in steam["days"]] == [NOW.date().isoformat()]
    assert data["playtime_per_game_and_source"] == [
        {"game_id": "393380", "source": "steam", "seconds": 9000, "away_seconds": 0}
    ]
    assert [a["steam_id"] for a in data["steam"]["accounts"]] == [SID]

    shared = await store.privacy.forget(GUILD, ALICE, LATER, drop_tokens=True)
    assert shared.shared_steam == [SID]
    assert "playtime" not in shared.removed  # Bob's guild still counts the global totals
    stored = await store.playtime.for_players(GLOBAL_SCOPE, "steam", "393380", [SID])
    assert stored[SID].seconds == 9000
    assert await store.stats.member_totals(GUILD, ALICE) == []
    assert [t.seconds for t in await store.stats.member_totals(OTHER, BOB)] == [9000]

    await store.links.link(guild_id=GUILD, discord_user_id=ALICE, source="steam",
                           external_id=SID, now=LATER)  # fmt: skip
    alone = await store.privacy.forget(OTHER, BOB, LATER, drop_tokens=True)
    assert alone.shared_steam == [SID]  # Alice links it again
    await store.steam.enrol(LATER, lambda steam_id: LATER)
    last = await store.privacy.forget(GUILD, ALICE, LATER, drop_tokens=True)
    assert last.shared_steam == []
    assert last.removed["playtime"] == 1 and last.removed["playtime_samples"] == 1
    assert last.removed["steam_accounts"] == 1
    assert await store.playtime.for_players(GLOBAL_SCOPE, "steam", "393380", [SID]) == {}
    assert (await store.privacy.summary(GUILD, ALICE)).samples == 0


def mc_delivery(guild: int, n: int, uuid: str, name: str) -> tuple[Delivery, Any, Any]:
    """A Minecraft join as the ingest path gets it (its raw body names the player)."""
    body = {"type": "session.started", "player_uuid": uuid, "player_name": name,
            "server_id": "s1", "at": to_iso(NOW + timedelta(minutes=n))}  # fmt: skip
    connector = Registry().discover().get("minecraft")
    raw = connector.parse_webhook(body, WebhookContext(received_at=NOW))
    payload = json.dumps(body)
    return Delivery(guild, "minecraft", None, f"hash-{n}", payload, to_iso(NOW)), connector, raw


async def ingest(store: Store, delivery: tuple[Delivery, Any, Any]) -> Any:
    found, connector, raw = delivery
    return await store.events.ingest(found, connector, raw, connector.effects(raw), IngestPolicy())


class Embeds:
    @staticmethod
    def embed(event: Any, language: tuple[str | None, str | None]) -> dict[str, Any]:
        return {"title": event["title"]}

    @staticmethod
    def pack(embeds: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
        return embeds[:10]

    @staticmethod
    def fits(embeds: list[dict[str, Any]]) -> bool:
        return True


@part("privacy", "links", "events", "feed")
async def test_forget_takes_the_feed_events_about_the_member_and_blanks_their_raw_events(
    store: Store,
) -> None:
    now = to_iso(NOW)
    await store.feed.set_channel(GUILD, 900, now)
    for user, uuid in ((ALICE, MC), (DAVE, DAVE_MC)):
        await store.links.link(guild_id=GUILD, discord_user_id=user, source="minecraft",
                               external_id=uuid, now=NOW)  # fmt: skip
    deliveries = [
        mc_delivery(GUILD, 1, MC, "AliceInGame"),
        mc_delivery(GUILD, 2, DAVE_MC, "DaveInGame"),
        mc_delivery(GUILD, 3, MC, "AliceInGame"),
    ]
    for delivery in deliveries[:2]:
        assert (await ingest(store, delivery)).status == "accepted"
    posted = await store.feed.next_work(900, now, Embeds())
    assert posted is not None and len(posted.payload["embeds"]) == 2
    await store.feed.mark_sent(posted, 5555, now)  # type: ignore[arg-type]
    await ingest(store, deliveries[2])
    waiting = await store.feed.next_work(900, now, Embeds())
    assert waiting is not None  # fixed, not posted yet
    events = (await store.privacy.export(GUILD, ALICE))["feed_events"]
    assert [e["actor_external_id"] for e in events] == [MC, MC]
    assert json.loads(str(events[0]["payload"]))["player_name"] == "AliceInGame"
    assert events[0]["occurred_at"] == to_iso(NOW + timedelta(minutes=1))
    assert (await store.privacy.summary(GUILD, ALICE)).events == 2

    report = await store.privacy.forget(GUILD, ALICE, NOW, drop_tokens=True)
    assert report.removed["activity_events"] == 2 and report.removed["feed_outbox"] == 2
    assert report.removed["raw_events"] == 2  # their payloads blanked, the keys kept
    assert report.removed["feed_batches"] == 2  # the posted copy and the waiting message
    for n in (1, 2, 3):
        assert await store.events.seen(GUILD, f"hash-{n}")
    assert (await ingest(store, deliveries[0])).status == "duplicate"  # nothing brings it back
    assert await store.events.counts() == (3, 1)  # Dave's event stays
    assert await store.feed.due_channels(now) == []  # the waiting message had only hers
    assert (await store.privacy.export(GUILD, ALICE))["feed_events"] == []
    assert (await store.privacy.summary(GUILD, DAVE)).events == 1


@part("privacy", "links", "steam", "stats", "rewards")
async def test_rewards_the_member_holds_and_made_are_exported_and_forgotten(store: Store) -> None:
    made = await store.rewards.add(guild_id=GUILD, role_id=777, hours=1, game_id=None,
                                   period="all", source="any", mode="stack", created_by=ALICE,
                                   now=NOW)  # fmt: skip
    await store.rewards.add(guild_id=GUILD, role_id=None, hours=2, game_id="393380",
                            period="all", source="any", mode="stack", created_by=DAVE, now=NOW,
                            squad_group="admins", squad_permissions="kick")  # fmt: skip
    await store.links.link(guild_id=GUILD, discord_user_id=ALICE, source="steam",
                           external_id=SID, now=NOW)  # fmt: skip
    await store.steam.record_lookup(SID, 393380, seconds=7200, status="ok", name="Squad", now=NOW)
    changes = await store.rewards.check(GUILD, [ALICE], NOW)
    assert [(reward.id, user) for reward, user, _ in changes.granted] == [(made.id, ALICE),
                                                                          (made.id + 1, ALICE)]  # fmt: skip
    data = await store.privacy.export(GUILD, ALICE)
    assert data["rewards_created"] == [{
        "reward_id": made.id, "role_id": 777, "hours": 1, "game_id": None, "period": "all",
        "source": "any", "mode": "stack", "squad_group": None, "created_at": made.created_at,
    }]  # fmt: skip
    granted = {"seconds": 7200, "granted_at": to_iso(NOW), "role_given_by_questlog": 1,
               "period": "all", "source": "any", "mode": "stack"}  # fmt: skip
    assert data["rewards_held"] == [
        {"reward_id": made.id, "role_id": 777, "hours": 1, "game_id": None,
         "squad_group": None, **granted},
        {"reward_id": made.id + 1, "role_id": None, "hours": 2, "game_id": "393380",
         "squad_group": "admins", **granted},
    ]  # fmt: skip
    report = await store.privacy.forget(GUILD, ALICE, LATER, drop_tokens=True)
    assert report.removed["rewards"] == 1  # the one she made loses her name
    assert report.removed["reward_grants"] == 2
    assert {r.id: r.created_by for r in await store.rewards.list(GUILD)}[made.id] is None
    assert [r.created_by for r in await store.rewards.list(GUILD) if r.id != made.id] == [DAVE]
    after = await store.privacy.export(GUILD, ALICE)
    assert after["rewards_created"] == after["rewards_held"] == []
