"""/privacy off stops every source for the member in the guild (the Steam sync, webhook events
about their accounts, what is credited to them) and keeps what is stored; /privacy on resumes
without filling in what was missed (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.clock import ManualClock
from bot.core import Core
from tests.conftest import GUILD, OTHER_GUILD, steam_config_data
from tests.fakes.steam import SAPHYEL_ID, FakeSteam
from tests.test_ingest import bm_raw, mc_raw
from tests.test_privacy_delete import ALICE, ALICE_MC, BOB, GRIM_DAWN, link, play

GAME = str(GRIM_DAWN)


@pytest.fixture
def config_data(tmp_path: Any, steam: FakeSteam) -> dict[str, Any]:
    return steam_config_data(tmp_path, steam)


async def credited(core: Core, guild: int, user: int, source: str = "steam") -> int:
    row = await core.store.engine.fetchone(
        "SELECT coalesce(sum(seconds), 0) FROM member_playtime WHERE guild_id = ?"
        " AND discord_user_id = ? AND source = ?",
        (guild, user, source),
    )
    return int(row[0])


async def count(core: Core, sql: str, *params: Any) -> int:
    return int((await core.store.engine.fetchone(sql, params))[0])


async def test_off_stops_the_steam_sync_and_on_resumes_without_filling_in(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, GUILD, ALICE, "steam", SAPHYEL_ID)
    await core.steam_sync.sync_now()
    baseline = await credited(core, GUILD, ALICE)
    assert baseline > 0
    assert await core.privacy.set_collecting(GUILD, ALICE, False)
    assert not await core.privacy.set_collecting(GUILD, ALICE, False)  # already off
    play(steam, SAPHYEL_ID, GRIM_DAWN, 120)
    clock.advance(3600)
    reads = steam.calls["GetOwnedGames"]
    await core.steam_sync.sync_now()
    assert steam.calls["GetOwnedGames"] == reads  # her account is not read at all
    assert await credited(core, GUILD, ALICE) == baseline  # what is stored stays
    assert (
        await count(core, "SELECT count(*) FROM steam_accounts WHERE steam_id = ?", SAPHYEL_ID) == 0
    )
    assert (await core.privacy.stored_about(GUILD, ALICE)).summary.links  # the link stays

    assert await core.privacy.set_collecting(GUILD, ALICE, True)
    clock.advance(60)
    await core.steam_sync.sync_now()
    assert steam.calls["GetOwnedGames"] == reads + 1
    # Steam's lifetime total is read again (all time is right), but the two hours played while
    # collection was off land in no day, week or month.
    assert await credited(core, GUILD, ALICE) == baseline + 120 * 60
    assert await count(core, "SELECT count(*) FROM playtime_samples") == 0
    play(steam, SAPHYEL_ID, GRIM_DAWN, 30)
    clock.advance(3600)
    await core.steam_sync.sync_now()
    assert await count(core, "SELECT sum(delta_seconds) FROM playtime_samples") == 30 * 60


async def test_a_shared_steam_account_is_synced_for_the_other_guild_only(
    core: Core, clock: ManualClock, steam: FakeSteam
) -> None:
    await link(core, GUILD, ALICE, "steam", SAPHYEL_ID)
    await link(core, OTHER_GUILD, BOB, "steam", SAPHYEL_ID)
    await core.steam_sync.sync_now()
    await core.privacy.set_collecting(GUILD, ALICE, False)
    mine, bobs = await credited(core, GUILD, ALICE), await credited(core, OTHER_GUILD, BOB)
    play(steam, SAPHYEL_ID, GRIM_DAWN, 60)
    clock.advance(3600)
    await core.steam_sync.sync_now()
    assert await credited(core, OTHER_GUILD, BOB) == bobs + 3600
    assert await credited(core, GUILD, ALICE) == mine  # nothing new credited to her
    events = await core.store.engine.fetchall("SELECT DISTINCT guild_id FROM activity_events")
    assert [r[0] for r in events] == [OTHER_GUILD]  # no feed line about her in GUILD


async def test_off_withholds_webhook_events_about_her_accounts(core: Core) -> None:
    await link(core, GUILD, ALICE, "steam", SAPHYEL_ID)
    await link(core, GUILD, ALICE, "minecraft", ALICE_MC)
    await core.pipeline.ingest("battlemetrics", GUILD, bm_raw(core, 3600, steam_id=SAPHYEL_ID))
    before = await count(core, "SELECT count(*) FROM playtime")
    await core.privacy.set_collecting(GUILD, ALICE, False)

    delivery = bm_raw(core, 7200, 5, "b" * 64, steam_id=SAPHYEL_ID)
    result = await core.pipeline.ingest("battlemetrics", GUILD, dict(delivery))
    assert result.status == "accepted" and result.details == {"withheld": True}
    assert (await core.pipeline.ingest("battlemetrics", GUILD, dict(delivery))).status == (
        "duplicate"
    )  # the dedupe hash is kept: a retry changes nothing either
    joined = mc_raw(core, type="session.started", player_uuid=ALICE_MC, player_name="AliceInGame",
                    server_id="s1", at="2025-03-01T12:00:00Z")  # fmt: skip
    await core.pipeline.ingest("minecraft", GUILD, joined)
    assert await count(core, "SELECT count(*) FROM playtime") == before
    assert await count(core, "SELECT count(*) FROM sessions") == 0
    assert await count(core, "SELECT count(*) FROM activity_events") == 0
    blank = await core.store.engine.fetchall("SELECT payload FROM raw_events ORDER BY id")
    assert [r[0] for r in blank][1:] == ["", ""]  # nothing about her kept in the raw events
    metrics = await core.metrics.render()
    assert 'questlog_ingest_total{result="withheld",source="battlemetrics"} 1' in metrics
    # Another guild's events about the same account are that guild's: not withheld.
    other = await core.pipeline.ingest(
        "battlemetrics", OTHER_GUILD, bm_raw(core, 3600, 9, "c" * 64, steam_id=SAPHYEL_ID)
    )
    assert other.details.get("withheld") is None
    # Back on: her events are kept again.
    await core.privacy.set_collecting(GUILD, ALICE, True)
    await core.pipeline.ingest("minecraft", GUILD, joined | {"at": "2025-03-01T13:00:00Z"})
    assert await count(core, "SELECT count(*) FROM sessions") == 1


async def test_an_unproven_claim_cannot_silence_another_player_where_proof_is_required(
    core: Core,
) -> None:
    await link(core, GUILD, ALICE, "steam", SAPHYEL_ID)  # typed, not proven
    await core.accounts.require_verified(GUILD, True)
    await core.privacy.set_collecting(GUILD, ALICE, False)
    result = await core.pipeline.ingest(
        "battlemetrics", GUILD, bm_raw(core, 3600, steam_id=SAPHYEL_ID)
    )
    assert result.details.get("withheld") is None  # the server's data about that player stays


def test_upgrading_adds_privacy_choices_with_defaults() -> None:
    import sqlite3

    from bot.storage.engine import apply_migrations

    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_migrations(conn, up_to=23)
    conn.execute(
        "INSERT INTO guilds (guild_id, created_at, updated_at) VALUES (1, '2025-01-01', '2025-01-01')"
    )
    assert apply_migrations(conn, up_to=24) == [24]
    assert conn.execute("SELECT presence_default FROM guilds").fetchall() == [(0,)]
    assert conn.execute("SELECT count(*) FROM member_privacy").fetchone() == (0,)


async def test_privacy_show_says_whether_collecting_is_on(core: Core) -> None:
    await core.privacy.set_collecting(GUILD, ALICE, False)
    about = await core.privacy.stored_about(GUILD, ALICE)
    assert not about.choice.collecting and about.choice.presence is None
    assert about.presence_default is False
    await core.privacy.set_collecting(GUILD, ALICE, True)
    rows = await core.store.engine.fetchone("SELECT count(*) FROM member_privacy")
    assert rows[0] == 0  # back at the defaults: no row kept


async def test_a_get_playtime_lookup_keeps_nothing_about_an_opted_out_account(
    core: Core, clock: ManualClock
) -> None:
    await link(core, GUILD, ALICE, "steam", SAPHYEL_ID)
    await core.privacy.set_collecting(GUILD, ALICE, False)
    kept = await core.store.steam.record_lookup(
        SAPHYEL_ID, GRIM_DAWN, seconds=3600, status="ok", name="Grim Dawn", now=clock.now()
    )
    assert kept == 0
    assert await count(core, "SELECT count(*) FROM playtime WHERE player_id = ?", SAPHYEL_ID) == 0
    await link(core, OTHER_GUILD, BOB, "steam", SAPHYEL_ID)  # someone who collects links it
    await core.store.steam.record_lookup(
        SAPHYEL_ID, GRIM_DAWN, seconds=3600, status="ok", name="Grim Dawn", now=clock.now()
    )
    assert await count(core, "SELECT count(*) FROM playtime WHERE player_id = ?", SAPHYEL_ID) == 1
