"""/playtime show|chart, /stats server and /leaderboard: members' playtime from their linked
accounts, as cards, lists and pictures."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord
from discord import app_commands
from discord.ext import commands

from bot.charts import BoardRow, Day, Words, render_board, render_daily, render_server
from bot.gateway.client import Questlog, UserError, reply, texts_for
from bot.i18n import Texts
from bot.markdown import escape
from bot.services.leaderboards import (
    PERIODS,
    WINDOWS,
    Board,
    MemberPlaytime,
    Period,
    Window,
    game_label,
)
from cogs import _strings as strings
from cogs._games import game_choices
from cogs._names import MemberNames

PERIOD_CHOICES = [strings.choice(strings.PERIOD_NAMES[p], p) for p in PERIODS]
WINDOW_CHOICES = [strings.choice(strings.PERIOD_NAMES[w], w) for w in WINDOWS]


def chart_words(t: Texts) -> Words:
    """The words and formats of a chart in the member's language."""
    return Words(
        hours=t(strings.CHART_HOURS),
        minutes=t(strings.CHART_MINUTES),
        other_games=t(strings.CHART_OTHER_GAMES),
        members_axis=t(strings.STATS_MEMBERS_AXIS),
        games_axis=t(strings.STATS_GAMES_AXIS),
        day=t.short_day,
        hours_value=t.hours,
    )


def played(t: Texts, seconds: int, away: int) -> str:
    """Active time, with the total beside it where AFK or idle time makes them differ."""
    if away <= 0:
        return t.duration(seconds)
    return t(
        strings.PLAYTIME_WITH_TOTAL,
        active=t.duration(seconds),
        total=t.duration(seconds + away),
    )


def playtime_embed(t: Texts, name: str, view: MemberPlaytime, hint: str = "") -> discord.Embed:
    """The /playtime show card: a line per game and source, most played first, and a footnote
    on what the figures are (active time; BattleMetrics' totals)."""
    shown = view.totals[:25]
    lines = [
        t(
            strings.PLAYTIME_LINE,
            game=escape(game_label(total.game_id, view.names, t)),
            source=t(strings.SOURCE_NAMES[total.source])
            if total.source in strings.SOURCE_NAMES
            else total.source,
            duration=played(t, total.seconds, total.away),
        )
        for total in shown
    ]
    embed = discord.Embed(
        title=t(strings.PLAYTIME_TITLE, name=escape(name)),
        description="\n".join(lines) + hint,
        colour=0x5865F2,
    )
    notes = []
    if any(total.away > 0 for total in shown):
        notes.append(t(strings.PLAYTIME_NOTE_ACTIVE))
    if any(total.source == "battlemetrics" for total in shown):
        notes.append(t(strings.PLAYTIME_NOTE_BATTLEMETRICS))
    if notes:
        embed.set_footer(text=" ".join(notes))
    return embed


def board_embed(t: Texts, board: Board, period: Period, *, image: bool = False) -> discord.Embed:
    """The board as a list with mentions, or (``image``) the frame of its picture."""
    lines = [
        f"**{rank}.** <@{user}> · {played(t, seconds, board.away.get(user, 0))}"
        for rank, (user, seconds) in enumerate(board.rows, start=board.first_rank)
    ]
    embed = discord.Embed(
        title=t(
            strings.LEADERBOARD_TITLE,
            game=escape(board.label),
            period=t(strings.PERIOD_NAMES[period]),
        ),
        description=None if image else "\n".join(lines),
        colour=0xF1C40F,
    )
    footer = t(strings.LEADERBOARD_PAGE, page=board.page + 1, pages=board.pages)
    if any(board.away.get(user, 0) > 0 for user, _ in board.rows):
        footer += " · " + t(strings.PLAYTIME_NOTE_ACTIVE)
    embed.set_footer(text=footer)
    if image:
        embed.set_image(url=f"attachment://{BOARD_FILE}")
    return embed


BOARD_FILE = "leaderboard.png"


@dataclass
class Shown:
    """A board page as a message: the embed, and its picture when one was asked for."""

    embed: discord.Embed
    file: discord.File | None = None


