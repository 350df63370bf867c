"""/playtime show|chart and /leaderboard with real interactions against the fake Discord."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import discord

from bot.clock import ManualClock, to_iso
from bot.core import Core
from bot.gateway.client import Questlog
from bot.i18n import texts
from bot.services.leaderboards import Board
from bot.storage.links import link_account
from bot.storage.playtime import add_playtime, record_playtime
from cogs._names import MemberNames
from cogs.playtime import LeaderboardView, Shown, board_embed
from tests.conftest import GUILD
from tests.fakes.discord import FakeDiscord
from tests.fakes.interactions import (
    answer_text,
    answers,
    command_interaction,
    member_option,
    run_command,
)

HERE = 900000000000000041
ALICE = 4000000000000000011
A_STEAM = "76561198000000011"
C_MC = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


GUILD_CHANNELS = {HERE: None}


async def seed(core: Core, clock: ManualClock, players: int = 0) -> None:
    start = datetime(2025, 3, 12, 18, tzinfo=UTC)
    clock.set(start)

    def op(c):
        now = to_iso(start)
        link_account(
            c, guild_id=GUILD, discord_user_id=ALICE, source="steam", external_id=A_STEAM, now=start
        )
        link_account(
            c,
            guild_id=GUILD,
            discord_user_id=ALICE,
            source="minecraft",
            external_id=C_MC,
            now=start,
        )
        record_playtime(
            c,
            scope=0,
            source="steam",
            player_id=A_STEAM,
            game_id="393380",
            seconds=45000,
            source_time=start,
            now_text=now,
        )
        for day, hours in ((1, 2), (2, 3), (5, 1)):
            add_playtime(
                c,
                scope=GUILD,
                source="minecraft",
                player_id=C_MC,
                game_id="minecraft",
                delta=hours * 3600,
                at=start - timedelta(days=day),
                now_text=now,
            )
        for n in range(players):
            sid = f"7656119{8100000000 + n:010d}"
            link_account(
                c,
                guild_id=GUILD,
                discord_user_id=5000000000000000000 + n,
                source="steam",
                external_id=sid,
                now=start,
            )
            record_playtime(
                c,
                scope=0,
                source="steam",
                player_id=sid,
                game_id="393380",
                seconds=(n + 1) * 600,
                source_time=start,
                now_text=now,
            )

    await core.store.engine.write(op)


def interaction(
    bot: Questlog,
    group: str | None,
    command: str,
    options: list[dict] | None = None,
    resolved: dict | None = None,
    user: int = ALICE,
) -> discord.Interaction:
    return command_interaction(
        bot,
        guild_id=GUILD,
        channel_id=HERE,
        group=group,
        command=command,
        options=options,
        resolved=resolved,
        user_id=user,
    )


async def test_show_lists_games_and_sources(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    show = interaction(bot, "playtime", "show")
    await run_command(bot, show)
    [embed] = answers(discord_api, show)[0]["data"]["embeds"]
    assert "**Steam app 393380** · Steam: 12 h 30 min" in embed["description"]
    assert "**Minecraft** · Minecraft server: 6 h" in embed["description"]
    assert "private" not in embed["description"]
    option, resolved = member_option("member", 4000000000000000077, GUILD)
    nobody = interaction(bot, "playtime", "show", [option], resolved)
    await run_command(bot, nobody)
    assert "no playtime" in answer_text(discord_api, nobody)
    # The sync found the Steam account's game details private: /playtime says how to fix it.
    await core.store.engine.write(
        lambda c: c.execute(
            "UPDATE account_links SET status = 'private_profile' WHERE source = 'steam'"
        )
    )
    again = interaction(bot, "playtime", "show")
    await run_command(bot, again)
    [embed] = answers(discord_api, again)[0]["data"]["embeds"]
    assert "Game details: Public" in embed["description"]


async def test_afk_time_shows_as_the_total_beside_the_active_time(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)  # Minecraft: 6 h active
    start = clock.now()

    def afk(c: Any) -> None:
        add_playtime(
            c, scope=GUILD, source="minecraft", player_id=C_MC, game_id="minecraft",
            delta=0, away=2 * 3600, at=start - timedelta(days=1), now_text=to_iso(start),
        )  # fmt: skip
        record_playtime(
            c, scope=GUILD, source="battlemetrics", player_id=A_STEAM, game_id="393380",
            seconds=3600, source_time=start, now_text=to_iso(start),
        )  # fmt: skip

    await core.store.engine.write(afk)
    show = interaction(bot, "playtime", "show")
    await run_command(bot, show)
    [embed] = answers(discord_api, show)[0]["data"]["embeds"]
    assert "**Minecraft** · Minecraft server: 6 h (total 8 h)" in embed["description"]
    assert "**Steam app 393380** · Steam: 12 h 30 min\n" in embed["description"] + "\n"
    assert embed["footer"]["text"] == (
        "Active time; in brackets, the total with AFK and idle time."
        " BattleMetrics reports totals on its servers, AFK time included."
    )
    for period in ("all", "7d"):
        asked = interaction(
            bot, None, "leaderboard",
            [{"name": "game", "type": 3, "value": "minecraft"},
             {"name": "period", "type": 3, "value": period}],
        )  # fmt: skip
        await run_command(bot, asked)
        [embed] = answers(discord_api, asked)[-1]["data"]["embeds"]
        assert embed["description"] == f"**1.** <@{ALICE}> · 6 h (total 8 h)"
        assert embed["footer"]["text"].endswith("the total with AFK and idle time.")
    squad = interaction(bot, None, "leaderboard", [{"name": "game", "type": 3, "value": "393380"}])
    await run_command(bot, squad)
    [embed] = answers(discord_api, squad)[-1]["data"]["embeds"]
    assert embed["description"] == f"**1.** <@{ALICE}> · 12 h 30 min"  # no AFK: one figure
    assert embed["footer"]["text"] == "Page 1 of 1"


async def test_leaderboard_pages(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock, players=24)
    board = interaction(bot, None, "leaderboard", [{"name": "game", "type": 3, "value": "393380"}])
    await run_command(bot, board)
    deferred, followup = answers(discord_api, board)
    assert (deferred["kind"], deferred["type"]) == ("callback", 5)  # acknowledged first
    data = followup["data"]
    first = data["embeds"][0]
    assert first["description"].splitlines()[0] == f"**1.** <@{ALICE}> · 12 h 30 min"
    assert first["footer"]["text"] == "Page 1 of 3"
    assert data["components"]  # the paging buttons
    assert data["allowed_mentions"] == {"parse": []}
    empty = interaction(
        bot,
        None,
        "leaderboard",
        [
            {"name": "game", "type": 3, "value": "393380"},
            {"name": "period", "type": 3, "value": "today"},
        ],
    )
    await run_command(bot, empty)
    assert "Nobody has playtime" in answer_text(discord_api, empty)


async def test_leaderboard_rolling_windows_and_calendar_periods(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)  # Minecraft: 1 h 5 days ago, 3 h 2 days ago, 2 h yesterday

    async def board(period: str) -> str:
        asked = interaction(
            bot,
            None,
            "leaderboard",
            [
                {"name": "game", "type": 3, "value": "minecraft"},
                {"name": "period", "type": 3, "value": period},
            ],
        )
        await run_command(bot, asked)
        data = answers(discord_api, asked)[-1]["data"]
        if not data.get("embeds"):
            return data["content"]
        [embed] = data["embeds"]
        return embed["title"] + " | " + embed["description"]

    assert await board("today") == "Nobody has playtime in Minecraft for today yet."
    assert await board("7d") == f"Minecraft · the last 7 days | **1.** <@{ALICE}> · 6 h"
    # 12 March 2025 is a Wednesday: the calendar week began on Monday the 10th.
    assert await board("week") == (
        f"Minecraft · this calendar week (from Monday) | **1.** <@{ALICE}> · 5 h"
    )
    assert await board("30d") == f"Minecraft · the last 30 days | **1.** <@{ALICE}> · 6 h"
    assert await board("month") == f"Minecraft · this calendar month | **1.** <@{ALICE}> · 6 h"
    clock.set(clock.now() + timedelta(days=4))  # 16 March: the session of the 7th is 9 days old
    assert await board("7d") == f"Minecraft · the last 7 days | **1.** <@{ALICE}> · 5 h"


async def test_leaderboard_image_names_the_members(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from PIL import Image

    await seed(core, clock, players=12)
    discord_api.add_member(GUILD, ALICE, "alice", nick="Alice 🔥")
    for n in range(1, 12):  # everyone on the first page but one, who left the server
        if n != 3:
            discord_api.add_member(
                GUILD, 5000000000000000000 + n, f"p{n}", global_name=f"Player {n}"
            )
    asked = interaction(
        bot,
        None,
        "leaderboard",
        [
            {"name": "game", "type": 3, "value": "393380"},
            {"name": "image", "type": 5, "value": True},
        ],
    )
    await run_command(bot, asked)
    [(name, png)] = discord_api.uploads
    assert name == "leaderboard.png"
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    assert picture.width == 800 and max(picture.getpixel((2, 2))) < 60  # the dark card
    data = answers(discord_api, asked)[-1]["data"]
    [embed] = data["embeds"]
    assert embed["image"]["url"] == "attachment://leaderboard.png"
    assert "description" not in embed and embed["footer"]["text"] == "Page 1 of 2"
    [attachment] = data["attachments"]
    lines = attachment["description"].splitlines()
    assert lines[0] == "1. Alice 🔥: 12 h 30 min"  # the nickname, and the same text as the picture
    assert lines[1] == "2. Player 11: 2 h"
    assert lines[9] == "10. (left the server): 40 min"  # Player 3 is gone
    assert len(lines) == 10 and data["components"]  # one page, with the paging buttons
    asked_names = [r for r in discord_api.requests if "/members/" in r.path]
    assert len(asked_names) == 10


async def test_member_names_are_kept_and_late_ones_are_placeholders(
    bot: Questlog, discord_api: FakeDiscord
) -> None:
    discord_api.add_member(GUILD, ALICE, "alice", global_name="Alice")
    names = MemberNames(bot.http, budget=0.3)
    assert await names.names(GUILD, [ALICE, 77], texts("en")) == {
        ALICE: "Alice",
        77: "(left the server)",
    }
    before = len(discord_api.requests)
    assert await names.names(GUILD, [ALICE, 77], texts("en")) == {
        ALICE: "Alice",
        77: "(left the server)",
    }
    assert len(discord_api.requests) == before  # both kept
    discord_api.add_member(GUILD, 4000000000000000012, "bob")
    discord_api.member_delay = 1.0  # Discord too slow for the budget
    assert await names.names(GUILD, [4000000000000000012], texts("en")) == {
        4000000000000000012: "member …0012"
    }
    discord_api.member_delay = 0
    assert await names.names(GUILD, [4000000000000000012], texts("en")) == {
        4000000000000000012: "bob"
    }


async def test_leaderboard_view_reads_each_page_when_asked(core: Core, clock: ManualClock) -> None:
    await seed(core, clock, players=24)
    asked = clock.now()
    fetched: list[int] = []

    async def fetch(page: int) -> Board:
        fetched.append(page)
        return await core.stats.leaderboard(GUILD, "393380", "all", asked, page)

    async def present(board: Board) -> Shown:
        return Shown(board_embed(texts("en"), board, "all"))

    view = LeaderboardView(owner_id=1, fetch=fetch, board=await fetch(0), present=present)
    assert view.previous.disabled and not view.next.disabled
    clicked = mock.AsyncMock(spec=discord.Interaction)
    clicked.response = mock.AsyncMock(spec=discord.InteractionResponse)
    await view.next.callback(clicked)
    await view.next.callback(clicked)
    assert fetched == [0, 1, 2]  # one page read per click, none up front
    assert view.index == 2 and view.next.disabled and not view.previous.disabled
    assert clicked.response.defer.await_count == 2  # each click acknowledged before reading
    shown: Any = clicked.edit_original_response.call_args.kwargs["embed"]
    assert shown.description.splitlines()[0].startswith("**21.** ")
    assert shown.footer.text == "Page 3 of 3"
    await view.previous.callback(clicked)
    assert view.index == 1
    stranger = mock.Mock(spec=discord.Interaction)
    stranger.user = mock.Mock(id=2)
    assert not await view.interaction_check(stranger)

    async def picture(board: Board) -> Shown:  # an image board: each page a new picture
        file = discord.File(io.BytesIO(b"png"), filename=f"page{board.page}.png")
        return Shown(board_embed(texts("en"), board, "all", image=True), file)

    drawn = LeaderboardView(owner_id=1, fetch=fetch, board=await fetch(0), present=picture)
    await drawn.next.callback(clicked)
    [replaced] = clicked.edit_original_response.call_args.kwargs["attachments"]
    assert replaced.filename == "page1.png"


async def test_chart_is_a_png_of_the_samples(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    chart = interaction(bot, "playtime", "chart", [{"name": "period", "type": 3, "value": "30d"}])
    await run_command(bot, chart)
    kinds = [(a["kind"], a["type"]) for a in answers(discord_api, chart)]
    assert kinds == [("callback", 5), ("followup", None)]  # deferred first, then the file
    [(name, png)] = discord_api.uploads
    assert name == "playtime.png" and png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (800, 360)


async def test_chart_data_matches_the_samples(core: Core, clock: ManualClock) -> None:
    await seed(core, clock)
    days, _ = await core.stats.daily_games(GUILD, ALICE, "30d", clock.now())
    assert {d.isoformat(): sum(games.values()) / 3600 for d, games in days if games} == {
        "2025-03-07": 1.0,
        "2025-03-10": 3.0,
        "2025-03-11": 2.0,
    }
    assert len(days) == 30  # 11 February to 12 March, zeros included


async def test_known_game_names_are_shown(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    from bot.storage.playtime import remember_game_name

    await seed(core, clock)
    await core.store.engine.write(
        lambda c: remember_game_name(c, "393380", "Squad", to_iso(clock.now()))
    )
    show = interaction(bot, "playtime", "show")
    await run_command(bot, show)
    [embed] = answers(discord_api, show)[0]["data"]["embeds"]
    assert "**Squad** · Steam: 12 h 30 min" in embed["description"]
    board = interaction(bot, None, "leaderboard", [{"name": "game", "type": 3, "value": "393380"}])
    await run_command(bot, board)
    assert answers(discord_api, board)[-1]["data"]["embeds"][0]["title"].startswith("Squad")


async def test_a_chart_of_nothing_is_an_answer_in_words(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    chart = interaction(bot, "playtime", "chart", [{"name": "period", "type": 3, "value": "7d"}])
    await run_command(bot, chart)
    assert discord_api.uploads == []
    assert "no playtime in the last 7 days" in answer_text(discord_api, chart)


async def test_stats_server_charts_who_played_and_the_top_games(
    bot: Questlog, core: Core, clock: ManualClock, discord_api: FakeDiscord
) -> None:
    await seed(core, clock)
    days, games, members = await core.stats.server_days(GUILD, "30d", clock.now())
    played = {d.isoformat(): n for d, n in days if n}
    assert played == {"2025-03-07": 1, "2025-03-10": 1, "2025-03-11": 1} and members == 1
    assert len(days) == 30 and games and all(seconds > 0 for _, seconds in games)
    chart = interaction(bot, "stats", "server", [{"name": "period", "type": 3, "value": "30d"}])
    await run_command(bot, chart)
    [(name, png)] = discord_api.uploads
    assert name == "server.png" and png.startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image

    corner = Image.open(io.BytesIO(png)).convert("RGB").getpixel((2, 2))
    assert max(corner) < 60  # the dark card


async def test_stats_server_without_playtime_answers_in_words(
    bot: Questlog, discord_api: FakeDiscord
) -> None:
    chart = interaction(bot, "stats", "server")
    await run_command(bot, chart)
    assert discord_api.uploads == []
    assert "Nobody with a linked account played in the last 30 days" in answer_text(
        discord_api, chart
    )
