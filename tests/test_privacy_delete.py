"""/privacy delete, /admin forget and `questlog forget`: nothing about the member stays in the
guild, another guild's data is untouched, and nothing brings the data back (issue 16).

The data is made the way it arrives: Steam through the sync against the fake Steam Web API,
BattleMetrics and Minecraft through the one ingest path, the feed through the poster."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.feed.poster import FeedPoster, SendError
from bot.storage.links import link_account
from bot.storage.records import StoredTokens
from tests.conftest import GUILD, OTHER_GUILD, steam_config_data
from tests.fakes.steam import MODERN_ID, SAPHYEL_ID, FakeSteam
from tests.test_feed import CHANNEL, MemoryDiscord, set_feed
from tests.test_ingest import bm_raw, mc_raw
from tests.test_steam_sync import play

ALICE = 4000000000000000101  # the member who asks to be forgotten
DAVE = 4000000000000000104  # another member of the same guild
BOB = 4000000000000000102  # a member of the other guild
ALICE_MC = "4e1bc7a0-5b2f-4d8e-9f00-0a11ce000001"
DAVE_MC = "4e1bc7a0-5b2f-4d8e-9f00-0da7e0000004"
GRIM_DAWN = 219990
#: Everything that would name Alice: her Discord id, her accounts, her in-game name.
ALICE_MARKS = (str(ALICE), SAPHYEL_ID, ALICE_MC, "AliceInGame")


@pytest.fixture
def config_data(tmp_path: Any, steam: FakeSteam) -> dict[str, Any]:
    return steam_config_data(tmp_path, steam)


async def link(core: Core, guild: int, user: int, source: str, external: str) -> None:
    now = core.clock.now()
    await core.store.engine.write(
        lambda c: link_account(
            c, guild_id=guild, discord_user_id=user, source=source, external_id=external,
            now=now, display_name="AliceInGame" if user == ALICE else None,
        )
    )  # fmt: skip


async def minecraft_session(core: Core, guild: int, uuid: str, name: str, start: str) -> None:
    for kind, extra in (("session.started", {}), ("session.ended", {"duration_seconds": 5400})):
        raw = mc_raw(
            core, type=kind, player_uuid=uuid, player_name=name, server_id="s1", at=start, **extra
        )
        await core.pipeline.ingest("minecraft", guild, raw)


async def populate(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> tuple[MemoryDiscord, dict[str, Any]]:
    """Alice and Dave in GUILD, Bob in OTHER_GUILD, each with data from every source; some of
    GUILD's feed posted, some waiting. Returns the feed's Discord and one of Alice's
    BattleMetrics deliveries (to retry)."""
    await set_feed(core)  # GUILD's feed
    await link(core, GUILD, ALICE, "steam", SAPHYEL_ID)
    await link(core, GUILD, ALICE, "minecraft", ALICE_MC)
    await link(core, GUILD, DAVE, "minecraft", DAVE_MC)
    await link(core, OTHER_GUILD, BOB, "steam", MODERN_ID)
    await core.steam_sync.sync_now()  # the baselines
    play(steam, SAPHYEL_ID, GRIM_DAWN, 90)
    clock.advance(600)
    await core.steam_sync.sync_now()  # Alice's Steam time grew: a sample, a feed line
    at = to_iso(clock.now())
    await core.store.engine.write(  # Steam shows her in a game: a (global) session
        lambda c: c.execute(
            "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
            " VALUES (0, 'steam', ?, '', ?, ?)",
            (SAPHYEL_ID, str(GRIM_DAWN), at),
        )
    )
    delivered = []
    for n in (1, 2):
        delivered.append(bm_raw(core, 3600 * (7 + 2 * n), n, str(n) * 64, steam_id=SAPHYEL_ID))
        await core.pipeline.ingest("battlemetrics", GUILD, dict(delivered[-1]))
        await core.pipeline.ingest("battlemetrics", OTHER_GUILD, bm_raw(
            core, 3600 * n, n, str(n + 4) * 64, steam_id=MODERN_ID))  # fmt: skip
    await minecraft_session(core, GUILD, ALICE_MC, "AliceInGame", "2025-03-01T10:00:00Z")
    await minecraft_session(core, GUILD, DAVE_MC, "DaveInGame", "2025-03-01T10:05:00Z")
    discord_api = MemoryDiscord()
    assert await FeedPoster(core.store, clock, discord_api).run_once() >= 1  # posted
    await minecraft_session(core, GUILD, ALICE_MC, "AliceInGame", "2025-03-01T12:00:00Z")
    await minecraft_session(core, GUILD, DAVE_MC, "DaveInGame", "2025-03-01T12:05:00Z")
    discord_api.failures.append(SendError.retry("Discord answered 503"))
    await FeedPoster(core.store, clock, discord_api).run_once()  # a batch waits for its retry
    await minecraft_session(core, GUILD, ALICE_MC, "AliceInGame", "2025-03-01T14:00:00Z")
    await core.store.engine.write(  # a message Discord refused once: never posted, kept
        lambda c: c.execute(
            "INSERT INTO feed_batches (guild_id, channel_id, nonce, payload, status, created_at)"
            " VALUES (?, ?, 'n-failed', ?, 'failed', ?)",
            (GUILD, CHANNEL, '{"embeds": [{"title": "AliceInGame joined"}]}', to_iso(clock.now())),
        )
    )
    now = clock.now()
    await core.accounts.new_code(guild_id=GUILD, discord_user_id=ALICE, source="minecraft")
    for user in (ALICE, BOB):
        await core.store.tokens.save(StoredTokens(user, "sealed", "sealed", "identify", now), now)
    await core.store.oauth.create(
        kind="discord", guild_id=GUILD, user_id=ALICE, language="en", now=now
    )
    return discord_api, delivered[-1]


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t}")] for t in tables}


def naming(rows: dict[str, list[tuple[Any, ...]]], marks: tuple[str, ...]) -> list[str]:
    return [
        f"{table}: {row}"
        for table, found in rows.items()
        for row in found
        if any(mark in str(value) for value in row for mark in marks)
    ]


def of_guild(conn: sqlite3.Connection, guild: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the guild (by its guild or scope column), and Bob's global rows."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for table, rows in dump(conn).items():
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        for key in ("guild_id", "scope_guild_id"):
            if key in columns:
                i = columns.index(key)
                found[table] = sorted(r for r in rows if r[i] == guild)
        if not found.get(table):
            found[table] = sorted(r for r in rows if any(str(BOB) == str(v) or v == MODERN_ID
                                                         for v in r))  # fmt: skip
    return found


async def test_forgetting_leaves_no_row_naming_the_member_and_nothing_brings_it_back(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    discord_api, delivery = await populate(core, clock, steam)
    before = await core.store.engine.read(dump)
    assert len(naming(before, ALICE_MARKS)) > 20  # every kind of row names her first
    for table in ("steam_accounts", "playtime_samples", "sessions", "milestones", "feed_batches",
                  "discord_tokens", "oauth_states", "link_codes", "activity_events"):  # fmt: skip
        assert naming({table: before[table]}, ALICE_MARKS), table
    other = await core.store.engine.read(lambda c: of_guild(c, OTHER_GUILD))
    waiting = await core.store.engine.fetchone(
        "SELECT count(*) FROM feed_batches WHERE status = 'pending' AND payload LIKE '%Alice%'"
        " AND payload LIKE '%Dave%'"
    )
    assert waiting[0] == 1  # a fixed, unsent message holds both members' events
    pending_dave = await core.store.engine.fetchone(
        "SELECT count(*) FROM feed_outbox o JOIN activity_events e ON e.id = o.event_id"
        " WHERE o.status = 'pending' AND e.actor_external_id = ?",
        (DAVE_MC,),
    )

    done = await core.privacy.forget(GUILD, ALICE, by_member=True)

    after = await core.store.engine.read(dump)
    assert naming(after, ALICE_MARKS) == []
    assert done.report.total > 20 and done.report.shared_steam == []
    assert done.discord == "unreachable"  # tokens but no OAuth configured: deleted anyway
    assert await core.store.engine.read(lambda c: of_guild(c, OTHER_GUILD)) == other
    assert naming(after, ("DaveInGame", DAVE_MC))  # the other member of the guild stays
    # Dave's waiting events are batched again and posted; nothing of Alice goes out.
    posted_before = len(discord_api.messages)
    clock.advance(60)
    await FeedPoster(core.store, clock, discord_api).run_once()
    new = [e for _, p, _ in discord_api.messages[posted_before:] for e in p["embeds"]]
    assert len(new) == pending_dave[0] > 0
    assert not any("Alice" in json.dumps(e) for e in new)

    # Nothing brings it back: a retried webhook, the Steam sync, an in-flight library read.
    retried = await core.pipeline.ingest("battlemetrics", GUILD, delivery)
    assert retried.status == "duplicate"
    play(steam, SAPHYEL_ID, GRIM_DAWN, 30)
    clock.advance(3600)
    await core.steam_sync.sync_now()
    from connectors.steam.client import OwnedGame

    late = await core.store.steam.apply_library(
        SAPHYEL_ID,
        [OwnedGame(app_id=GRIM_DAWN, playtime_forever_minutes=9_999, name="Grim Dawn")],
        clock.now(),
        soon=clock.now(),
        later=clock.now(),
        growth=core.steam_sync.growth,
    )
    assert late == 0
    assert naming(await core.store.engine.read(dump), ALICE_MARKS) == []


async def test_steam_data_another_guild_uses_stays(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await populate(core, clock, steam)
    await link(core, OTHER_GUILD, BOB, "steam", SAPHYEL_ID)  # Bob's claim of the same account
    done = await core.privacy.forget(GUILD, ALICE, by_member=True)
    assert done.report.shared_steam == [SAPHYEL_ID]
    rows = await core.store.engine.fetchall(
        "SELECT scope_guild_id, source FROM playtime WHERE player_id = ?", (SAPHYEL_ID,)
    )
    assert {tuple(r) for r in rows} == {(0, "steam")}  # GUILD's BattleMetrics rows went
    assert await core.store.engine.fetchone(
        "SELECT 1 FROM steam_accounts WHERE steam_id = ?", (SAPHYEL_ID,)
    )
    left = await core.store.engine.fetchall(
        "SELECT * FROM account_links WHERE guild_id = ? AND discord_user_id = ?", (GUILD, ALICE)
    )
    assert left == []
    assert (await core.store.engine.fetchone(
        "SELECT count(*) FROM member_playtime WHERE guild_id = ? AND discord_user_id = ?",
        (GUILD, ALICE)))[0] == 0  # fmt: skip


async def test_an_opt_out_outlives_the_data(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await populate(core, clock, steam)
    assert await core.privacy.set_collecting(GUILD, ALICE, False)
    done = await core.privacy.forget(GUILD, ALICE, by_member=True)
    assert done.report.kept_opt_out
    rows = await core.store.engine.read(dump)
    assert naming(rows, ALICE_MARKS) == [
        f"member_privacy: {row}" for row in rows["member_privacy"]
    ]  # only the row that says "do not collect"
    assert not (await core.store.privacy.choice(GUILD, ALICE)).collecting


async def test_an_admin_forget_keeps_a_sign_in_that_serves_another_guild(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await populate(core, clock, steam)
    await link(core, OTHER_GUILD, ALICE, "minecraft", ALICE_MC)  # Alice is in both guilds
    done = await core.privacy.forget(GUILD, ALICE, by_member=False)
    assert done.discord == "kept"
    assert await core.store.tokens.get(ALICE) is not None
    assert (await core.store.privacy.summary(GUILD, ALICE)).links == []
    assert (await core.store.privacy.summary(OTHER_GUILD, ALICE)).links  # untouched there
    # Once she has no other guild, an admin's forget ends the sign-in too.
    await core.privacy.forget(OTHER_GUILD, ALICE, by_member=False)
    assert await core.store.tokens.get(ALICE) is None


async def test_forgetting_is_fast_on_a_guild_with_many_raw_events(
    core: Core, clock: ManualClock
) -> None:
    """The search of raw payloads for the member's ids runs in a read before the write (5,000
    other players' events here); the write transaction stays short."""
    import time

    await link(core, GUILD, ALICE, "minecraft", ALICE_MC)
    now = to_iso(clock.now())

    def many(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO raw_events (guild_id, source, dedupe_hash, payload, received_at)"
            " VALUES (?, 'minecraft', ?, ?, ?)",
            [(GUILD, f"h{n}", json.dumps({"player_uuid": f"p-{n}", "pad": "x" * 200}), now)
             for n in range(5000)],
        )  # fmt: skip

    await core.store.engine.write(many)
    await minecraft_session(core, GUILD, ALICE_MC, "AliceInGame", "2025-03-01T10:00:00Z")
    started = time.perf_counter()
    done = await core.privacy.forget(GUILD, ALICE, by_member=True)
    assert time.perf_counter() - started < 5  # generous: a 2-core CI machine
    assert done.report.removed["raw_events"] == 2
    left = await core.store.engine.fetchone(
        "SELECT count(*) FROM raw_events WHERE payload != ''", ()
    )
    assert left[0] == 5000