class LeaderboardView(discord.ui.View):
    """Previous/next buttons over a leaderboard (only the member who asked may page). Each
    click reads that one page, for the period as it was when the board was asked for."""

    def __init__(
        self,
        owner_id: int,
        fetch: Callable[[int], Awaitable[Board]],
        board: Board,
        present: Callable[[Board], Awaitable[Shown]],
    ) -> None:
        super().__init__(timeout=300)
        self.owner_id = owner_id
        self.fetch = fetch
        self.present = present
        self.board = board
        self._sync()

    @property
    def index(self) -> int:
        return self.board.page

    def _sync(self) -> None:
        self.previous.disabled = self.board.page == 0
        self.next.disabled = self.board.page >= self.board.pages - 1

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.owner_id

    async def _show(self, interaction: discord.Interaction, page: int) -> None:
        await interaction.response.defer()  # acknowledged at once; the page is read after
        self.board = await self.fetch(page)
        self._sync()
        shown = await self.present(self.board)
        await interaction.edit_original_response(
            embed=shown.embed,
            attachments=[shown.file] if shown.file else discord.utils.MISSING,
            view=self,
        )

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.board.page - 1)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, self.board.page + 1)


def _guild(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise UserError(strings.GUILD_ONLY)
    return interaction.guild_id


class Playtime(commands.Cog):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core
        self.names = MemberNames(bot.http)

    playtime = app_commands.Group(
        name="playtime", description=strings.PLAYTIME_GROUP, guild_only=True
    )

    async def _games(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await game_choices(self.core, interaction, current)

    @playtime.command(name="show", description=strings.PLAYTIME_SHOW)
    @app_commands.describe(member=strings.PLAYTIME_MEMBER_ARG, game=strings.PLAYTIME_GAME_ARG)
    async def show(
        self,
        interaction: discord.Interaction,
        member: discord.Member | None = None,
        game: str | None = None,
    ) -> None:
        guild_id = _guild(interaction)
        t = texts_for(interaction)
        target = member or interaction.user
        view = await self.core.stats.member(guild_id, target.id, game)
        hint = t(strings.STEAM_PRIVATE_HINT) if view.steam_private else ""
        if not view.totals:
            if target.id == interaction.user.id:
                text = t(strings.PLAYTIME_NONE_SELF)
            else:
                text = t(strings.PLAYTIME_NONE_MEMBER, member=target.mention)
            await reply(interaction, text + hint)
            return
        await reply_embed(interaction, playtime_embed(t, target.display_name, view, hint))

    @playtime.command(name="chart", description=strings.PLAYTIME_CHART)
    @app_commands.describe(member=strings.PLAYTIME_MEMBER_ARG, period=strings.CHART_PERIOD_ARG)
    @app_commands.choices(period=WINDOW_CHOICES)
    async def chart(
        self,
        interaction: discord.Interaction,
        member: discord.Member | None = None,
        period: app_commands.Choice[str] | None = None,
    ) -> None:
        guild_id = _guild(interaction)
        t = texts_for(interaction)
        await interaction.response.defer(thinking=True)  # rendering takes a moment
        target = member or interaction.user
        window: Window = period.value if period else "30d"  # type: ignore[assignment]
        now = self.core.clock.now()
        days, names = await self.core.stats.daily_games(guild_id, target.id, window, now, t)
        played = sum(sum(games.values()) for _, games in days)
        period_name = t(strings.PERIOD_NAMES[window])
        if not played:
            await interaction.followup.send(
                t(strings.CHART_NOTHING, name=escape(target.display_name), period=period_name),
                allowed_mentions=discord.AllowedMentions.none(),
            )
            return
        bars = [Day(day, {names[g]: s for g, s in games.items()}) for day, games in days]
        title = t(strings.CHART_TITLE, name=target.display_name)
        subtitle = t(strings.CHART_SUBTITLE, period=period_name, total=t.duration(played))
        png = await asyncio.to_thread(render_daily, bars, title, subtitle, chart_words(t))
        await interaction.followup.send(file=discord.File(io.BytesIO(png), filename="playtime.png"))

    stats = app_commands.Group(name="stats", description=strings.STATS_GROUP, guild_only=True)

    @stats.command(name="server", description=strings.STATS_SERVER)
    @app_commands.describe(period=strings.CHART_PERIOD_ARG)
    @app_commands.choices(period=WINDOW_CHOICES)
    async def stats_server(
        self, interaction: discord.Interaction, period: app_commands.Choice[str] | None = None
    ) -> None:
        guild_id = _guild(interaction)
        t = texts_for(interaction)
        await interaction.response.defer(thinking=True)
        window: Window = period.value if period else "30d"  # type: ignore[assignment]
        days, games, members = await self.core.stats.server_days(
            guild_id, window, self.core.clock.now(), t
        )
        period_name = t(strings.PERIOD_NAMES[window])
        if not members:
            await interaction.followup.send(t(strings.STATS_NOTHING, period=period_name))
            return
        name = interaction.guild.name if interaction.guild else str(guild_id)
        title = t(strings.STATS_TITLE, name=name)
        subtitle = t.plural(strings.STATS_SUBTITLE, members, period=period_name)
        png = await asyncio.to_thread(render_server, days, games, title, subtitle, chart_words(t))
        await interaction.followup.send(file=discord.File(io.BytesIO(png), filename="server.png"))

    @show.autocomplete("game")
    async def _show_game(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._games(interaction, current)

    @app_commands.command(name="leaderboard", description=strings.LEADERBOARD)
    @app_commands.describe(
        game=strings.LEADERBOARD_GAME_ARG,
        period=strings.PLAYTIME_PERIOD_ARG,
        image=strings.LEADERBOARD_IMAGE_ARG,
    )
    @app_commands.choices(period=PERIOD_CHOICES)
    @app_commands.guild_only()
    async def leaderboard(
        self,
        interaction: discord.Interaction,
        game: str,
        period: app_commands.Choice[str] | None = None,
        image: bool = False,
    ) -> None:
        guild_id = _guild(interaction)
        t = texts_for(interaction)
        name: Period = period.value if period else "all"  # type: ignore[assignment]
        # Deferred: a board of a large community read from a cold disk may take a moment.
        await interaction.response.defer(thinking=True)
        asked = self.core.clock.now()

        async def fetch(page: int) -> Board:
            return await self.core.stats.leaderboard(guild_id, game, name, asked, page, t)

        async def present(board: Board) -> Shown:
            embed = board_embed(t, board, name, image=image)
            if not image:
                return Shown(embed)
            return Shown(embed, await self._board_picture(interaction, t, board, name))

        board = await fetch(0)
        if not board.rows:
            text = t(
                strings.LEADERBOARD_EMPTY,
                game=escape(board.label),
                period=t(strings.PERIOD_NAMES[name]),
            )
            await interaction.followup.send(text, allowed_mentions=discord.AllowedMentions.none())
            return
        view = (
            LeaderboardView(interaction.user.id, fetch, board, present)
            if board.pages > 1
            else discord.utils.MISSING
        )
        shown = await present(board)
        await interaction.followup.send(
            embed=shown.embed,
            file=shown.file or discord.utils.MISSING,
            view=view,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def _board_picture(
        self, interaction: discord.Interaction, t: Texts, board: Board, period: Period
    ) -> discord.File:
        """The page drawn with the members' names (a picture cannot hold a mention); its alt
        text lists the same lines."""
        assert interaction.guild_id is not None
        names = await self.names.names(
            interaction.guild_id, [user for user, _ in board.rows], t, interaction.guild
        )
        rows = [
            BoardRow(rank, names[user], seconds, played(t, seconds, board.away.get(user, 0)))
            for rank, (user, seconds) in enumerate(board.rows, start=board.first_rank)
        ]
        subtitle = t(
            strings.LEADERBOARD_RANKED,
            members=t.number(board.members),
            page=board.page + 1,
            pages=board.pages,
        )
        # The picture's own title: the embed's is markdown (escaped), a picture shows text as is.
        title = t(
            strings.LEADERBOARD_TITLE, game=board.label, period=t(strings.PERIOD_NAMES[period])
        )
        png = await asyncio.to_thread(render_board, rows, title, subtitle)
        alt = "\n".join(
            t(strings.LEADERBOARD_ALT, rank=row.rank, name=row.name, duration=row.label)
            for row in rows
        )
        return discord.File(io.BytesIO(png), filename=BOARD_FILE, description=alt[:1024])

    @leaderboard.autocomplete("game")
    async def _board_game(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._games(interaction, current)


async def reply_embed(interaction: discord.Interaction, embed: discord.Embed) -> None:
    await interaction.response.send_message(
        embed=embed, allowed_mentions=discord.AllowedMentions.none()
    )


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Playtime(bot))
