"""Replies in the member's language: /playtime show, /leaderboard, /links and /feed status with
locale ru answer in Russian through the fake Discord, with en-US in English; a locale Questlog
does not speak falls back to the server's, then to English."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.gateway.client import Questlog, UserError
from bot.storage.links import link_account
from bot.storage.playtime import record_playtime
from cogs import _strings as strings
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import answer_text, answers, command_interaction, run_command
from tests.test_cog_playtime import ALICE, seed

HERE = 900000000000000051
GUILD_CHANNELS = {HERE: None}


def asked(
    bot: Questlog,
    group: str | None,
    command: str,
    options: list[dict[str, Any]] | None = None,
    *,
    locale: str,
    guild_locale: str = "en-US",
    user: int = ALICE,
) -> discord.Interaction:
    return command_interaction(
        bot, guild_id=GUILD, channel_id=HERE, group=group, command=command, options=options,
        user_id=user, locale=locale, guild_locale=guild_locale,
    )  # fmt: skip


async def embed_of(
    bot: Questlog, discord_api: FakeDiscord, interaction: discord.Interaction
) -> Any:
    await run_command(bot, interaction)
    data = answers(discord_api, interaction)[-1]["data"]
    return data["embeds"][0] if data.get("embeds") else data["content"]


async def test_playtime_show_in_russian_and_english(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    ru = await embed_of(bot, discord_api, asked(bot, "playtime", "show", locale="ru"))
    assert ru["title"].startswith("Игровое время: ")
    assert "**Приложение Steam 393380** · Steam: 12 ч 30 мин" in ru["description"]
    assert "**Minecraft** · сервер Minecraft: 6 ч" in ru["description"]
    en = await embed_of(bot, discord_api, asked(bot, "playtime", "show", locale="en-US"))
    assert en["title"].startswith("Playtime of ")
    assert "**Steam app 393380** · Steam: 12 h 30 min" in en["description"]
    nobody = asked(bot, "playtime", "show", locale="ru", user=4000000000000000099)
    await run_command(bot, nobody)
    assert answer_text(discord_api, nobody).startswith("У вас здесь пока нет игрового времени.")


async def test_leaderboard_in_russian_with_plurals_and_separators(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock, players=24)

    def op(c: Any) -> None:  # a member with more than a thousand hours
        link_account(c, guild_id=GUILD, discord_user_id=4100000000000000001, source="steam",
                     external_id="76561198999999999", now=clock.now())  # fmt: skip
        record_playtime(c, scope=0, source="steam", player_id="76561198999999999",
                        game_id="393380", seconds=1_234 * 3600, source_time=clock.now(),
                        now_text=to_iso(clock.now()))  # fmt: skip

    await core.store.engine.write(op)
    game = [{"name": "game", "type": 3, "value": "393380"}]
    ru = await embed_of(bot, discord_api, asked(bot, None, "leaderboard", game, locale="ru"))
    assert ru["title"] == "Приложение Steam 393380 · всё время"
    first, second = ru["description"].splitlines()[:2]
    assert first == "**1.** <@4100000000000000001> · 1\N{NO-BREAK SPACE}234 ч"
    assert second == f"**2.** <@{ALICE}> · 12 ч 30 мин"
    assert ru["footer"]["text"] == "Страница 1 из 3"
    today = [*game, {"name": "period", "type": 3, "value": "today"}]
    empty = asked(bot, None, "leaderboard", today, locale="ru")
    await run_command(bot, empty)
    assert answer_text(discord_api, empty).strip() == (
        "Ни у кого пока нет времени в Приложение Steam 393380 за период «сегодня»."
    )
    en = await embed_of(bot, discord_api, asked(bot, None, "leaderboard", game, locale="en-GB"))
    assert en["title"] == "Steam app 393380 · all time" and en["footer"]["text"] == "Page 1 of 3"
    assert en["description"].splitlines()[0].endswith("· 1,234 h")


async def test_links_in_russian_and_english(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    await core.store.engine.write(
        lambda c: c.execute(
            "UPDATE account_links SET verified = 1, verified_by = 'discord' WHERE source = 'steam'"
        )
    )
    ru = asked(bot, None, "links", locale="ru")
    await run_command(bot, ru)
    text = answer_text(discord_api, ru)
    assert "**Steam:** `76561198000000011` ✅ подтверждён через Discord" in text
    en = asked(bot, None, "links", locale="en-US")
    await run_command(bot, en)
    assert "✅ verified with Discord" in answer_text(discord_api, en)
    nobody = asked(bot, None, "links", locale="ru", user=4000000000000000099)
    await run_command(bot, nobody)
    assert answer_text(discord_api, nobody) == "У вас нет привязанных аккаунтов на этом сервере."


async def test_feed_status_in_russian_and_english(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    unset = asked(bot, "feed", "status", locale="ru")
    await run_command(bot, unset)
    assert answer_text(discord_api, unset) == (
        "Канал ленты ещё не выбран. Выберите его командой `/feed channel`."
    )
    await core.store.feed.set_channel(GUILD, HERE, to_iso(clock.now()))
    ru = asked(bot, "feed", "status", locale="ru")
    await run_command(bot, ru)
    assert answer_text(discord_api, ru).splitlines()[:2] == [
        f"**Канал:** <#{HERE}>",
        "**Ждут публикации:** 0",
    ]
    en = asked(bot, "feed", "status", locale="en-US")
    await run_command(bot, en)
    assert answer_text(discord_api, en).splitlines()[1] == "**Waiting to post:** 0"


@pytest.mark.parametrize(
    ("locale", "guild_locale", "expected"),
    [
        ("ru", "en-US", "Эта команда"),  # the member's language first
        ("de", "ru", "Эта команда"),  # a language Questlog lacks: the server's
        ("en-GB", "ru", "This command"),
        ("pt-BR", "fr", "This command"),  # neither: English
    ],
)
async def test_the_language_is_the_members_then_the_servers(
    bot: Questlog, discord_api: FakeDiscord, locale: str, guild_locale: str, expected: str
) -> None:
    interaction = asked(bot, "playtime", "show", locale=locale, guild_locale=guild_locale)
    command = bot.tree.get_command("playtime")
    error = discord.app_commands.CommandInvokeError(command, UserError(strings.GUILD_ONLY))  # type: ignore[arg-type]
    await bot.tree.on_error(interaction, error)
    assert answer_text(discord_api, interaction).startswith(expected)


async def test_feed_language_is_chosen_with_a_command(
    bot: Questlog, core: Core, discord_api: FakeDiscord
) -> None:
    def choose(value: str, locale: str, guild_locale: str = "en-US") -> discord.Interaction:
        option = [{"name": "language", "type": 3, "value": value}]
        return asked(bot, "feed", "language", option, locale=locale, guild_locale=guild_locale)

    russian = choose("ru", "en-US")
    await run_command(bot, russian)
    assert answer_text(discord_api, russian) == (
        "Feed posts are now written in Russian, queued ones included."
    )
    assert await core.feed_admin.language(GUILD) == ("ru", "ru")
    automatic = choose("auto", "ru", guild_locale="ru")  # the server's language is Russian
    await run_command(bot, automatic)
    assert answer_text(discord_api, automatic).startswith(
        "Посты ленты теперь следуют основному языку сервера"
    )
    assert answer_text(discord_api, automatic).endswith("сейчас это русский.")
    assert await core.feed_admin.language(GUILD) == (None, "ru")
    status = asked(bot, "feed", "status", locale="en-US")
    await core.store.feed.set_channel(GUILD, HERE, "2025-03-01T00:00:00.000000Z")
    await run_command(bot, status)
    assert answer_text(discord_api, status).endswith("**Language:** Russian")
