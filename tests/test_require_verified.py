"""/admin settings require_verified: leaderboards, summaries and milestones count only proven
Steam links (by Discord, Steam's OpenID or an admin) while it is on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.gateway.client import Questlog
from bot.services.leaderboards import period_days
from bot.storage.playtime import record_playtime
from connectors.base import PlaytimeGrew
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import ADMIN_ID, answer_text, command_interaction, run_command
from tests.test_stats import ALICE, BOB, CAROL, UTC_TZ, seed

HERE = 900000000000000031
GUILD_CHANNELS = {HERE: None}


async def boards(core: Core, clock: ManualClock) -> tuple[Any, Any, Any]:
    stats = core.store.stats
    now = clock.now()
    return (
        (await stats.leaderboard(GUILD, "393380", None)).rows,
        (await stats.leaderboard(GUILD, "393380", period_days("30d", now, UTC_TZ))).rows,
        (await stats.leaderboard(GUILD, "minecraft", None)).rows,
    )


async def test_only_proven_steam_links_count_while_it_is_on(core: Core, clock: ManualClock) -> None:
    await seed(core, clock)  # Alice and Bob: typed Steam links; Carol: a Minecraft link
    before = await boards(core, clock)
    assert [u for u, _ in before[0]] == [ALICE, BOB]

    changed, unproven = await core.accounts.require_verified(GUILD, True)
    assert (changed, unproven) == (True, 2)
    on = await boards(core, clock)
    assert on[0] == [] and on[1] == []  # neither Steam link is proven
    assert on[2] == before[2]  # Minecraft links are not Steam links: they still count

    # Alice proves hers: her playtime joins the boards at once, Bob's stays out.
    [outcome] = await core.store.links.verify(
        guild_id=GUILD, discord_user_id=ALICE, accounts=[("steam", "76561198000000011", None)],
        verified_by="openid", now=clock.now(),
    )  # fmt: skip
    assert outcome.displaced is None
    proven = await boards(core, clock)
    assert proven[0] == [(ALICE, before[0][0][1])]
    assert [u for u, _ in proven[1]] == [ALICE]

    # Off again: every link counts, with the same totals as before (nothing lost or doubled).
    changed, unproven = await core.accounts.require_verified(GUILD, False)
    assert (changed, unproven) == (True, 1)
    assert await boards(core, clock) == before
    assert (await core.accounts.require_verified(GUILD, False))[0] is False  # already off


async def member_rows(core: Core) -> list[tuple[Any, ...]]:
    """member_playtime as stored (the boards hide rows at 0 or below; this does not)."""
    return await core.store.engine.read(  # type: ignore[attr-defined]
        lambda c: c.execute(
            "SELECT discord_user_id, source, seconds FROM member_playtime WHERE guild_id = ?"
            " AND game_id = '393380' ORDER BY discord_user_id, source",
            (GUILD,),
        ).fetchall()
    )


async def test_new_playtime_of_an_unproven_link_stays_out_of_the_summaries(
    core: Core, clock: ManualClock
) -> None:
    await seed(core, clock)
    before = await member_rows(core)
    await core.accounts.require_verified(GUILD, True)
    assert all(seconds == 0 for _, _, seconds in await member_rows(core))
    now = clock.now() + timedelta(hours=3)  # after the seeded reports

    def grow(c: Any) -> None:
        record_playtime(c, scope=GUILD, source="battlemetrics", player_id="76561198000000022",
                        game_id="393380", seconds=60 * 3600, source_time=now,
                        now_text=to_iso(now))  # fmt: skip

    await core.store.engine.write(grow)  # type: ignore[attr-defined]
    assert all(seconds == 0 for _, _, seconds in await member_rows(core))
    assert (await core.store.stats.leaderboard(GUILD, "393380", None)).rows == []
    # Unlinking and moving an unproven link while it is on leave the summaries at zero, never
    # below (their playtime was not in them).
    await core.accounts.unlink(guild_id=GUILD, discord_user_id=ALICE, source="steam")
    await core.accounts.link(guild_id=GUILD, discord_user_id=CAROL, source="steam",
                             external_id="76561198000000022", reassign=True)  # fmt: skip
    assert all(seconds == 0 for _, _, seconds in await member_rows(core))
    await core.accounts.require_verified(GUILD, False)
    # Off: Bob's account (now Carol's) counts with its 60 h, Alice's is unlinked.
    rows = {(u, src): sec for u, src, sec in await member_rows(core) if sec}
    assert rows == {(CAROL, "battlemetrics"): 60 * 3600}
    assert before  # (the seed had summaries to start from)


async def test_a_steam_milestone_of_an_unproven_link_is_not_announced(
    core: Core, clock: ManualClock
) -> None:
    from bot.storage.steam_state import _observe

    await seed(core, clock)
    observer = core.steam_sync.observer if hasattr(core.steam_sync, "observer") else None
    assert observer is not None
    raw = {"type": "played", "steam_id": "76561198000000011", "app_id": 393380,
           "game_name": "Squad", "today": 3600, "total": 11 * 3600, "day": "2025-03-03",
           "at": to_iso(clock.now())}  # fmt: skip
    grew = PlaytimeGrew("76561198000000011", "393380", 9 * 3600, 11 * 3600, clock.now())

    await core.accounts.require_verified(GUILD, True)
    stored = await core.store.engine.write(  # type: ignore[attr-defined]
        lambda c: _observe(c, observer, raw, to_iso(clock.now()), [grew])
    )
    assert stored == 0  # the guild requires proof: Alice's typed link does not count
    await core.accounts.require_verified(GUILD, False)
    stored = await core.store.engine.write(  # type: ignore[attr-defined]
        lambda c: _observe(c, observer, {**raw, "today": 7200}, to_iso(clock.now()), [grew])
    )
    assert stored >= 1  # counted again: the day's line and the 10 h milestone


async def test_admin_settings_says_how_many_links_stop_counting(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)

    async def settings(locale: str = "en-US", **options: Any) -> str:
        opts = [{"name": k, "type": 5, "value": v} for k, v in options.items()]
        interaction = command_interaction(
            bot, guild_id=GUILD, channel_id=HERE, group="admin", command="settings",
            options=opts, user_id=ADMIN_ID, locale=locale,
        )  # fmt: skip
        await run_command(bot, interaction)
        return answer_text(discord_api, interaction)

    assert "Require verified Steam links: **off** (2 Steam links are not verified)" in (
        await settings()
    )
    assert "2 unverified Steam links stop counting" in await settings(require_verified=True)
    assert "already **on**" in await settings(require_verified=True)
    ru = await settings("ru", require_verified=False)
    assert "2 неподтверждённые привязки Steam вернулись" in ru
