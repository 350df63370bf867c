"""/rewards add|list|remove|preview: a role for hours played.

Before a reward is saved, the bot must be able to give its role: Manage Roles, and a role that
``Role.is_assignable()`` (not @everyone, not managed by an integration, below the bot's top
role). The admin must be able to give it too (below their own top role, unless they own the
server): a reward is no way round Discord's role hierarchy.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.clock import PERIODS, from_iso
from bot.gateway.client import Questlog, UserError, reply, texts_for, whole_lines
from bot.i18n import Texts
from bot.markdown import code, escape
from bot.rewards import REWARD_COUNTS, REWARD_SOURCES, Reward, RewardRefused, RewardSummary
from bot.services.leaderboards import game_label
from cogs import _strings as strings
from cogs._games import game_choices

PERIOD_CHOICES = [strings.choice(strings.PERIOD_NAMES[p], p) for p in PERIODS]
SOURCE_CHOICES = [strings.choice(f"choice.{s}", s) for s in REWARD_SOURCES]
MODE_CHOICES = [
    strings.choice("choice.stack", "stack"),
    strings.choice("choice.replace", "replace"),
]
COUNT_CHOICES = [strings.choice(f"choice.{c}", c) for c in REWARD_COUNTS]
SHOWN = 10  # members a preview names


def _guild(interaction: discord.Interaction) -> discord.Guild:
    if interaction.guild is None:
        raise UserError(strings.GUILD_ONLY)
    return interaction.guild


def _when(text: str) -> str:
    return f"<t:{int(from_iso(text).timestamp())}:R>"


def check_assignable(
    interaction: discord.Interaction, guild: discord.Guild, role: discord.Role
) -> None:
    """Refuse (UserError) a role the bot, or the admin asking, cannot give."""
    me = guild.me
    if me is None or not me.guild_permissions.manage_roles:
        raise UserError(strings.REWARDS_NO_MANAGE_ROLES)
    if role.is_default():
        raise UserError(strings.REWARDS_EVERYONE)
    if role.managed:
        raise UserError(strings.REWARDS_MANAGED, role=role.mention)
    if not role.is_assignable():
        raise UserError(strings.REWARDS_ABOVE_BOT, role=role.mention, top=me.top_role.mention)
    member = interaction.user  # Discord holds administrators to the hierarchy too
    if (
        isinstance(member, discord.Member)
        and member.id != guild.owner_id
        and role >= member.top_role
    ):
        raise UserError(strings.REWARDS_ABOVE_YOU, role=role.mention)


def describe(t: Texts, reward: Reward, names: dict[str, str]) -> str:
    """ "@Veteran · 100 hours in Squad · all time · the best source · stack"."""
    game = (
        escape(game_label(reward.game_id, names, t))
        if reward.game_id
        else t(strings.REWARDS_BEST_GAME)
    )
    targets = [f"<@&{reward.role_id}>"] if reward.role_id else []
    if reward.squad_group:
        targets.append(
            t(
                strings.REWARDS_SQUAD_TARGET,
                group=code(reward.squad_group),
                permissions=escape(reward.squad_permissions or "reserve"),
            )
        )
    return t(
        strings.REWARDS_DESCRIBE,
        role=" + ".join(targets),
        hours=t.plural("count.hours", reward.hours),
        game=game,
        period=t(strings.PERIOD_NAMES[reward.period]),
        source=t(f"choice.{reward.source}"),
        mode=t(f"choice.{reward.mode}"),
    ) + (t(strings.REWARDS_COUNTS_TOTAL) if reward.counting == "total" else "")


@app_commands.guild_only()
@app_commands.default_permissions(manage_roles=True)
class Rewards(commands.GroupCog, group_name="rewards", group_description=strings.REWARDS_GROUP):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    async def _game(self, guild_id: int, game: str | None) -> str | None:
        if game is None:
            return None
        game = game.strip()
        if not await self.core.store.rewards.known_game(guild_id, game):
            raise UserError(strings.REWARDS_UNKNOWN_GAME, game=escape(game[:100]))
        return game

    @app_commands.command(name="add", description=strings.REWARDS_ADD)
    @app_commands.describe(
        hours=strings.REWARDS_HOURS_ARG,
        role=strings.REWARDS_ROLE_ARG,
        game=strings.REWARDS_GAME_ARG,
        period=strings.REWARDS_PERIOD_ARG,
        source=strings.REWARDS_SOURCE_ARG,
        mode=strings.REWARDS_MODE_ARG,
        squad_group=strings.REWARDS_SQUAD_GROUP_ARG,
        squad_permissions=strings.REWARDS_SQUAD_PERMISSIONS_ARG,
        count=strings.REWARDS_COUNT_ARG,
    )
    @app_commands.choices(
        period=PERIOD_CHOICES, source=SOURCE_CHOICES, mode=MODE_CHOICES, count=COUNT_CHOICES
    )
    async def add(
        self,
        interaction: discord.Interaction,
        hours: app_commands.Range[int, 1, 100_000],
        role: discord.Role | None = None,
        game: str | None = None,
        period: app_commands.Choice[str] | None = None,
        source: app_commands.Choice[str] | None = None,
        mode: app_commands.Choice[str] | None = None,
        squad_group: app_commands.Range[str, 1, 32] | None = None,
        squad_permissions: app_commands.Range[str, 1, 200] | None = None,
        count: app_commands.Choice[str] | None = None,
    ) -> None:
        guild = _guild(interaction)
        t = texts_for(interaction)
        if role is not None:
            check_assignable(interaction, guild, role)
        elif squad_group is None:
            raise UserError("rewards.refused.no_target")
        # Counting who qualifies reads the whole server's playtime: answered in a moment.
        await interaction.response.defer(ephemeral=True, thinking=True)
        game_id = await self._game(guild.id, game)
        try:
            reward = await self.core.rewards.add(
                guild_id=guild.id,
                role_id=role.id if role is not None else None,
                hours=hours,
                game_id=game_id,
                period=period.value if period else "all",
                source=source.value if source else "any",
                mode=mode.value if mode else "stack",
                created_by=interaction.user.id,
                squad_group=squad_group,
                squad_permissions=squad_permissions,
                counting=count.value if count else "active",
            )
        except RewardRefused as refused:
            raise UserError(refused.msgid, **refused.fields) from None
        members, _ = await self.core.rewards.preview(
            guild_id=guild.id, hours=reward.hours, game_id=reward.game_id,
            period=reward.period, source=reward.source, counting=reward.counting, limit=0,
        )  # fmt: skip
        names = await self.core.store.stats.game_names([game_id] if game_id else [])
        lines = [t(strings.REWARDS_ADDED, id=reward.id, reward=describe(t, reward, names))]
        lines.append(
            t.plural(strings.REWARDS_ADDED_NOW, members)
            if members
            else t(strings.REWARDS_ADDED_NONE)
        )
        await reply(interaction, "\n".join(lines))

    @app_commands.command(name="list", description=strings.REWARDS_LIST)
    async def list_(self, interaction: discord.Interaction) -> None:
        guild = _guild(interaction)
        t = texts_for(interaction)
        found = await self.core.rewards.summaries(guild.id)
        if not found:
            await reply(interaction, t(strings.REWARDS_NONE))
            return
        names = await self.core.store.stats.game_names(
            sorted({s.reward.game_id for s in found if s.reward.game_id})
        )
        lines = [t(strings.REWARDS_TITLE)]
        lines += [self._line(t, summary, names) for summary in found]
        await reply(interaction, whole_lines(lines))

    def _line(self, t: Texts, summary: RewardSummary, names: dict[str, str]) -> str:
        line = t(
            strings.REWARDS_ROW,
            id=summary.reward.id,
            reward=describe(t, summary.reward, names),
            holders=t.plural("count.members", summary.holders),
        )
        if summary.paused_reason:
            line += "\n" + t(
                strings.REWARDS_PAUSED,
                since=_when(summary.paused_since or ""),
                reason=escape(summary.paused_reason),
            )
        elif summary.waiting:
            line += "\n" + t.plural(strings.REWARDS_WAITING, summary.waiting)
        return line

    @app_commands.command(name="remove", description=strings.REWARDS_REMOVE)
    @app_commands.describe(reward=strings.REWARDS_REWARD_ARG, keep_roles=strings.REWARDS_KEEP_ARG)
    async def remove(
        self, interaction: discord.Interaction, reward: int, keep_roles: bool = False
    ) -> None:
        guild = _guild(interaction)
        t = texts_for(interaction)
        holders = await self.core.rewards.remove(guild.id, reward, take_back=not keep_roles)
        if holders is None:
            raise UserError(strings.REWARDS_UNKNOWN, id=reward)
        if keep_roles or not holders:
            text = t.plural(strings.REWARDS_REMOVED_KEPT, len(holders), id=reward)
        else:
            text = t.plural(strings.REWARDS_REMOVED, len(holders), id=reward)
        await reply(interaction, text)

    @remove.autocomplete("reward")
    async def _rewards(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        if interaction.guild is None:
            return []
        t = texts_for(interaction)
        found = await self.core.rewards.rewards(interaction.guild.id)
        names = await self.core.store.stats.game_names(
            sorted({r.game_id for r in found if r.game_id})
        )
        choices = []
        for reward in found:
            role = interaction.guild.get_role(reward.role_id)
            game = (
                game_label(reward.game_id, names, t)
                if reward.game_id
                else t(strings.REWARDS_BEST_GAME)
            )
            label = t(
                strings.REWARDS_CHOICE,
                id=reward.id,
                role=role.name if role else str(reward.role_id),
                hours=t.plural("count.hours", reward.hours),
                game=game,
            )
            if current.strip().casefold() in label.casefold():
                choices.append(app_commands.Choice(name=label[:100], value=reward.id))
        return choices[:25]

    @app_commands.command(name="preview", description=strings.REWARDS_PREVIEW)
    @app_commands.describe(
        hours=strings.REWARDS_HOURS_ARG,
        game=strings.REWARDS_GAME_ARG,
        period=strings.REWARDS_PERIOD_ARG,
        source=strings.REWARDS_SOURCE_ARG,
        count=strings.REWARDS_COUNT_ARG,
    )
    @app_commands.choices(period=PERIOD_CHOICES, source=SOURCE_CHOICES, count=COUNT_CHOICES)
    async def preview(
        self,
        interaction: discord.Interaction,
        hours: app_commands.Range[int, 1, 100_000],
        game: str | None = None,
        period: app_commands.Choice[str] | None = None,
        source: app_commands.Choice[str] | None = None,
        count: app_commands.Choice[str] | None = None,
    ) -> None:
        guild = _guild(interaction)
        t = texts_for(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        game_id = await self._game(guild.id, game)
        members, top = await self.core.rewards.preview(
            guild_id=guild.id, hours=hours, game_id=game_id,
            period=period.value if period else "all", source=source.value if source else "any",
            counting=count.value if count else "active", limit=SHOWN,
        )  # fmt: skip
        if not members:
            await reply(interaction, t(strings.REWARDS_PREVIEW_NONE))
            return
        lines = [t.plural(strings.REWARDS_PREVIEW_SOME, members)]
        lines += [
            t(strings.REWARDS_PREVIEW_ROW, user_id=user, duration=t.duration(seconds))
            for user, seconds in top
        ]
        if members > len(top):
            lines.append(t.plural(strings.REWARDS_PREVIEW_MORE, members - len(top)))
        await reply(interaction, "\n".join(lines))

    @add.autocomplete("game")
    async def _add_game(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._games(interaction, current)

    @preview.autocomplete("game")
    async def _preview_game(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._games(interaction, current)

    async def _games(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await game_choices(self.core, interaction, current)


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Rewards(bot))
