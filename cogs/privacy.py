"""/privacy: what Questlog stores about the member who asks, in this server."""

from __future__ import annotations

import io
import logging
from collections import defaultdict

import discord
from discord import app_commands
from discord.ext import commands

from bot.gateway.client import Questlog, UserError, reply, texts_for
from bot.i18n import Texts
from bot.markdown import escape
from bot.privacy import PrivacyChoice
from bot.services.leaderboards import Total, game_label
from cogs import _strings as strings
from cogs._views import ConfirmView, forgotten_text
from cogs.linking import LABELS

SOURCE_LABELS = {**LABELS, "battlemetrics": "BattleMetrics"}

log = logging.getLogger(__name__)

GAMES_SHOWN = 10  # per source; the rest are counted (the export has them all)


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
        about = await self.core.privacy.stored_about(interaction.guild_id, interaction.user.id)
        summary = about.summary
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
        per_source: dict[str, list[Total]] = defaultdict(list)
        for total in about.totals:
            per_source[total.source].append(total)
        for source, found in sorted(
            per_source.items(), key=lambda kv: -sum(x.seconds for x in kv[1])
        ):
            lines.append(
                t(
                    strings.PRIVACY_PLAYTIME,
                    source=SOURCE_LABELS.get(source, source),
                    duration=t.duration(sum(x.seconds for x in found)),
                    games=t.plural("count.games", len({x.game_id for x in found})),
                )
            )
            ranked = sorted(found, key=lambda x: -x.seconds)
            for total in ranked[:GAMES_SHOWN]:
                game = escape(game_label(total.game_id, about.names, t))
                lines.append(t(strings.PRIVACY_GAME, game=game, duration=t.duration(total.seconds)))
            if len(ranked) > GAMES_SHOWN:
                lines.append(t.plural(strings.PRIVACY_MORE_GAMES, len(ranked) - GAMES_SHOWN))
        if not per_source:
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
        lines.append(self._presence_line(t, about.choice, about.presence_default))
        collecting = about.choice.collecting
        on = strings.PRIVACY_COLLECTING_ON if collecting else strings.PRIVACY_COLLECTING_OFF
        lines.append(t(on))
        await reply(interaction, "\n".join(lines))

    def _presence_line(self, t: Texts, choice: PrivacyChoice, default: bool) -> str:
        counted = choice.collecting and (default if choice.presence is None else choice.presence)
        line = t(
            strings.PRIVACY_PRESENCE_STATE_ON if counted else strings.PRIVACY_PRESENCE_STATE_OFF
        )
        why = (
            strings.PRIVACY_PRESENCE_WHY_DEFAULT
            if choice.presence is None
            else (strings.PRIVACY_PRESENCE_WHY_CHOICE)
        )
        line += t(why)
        if not self.core.privacy.presence_running:
            line += " " + t(strings.PRIVACY_PRESENCE_NOT_RUNNING)
        return line

    presence = app_commands.Group(
        name="presence", description=strings.PRIVACY_PRESENCE_GROUP, parent=privacy
    )

    @presence.command(name="on", description=strings.PRIVACY_PRESENCE_ON)
    async def presence_on(self, interaction: discord.Interaction) -> None:
        await self._presence(interaction, True)

    @presence.command(name="off", description=strings.PRIVACY_PRESENCE_OFF)
    async def presence_off(self, interaction: discord.Interaction) -> None:
        await self._presence(interaction, False)

    async def _presence(self, interaction: discord.Interaction, on: bool) -> None:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        t = texts_for(interaction)
        choice = await self.core.privacy.set_presence(interaction.guild_id, interaction.user.id, on)
        lines = [t(strings.PRIVACY_PRESENCE_NOW_ON if on else strings.PRIVACY_PRESENCE_NOW_OFF)]
        if on and not choice.collecting:
            lines.append(t(strings.PRIVACY_PRESENCE_BLOCKED))
        if on and not self.core.privacy.presence_running:
            lines.append(t(strings.PRIVACY_PRESENCE_NOT_RUNNING))
        await reply(interaction, "\n".join(lines))

    @privacy.command(name="export", description=strings.PRIVACY_EXPORT)
    async def export(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        await interaction.response.defer(ephemeral=True, thinking=True)
        t = texts_for(interaction)
        body, capped = await self.core.privacy.export(interaction.guild_id, interaction.user.id)
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

    @privacy.command(name="off", description=strings.PRIVACY_OFF)
    async def off(self, interaction: discord.Interaction) -> None:
        await self._collecting(interaction, False)

    @privacy.command(name="on", description=strings.PRIVACY_ON)
    async def on(self, interaction: discord.Interaction) -> None:
        await self._collecting(interaction, True)

    async def _collecting(self, interaction: discord.Interaction, on: bool) -> None:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        changed = await self.core.privacy.set_collecting(
            interaction.guild_id, interaction.user.id, on
        )
        if on:
            said = strings.PRIVACY_ON_DONE if changed else strings.PRIVACY_ON_ALREADY
        else:
            said = strings.PRIVACY_OFF_DONE if changed else strings.PRIVACY_OFF_ALREADY
        await reply(interaction, texts_for(interaction)(said))

    @privacy.command(name="delete", description=strings.PRIVACY_DELETE)
    async def delete(self, interaction: discord.Interaction) -> None:
        if interaction.guild_id is None:
            raise UserError(strings.GUILD_ONLY)
        guild_id, user_id = interaction.guild_id, interaction.user.id
        t = texts_for(interaction)
        if not (await self.core.privacy.stored_about(guild_id, user_id)).anything:
            await reply(interaction, t(strings.PRIVACY_DELETE_NOTHING))
            return

        async def forget() -> str:
            done = await self.core.privacy.forget(guild_id, user_id, by_member=True)
            return forgotten_text(t, done, user_id=user_id, by_member=True)

        view = ConfirmView(user_id, t, strings.PRIVACY_DELETE_BUTTON, forget, origin=interaction)
        await reply(interaction, t(strings.PRIVACY_DELETE_CONFIRM), view=view)


async def setup(bot: Questlog) -> None:
    await bot.add_cog(Privacy(bot))
