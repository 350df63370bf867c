"""/privacy show: what Questlog stores about the member who asks, in this server."""

from __future__ import annotations

from bot.clock import ManualClock
from bot.core import Core
from bot.gateway.client import Questlog
from bot.storage.privacy import MEMBER_TABLES
from bot.storage.records import StoredTokens
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import answer_text, command_interaction, run_command
from tests.test_stats import A_STEAM, ALICE, seed

HERE = 900000000000000031
GUILD_CHANNELS = {HERE: None}


async def show(bot: Questlog, fake: FakeDiscord, user: int, locale: str = "en-US") -> str:
    interaction = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group="privacy", command="show", options=[],
        user_id=user, locale=locale,
    )  # fmt: skip
    await run_command(bot, interaction)
    return answer_text(fake, interaction)


async def test_privacy_show_lists_links_playtime_counts_and_tokens(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    text = await show(bot, discord_api, ALICE)
    assert f"**Steam** `{A_STEAM}` · not verified" in text
    assert "Playtime from Steam: 10 h in 1 game" in text
    assert "Playtime from BattleMetrics: 4 h in 1 game" in text
    assert "playtime samples: 1" in text  # first reports are baselines: one increase (BM +1 h)
    assert "not connected (no tokens stored)" in text
    await core.store.tokens.save(
        StoredTokens(ALICE, "sealed", "sealed", "identify", clock.now()), clock.now()
    )
    ru = await show(bot, discord_api, ALICE, "ru")
    assert "Вход через Discord: подключён" in ru and "sealed" not in ru
    assert "Игровое время из Steam: 10 ч в 1 игре" in ru
    nobody = await show(bot, discord_api, 4000000000000000099)
    assert "Linked accounts: none" in nobody and "Playtime: none stored" in nobody


def test_every_table_with_member_data_is_listed() -> None:
    """A new table with a member's id or a player's id must join the privacy list (issue 16's
    export and delete walk it)."""
    import sqlite3

    from bot.storage.engine import apply_migrations

    conn = sqlite3.connect(":memory:")
    apply_migrations(conn)
    holding = set()
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({name})")}
        if columns & {"discord_user_id", "actor_user_id", "player_id"}:
            holding.add(name)
    assert holding <= set(MEMBER_TABLES)