async def test_rows_written_between_the_read_and_the_write_go_too(
    core: Core, clock: ManualClock
) -> None:
    """The forget's scans run in a read first; what lands before its write transaction (a
    sample, this week's and month's keys, a session) is removed by the write itself."""
    from bot.storage.playtime import add_playtime
    from bot.storage.privacy import find_member_rows, forget_member

    await link(core, GUILD, ALICE, "minecraft", ALICE_MC)
    await minecraft_session(core, GUILD, ALICE_MC, "AliceInGame", "2025-03-01T10:00:00Z")
    now = clock.now()
    plan = await core.store.engine.read(lambda c: find_member_rows(c, GUILD, ALICE, now))
    assert plan.samples and plan.sessions

    def late(conn: sqlite3.Connection) -> None:  # a session ends meanwhile
        add_playtime(conn, scope=GUILD, source="minecraft", player_id=ALICE_MC,
                     game_id="minecraft", delta=600, at=now, now_text=to_iso(now))  # fmt: skip
        conn.execute(
            "INSERT INTO sessions (guild_id, source, player_id, server_id, game_id, started_at)"
            " VALUES (?, 'minecraft', ?, 's2', 'minecraft', ?)",
            (GUILD, ALICE_MC, to_iso(now)),
        )

    await core.store.engine.write(late)
    await core.store.engine.write(
        lambda c: forget_member(c, GUILD, ALICE, now, drop_tokens=True, plan=plan)
    )
    rows = await core.store.engine.read(dump)
    assert naming(rows, ALICE_MARKS) == []


async def test_links_a_forgotten_admin_made_no_longer_name_them(
    core: Core, clock: ManualClock
) -> None:
    now = clock.now()
    await core.store.engine.write(
        lambda c: link_account(
            c, guild_id=GUILD, discord_user_id=DAVE, source="minecraft", external_id=DAVE_MC,
            now=now, linked_by=f"admin:{ALICE}",
        )
    )  # fmt: skip
    await link(core, GUILD, ALICE, "minecraft", ALICE_MC)
    await core.privacy.forget(GUILD, ALICE, by_member=False)
    rows = await core.store.engine.fetchall("SELECT discord_user_id, linked_by FROM account_links")
    assert [tuple(r) for r in rows] == [(DAVE, "admin")]
