"""/privacy show: what Questlog stores about the member who asks, in this server."""

from __future__ import annotations

from typing import Any

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
    assert "· Steam app 393380: 10 h" in text  # each game under its source
    assert "playtime samples: 1" in text  # first reports are baselines: one increase (BM +1 h)
    assert "not connected (no tokens stored)" in text
    await core.store.tokens.save(
        StoredTokens(ALICE, "sealed", "sealed", "identify", clock.now()), clock.now()
    )
    ru = await show(bot, discord_api, ALICE, "ru")
    assert "Вход через Discord: подключён" in ru and "sealed" not in ru
    assert "Игровое время из Steam: 10 ч в 1 игре" in ru
    assert "Collecting: on" in text
    await core.privacy.set_collecting(GUILD, ALICE, False)
    assert "Collecting: **off**" in await show(bot, discord_api, ALICE)
    assert "Сбор данных: **выключен**" in await show(bot, discord_api, ALICE, "ru")
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


async def test_privacy_export_is_a_gzip_json_of_everything_and_no_token(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    import gzip
    import json

    await seed(core, clock)
    await core.store.tokens.save(
        StoredTokens(ALICE, "SEALED-ACCESS", "SEALED-REFRESH", "identify", clock.now()),
        clock.now(),
    )
    interaction = command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group="privacy", command="export", options=[],
        user_id=ALICE,
    )  # fmt: skip
    await run_command(bot, interaction)
    assert "everything Questlog stores about you" in answer_text(discord_api, interaction)
    [(name, blob)] = discord_api.uploads
    assert name == f"questlog-{GUILD}-{ALICE}.json.gz"
    raw = gzip.decompress(blob).decode()
    assert "SEALED" not in raw  # the tokens never leave, not even sealed
    data = json.loads(raw)
    assert [link["external_id"] for link in data["links"]] == [A_STEAM]
    by_source = {a["source"]: a for a in data["accounts"]}
    assert set(by_source) == {"steam", "battlemetrics"}
    assert by_source["steam"]["playtime"][0]["seconds"] == 36000
    assert len(by_source["battlemetrics"]["samples"]) == 1
    assert data["discord_sign_in"]["connected"] is True
    assert {"game_id": "393380", "source": "steam", "seconds": 36000, "away_seconds": 0} in data[
        "playtime_per_game_and_source"
    ]


async def test_an_export_too_large_for_discord_is_capped_with_a_note(
    core: Core, clock: ManualClock
) -> None:
    import gzip
    import json
    from datetime import timedelta

    from bot.clock import to_iso
    from bot.storage.playtime import record_playtime

    await seed(core, clock)
    start = clock.now()

    def grow(c: Any) -> None:  # 2,000 BattleMetrics reports: 2,000 samples
        for n in range(1, 2001):
            at = start + timedelta(hours=2, minutes=n)
            record_playtime(c, scope=GUILD, source="battlemetrics", player_id=A_STEAM,
                            game_id="393380", seconds=4 * 3600 + 60 * n, source_time=at,
                            now_text=to_iso(at))  # fmt: skip

    await core.store.engine.write(grow)  # type: ignore[attr-defined]
    whole, capped = await core.privacy.export(GUILD, ALICE)
    assert not capped
    small, capped = await core.privacy.export(GUILD, ALICE, limit=len(whole) - 1)
    assert capped and len(small) < len(whole)
    data = json.loads(gzip.decompress(small))
    assert "samples left out" in data["note"]
    assert sum(a.get("samples_left_out", 0) for a in data["accounts"]) == 2001
    assert all(a["days"] for a in data["accounts"] if a["source"] == "battlemetrics")
    tiny, capped = await core.privacy.export(GUILD, ALICE, limit=100)
    assert capped and "only links and totals" in json.loads(gzip.decompress(tiny))["note"]
