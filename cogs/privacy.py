"""/privacy: what Questlog stores about the member who asks, in this server."""

from __future__ import annotations

import io
import logging
from collections import defaultdict

import discord
from discord import app_commands
from discord.ext import commands

from bot.gateway.client import Questlog, UserError, reply, texts_for
from cogs import _strings as strings
from cogs.linking import LABELS

SOURCE_LABELS = {**LABELS, "battlemetrics": "BattleMetrics"}

log = logging.getLogger(__name__)


class Privacy(commands.Cog):
    def __init__(self, bot: Questlog) -> None:
        self.bot = bot
        self.core = bot.core

    privacy = app_commands.Group(name="privacy", description=strings.PRIVACY_GROUP, guild_only=True)

    @privacy.command(name="show", description=strings.PRIVACY_SHOW)
    async def show(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        t = texts_for(interaction)
        summary, totals = await self.core.accounts.stored_about(
            interaction.guild_id, interaction.user.id
        )
        lines = [t(strings.PRIVACY_TITLE)]
        if not summary.links:
            lines.append(t(strings.PRIVACY_NO_LINKS))
        for source, external_id, how in summary.links:
            flag = strings.LINK_VERIFIED_BY.get(how)
            lines.append(
                t(
                    strings.PRIVACY_LINK,
                    source=SOURCE_LABELS.get(source, source),
                    external_id=external_id,
                    flags=t(flag) if flag else t(strings.LINK_UNVERIFIED),
                )
            )
        per_source: dict[str, int] = defaultdict(int)
        games: dict[str, set[str]] = defaultdict(set)
        for total in totals:
            per_source[total.source] += total.seconds
            games[total.source].add(total.game_id)
        if per_source:
            for source, seconds in sorted(per_source.items(), key=lambda kv: -kv[1]):
                lines.append(
                    t(
                        strings.PRIVACY_PLAYTIME,
                        source=SOURCE_LABELS.get(source, source),
                        duration=t.duration(seconds),
                        games=t.plural("count.games", len(games[source])),
                    )
                )
        else:
            lines.append(t(strings.PRIVACY_NO_PLAYTIME))
        lines.append(
            t(
                strings.PRIVACY_COUNTS,
                sessions=t.number(summary.sessions),
                samples=t.number(summary.samples),
                events=t.number(summary.events),
            )
        )
        lines.append(t(strings.PRIVACY_TOKENS_YES if summary.tokens else strings.PRIVACY_TOKENS_NO))
        lines.append(t(strings.PRIVACY_PRESENCE))
        await reply(interaction, "\n".join(lines))

    @privacy.command(name="export", description=strings.PRIVACY_EXPORT)
    async def export(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        await interaction.response.defer(ephemeral=True, thinking=True)
        t = texts_for(interaction)
        body, capped = await self.core.accounts.export(interaction.guild_id, interaction.user.id)
        name = f"questlog-{interaction.guild_id}-{interaction.user.id}.json.gz"
        text = t(strings.PRIVACY_EXPORTED_CAPPED if capped else strings.PRIVACY_EXPORTED)
        try:
            await interaction.followup.send(
                text,
                file=discord.File(io.BytesIO(body), filename=name),
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.NotFound:
            log.warning("interaction expired before Questlog could send a privacy export")


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Privacy(bot))
